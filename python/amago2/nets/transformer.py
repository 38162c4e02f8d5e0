"""Causal Transformer trajectory encoder and its sliding KV cache (docs/METHOD.md, "The agent").

Pre-norm blocks with NormFormer's extra norms (after attention, and inside the FF after
the activation), sigma-reparameterised linears, leaky ReLU, learnable per-head scaling, a
fixed sinusoidal embedding of the absolute time index, dropout on the embeddings and the
FF output, and a final LayerNorm. Attention runs through scaled_dot_product_attention.

Acting keeps a ring buffer of max_seq_len keys/values per layer and per actor. Positions
are absolute (the time embedding is added to the input), and softmax attention does not
care about the order of its keys, so a new step simply overwrites the oldest slot: no
per-step shifting, and one independent position counter per actor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amago2.nets.linear import FrozenWeight, Linear, frozen


class SigmaReparamLinear(nn.Module):
    """y = x (gamma / sigma(W) W)^T + b, sigma by one power-iteration step per training forward."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's initialisation
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.gamma = nn.Parameter(torch.ones(()))
        self.register_buffer("u", F.normalize(torch.randn(d_out), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(d_in), dim=0))

    def effective_weight(self) -> Tensor:
        if self.training:
            with torch.no_grad():
                v = F.normalize(self.weight.T @ self.u, dim=0)
                u = F.normalize(self.weight @ v, dim=0)
            # Rebind instead of copying in place: the previous u, v may still be saved
            # for the backward pass of an earlier forward.
            self.u, self.v = u, v
        # The spectral estimate stays in full precision under bf16 autocast.
        with torch.autocast(device_type=self.weight.device.type, enabled=False):
            sigma = self.u @ (self.weight @ self.v)
        return self.weight * (self.gamma / sigma)

    def forward(self, x: Tensor) -> Tensor:
        if frozen(self):
            return self._frozen_weight().linear(x, self.bias)
        return F.linear(x, self.effective_weight(), self.bias)

    def _frozen_weight(self) -> FrozenWeight:
        """The rescaled weight, kept until it changes: a load bumps a version counter, a
        training forward rebinds u and v (the cache holds u, so a new u cannot reuse its
        id), and the learner forgets the caches after each optimiser step."""
        versions = (self.weight._version, self.gamma._version, self.u._version, self.weight.dtype)
        cached = getattr(self, "_frozen", None)
        if cached is None or cached.key[0] is not self.u or cached.key[1] != versions:
            self._frozen = cached = FrozenWeight(self.effective_weight(), (self.u, versions))
        return cached


def sinusoid_frequencies(dim: int) -> Tensor:
    half = dim // 2
    return torch.exp(torch.arange(half, dtype=torch.float64) * (-math.log(10_000.0) / half))


def sinusoidal_embedding(time: Tensor, freqs: Tensor, dim: int) -> Tensor:
    """Fixed sin/cos embedding (..., dim) of integer time indices (...)."""
    angles = time.to(freqs.dtype).unsqueeze(-1) * freqs
    emb = torch.cat((angles.sin(), angles.cos()), dim=-1)
    return F.pad(emb, (0, dim - emb.shape[-1]))


@dataclass
class KVCache:
    """Ring buffers for acting: keys/values (N, heads, max_seq_len, head_dim) per layer."""

    keys: list[Tensor]
    values: list[Tensor]
    count: Tensor
    """(N,) int64: steps written since each actor's last reset."""


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.norm_attn_in = nn.LayerNorm(d_model)
        self.qkv = SigmaReparamLinear(d_model, 3 * d_model)
        self.head_scale = nn.Parameter(torch.ones(n_heads))
        self.attn_out = SigmaReparamLinear(d_model, d_model)
        self.norm_attn_out = nn.LayerNorm(d_model)
        self.norm_ff_in = nn.LayerNorm(d_model)
        self.ff1 = SigmaReparamLinear(d_model, d_ff)
        self.norm_ff_mid = nn.LayerNorm(d_ff)
        self.ff2 = SigmaReparamLinear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = x.shape
        qkv = self.qkv(self.norm_attn_in(x)).view(b, t, 3, self.n_heads, d // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (b, heads, t, head_dim)
        return q, k, v

    def _finish(self, x: Tensor, attended: Tensor) -> Tensor:
        b, _, t, _ = attended.shape
        attended = attended * self.head_scale.view(1, -1, 1, 1).to(attended.dtype)
        attended = attended.transpose(1, 2).reshape(b, t, -1)
        x = x + self.norm_attn_out(self.attn_out(attended))
        hidden = self.norm_ff_mid(F.leaky_relu(self.ff1(self.norm_ff_in(x))))
        return x + self.dropout(self.ff2(hidden))

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        q, k, v = self._qkv(x)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                                  is_causal=attn_mask is None)
        return self._finish(x, attended)

    def step(self, x: Tensor, keys: Tensor, values: Tensor, write_rows: Tensor,
             mask_bias: Tensor) -> Tensor:
        """One new timestep per actor: x (N, 1, d). write_rows (N * heads,): where each
        (actor, head)'s new key/value goes among the cache's rows (N * heads * max_seq_len,
        head_dim). mask_bias (N * heads, 1, max_seq_len): 0 at filled slots, -inf elsewhere."""
        q, k, v = self._qkv(x)
        head_dim = keys.shape[-1]
        keys.view(-1, head_dim).index_copy_(0, write_rows, k.reshape(-1, head_dim))
        values.view(-1, head_dim).index_copy_(0, write_rows, v.reshape(-1, head_dim))
        return self._finish(x, attend_one_query(q, keys, values, mask_bias))


def attend_one_query(q: Tensor, keys: Tensor, values: Tensor, mask_bias: Tensor) -> Tensor:
    """Softmax attention of one query per (actor, head) over the cache: q (N, h, 1, dh),
    keys/values (N, h, L, dh), mask_bias (N * h, 1, L) -> (N, h, 1, dh). The same function as
    scaled_dot_product_attention with a mask, written as two batched matmuls because
    SDPA's CPU kernel is built for many queries: with one, ML45 acting with 8 actors ran
    10-25% slower through it (bench/learner.py)."""
    n, h, length, dh = keys.shape
    scores = torch.baddbmm(mask_bias, q.reshape(n * h, 1, dh), keys.view(n * h, length, dh).transpose(1, 2),
                           alpha=dh ** -0.5)
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights.to(values.dtype), values.view(n * h, length, dh)).view(n, h, 1, dh)


class TrajectoryEncoder(nn.Module):
    def __init__(self, d_in: int, d_model: int, n_heads: int, d_ff: int, n_layers: int,
                 dropout: float, max_seq_len: int):
        super().__init__()
        self.d_model, self.n_heads, self.max_seq_len = d_model, n_heads, max_seq_len
        self.inp = Linear(d_in, d_model)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model)
        # Angles in float64: absolute times reach the tens of thousands (Atari trials).
        self.register_buffer("freqs", sinusoid_frequencies(d_model), persistent=False)

    def _embed(self, emb: Tensor, time: Tensor) -> Tensor:
        x = self.inp(emb) + sinusoidal_embedding(time, self.freqs, self.d_model).to(emb.dtype)
        return self.emb_dropout(x)

    def forward(self, emb: Tensor, time: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """emb (B, T, d_in), time (B, T) -> (B, T, d_model). attn_mask (T, T) bool, True =
        may attend; None is the plain causal mask."""
        x = self._embed(emb, time)
        for block in self.blocks:
            x = block(x, attn_mask)
        return self.final_norm(x)

    def init_cache(self, num_actors: int, device, dtype) -> KVCache:
        shape = (num_actors, self.n_heads, self.max_seq_len, self.d_model // self.n_heads)
        return KVCache(keys=[torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks],
                       values=[torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks],
                       count=torch.zeros(num_actors, dtype=torch.long, device=device))

    def step(self, emb: Tensor, time: Tensor, cache: KVCache) -> Tensor:
        """emb (N, d_in), time (N,) -> (N, d_model), attending to each actor's cached past."""
        slot = cache.count % self.max_seq_len
        filled = (cache.count + 1).clamp(max=self.max_seq_len)
        empty = torch.arange(self.max_seq_len, device=emb.device)[None, :] >= filled[:, None]
        x = self._embed(emb[:, None], time[:, None])
        n, heads = emb.shape[0], self.n_heads
        mask_bias = torch.zeros_like(empty, dtype=x.dtype).masked_fill_(empty, float("-inf"))
        mask_bias = mask_bias[:, None, None].expand(n, heads, 1, self.max_seq_len).reshape(n * heads, 1, -1)
        actor_heads = torch.arange(n * heads, device=emb.device)          # actor * heads + head
        write_rows = actor_heads * self.max_seq_len + slot.repeat_interleave(heads)
        for block, keys, values in zip(self.blocks, cache.keys, cache.values):
            x = block.step(x, keys, values, write_rows, mask_bias)
        cache.count += 1
        return self.final_norm(x)[:, 0]
