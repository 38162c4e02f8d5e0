"""The AMAGO-2 objectives as small pure functions (docs/METHOD.md, "The four objectives").

Shape letters: C critics, S the REDQ subset of target critics, G gammas, N flattened
timesteps (batch x window), B bins, K policy samples. Every per-step quantity is laid out
(G, N) so that it lines up with the critic ensemble's (C, G, N, ...) outputs. The
objectives return a loss per step (N,), averaged over critics and gammas; the update takes
its masked mean over the real steps, and the per-task metrics take it over one task's.

The update step (agent.py) is composed from ACTOR_LOSSES[cfg.actor] and
CRITIC_LOSSES[cfg.critic]; neither knows about the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

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
    """Scalar value symexp(sum_i p_i b_i) of bin logits (..., B) -> (...). In the logits'
    precision: under CUDA's bf16 autocast (the TD target is built inside it) the product
    would be rounded to bf16, steps of 1/16 in symlog space near the top bins, 1-2% of Q."""
    with torch.autocast(logits.device.type, enabled=False):
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


class PopArt(NamedTuple):
    """Per-gamma PopArt state, each (G,), kept as the reference (AMAGO's PopArtLayer) keeps
    it: running moments mu and nu of the TD targets, and an affine layer (w, b) from a Dep
    critic's raw output x to its normalised value w x + b. Whenever the moments move, (w, b)
    is rescaled so that the unnormalised value sigma (w x + b) + mu stays the same; w and b
    are statistics, never trained by the optimiser."""

    mu: Tensor
    nu: Tensor
    w: Tensor
    b: Tensor

    @property
    def sigma(self) -> Tensor:
        return popart_sigma(self.mu, self.nu)


def popart_sigma(mu: Tensor, nu: Tensor) -> Tensor:
    """sqrt(nu - mu^2), with the reference's bounds: the variance clamped to [1e-4, 1e8],
    sigma to [1e-4, 1e6]."""
    return (nu - mu.square()).clamp(1e-4, 1e8).sqrt().clamp(1e-4, 1e6)


def popart_step_size(beta: float, t: Tensor) -> Tensor:
    """The PopArt paper's adaptive step beta_t = beta / (1 - (1 - beta)^t) for update count t
    (a tensor, so that no value leaves the device), in float64: the first steps take most of
    the batch's moments, later ones tend to beta, so the statistics do not crawl from their
    initial values (a fixed beta = 5e-4 reaches 394 of a constant target of 1000 after
    1,000 updates)."""
    return beta / -torch.expm1(t.double() * math.log1p(-beta))


def popart_update(stats: PopArt, y: Tensor, mask: Tensor, beta_t: Tensor) -> PopArt:
    """Move mu, nu towards the masked batch moments of the TD targets y (G, N) by beta_t and
    rescale (w, b) so that sigma (w x + b) + mu is unchanged for every x."""
    assert y.shape == (stats.mu.shape[0], mask.shape[0])
    count = mask.sum().clamp(min=1.0)
    mean = (y * mask).sum(-1) / count
    mean_sq = (y.square() * mask).sum(-1) / count
    beta_t = beta_t.to(y.dtype)
    mu = (1 - beta_t) * stats.mu + beta_t * mean
    nu = (1 - beta_t) * stats.nu + beta_t * mean_sq
    sigma_before, sigma = stats.sigma, popart_sigma(mu, nu)
    return PopArt(mu, nu, stats.w * sigma_before / sigma, (sigma_before * stats.b + stats.mu - mu) / sigma)


# ---------------------------------------------------------------- targets


def td_target(reward: Tensor, done: Tensor, gammas: Tensor, q_next: Tensor,
              reward_multiplier: float) -> Tensor:
    """y = r * reward_multiplier + gamma (1 - done) Qbar(s', a'): reward, done (N,), q_next (G, N)."""
    assert q_next.shape == (gammas.shape[0], reward.shape[0])
    return reward * reward_multiplier + gammas[:, None] * (1 - done) * q_next


def redq_reduce(q: Tensor, subset: Tensor, reduction: str) -> Tensor:
    """Reduce the target critics' values q (C, G, N) over a random subset per element,
    subset (S, G, N) indices into C drawn with replacement as the reference draws them, by
    min (Dep actor on: clipped double Q) or mean -> (G, N)."""
    picked = q.gather(0, subset)
    return picked.min(dim=0).values if reduction == "min" else picked.mean(dim=0)


# ---------------------------------------------------------------- critic objectives


def dep_critic_loss(q_norm: Tensor, y: Tensor, mu: Tensor, sigma: Tensor) -> Tensor:
    """PopArt regression: q_norm (C, G, N) against the normalised target (y - mu) / sigma -> (N,)."""
    assert q_norm.shape[1:] == y.shape
    target = (y - mu[:, None]) / sigma[:, None]
    return (q_norm - target).square().mean((0, 1))


def ind_critic_loss(logits: Tensor, y: Tensor, bins: Tensor) -> Tensor:
    """Two-hot symlog classification: logits (C, G, N, B), y (G, N) -> (N,)."""
    return two_hot_cross_entropy(logits, y, bins).mean((0, 1))


@dataclass(frozen=True)
class CriticObjective:
    """How one critic variant reads its ensemble outputs (..., P) and what it minimises."""

    outputs_per_value: Callable[[int], int]
    """num_bins -> outputs per (critic, gamma, action): 1 (scalar) or B (bins)."""
    value: Callable[[Tensor, PopArt, Tensor], Tensor]
    """(out (C, G, N, P), popart, bins) -> unnormalised scalar Q (C, G, N)."""
    normalized: Callable[[Tensor, PopArt, Tensor], Tensor]
    """(out, popart, bins) -> PopArt-normalised Q (C, G, N), the Dep actor's term."""
    loss: Callable[[Tensor, Tensor, PopArt, Tensor], Tensor]
    """(out, y (G, N), popart, bins) -> loss per step (N,)."""


def _per_gamma(x: Tensor) -> Tensor:
    """(G,) statistics laid out against (C, G, N) values."""
    return x.view(1, -1, 1)


def _dep_normalized(out: Tensor, popart: PopArt, bins: Tensor) -> Tensor:
    return _per_gamma(popart.w) * out.squeeze(-1) + _per_gamma(popart.b)


def _dep_value(out: Tensor, popart: PopArt, bins: Tensor) -> Tensor:
    return _per_gamma(popart.sigma) * _dep_normalized(out, popart, bins) + _per_gamma(popart.mu)


def _ind_normalized(out: Tensor, popart: PopArt, bins: Tensor) -> Tensor:
    return (bins_to_value(out, bins) - _per_gamma(popart.mu)) / _per_gamma(popart.sigma)


CRITIC_LOSSES: dict[str, CriticObjective] = {
    "dep": CriticObjective(
        outputs_per_value=lambda num_bins: 1,
        value=_dep_value,
        normalized=_dep_normalized,
        loss=lambda out, y, popart, bins: dep_critic_loss(_dep_normalized(out, popart, bins), y, popart.mu,
                                                          popart.sigma),
    ),
    "ind": CriticObjective(
        outputs_per_value=lambda num_bins: num_bins,
        value=lambda out, popart, bins: bins_to_value(out, bins),
        normalized=_ind_normalized,
        loss=lambda out, y, popart, bins: ind_critic_loss(out, y, bins),
    ),
}


# ---------------------------------------------------------------- actor objectives


def dep_actor_loss(q_policy_norm: Tensor) -> Tensor:
    """-Q(h, a ~ pi): q_policy_norm (G, N), PopArt-normalised min over critics -> (N,)."""
    assert q_policy_norm.dim() == 2
    return -q_policy_norm.mean(0)


def ind_actor_loss(log_prob: Tensor, advantage: Tensor) -> Tensor:
    """-1[A > 0] log pi(a_t | h): log_prob, advantage (G, N) -> (N,); the filter carries no
    gradient."""
    assert log_prob.shape == advantage.shape
    keep = (advantage > 0).to(log_prob.dtype)
    return (-keep * log_prob).mean(0)


@dataclass(frozen=True)
class ActorObjective:
    """One actor variant: its REDQ reduction and its loss over lazily computed terms."""

    target_reduction: str
    """'min' or 'mean' over the REDQ subset of target critics (docs/METHOD.md, "The agent")."""
    loss: Callable[["object"], Tensor]
    """terms -> loss per step (N,); reads only the attributes it needs from the terms object
    (q_policy_norm for Dep; log_prob_replay and advantage for Ind) so each update
    computes only what the chosen objective uses."""


ACTOR_LOSSES: dict[str, ActorObjective] = {
    "dep": ActorObjective("min", lambda t: dep_actor_loss(t.q_policy_norm)),
    "ind": ActorObjective("mean", lambda t: ind_actor_loss(t.log_prob_replay, t.advantage)),
}
