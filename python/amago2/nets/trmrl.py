"""TrMRL's trajectory encoder (docs/METHOD.md, "Trajectory encoders"): Melo, "Transformers
are Meta-Reinforcement Learners" (ICML 2022).

What is taken from the paper and its code:
- each timestep's token (here: amago2's timestep encoding of the observation, previous
  action and previous reward) is projected without bias into a *working memory*;
- a sinusoidal encoding of the position *within the window* is added (not the step's time
  in the trial);
- causal self-attention layers without LayerNorm, made trainable by T-Fixup's
  initialisation (Huang et al., 2020): Xavier-uniform matrices, the input projection drawn
  from N(0, d^-1/2) and scaled by (9 N)^-1/4, the feed-forward and attention output
  matrices scaled by 0.67 N^-1/4 and the value projection by 0.67 N^-1/4 sqrt(2), for N
  layers; ReLU feed-forward;
- the policy reads the *episodic memory*: the last layer's output at the current step
  (the code's "latest_memory").

What is adapted to AMAGO's off-policy update: TrMRL trained with PPO on the window of the
last `obs_horizon` steps ending at each step. amago2 trains on replay windows of
`max_seq_len` steps with a causal mask, so step t of a window sees the window's steps up to
t, as the Transformer does; acting keeps the last max_seq_len timestep tokens of each actor
and re-encodes them at every step (positions are relative to the window, so no cache of
keys can be reused), O(max_seq_len^2) a step where the Transformer's cache is O(max_seq_len).
A window that starts at its trial's first step is then exactly what acting computed; past
max_seq_len steps acting slides, as TrMRL's did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amago2.nets.transformer import sinusoid_frequencies, sinusoidal_embedding

TFIXUP_GAIN = 0.67


class NoNormLayer(nn.Module):
    """Post-residual self-attention and ReLU feed-forward, no LayerNorm (TrMRL's 'NoLN' layer)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.attn_out = nn.Linear(d_model, d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, d_model) -> (B, T, d_model), causal."""
        b, t, d = x.shape
        heads = lambda y: y.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # noqa: E731
        attended = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)), is_causal=True)
        x = x + self.dropout(self.attn_out(attended.transpose(1, 2).reshape(b, t, d)))
        return x + self.dropout(self.ff2(self.dropout(F.relu(self.ff1(x)))))


@dataclass
class WindowMemory:
    """Acting: each actor's last max_seq_len timestep tokens, oldest first."""

    tokens: Tensor
    """(N, max_seq_len, d_in)."""
    count: Tensor
    """(N,) int64: steps since each actor's last reset."""


class TrMRLEncoder(nn.Module):
    def __init__(self, d_in: int, d_model: int, n_heads: int, d_ff: int, n_layers: int, dropout: float,
                 max_seq_len: int):
        super().__init__()
        self.d_model, self.max_seq_len = d_model, max_seq_len
        self.working_memory = nn.Linear(d_in, d_model, bias=False)
        self.emb_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(NoNormLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.register_buffer("freqs", sinusoid_frequencies(d_model), persistent=False)
        self._tfixup(n_layers)

    @torch.no_grad()
    def _tfixup(self, n_layers: int) -> None:
        nn.init.normal_(self.working_memory.weight, 0.0, self.d_model ** -0.5)
        self.working_memory.weight.mul_((9 * n_layers) ** -0.25)
        scale = TFIXUP_GAIN * n_layers ** -0.25
        for layer in self.layers:
            for linear in (layer.q, layer.k, layer.v, layer.attn_out, layer.ff1, layer.ff2):
                nn.init.xavier_uniform_(linear.weight)
                nn.init.zeros_(linear.bias)
            for linear in (layer.attn_out, layer.ff1, layer.ff2):
                linear.weight.mul_(scale)
            layer.v.weight.mul_(scale * math.sqrt(2))

    def forward(self, emb: Tensor, time: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """emb (B, T, d_in) -> episodic memories (B, T, d_model). Positions count from the
        window's first step; `time` (the step in the trial) is not used."""
        if attn_mask is not None:
            raise ValueError("the TrMRL encoder attends causally within its window; it takes no mask")
        positions = torch.arange(emb.shape[1], device=emb.device).expand(emb.shape[0], -1)
        x = self.working_memory(emb) + sinusoidal_embedding(positions, self.freqs, self.d_model).to(emb.dtype)
        x = self.emb_dropout(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def init_state(self, num_actors: int, device, dtype) -> WindowMemory:
        d_in = self.working_memory.in_features
        return WindowMemory(tokens=torch.zeros(num_actors, self.max_seq_len, d_in, device=device, dtype=dtype),
                            count=torch.zeros(num_actors, dtype=torch.long, device=device))

    def reset_state(self, memory: WindowMemory, which: Tensor) -> None:
        memory.count[which] = 0

    def step(self, emb: Tensor, time: Tensor, memory: WindowMemory) -> Tensor:
        """emb (N, d_in) -> (N, d_model): the window of each actor's last steps, re-encoded.
        A window not yet full holds its steps first: the causal mask keeps the empty slots
        after them out of the current step's output."""
        full = memory.count >= self.max_seq_len
        # Full windows slide left by one; the others write at their count. torch.where, not
        # a boolean index, so that the host never waits for the device.
        memory.tokens.copy_(torch.where(full[:, None, None], memory.tokens.roll(-1, dims=1), memory.tokens))
        slot = torch.where(full, self.max_seq_len - 1, memory.count)
        rows = torch.arange(emb.shape[0], device=emb.device)
        memory.tokens[rows, slot] = emb.to(memory.tokens.dtype)
        memory.count += 1
        out = self(memory.tokens.to(emb.dtype), time[:, None])
        return out[rows, slot]
