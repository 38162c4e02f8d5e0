"""Actor and critic heads (docs/METHOD.md, "The agent"): MLPs (2 x head_hidden, leaky ReLU) on the encoder output.

The actor is one MLP whose last layer holds one policy per gamma. The critic ensemble keeps
its C critics' weights stacked, so the whole ensemble runs as a few batched matmuls, and
splits each critic's first layer W1 [s; g; a] into W_s s + W_g g + W_a a: the state is
projected once per critic and reused for every gamma and every action sample (identical
mathematics to the concatenated input, far fewer FLOPs). Discrete actions enter the
critic as one-hot vectors, as in the reference's multi-task agent, so a critic has one
output (or one bin distribution) whatever the number of actions.

Each critic has one output layer, shared by the gammas (the discount is an input), for
both critic objectives: the Dep critic's PopArt rescale acts on a separate per-gamma affine
layer after it (losses.PopArt), as in the reference.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amago2.nets.linear import Linear


def _uniform(shape, fan_in: int) -> nn.Parameter:
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


# ---------------------------------------------------------------- actor


class ActorHead(nn.Module):
    """s (..., d) -> per-gamma distribution parameters (..., G, P): P = n actions (logits)
    for discrete, 2 x action_dim (mean, raw log-std) for continuous."""

    def __init__(self, d_in: int, hidden: int, n_gammas: int, outputs: int):
        super().__init__()
        self.n_gammas, self.outputs = n_gammas, outputs
        self.net = nn.Sequential(Linear(d_in, hidden), nn.LeakyReLU(), Linear(hidden, hidden),
                                 nn.LeakyReLU(), Linear(hidden, n_gammas * outputs))

    def forward(self, s: Tensor) -> Tensor:
        return self.net(s).unflatten(-1, (self.n_gammas, self.outputs))


def categorical_probs(logits: Tensor, prob_min: float, prob_max: float) -> Tensor:
    """Softmax probabilities clipped to [prob_min, prob_max] and renormalised."""
    probs = torch.softmax(logits, dim=-1).clamp(prob_min, prob_max)
    return probs / probs.sum(-1, keepdim=True)


GUMBEL_SOFTMAX_TEMPERATURE = 0.5
"""The temperature of the Dep actor's straight-through discrete sample (the reference's)."""


def gumbel_noise(shape, device, dtype) -> Tensor:
    """Standard Gumbel draws -log(-log(U)), U ~ Uniform[0, 1): categorical_sample's noise.
    (torch's exponential_ sampler is about 5x slower on CPU.)"""
    return torch.rand(shape, device=device, dtype=dtype).log_().neg_().log_().neg_()


def one_hot(index: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """index (...,) -> one-hot vectors (..., num_classes) of dtype. F.one_hot's values, but
    F.one_hot reads its index's range back to the host (a sync) on every device but CUDA;
    this scatter checks nothing, so the update queues no host-syncing op on any device
    (python/tests/test_agent.py), and no int64 one-hot is made first."""
    out = torch.zeros(*index.shape, num_classes, dtype=dtype, device=index.device)
    return out.scatter_(-1, index.unsqueeze(-1), 1.0)


def categorical_sample(probs: Tensor, gumbel: Tensor) -> Tensor:
    """A one-hot sample (..., nA) of the categorical probs (..., nA), by the Gumbel-max trick:
    argmax(log p + gumbel) is distributed as p. No gradient."""
    return one_hot((probs.log() + gumbel).argmax(-1), probs.shape[-1], probs.dtype)


def straight_through_sample(probs: Tensor, gumbel: Tensor) -> Tensor:
    """The reference's reparameterised discrete sample (F.gumbel_softmax with hard=True):
    its value is categorical_sample(probs, gumbel), its gradient that of the relaxed
    softmax((log p + gumbel) / GUMBEL_SOFTMAX_TEMPERATURE)."""
    soft = torch.softmax((probs.log() + gumbel) / GUMBEL_SOFTMAX_TEMPERATURE, dim=-1)
    hard = one_hot(soft.argmax(-1), probs.shape[-1], soft.dtype)
    return hard + (soft - soft.detach())


def tanh_gaussian_params(raw: Tensor, log_std_min: float, log_std_max: float):
    """raw (..., 2A) -> mean (..., A), log_std (..., A) smoothly bounded to [min, max]."""
    mean, raw_log_std = raw.chunk(2, dim=-1)
    log_std = log_std_min + 0.5 * (log_std_max - log_std_min) * (torch.tanh(raw_log_std) + 1)
    return mean, log_std


ACTION_EDGE = 1e-6
"""Replay actions are clamped to [-1 + edge, 1 - edge] before atanh (finite log-probs)."""


def tanh_gaussian_log_prob(mean: Tensor, log_std: Tensor, action: Tensor) -> Tensor:
    """log pi(action) for action = tanh(u), u ~ N(mean, std): (..., A) -> (...)."""
    a = action.clamp(-1 + ACTION_EDGE, 1 - ACTION_EDGE)
    u = torch.atanh(a)
    z = (u - mean) * torch.exp(-log_std)
    normal = -0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)
    # log(1 - tanh(u)^2) written in a form that is stable for large |u|.
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (normal - log_det).sum(-1)


def tanh_gaussian_sample(mean: Tensor, log_std: Tensor, eps: Tensor) -> Tensor:
    """Reparameterised sample tanh(mean + std * eps); eps broadcasts over leading dims."""
    return torch.tanh(mean + log_std.exp() * eps)


# ---------------------------------------------------------------- critic ensemble


class CriticParams(NamedTuple):
    w_state: Tensor   # (C, D, H)
    w_gamma: Tensor   # (C, 1, H)
    w_action: Tensor  # (C, A, H)
    b1: Tensor        # (C, H)
    w2: Tensor        # (C, H, H)
    b2: Tensor        # (C, H)
    w_out: Tensor     # (C, H, P), shared by the gammas (the discount is an input)
    b_out: Tensor     # (C, P)


class CriticEnsemble(nn.Module):
    """C critics for G gammas: Q(s, g, a) -> P outputs (1 scalar or B bins); a discrete
    action is its one-hot vector."""

    def __init__(self, d_state: int, hidden: int, n_critics: int, action_dim: int, outputs: int):
        super().__init__()
        c, h = n_critics, hidden
        fan_in = d_state + 1 + action_dim
        self.w_state = _uniform((c, d_state, h), fan_in)
        self.w_gamma = _uniform((c, 1, h), fan_in)
        self.w_action = _uniform((c, action_dim, h), fan_in)
        self.b1 = _uniform((c, h), fan_in)
        self.w2 = _uniform((c, h, h), h)
        self.b2 = _uniform((c, h), h)
        self.w_out = _uniform((c, h, outputs), h)
        self.b_out = _uniform((c, outputs), h)

    def params(self, detach: bool = False, index: Tensor | None = None) -> CriticParams:
        """The stacked weights, optionally detached (a frozen copy that still passes gradient
        to its inputs) and/or restricted to the critics in `index`."""
        def pick(p):
            p = p.detach() if detach else p
            return p if index is None else p.index_select(0, index)
        return CriticParams(*(pick(p) for p in (self.w_state, self.w_gamma, self.w_action, self.b1,
                                                 self.w2, self.b2, self.w_out, self.b_out)))


def project_state(p: CriticParams, s: Tensor) -> Tensor:
    """Each critic's first-layer state term plus bias: s (N, D) -> (C, N, H)."""
    return torch.matmul(s, p.w_state) + p.b1[:, None, :]


class _OneHotActionTerm(torch.autograd.Function):
    """action @ w_action for actions whose values are one-hot (M, A), w_action (C, A, H) ->
    (C, M, H) in `dtype`: a row gather, with exactly the matmul's gradients (grad @ w^T
    summed over the critics to the action, which carries a straight-through sample's
    gradient; the rows' gradients added into w). The broadcast matmul it replaces folds
    into a (C H, A) x (A, M) product with an inner dimension of A and transposes its
    (C, M, H) output: at the POPGym size those two passes took 2.2 s of a 5 s update."""

    @staticmethod
    def forward(ctx, action: Tensor, w: Tensor, dtype: torch.dtype) -> Tensor:
        index = action.argmax(-1)
        ctx.save_for_backward(index, w)
        ctx.action_dtype = action.dtype
        return w.index_select(1, index).to(dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        index, w = ctx.saved_tensors
        grad_action = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_action = torch.matmul(grad, w.transpose(1, 2).to(grad.dtype)).sum(0).to(ctx.action_dtype)
        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros_like(w).index_add_(1, index, grad.to(w.dtype))
        return grad_action, grad_w, None


def first_layer_action_term(p: CriticParams, action: Tensor, one_hot: bool, dtype: torch.dtype) -> Tensor:
    """The first layer's action term (C, M, H) of actions (M, A): a gather when their values
    are one-hot (discrete actions, sampled or replayed), else the matmul."""
    if one_hot:
        return _OneHotActionTerm.apply(action, p.w_action, dtype)
    return torch.matmul(action.unsqueeze(0), p.w_action)


def critic_forward(p: CriticParams, state_proj: Tensor, gamma_feat: Tensor, action: Tensor,
                   one_hot: bool = False) -> Tensor:
    """Ensemble outputs (C, G, N, P).

    state_proj (C, N, H) from project_state; gamma_feat (G,) = symlog(1 / (1 - gamma));
    action: (G, N, A) one action per gamma, or (N, A) shared by all gammas; one_hot: whether
    the actions' values are one-hot vectors (discrete actions).
    """
    c, n, h = state_proj.shape
    g = gamma_feat.shape[0]
    gamma_term = gamma_feat.to(state_proj.dtype)[None, :, None] * p.w_gamma  # (C, G, H)
    # Each branch writes the (C, G, N, H) first-layer activation once, then edits it in
    # place: these passes over the largest tensor of the update dominate its elementwise cost.
    if action.dim() == 2:
        hidden = (state_proj + first_layer_action_term(p, action, one_hot, state_proj.dtype))[:, None] + gamma_term[:, :, None]
    else:
        # One product over the critics makes the per-gamma action term. Nothing is written
        # in place into a view: autograd would save a copy of the whole base tensor for
        # each such write (CopySlices), which a baddbmm_ into a view of the activation
        # used to cost.
        a = action.shape[-1]
        action_term = first_layer_action_term(p, action.reshape(g * n, a), one_hot, state_proj.dtype).view(c, g, n, h)
        hidden = action_term + state_proj[:, None]
        hidden += gamma_term[:, :, None]
    hidden = F.leaky_relu_(hidden)
    # bmm then an in-place bias add: baddbmm's broadcast copy of the bias into its output
    # costs more than the add (measured on CPU: 1.22 against 0.87 ms at the tiny size).
    hidden = torch.bmm(hidden.view(c, g * n, h), p.w2).add_(p.b2[:, None, :])
    hidden = F.leaky_relu_(hidden)
    out = torch.bmm(hidden, p.w_out).add_(p.b_out[:, None])  # all gammas in one matmul per critic
    return out.view(c, g, n, -1)
