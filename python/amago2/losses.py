"""The AMAGO-2 objectives as small pure functions (SPEC section 2).

Shape letters: C critics, S the REDQ subset of target critics, G gammas, N flattened
timesteps (batch x window), B bins, K policy samples. Every per-step quantity is laid out
(G, N) so that it lines up with the critic ensemble's (C, G, N, ...) outputs.

The update step (agent.py) is composed from ACTOR_LOSSES[cfg.actor] and
CRITIC_LOSSES[cfg.critic]; neither knows about the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x (..., N) over the valid steps (mask (N,) of 0/1) and every leading index."""
    assert x.shape[-1] == mask.shape[0], (x.shape, mask.shape)
    leading = x.numel() // x.shape[-1]
    return (x * mask).sum() / (mask.sum().clamp(min=1.0) * leading)


# ---------------------------------------------------------------- two-hot symlog bins


def symlog_bins(num_bins: int, limit: float, dtype=torch.float32) -> Tensor:
    """B bin centres evenly spaced in symlog space over [symlog(-limit), symlog(limit)]."""
    edge = float(symlog(torch.tensor(limit, dtype=torch.float64)))
    return torch.linspace(-edge, edge, num_bins, dtype=torch.float64).to(dtype)


def two_hot_index(y: Tensor, bins: Tensor) -> tuple[Tensor, Tensor]:
    """Split symlog(y) between its two neighbouring bins.

    Returns (lower bin index, weight on the upper bin): target = (1-w) e_lo + w e_{lo+1}.
    Values outside the bin range land entirely on the first or last bin.
    """
    lo_edge, hi_edge = bins[0], bins[-1]
    width = (hi_edge - lo_edge) / (bins.shape[0] - 1)
    pos = (symlog(y).clamp(lo_edge, hi_edge) - lo_edge) / width
    lower = pos.floor().clamp(0, bins.shape[0] - 2)
    return lower.long(), pos - lower


def two_hot(y: Tensor, bins: Tensor) -> Tensor:
    """Dense two-hot encoding (..., B) of y (...): for tests and the reference formulation."""
    lower, w_upper = two_hot_index(y, bins)
    out = torch.zeros(*y.shape, bins.shape[0], dtype=bins.dtype, device=y.device)
    out.scatter_(-1, lower.unsqueeze(-1), (1 - w_upper).unsqueeze(-1).to(bins.dtype))
    out.scatter_add_(-1, (lower + 1).unsqueeze(-1), w_upper.unsqueeze(-1).to(bins.dtype))
    return out


def bins_to_value(logits: Tensor, bins: Tensor) -> Tensor:
    """Scalar value symexp(sum_i p_i b_i) of bin logits (..., B) -> (...)."""
    return symexp(torch.softmax(logits, dim=-1) @ bins)


def two_hot_cross_entropy(logits: Tensor, y: Tensor, bins: Tensor) -> Tensor:
    """-sum_i twohot(y)_i log softmax(logits)_i for logits (C, G, N, B), y (G, N) -> (C, G, N).

    Gathers the two log-probabilities instead of materialising the (C, G, N, B) target.
    """
    assert logits.shape[1:-1] == y.shape, (logits.shape, y.shape)
    lower, w_upper = two_hot_index(y, bins)
    index = torch.stack((lower, lower + 1), dim=-1).expand(logits.shape[0], *lower.shape, 2)
    weights = torch.stack((1 - w_upper, w_upper), dim=-1).to(logits.dtype)
    return _TwoHotCrossEntropy.apply(logits, index, weights)


class _TwoHotCrossEntropy(torch.autograd.Function):
    """logsumexp(logits) - sum_j weights_j logits[index_j] over the last dim, with the
    gradient (softmax(logits) - twohot) * grad written into one (C, G, N, B) buffer.
    Autograd's own backward of the same expression makes four buffers of that size
    (subtract, exp, multiply, scatter) at the start of the backward pass, when every
    saved activation is still held: at the ML45 size that is 336 MB of the update's peak
    memory against 84 MB here."""

    @staticmethod
    def forward(ctx, logits: Tensor, index: Tensor, weights: Tensor) -> Tensor:
        log_norm = torch.logsumexp(logits, dim=-1)
        ctx.save_for_backward(logits, log_norm, index, weights)
        return log_norm - (logits.gather(-1, index) * weights).sum(-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        logits, log_norm, index, weights = ctx.saved_tensors
        grad_logits = torch.sub(logits, log_norm.unsqueeze(-1)).exp_()     # softmax(logits)
        grad_logits.scatter_add_(-1, index, -weights.expand_as(index))
        return grad_logits.mul_(grad.unsqueeze(-1)), None, None


# ---------------------------------------------------------------- PopArt


def popart_sigma(mu: Tensor, nu: Tensor) -> Tensor:
    return (nu - mu.square()).clamp(min=1e-8).sqrt()


def popart_new_stats(mu: Tensor, nu: Tensor, y: Tensor, mask: Tensor, beta: float):
    """Per-gamma running first and second moments of the TD targets y (G, N) -> (mu', nu')."""
    assert y.shape == (mu.shape[0], mask.shape[0])
    count = mask.sum().clamp(min=1.0)
    mean = (y * mask).sum(-1) / count
    mean_sq = (y.square() * mask).sum(-1) / count
    return (1 - beta) * mu + beta * mean, (1 - beta) * nu + beta * mean_sq


def popart_preserve(weight: Tensor, bias: Tensor, mu, sigma, new_mu, new_sigma):
    """Rescale a normalised output layer so sigma*out+mu is unchanged under the new stats.

    weight (C, G, H, P), bias (C, G, P); statistics (G,). Returns the new (weight, bias).
    """
    scale = (sigma / new_sigma).view(1, -1, 1, 1)
    new_bias = (sigma.view(1, -1, 1) * bias + (mu - new_mu).view(1, -1, 1)) / new_sigma.view(1, -1, 1)
    return weight * scale, new_bias


# ---------------------------------------------------------------- targets


def td_target(reward: Tensor, done: Tensor, gammas: Tensor, q_next: Tensor,
              reward_multiplier: float) -> Tensor:
    """y = r * reward_multiplier + gamma (1 - done) Qbar(s', a'): reward, done (N,), q_next (G, N)."""
    assert q_next.shape == (gammas.shape[0], reward.shape[0])
    return reward * reward_multiplier + gammas[:, None] * (1 - done) * q_next


def redq_reduce(q: Tensor, reduction: str) -> Tensor:
    """Reduce the S target critics (first dim) by min (Dep actor on) or mean."""
    return q.min(dim=0).values if reduction == "min" else q.mean(dim=0)


# ---------------------------------------------------------------- critic objectives


def dep_critic_loss(q_norm: Tensor, y: Tensor, mu: Tensor, sigma: Tensor, mask: Tensor) -> Tensor:
    """PopArt regression: q_norm (C, G, N) against the normalised target (y - mu) / sigma."""
    assert q_norm.shape[1:] == y.shape
    target = (y - mu[:, None]) / sigma[:, None]
    return masked_mean((q_norm - target).square(), mask)


def ind_critic_loss(logits: Tensor, y: Tensor, bins: Tensor, mask: Tensor) -> Tensor:
    """Two-hot symlog classification: logits (C, G, N, B), y (G, N)."""
    return masked_mean(two_hot_cross_entropy(logits, y, bins), mask)


@dataclass(frozen=True)
class CriticObjective:
    """How one critic variant reads its ensemble outputs (..., P) and what it minimises."""

    outputs_per_value: Callable[[int], int]
    """num_bins -> outputs per (critic, gamma, action): 1 (scalar) or B (bins)."""
    value: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    """(out (C, G, N, P), mu, sigma, bins) -> unnormalised scalar Q (C, G, N)."""
    normalized: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    """(out, mu, sigma, bins) -> PopArt-normalised Q (C, G, N), the Dep actor's term."""
    loss: Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]
    """(out, y (G, N), mu, sigma, bins, mask) -> scalar loss."""


def _scale(mu, sigma):
    return mu.view(1, -1, 1), sigma.view(1, -1, 1)


def _dep_value(out, mu, sigma, bins):
    m, s = _scale(mu, sigma)
    return out.squeeze(-1) * s + m


def _ind_normalized(out, mu, sigma, bins):
    m, s = _scale(mu, sigma)
    return (bins_to_value(out, bins) - m) / s


CRITIC_LOSSES: dict[str, CriticObjective] = {
    "dep": CriticObjective(
        outputs_per_value=lambda num_bins: 1,
        value=_dep_value,
        normalized=lambda out, mu, sigma, bins: out.squeeze(-1),
        loss=lambda out, y, mu, sigma, bins, mask: dep_critic_loss(out.squeeze(-1), y, mu, sigma, mask),
    ),
    "ind": CriticObjective(
        outputs_per_value=lambda num_bins: num_bins,
        value=lambda out, mu, sigma, bins: bins_to_value(out, bins),
        normalized=_ind_normalized,
        loss=lambda out, y, mu, sigma, bins, mask: ind_critic_loss(out, y, bins, mask),
    ),
}


# ---------------------------------------------------------------- actor objectives


def dep_actor_loss(q_policy_norm: Tensor, mask: Tensor) -> Tensor:
    """-Q(h, a ~ pi): q_policy_norm (G, N), PopArt-normalised min over critics."""
    assert q_policy_norm.dim() == 2
    return masked_mean(-q_policy_norm, mask)


def ind_actor_loss(log_prob: Tensor, advantage: Tensor, mask: Tensor) -> Tensor:
    """-1[A > 0] log pi(a_t | h): log_prob, advantage (G, N); the filter carries no gradient."""
    assert log_prob.shape == advantage.shape
    keep = (advantage > 0).to(log_prob.dtype)
    return masked_mean(-keep * log_prob, mask)


@dataclass(frozen=True)
class ActorObjective:
    """One actor variant: its REDQ reduction and its loss over lazily computed terms."""

    target_reduction: str
    """'min' or 'mean' over the REDQ subset of target critics (SPEC 1.5)."""
    loss: Callable[["object"], Tensor]
    """terms -> scalar loss; reads only the attributes it needs from the terms object
    (q_policy_norm for Dep; log_prob_replay and advantage for Ind) so each update
    computes only what the chosen objective uses."""


ACTOR_LOSSES: dict[str, ActorObjective] = {
    "dep": ActorObjective("min", lambda t: dep_actor_loss(t.q_policy_norm, t.mask)),
    "ind": ActorObjective("mean", lambda t: ind_actor_loss(t.log_prob_replay, t.advantage, t.mask)),
}
