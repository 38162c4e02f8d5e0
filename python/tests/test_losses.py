"""The pure loss functions on hand-computed tiny examples."""

import math

import torch

from amago2.losses import (bins_to_value, dep_critic_loss, ind_actor_loss, masked_mean,
                           popart_new_stats, popart_preserve, popart_sigma, redq_reduce, symexp,
                           symlog, symlog_bins, td_target, two_hot, two_hot_cross_entropy,
                           two_hot_index)

BINS = symlog_bins(64, 1e5, dtype=torch.float64)


def test_symlog_values_and_inverse():
    x = torch.tensor([-1e5, -3.0, -1e-3, 0.0, 1e-3, 1.0, 7.5, 1e5], dtype=torch.float64)
    assert torch.allclose(symlog(torch.tensor([1.0, -1.0])), torch.tensor([math.log(2), -math.log(2)]))
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-12)
    assert torch.allclose(symlog(symexp(x[1:-1])), x[1:-1], rtol=1e-12)


def test_bins_span_symlog_limits():
    assert BINS.shape == (64,)
    assert math.isclose(float(BINS[0]), -math.log1p(1e5)) and math.isclose(float(BINS[-1]), math.log1p(1e5))
    assert torch.allclose(BINS.diff(), BINS.diff()[0].expand(63))


def test_two_hot_round_trip_inside_the_range():
    y = torch.tensor([-5000.0, -1.5, 0.0, 0.37, 2.0, 999.0, 9.9e4], dtype=torch.float64)
    target = two_hot(y, BINS)
    assert torch.allclose(target.sum(-1), torch.ones(7, dtype=torch.float64))
    assert ((target > 0).sum(-1) <= 2).all()
    assert torch.allclose(symexp(target @ BINS), y, rtol=1e-9)


def test_two_hot_clamps_values_outside_the_range():
    target = two_hot(torch.tensor([-1e9, 1e9], dtype=torch.float64), BINS)
    assert target[0, 0] == 1 and target[1, -1] == 1 and target.sum() == 2


def test_two_hot_exact_bin_hits_are_one_hot():
    for k in (0, 1, 31, 62, 63):
        y = symexp(BINS[k]).reshape(1)
        target = two_hot(y, BINS)[0]
        assert math.isclose(float(target[k]), 1.0, abs_tol=1e-9), k
        assert math.isclose(float(target.sum()), 1.0, abs_tol=1e-12)
    lower, w_upper = two_hot_index(symexp(BINS[10]).reshape(1), BINS)
    assert int(lower) == 10 and abs(float(w_upper)) < 1e-9


def test_two_hot_cross_entropy_matches_dense_formula():
    torch.manual_seed(0)
    logits = torch.randn(3, 2, 5, 64, dtype=torch.float64)
    y = torch.randn(2, 5, dtype=torch.float64) * 100
    dense = -(two_hot(y, BINS) * torch.log_softmax(logits, -1)).sum(-1)
    assert torch.allclose(two_hot_cross_entropy(logits, y, BINS), dense, rtol=1e-12)
    # A distribution equal to the two-hot target decodes back to y.
    assert torch.allclose(bins_to_value(two_hot(y, BINS).clamp(min=1e-300).log(), BINS), y, rtol=1e-9)


def test_popart_update_preserves_unnormalised_outputs():
    torch.manual_seed(0)
    c, g, n, h, p = 3, 4, 6, 8, 2
    hidden = torch.randn(c, g, n, h, dtype=torch.float64)
    weight, bias = torch.randn(c, g, h, p, dtype=torch.float64), torch.randn(c, g, p, dtype=torch.float64)
    mu, nu = torch.randn(g, dtype=torch.float64), torch.full((g,), 100.0, dtype=torch.float64)
    y = torch.randn(g, n, dtype=torch.float64) * 300 + 50
    mask = torch.tensor([1, 1, 1, 0, 1, 1], dtype=torch.float64)
    new_mu, new_nu = popart_new_stats(mu, nu, y, mask, beta=0.1)
    sigma, new_sigma = popart_sigma(mu, nu), popart_sigma(new_mu, new_nu)
    assert not torch.allclose(new_mu, mu) and not torch.allclose(new_sigma, sigma)
    expected_mu = 0.9 * mu + 0.1 * (y * mask).sum(-1) / 5
    assert torch.allclose(new_mu, expected_mu)
    before = torch.einsum("cgnh,cghp->cgnp", hidden, weight) + bias[:, :, None]
    w2, b2 = popart_preserve(weight, bias, mu, sigma, new_mu, new_sigma)
    after = torch.einsum("cgnh,cghp->cgnp", hidden, w2) + b2[:, :, None]
    unnorm = lambda out, m, s: out * s.view(1, -1, 1, 1) + m.view(1, -1, 1, 1)  # noqa: E731
    assert torch.allclose(unnorm(before, mu, sigma), unnorm(after, new_mu, new_sigma), rtol=1e-10)


def test_td_target_and_redq_reduction_by_hand():
    reward = torch.tensor([1.0, 2.0])
    done = torch.tensor([0.0, 1.0])
    gammas = torch.tensor([0.5, 0.9])
    q_next = torch.tensor([[10.0, 10.0], [20.0, 20.0]])
    y = td_target(reward, done, gammas, q_next, reward_multiplier=2.0)
    assert torch.allclose(y, torch.tensor([[2 + 5.0, 4.0], [2 + 18.0, 4.0]]))
    q = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert torch.equal(redq_reduce(q, "min"), torch.tensor([1.0, -2.0]))
    assert torch.equal(redq_reduce(q, "mean"), torch.tensor([2.0, -1.0]))


def test_masked_mean_and_dep_critic_loss_by_hand():
    mask = torch.tensor([1.0, 0.0, 1.0])
    assert torch.isclose(masked_mean(torch.tensor([[1.0, 100.0, 3.0]]), mask), torch.tensor(2.0))
    q_norm = torch.tensor([[[2.0, 5.0, 0.5]]])  # C=1, G=1, N=3
    y = torch.tensor([[4.0, -7.0, 2.0]])
    loss = dep_critic_loss(q_norm, y, mu=torch.tensor([2.0]), sigma=torch.tensor([2.0]), mask=mask)
    # normalised targets (y - 2) / 2 = 1, (padded), 0 -> squared errors 1 and 0.25
    assert torch.isclose(loss, torch.tensor((1.0 + 0.25) / 2))


def test_binary_filter_zeroes_gradient_of_non_positive_advantages():
    log_prob = torch.tensor([[-1.0, -2.0, -0.5, -3.0]], requires_grad=True)
    advantage = torch.tensor([[0.3, 0.0, -1.0, 2.0]])
    mask = torch.ones(4)
    loss = ind_actor_loss(log_prob, advantage, mask)
    assert torch.isclose(loss, torch.tensor((1.0 + 3.0) / 4))
    loss.backward()
    assert torch.equal(log_prob.grad, torch.tensor([[-0.25, 0.0, 0.0, -0.25]]))
