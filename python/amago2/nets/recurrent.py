"""RL^2's recurrent memory (docs/METHOD.md, "Trajectory encoders"): a GRU over the trial's
timesteps, then a linear layer and a LayerNorm, as AMAGO's GRU trajectory encoder builds it.

Acting carries each actor's hidden state through its whole trial and zeroes it when a trial
ends (and only then: the episodes of a trial share one memory). Training runs the GRU over
the same replay windows as the Transformer, each from a zero state: a window that starts at
its trial's first step (every window of a trial no longer than max_seq_len) is then exactly
what acting computed, and one that starts later sees only its own part of the trial, as the
Transformer's window does. This is AMAGO's choice too; stored states or a burn-in would make
long trials consistent at the cost of more replay or more compute.

The GRU runs in fp32 on CUDA too, outside bf16 autocast: autocast casts a cuDNN RNN to
fp16 whatever dtype it was asked for, and fp16 gradients without loss scaling can
underflow. (cuDNN may do its fp32 math in TF32, as torch allows by default: fp32's range,
a shorter mantissa.) Its acting state is fp32 for the same reason (a bf16 state would be rounded at
every step of a trial). The layers after it run under autocast as the other encoders do.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from amago2.nets.linear import Linear


class GRUEncoder(nn.Module):
    def __init__(self, d_in: int, d_model: int, n_layers: int):
        super().__init__()
        self.d_model, self.n_layers = d_model, n_layers
        self.gru = nn.GRU(d_in, d_model, num_layers=n_layers, batch_first=True)
        self.out = Linear(d_model, d_model)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, emb: Tensor, time: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """emb (B, T, d_in) -> (B, T, d_model) from a zero state. Time is implicit in the
        recurrence; a banded attention mask has no meaning here."""
        if attn_mask is not None:
            raise ValueError("the GRU encoder takes no attention mask")
        hidden, _ = self._gru(emb)
        return self.final_norm(self.out(hidden))

    def _gru(self, emb: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The GRU in its weights' dtype, autocast off (the module docstring says why)."""
        dtype = self.gru.weight_ih_l0.dtype
        with torch.autocast(emb.device.type, enabled=False):
            return self.gru(emb.to(dtype), None if state is None else state.to(dtype))

    def init_state(self, num_actors: int, device, dtype) -> Tensor:
        """(n_layers, N, d_model) zeros: no actor has a past yet. In the GRU's weights' dtype,
        not the acting memory's `dtype` (bf16 on CUDA): see the module docstring."""
        return torch.zeros(self.n_layers, num_actors, self.d_model, device=device, dtype=self.gru.weight_ih_l0.dtype)

    def reset_state(self, state: Tensor, which: Tensor) -> None:
        state[:, which] = 0

    def step(self, emb: Tensor, time: Tensor, state: Tensor) -> Tensor:
        """emb (N, d_in) -> (N, d_model); the state moves one step, in place."""
        hidden, new_state = self._gru(emb[:, None], state)
        state.copy_(new_state)
        return self.final_norm(self.out(hidden[:, 0]))
