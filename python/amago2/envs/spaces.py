"""One observation space and one action space shared by every task of a benchmark.

The agent is a single network, so tasks with different raw spaces are mapped into common
ones (docs/METHOD.md, "Data"):

- Observations become a dict. The vector part ("vec") is every non-image, non-text part
  of the raw observation flattened (Box flattened to float32; Discrete / MultiDiscrete
  one-hot; MultiBinary as 0/1), zero-padded to the largest task, followed by the
  inner-episode reset bit and, when the tasks' discrete action counts differ, the
  invalid-action flag. A raw Dict observation may carry "img" (uint8 H x W x C) and
  "tokens" (MultiDiscrete) entries: those pass through unchanged under the same keys. A
  raw uint8 Box of rank 3 is taken as "img".
- Actions: all-discrete tasks share Discrete(max n) (a MultiDiscrete action space is
  flattened to Discrete(prod nvec)); all-continuous tasks share Box(-1, 1, (max d,)),
  each task reading the first d entries rescaled to its own bounds. An action a task does
  not have is replaced by a random valid one and flagged in the next observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from amago2.errors import ConfigError

PASS_THROUGH_KEYS = ("img", "tokens")


def flat_dim(space: gym.Space) -> int:
    """Length of `flatten_part(space, x)`."""
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, gym.spaces.MultiBinary):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Tuple):
        return sum(flat_dim(s) for s in space.spaces)
    if isinstance(space, gym.spaces.Dict):
        return sum(flat_dim(s) for s in space.spaces.values())
    raise ConfigError(f"unsupported observation space {space}; use Box, Discrete, "
                      "MultiDiscrete, MultiBinary, Tuple or Dict")


def flatten_part(space: gym.Space, x: Any) -> np.ndarray:
    """One raw observation part as a float32 vector; discrete values become one-hot."""
    if isinstance(space, gym.spaces.Box):
        return np.asarray(x, dtype=np.float32).reshape(-1)
    if isinstance(space, gym.spaces.Discrete):
        out = np.zeros(space.n, dtype=np.float32)
        out[int(x) - int(space.start)] = 1.0
        return out
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = space.nvec.reshape(-1)
        out = np.zeros(int(nvec.sum()), dtype=np.float32)
        offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
        out[offsets + np.asarray(x).reshape(-1) - space.start.reshape(-1)] = 1.0
        return out
    if isinstance(space, gym.spaces.MultiBinary):
        return np.asarray(x, dtype=np.float32).reshape(-1)
    if isinstance(space, gym.spaces.Tuple):
        return np.concatenate([flatten_part(s, v) for s, v in zip(space.spaces, x)])
    if isinstance(space, gym.spaces.Dict):
        return np.concatenate([flatten_part(s, x[k]) for k, s in space.spaces.items()])
    raise ConfigError(f"unsupported observation space {space}")


def _is_image(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def split_observation_space(space: gym.Space) -> tuple[dict[str, gym.Space], gym.Space | None]:
    """(pass-through parts by key, the part that is flattened into "vec" or None)."""
    if _is_image(space):
        return {"img": space}, None
    if isinstance(space, gym.spaces.Dict):
        passed = {k: s for k, s in space.spaces.items() if k in PASS_THROUGH_KEYS}
        rest = {k: s for k, s in space.spaces.items() if k not in PASS_THROUGH_KEYS}
        return passed, (gym.spaces.Dict(rest) if rest else None)
    return {}, space


@dataclass(frozen=True)
class TaskActions:
    """How one task reads the union action."""

    kind: str                        # "discrete" | "multidiscrete" | "box"
    n: int                           # valid discrete actions (flattened), or box dims
    nvec: tuple[int, ...] = ()
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def _task_actions(space: gym.Space) -> TaskActions:
    if isinstance(space, gym.spaces.Discrete):
        return TaskActions("discrete", int(space.n))
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = tuple(int(v) for v in space.nvec.reshape(-1))
        return TaskActions("multidiscrete", int(np.prod(nvec)), nvec=nvec)
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return TaskActions("box", int(space.shape[0]), low=space.low.astype(np.float64),
                           high=space.high.astype(np.float64))
    raise ConfigError(f"unsupported action space {space}; use Discrete, MultiDiscrete or 1-d Box")


class SpaceLayout:
    """The shared spaces of a benchmark, built from every task's raw spaces."""

    def __init__(self, task_observation_spaces: list[gym.Space], task_action_spaces: list[gym.Space]):
        self.obs_spaces = task_observation_spaces
        self.task_actions = [_task_actions(s) for s in task_action_spaces]
        kinds = {"box" if a.kind == "box" else "discrete" for a in self.task_actions}
        if len(kinds) != 1:
            raise ConfigError("a benchmark must not mix discrete and continuous action spaces")
        self.discrete = kinds == {"discrete"}
        self.num_actions = max(a.n for a in self.task_actions)
        self.has_invalid_flag = self.discrete and any(a.n < self.num_actions for a in self.task_actions)

        splits = [split_observation_space(s) for s in task_observation_spaces]
        self.vec_parts = [rest for _, rest in splits]
        self.flat_dim = max(flat_dim(rest) if rest is not None else 0 for rest in self.vec_parts)
        self.vec_dim = self.flat_dim + 1 + int(self.has_invalid_flag)
        passed_keys = {tuple(sorted(p)) for p, _ in splits}
        if len(passed_keys) != 1:
            raise ConfigError("all tasks of a benchmark must share the same image/text observation keys")
        self.passed: dict[str, gym.Space] = {}
        for key in passed_keys.pop():
            spaces_k = [p[key] for p, _ in splits]
            if any(s != spaces_k[0] for s in spaces_k):
                raise ConfigError(f"all tasks must share one '{key}' observation space; got "
                                  f"{sorted({str(s) for s in spaces_k})}")
            self.passed[key] = spaces_k[0]

        parts: dict[str, gym.Space] = {
            "vec": gym.spaces.Box(-np.inf, np.inf, (self.vec_dim,), np.float32)}
        parts.update(self.passed)
        self.observation_space = gym.spaces.Dict(parts)
        self.action_space: gym.Space = (gym.spaces.Discrete(self.num_actions) if self.discrete
                                        else gym.spaces.Box(-1.0, 1.0, (self.num_actions,), np.float32))
        self.action_dim = self.num_actions  # width of the agent's action vector (one-hot if discrete)

    def encode(self, task: int, raw_obs: Any, reset_bit: bool, invalid_flag: bool) -> dict[str, np.ndarray]:
        """A task's raw observation as the shared dict observation."""
        vec = np.zeros(self.vec_dim, dtype=np.float32)
        rest_space = self.vec_parts[task]
        if rest_space is not None:
            rest = raw_obs
            if isinstance(self.obs_spaces[task], gym.spaces.Dict):
                rest = {k: raw_obs[k] for k in rest_space.spaces}
            flat = flatten_part(rest_space, rest)
            vec[: flat.shape[0]] = flat
        vec[self.flat_dim] = float(reset_bit)
        if self.has_invalid_flag:
            vec[self.flat_dim + 1] = float(invalid_flag)
        out = {"vec": vec}
        for key in self.passed:
            value = raw_obs if key == "img" and _is_image(self.obs_spaces[task]) else raw_obs[key]
            out[key] = np.asarray(value, dtype=self.passed[key].dtype)
        return out

    def decode_action(self, task: int, action: Any, rng: np.random.Generator) -> tuple[Any, bool]:
        """(the task's raw action, whether the union action was invalid for this task).

        action: an int index for discrete layouts, a float vector in [-1, 1] otherwise.
        """
        spec = self.task_actions[task]
        if spec.kind == "box":
            a = np.clip(np.asarray(action, dtype=np.float64)[: spec.n], -1.0, 1.0)
            bounded = np.isfinite(spec.low) & np.isfinite(spec.high)
            scaled = np.where(bounded, spec.low + (a + 1.0) * 0.5 * (spec.high - spec.low), a)
            return scaled.astype(np.float32), False
        index = int(action)
        invalid = not 0 <= index < spec.n
        if invalid:
            index = int(rng.integers(spec.n))
        if spec.kind == "multidiscrete":
            return np.array(np.unravel_index(index, spec.nvec), dtype=np.int64), invalid
        return index, invalid

    def action_vector(self, action: Any) -> np.ndarray:
        """The agent's view of an action: one-hot if discrete, the float vector otherwise."""
        if self.discrete:
            out = np.zeros(self.num_actions, dtype=np.float32)
            out[int(action)] = 1.0
            return out
        return np.asarray(action, dtype=np.float32).reshape(self.num_actions)


def layout_for_tasks(tasks, seed: int = 0) -> SpaceLayout:
    """Build one raw env per task to read its spaces (closed right after)."""
    obs_spaces, act_spaces = [], []
    for spec in tasks:
        env = spec.make(seed)
        obs_spaces.append(env.observation_space)
        act_spaces.append(env.action_space)
        env.close()
    return SpaceLayout(obs_spaces, act_spaces)
