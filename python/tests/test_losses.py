"""The pure loss functions on hand-computed tiny examples."""

import math

import torch

from amago2.losses import (PopArt, bins_to_value, dep_critic_loss, ind_actor_loss, masked_mean,
                           popart_sigma, popart_step_size, popart_update, redq_reduce, symexp, symlog,
                           symlog_bins, td_target, two_hot, two_hot_cross_entropy, two_hot_index)

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



def test_a_value_from_bins_keeps_its_logits_precision_under_bf16_autocast():
    """The TD target decodes the target critics' bins inside the update's autocast region:
    the decoding itself must not drop to bf16 (CPU autocast casts matmul as CUDA's does)."""
    torch.manual_seed(0)
    bins = BINS.float()
    logits = torch.randn(4, 1000, 64) * 3
    exact = bins_to_value(logits, bins)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        decoded = bins_to_value(logits, bins)
        rounded = torch.softmax(logits, -1) @ bins                 # what autocast makes of the product
    assert decoded.dtype == torch.float32 and torch.equal(decoded, exact)
    assert rounded.dtype == torch.bfloat16                          # the hazard is real on this torch


BETA = 5e-4


def _fresh_popart(g: int = 1) -> PopArt:
    f64 = dict(dtype=torch.float64)
    return PopArt(torch.zeros(g, **f64), torch.full((g,), 100.0, **f64), torch.ones(g, **f64), torch.zeros(g, **f64))


def test_popart_adaptive_step_size_by_hand():
    # beta / (1 - (1 - beta)^2) = beta / (2 beta - beta^2) = 1 / (2 - beta): the reference's
    # first update (its counter starts at 1 and counts up before use) takes half the batch.
    assert math.isclose(float(popart_step_size(BETA, torch.tensor(2))), 1 / (2 - BETA), rel_tol=1e-12)
    assert math.isclose(float(popart_step_size(BETA, torch.tensor(1))), 1.0, rel_tol=1e-12)
    assert math.isclose(float(popart_step_size(BETA, torch.tensor(10**7))), BETA, rel_tol=1e-12)


def test_popart_follows_a_constant_target_as_worked_out_by_hand():
    # With y = Y every update and mu_0 = 0, nu_0 = 100, the k-th update (t = k + 1) leaves
    # weight P_k on the initial values: the product of (1 - beta_t) over t = 2..k+1
    # telescopes to P_k = beta (1 - beta)^k / (1 - (1 - beta)^(k + 1)). So
    # mu_k = Y (1 - P_k) and nu_k = 100 P_k + Y^2 (1 - P_k).
    Y, mask = 1000.0, torch.ones(5, dtype=torch.float64)
    y = torch.full((1, 5), Y, dtype=torch.float64)
    stats = _fresh_popart()
    for k in range(1, 1001):
        stats = popart_update(stats, y, mask, popart_step_size(BETA, torch.tensor(k + 1)))
        if k in (1, 2, 10, 1000):
            p = BETA * (1 - BETA) ** k / (1 - (1 - BETA) ** (k + 1))
            mu, nu = Y * (1 - p), 100 * p + Y * Y * (1 - p)
            assert math.isclose(float(stats.mu[0]), mu, rel_tol=1e-9), k
            assert math.isclose(float(stats.nu[0]), nu, rel_tol=1e-9), k
            assert math.isclose(float(stats.sigma[0]), math.sqrt(nu - mu * mu), rel_tol=1e-6), k
    assert math.isclose(float(_one_update_mu()), 1000 / (2 - BETA), rel_tol=1e-12)  # 500.125...
    assert 999.2 < float(stats.mu[0]) < 999.3  # where a fixed beta would stand at 393.5
    fixed = _fresh_popart()
    for _ in range(1000):
        fixed = popart_update(fixed, y, mask, torch.tensor(BETA, dtype=torch.float64))
    assert math.isclose(float(fixed.mu[0]), Y * (1 - (1 - BETA) ** 1000), rel_tol=1e-9)
    assert 393 < float(fixed.mu[0]) < 394


def _one_update_mu():
    y = torch.full((1, 3), 1000.0, dtype=torch.float64)
    return popart_update(_fresh_popart(), y, torch.ones(3, dtype=torch.float64), popart_step_size(BETA, torch.tensor(2))).mu[0]


def test_popart_sigma_is_clamped_as_in_the_reference():
    mu = torch.tensor([3.0, 0.0, 0.0], dtype=torch.float64)
    nu = torch.tensor([9.0 - 1.0, 1e20, 4.0], dtype=torch.float64)  # variance -1, 1e20, 4
    assert torch.allclose(popart_sigma(mu, nu), torch.tensor([1e-2, 1e4, 2.0], dtype=torch.float64))


def test_popart_update_moves_to_the_masked_moments_and_keeps_unnormalised_values():
    torch.manual_seed(0)
    g, n = 4, 6
    stats = PopArt(torch.randn(g, dtype=torch.float64), torch.full((g,), 100.0, dtype=torch.float64),
                   torch.rand(g, dtype=torch.float64) + 0.5, torch.randn(g, dtype=torch.float64))
    y = torch.randn(g, n, dtype=torch.float64) * 300 + 50
    mask = torch.tensor([1, 1, 1, 0, 1, 1], dtype=torch.float64)
    new = popart_update(stats, y, mask, torch.tensor(0.1, dtype=torch.float64))
    assert torch.allclose(new.mu, 0.9 * stats.mu + 0.1 * (y * mask).sum(-1) / 5)
    assert torch.allclose(new.nu, 0.9 * stats.nu + 0.1 * (y.square() * mask).sum(-1) / 5)
    assert not torch.allclose(new.sigma, stats.sigma)
    x = torch.randn(g, 10, dtype=torch.float64)  # raw critic outputs
    unnormalised = lambda p: p.sigma[:, None] * (p.w[:, None] * x + p.b[:, None]) + p.mu[:, None]  # noqa: E731
    assert torch.allclose(unnormalised(new), unnormalised(stats), rtol=1e-10)


def test_td_target_and_redq_reduction_by_hand():
    reward = torch.tensor([1.0, 2.0])
    done = torch.tensor([0.0, 1.0])
    gammas = torch.tensor([0.5, 0.9])
    q_next = torch.tensor([[10.0, 10.0], [20.0, 20.0]])
    y = td_target(reward, done, gammas, q_next, reward_multiplier=2.0)
    assert torch.allclose(y, torch.tensor([[2 + 5.0, 4.0], [2 + 18.0, 4.0]]))
    # Three critics, G = 1, N = 2 steps; each step reduces its own pair, a critic may be
    # drawn twice (with replacement, as the reference draws).
    q = torch.tensor([[[1.0, -2.0]], [[3.0, 0.0]], [[-5.0, 7.0]]])
    subset = torch.tensor([[[0, 2]], [[1, 2]]])          # step 0: critics 0, 1; step 1: 2, 2
    assert torch.equal(redq_reduce(q, subset, "min"), torch.tensor([[1.0, 7.0]]))
    assert torch.equal(redq_reduce(q, subset, "mean"), torch.tensor([[2.0, 7.0]]))


def test_masked_mean_and_dep_critic_loss_by_hand():
    mask = torch.tensor([1.0, 0.0, 1.0])
    assert torch.isclose(masked_mean(torch.tensor([[1.0, 100.0, 3.0]]), mask), torch.tensor(2.0))
    q_norm = torch.tensor([[[2.0, 5.0, 0.5]]])  # C=1, G=1, N=3
    y = torch.tensor([[4.0, -7.0, 2.0]])
    per_step = dep_critic_loss(q_norm, y, mu=torch.tensor([2.0]), sigma=torch.tensor([2.0]))
    # normalised targets (y - 2) / 2 = 1, -4.5, 0 -> squared errors 1, 90.25, 0.25
    assert torch.allclose(per_step, torch.tensor([1.0, 90.25, 0.25]))
    assert torch.isclose(masked_mean(per_step, mask), torch.tensor((1.0 + 0.25) / 2))  # the padded step drops


def test_binary_filter_zeroes_gradient_of_non_positive_advantages():
    log_prob = torch.tensor([[-1.0, -2.0, -0.5, -3.0]], requires_grad=True)
    advantage = torch.tensor([[0.3, 0.0, -1.0, 2.0]])
    mask = torch.ones(4)
    loss = masked_mean(ind_actor_loss(log_prob, advantage), mask)
    assert torch.isclose(loss, torch.tensor((1.0 + 3.0) / 4))
    loss.backward()
    assert torch.equal(log_prob.grad, torch.tensor([[-0.25, 0.0, 0.0, -0.25]]))
