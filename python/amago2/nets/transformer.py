"""Causal Transformer trajectory encoder and its sliding KV cache (docs/METHOD.md, "The agent").

Pre-norm blocks with NormFormer's extra norms (after attention, and inside the FF after
the activation), sigma-reparameterised linears, leaky ReLU, learnable per-head scaling, a
fixed sinusoidal embedding of the absolute time index, dropout on the embeddings and the
FF output, and a final LayerNorm. Attention runs through scaled_dot_product_attention.

Acting keeps a ring buffer of max_seq_len keys/values per layer and per actor. Positions
are absolute (the time embedding is added to the input), and softmax attention does not
care about the order of its keys, so a new step simply overwrites the oldest slot: no
per-step shifting, and one independent position counter per actor.

With `attention_sink`, every layer has a learned key and value per head that every query
attends to besides its past (ReLIC's Sink-KV), in training and acting alike. Both start at
zero: a sink of score 0 and value 0 adds exp(0) to the softmax's denominator and nothing to
its output, so at initialisation a query can already give weight to nothing.

`attention=False` builds the same blocks without their attention sub-layer: the memory-free
control of nets/feedforward.py.
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
        u, v = self.u, self.v
        if self.training:
            with torch.no_grad():
                v = F.normalize(self.weight.T @ u, dim=0)
                u = F.normalize(self.weight @ v, dim=0)
            # The buffers move in place (a CUDA graph of the update replays into them), and
            # sigma reads the fresh u, v, which the backward pass keeps: a later forward
            # moving the buffers again leaves this one's backward as it was.
            self.u.copy_(u)
            self.v.copy_(v)
        # The spectral estimate stays in full precision under bf16 autocast.
        with torch.autocast(device_type=self.weight.device.type, enabled=False):
            sigma = u @ (self.weight @ v)
        return self.weight * (self.gamma / sigma)

    def forward(self, x: Tensor) -> Tensor:
        if frozen(self):
            return self._frozen_weight().linear(x, self.bias)
        return F.linear(x, self.effective_weight(), self.bias)

    def _frozen_weight(self) -> FrozenWeight:
        """The rescaled weight, kept until it changes: a load or a training forward bumps a
        version counter, a device move replaces u (the cache holds u, so a new u cannot
        reuse its id), and the learner forgets the caches after each optimiser step."""
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
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attention_sink: bool = False,
                 attention: bool = True):
        super().__init__()
        self.n_heads = n_heads
        if attention:
            self.norm_attn_in = nn.LayerNorm(d_model)
            self.qkv = SigmaReparamLinear(d_model, 3 * d_model)
            self.head_scale = nn.Parameter(torch.ones(n_heads))
            self.attn_out = SigmaReparamLinear(d_model, d_model)
            self.norm_attn_out = nn.LayerNorm(d_model)
        # (heads, 1, head_dim) each: the sink's key and value.
        self.sink_k = nn.Parameter(torch.zeros(n_heads, 1, d_model // n_heads)) if attention_sink else None
        self.sink_v = nn.Parameter(torch.zeros(n_heads, 1, d_model // n_heads)) if attention_sink else None
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
        return self.feed_forward(x + self.norm_attn_out(self.attn_out(attended)))

    def feed_forward(self, x: Tensor) -> Tensor:
        """The FF sub-layer with its residual: (..., d_model) -> (..., d_model)."""
        hidden = self.norm_ff_mid(F.leaky_relu(self.ff1(self.norm_ff_in(x))))
        return x + self.dropout(self.ff2(hidden))

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        q, k, v = self._qkv(x)
        if self.sink_k is None:
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None)
            return self._finish(x, attended)
        # The sink is key 0, visible to every query. With the plain causal mask one unused
        # query goes first, so that the square causal mask over [sink, k_0 .. k_T-1] lets
        # query t see the sink and k_0 .. k_t: no mask is built and SDPA keeps its
        # memory-efficient kernels, which long contexts need.
        b, t = x.shape[0], x.shape[1]
        k = torch.cat((self.sink_k.to(k.dtype).expand(b, -1, -1, -1), k), dim=2)
        v = torch.cat((self.sink_v.to(v.dtype).expand(b, -1, -1, -1), v), dim=2)
        if attn_mask is None:
            q = torch.cat((torch.zeros_like(q[:, :, :1]), q), dim=2)
            return self._finish(x, F.scaled_dot_product_attention(q, k, v, is_causal=True)[:, :, 1:])
        mask = torch.cat((torch.ones(t, 1, dtype=torch.bool, device=x.device), attn_mask), dim=1)
        return self._finish(x, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))

    def step(self, x: Tensor, keys: Tensor, values: Tensor, write_rows: Tensor,
             mask_bias: Tensor) -> Tensor:
        """One new timestep per actor: x (N, 1, d). write_rows (N * heads,): where each
        (actor, head)'s new key/value goes among the cache's rows (N * heads * max_seq_len,
        head_dim). mask_bias (N * heads, 1, max_seq_len): 0 at filled slots, -inf elsewhere."""
        q, k, v = self._qkv(x)
        head_dim = keys.shape[-1]
        keys.view(-1, head_dim).index_copy_(0, write_rows, k.reshape(-1, head_dim))
        values.view(-1, head_dim).index_copy_(0, write_rows, v.reshape(-1, head_dim))
        return self._finish(x, attend_one_query(q, keys, values, mask_bias, self.sink_k, self.sink_v))


def attend_one_query(q: Tensor, keys: Tensor, values: Tensor, mask_bias: Tensor,
                     sink_k: Tensor | None = None, sink_v: Tensor | None = None) -> Tensor:
    """Softmax attention of one query per (actor, head) over the cache: q (N, h, 1, dh),
    keys/values (N, h, L, dh), mask_bias (N * h, 1, L) -> (N, h, 1, dh); with a sink (h, 1,
    dh) key and value, one more key every query sees. The same function as
    scaled_dot_product_attention with a mask, written as two batched matmuls because
    SDPA's CPU kernel is built for many queries: with one, ML45 acting with 8 actors ran
    10-25% slower through it (bench/learner.py)."""
    n, h, length, dh = keys.shape
    q = q.reshape(n * h, 1, dh)
    scores = torch.baddbmm(mask_bias, q, keys.view(n * h, length, dh).transpose(1, 2), alpha=dh ** -0.5)
    if sink_k is None:
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.to(values.dtype), values.view(n * h, length, dh)).view(n, h, 1, dh)
    sink_k = sink_k.to(q.dtype).expand(n, -1, -1, -1).reshape(n * h, 1, dh)
    sink_score = (q * sink_k).sum(-1, keepdim=True) * dh ** -0.5                    # (N * h, 1, 1)
    weights = torch.softmax(torch.cat((sink_score, scores), dim=-1), dim=-1)
    sink_v = sink_v.to(values.dtype).expand(n, -1, -1, -1).reshape(n * h, 1, dh)
    out = weights[..., :1].to(values.dtype) * sink_v + torch.bmm(weights[..., 1:].to(values.dtype),
                                                                 values.view(n * h, length, dh))
    return out.view(n, h, 1, dh)


class TrajectoryEncoder(nn.Module):
    def __init__(self, d_in: int, d_model: int, n_heads: int, d_ff: int, n_layers: int,
                 dropout: float, max_seq_len: int, attention_sink: bool = False):
        super().__init__()
        self.d_model, self.n_heads, self.max_seq_len = d_model, n_heads, max_seq_len
        self.inp = Linear(d_in, d_model)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout, attention_sink) for _ in range(n_layers))
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

    def init_state(self, num_actors: int, device, dtype) -> KVCache:
        """The acting memory of `num_actors` actors: an empty cache each."""
        shape = (num_actors, self.n_heads, self.max_seq_len, self.d_model // self.n_heads)
        return KVCache(keys=[torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks],
                       values=[torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks],
                       count=torch.zeros(num_actors, dtype=torch.long, device=device))

    def reset_state(self, cache: KVCache, which: Tensor) -> None:
        """Forget the past of the actors where `which` (N,) bool is true."""
        cache.count[which] = 0

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
