"""The k-episode trial: the sequence the agent sees (docs/METHOD.md, "Data").

A trial runs k episodes of one task variant back to back. Each trial draws a task
uniformly from the wrapper's tasks and builds a fresh raw env with `TaskSpec.make(seed)`,
so a benchmark whose `make` samples a variant from the seed (Meta-World goals) gets a new
variant per trial while the k episodes inside it share one. The wrapper resets the inner
env itself between episodes (Meta-World raises if stepped past its limit).

What the agent sees: the shared dict observation of `SpaceLayout` whose reset bit is 1 on
the first observation of every inner episode; rewards times the task's multiplier. The
task name goes to `info` only. The trial is the MDP: `terminated` is True only when the
k-th episode ends (by termination, truncation or the horizon); the agent sees the
absolute time index, so a time-limited end is treated as terminal, as in AMAGO.

info: `task`, `episode` (inner index of the step just taken); when that inner episode
ends also `episode_return`
(the raw, unmultiplied return, the number papers report) and `episode_success` (True if
the env reported `info["success"]` truthy at any step of it; None if it never reports
success).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from amago2.envs.base import TaskSpec
from amago2.envs.spaces import SpaceLayout


class TrialEnv(gym.Env):
    def __init__(self, tasks: Sequence[tuple[int, TaskSpec]], layout: SpaceLayout, k: int,
                 horizon: int | None, seed: int):
        """tasks: (index in `layout`, spec) pairs drawn from uniformly, one per trial."""
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        self.tasks = list(tasks)
        self.layout = layout
        self.k = k
        self.horizon = horizon
        self.rng = np.random.default_rng(seed)
        self.observation_space = layout.observation_space
        self.action_space = layout.action_space
        self.env: gym.Env | None = None
        self.task_index = -1
        self.spec_now: TaskSpec | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        choice = int(self.rng.integers(len(self.tasks)))
        self.task_index, self.spec_now = self.tasks[choice]
        if self.env is not None:
            self.env.close()
        env_seed = int(self.rng.integers(2**31 - 1))
        self.env = self.spec_now.make(env_seed)
        raw, _ = self.env.reset(seed=env_seed)
        self.episode = 0
        self._start_episode()
        return self._encode(raw, reset_bit=True, invalid=False), self._info()

    def _start_episode(self) -> None:
        self.episode_steps = 0
        self.episode_return = 0.0
        self.episode_success: bool | None = None

    def _info(self) -> dict[str, Any]:
        return {"task": self.spec_now.name, "episode": self.episode}

    def _encode(self, raw: Any, reset_bit: bool, invalid: bool) -> dict[str, np.ndarray]:
        return self.layout.encode(self.task_index, raw, reset_bit, invalid)

    def step(self, action: Any):
        raw_action, invalid = self.layout.decode_action(self.task_index, action, self.rng)
        raw, reward, terminated, truncated, env_info = self.env.step(raw_action)
        reward = float(reward)
        self.episode_steps += 1
        self.episode_return += reward
        if "success" in env_info:
            self.episode_success = bool(self.episode_success) or bool(env_info["success"])
        horizon_hit = self.horizon is not None and self.episode_steps >= self.horizon
        info = self._info()
        scaled = reward * self.spec_now.reward_multiplier
        if not (terminated or truncated or horizon_hit):
            return self._encode(raw, False, invalid), scaled, False, False, info
        info["episode_return"] = self.episode_return
        info["episode_success"] = self.episode_success
        self.episode += 1
        if self.episode >= self.k:
            return self._encode(raw, False, invalid), scaled, True, False, info
        raw, _ = self.env.reset()
        self._start_episode()
        return self._encode(raw, True, invalid), scaled, False, False, info

    def close(self):
        if self.env is not None:
            self.env.close()
            self.env = None
