"""The memory-free control (docs/METHOD.md, "Trajectory encoders"): the Transformer with its
attention removed. Each timestep is encoded alone (input projection, time embedding, the same
pre-norm feed-forward blocks, final LayerNorm), so a policy on it cannot carry anything from
one step of a trial to the next. Everything else (heads, objectives, replay windows, the
batch's size in timesteps) is as with the Transformer, which makes it a 1:1 ablation of
memory, as AMAGO's feed-forward trajectory encoder is.
"""

from __future__ import annotations

from torch import Tensor, nn

from amago2.nets.linear import Linear
from amago2.nets.transformer import Block, sinusoid_frequencies, sinusoidal_embedding


class FeedForwardEncoder(nn.Module):
    def __init__(self, d_in: int, d_model: int, d_ff: int, n_layers: int, dropout: float):
        super().__init__()
        self.d_model = d_model
        self.inp = Linear(d_in, d_model)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, 1, d_ff, dropout, attention=False) for _ in range(n_layers))
        self.final_norm = nn.LayerNorm(d_model)
        self.register_buffer("freqs", sinusoid_frequencies(d_model), persistent=False)

    def forward(self, emb: Tensor, time: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """emb (..., d_in), time (...) -> (..., d_model), every timestep on its own. attn_mask
        is accepted for the Transformer's signature and has nothing to mask."""
        x = self.emb_dropout(self.inp(emb) + sinusoidal_embedding(time, self.freqs, self.d_model).to(emb.dtype))
        for block in self.blocks:
            x = block.feed_forward(x)
        return self.final_norm(x)

    def init_state(self, num_actors: int, device, dtype) -> None:
        """Nothing to remember."""
        return None

    def reset_state(self, state: None, which: Tensor) -> None:
        return None

    def step(self, emb: Tensor, time: Tensor, state: None) -> Tensor:
        """emb (N, d_in), time (N,) -> (N, d_model)."""
        return self(emb, time)
