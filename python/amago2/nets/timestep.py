"""Timestep encoders: one observation + previous action + previous reward -> one token
(docs/METHOD.md, "The agent").

Observation dicts carry "vec" (always), optionally "img" (uint8 HWC) and "tokens" (int64
mission words). Vector path: running mean/std norm of [vec, prev reward], concatenated with
the previous action, MLP (tstep_hidden) -> tstep_dim -> LayerNorm. Image path: IMPALA CNN
(16, 32, 32 channels, GroupNorm, pixels in [-1, 1]); previous action and reward go through
symlog -> linear(12) and are concatenated (with the normalised vec) before a final linear
+ LayerNorm. Mission tokens: a learned word embedding plus a learned position embedding,
mean-pooled over the words (order-aware yet cheap), concatenated to either path.

Deviation from the paper ("previous raw reward"): the vector path passes the previous reward
through the same running mean/std norm as the observation, so that a task whose rewards are
1000x larger does not feed 1000x larger inputs to the MLP. The reward is still unscaled by
any task knowledge; only the running statistics over all tasks normalise it.
"""

from __future__ import annotations

import gymnasium as gym
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from amago2.losses import popart_step_size, symlog
from amago2.nets.linear import Linear

TOKEN_DIM = 64
RL2_DIM = 12


class InputNorm(nn.Module):
    """Running normalisation of the vector input, as the reference (AMAGO's InputNorm) keeps
    it: moving first and second moments mu, nu of the real rows of each batch, moved with
    the adaptive step beta_t = beta / (1 - (1 - beta)^t) (beta 1e-4, t counting from 2, as
    PopArt's), sigma = sqrt(nu - mu^2 + 1e-5) clamped to [1e-3, 1e6], outputs clamped to
    +-1e4. A feature that has barely varied (sigma <= 0.01: padding, a one-hot entry rarely
    on) is only centred, not divided by its tiny sigma, so a value of it never seen before
    does not arrive as a huge input. Statistics change only through update(), which the
    learner calls after each optimiser step, so a forward pass has no side effects."""

    BETA = 1e-4

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("nu", torch.ones(dim))
        self.register_buffer("t", torch.ones((), dtype=torch.long))

    def sigma(self) -> Tensor:
        return torch.sqrt(self.nu - self.mu.square() + 1e-5).nan_to_num().clamp(1e-3, 1e6)

    def forward(self, x: Tensor) -> Tensor:
        sigma = self.sigma()
        centred = x - self.mu
        return torch.where(sigma > 0.01, (centred / sigma).clamp(-1e4, 1e4), centred)

    @torch.no_grad()
    def update(self, x: Tensor, weight: Tensor) -> None:
        """Move the moments towards those of the rows of x (M, dim) whose weight (M,) is 1.
        Weights instead of boolean indexing: no host sync. A batch without a real row
        changes nothing."""
        x = x.to(self.mu.dtype)
        weight = weight.to(self.mu.dtype)
        n = weight.sum()
        mean = (x * weight[:, None]).sum(0) / n.clamp(min=1.0)
        mean_sq = (x.square() * weight[:, None]).sum(0) / n.clamp(min=1.0)
        # 0.0 as a Python number, filled on x's device: a CPU tensor here would be copied to
        # a CUDA device with a blocking copy, which a CUDA graph cannot record.
        beta_t = torch.where(n > 0, popart_step_size(self.BETA, self.t + 1).to(x.dtype), 0.0)
        self.mu.lerp_(mean, beta_t)
        self.nu.lerp_(mean_sq, beta_t)
        self.t.add_((n > 0).long())


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=max(1, channels // 8), num_channels=channels)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm1, self.conv1 = _group_norm(channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = _group_norm(channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(y)))


class ImpalaCNN(nn.Module):
    def __init__(self, in_channels: int, channels=(16, 32, 32)):
        super().__init__()
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), _group_norm(out_channels),
                       nn.MaxPool2d(3, stride=2, padding=1),
                       ResidualBlock(out_channels), ResidualBlock(out_channels)]
            in_channels = out_channels
        self.net = nn.Sequential(*layers, nn.ReLU(), nn.Flatten())

    def forward(self, img: Tensor) -> Tensor:
        """img (M, H, W, C) uint8 -> (M, features)."""
        x = img.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.net(x)


class TokenEncoder(nn.Module):
    def __init__(self, vocab: int, length: int):
        super().__init__()
        self.words = nn.Embedding(vocab, TOKEN_DIM)
        self.positions = nn.Parameter(torch.zeros(length, TOKEN_DIM))

    def forward(self, tokens: Tensor) -> Tensor:
        """tokens (M, T) int64 -> (M, TOKEN_DIM)."""
        return (self.words(tokens) + self.positions).mean(1)


class TimestepEncoder(nn.Module):
    def __init__(self, observation_space: gym.spaces.Dict, action_dim: int, hidden: int, out_dim: int):
        super().__init__()
        vec_dim = observation_space["vec"].shape[0]
        self.has_img = "img" in observation_space.spaces
        self.tokens = None
        extra = 0
        if "tokens" in observation_space.spaces:
            space = observation_space["tokens"]
            self.tokens = TokenEncoder(int(space.nvec.max()), space.shape[0])
            extra = TOKEN_DIM
        self.vec_norm = InputNorm(vec_dim + 1)
        if self.has_img:
            h, w, c = observation_space["img"].shape
            self.cnn = ImpalaCNN(c)
            with torch.no_grad():
                cnn_dim = self.cnn(torch.zeros(1, h, w, c, dtype=torch.uint8)).shape[1]
            self.rl2 = Linear(action_dim + 1, RL2_DIM)
            self.out = nn.Sequential(Linear(cnn_dim + RL2_DIM + vec_dim + 1 + extra, out_dim),
                                     nn.LayerNorm(out_dim))
        else:
            self.out = nn.Sequential(Linear(vec_dim + 1 + action_dim + extra, hidden), nn.LeakyReLU(),
                                     Linear(hidden, out_dim), nn.LayerNorm(out_dim))

    @staticmethod
    def norm_input(obs: dict[str, Tensor], prev_reward: Tensor) -> Tensor:
        """The features the running norm sees: [vec, prev reward] (..., vec_dim + 1)."""
        return torch.cat((obs["vec"].float(), prev_reward.float()), dim=-1)

    def forward(self, obs: dict[str, Tensor], prev_action: Tensor, prev_reward: Tensor) -> Tensor:
        """Arrays with any leading dims (...): obs[k] (..., *shape), prev_action (..., A),
        prev_reward (..., 1) -> (..., out_dim)."""
        lead = prev_action.shape[:-1]
        flat = lambda x: x.reshape(-1, *x.shape[len(lead):])  # noqa: E731
        vec = self.vec_norm(flat(self.norm_input(obs, prev_reward)))
        action, reward = flat(prev_action).float(), flat(prev_reward).float()
        parts = [vec]
        if self.has_img:
            rl2 = self.rl2(symlog(torch.cat((action, reward), dim=-1)))
            parts = [self.cnn(flat(obs["img"])), rl2, vec]
        else:
            parts.append(action)
        if self.tokens is not None:
            parts.append(self.tokens(flat(obs["tokens"])))
        return self.out(torch.cat(parts, dim=-1)).reshape(*lead, -1)
