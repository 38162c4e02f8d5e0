"""Meta-World ML45 (metaworld 3.1.1, the v3 task classes) as per-task raw envs.

A task is one ML45 class (e.g. "reach-v3"); its variants are the 50 goal positions
Meta-World generates per class. `make(seed)` returns an env whose `reset(seed=s)` draws a
variant from `s` and whose `reset()` replays the current one, so the trial wrapper's
"fresh env + reset(seed) per trial, reset() between inner episodes" gives k episodes of
one goal per trial. The ML ("partially observable") task data zero the last three
observation dims, where the goal would be: the task stays hidden.

Deviation from the paper: the paper used the v2 task classes of an
older metaworld; metaworld 3.1.1 ships only v3 classes (reward functions and goal ranges
revised), so ML45 here means ML45-v3.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from amago2.envs.base import Benchmark, IdlePool, TaskSpec

K = 3
HORIZON = 500
MINI_CLASSES = ("reach-v3", "button-press-v3", "door-open-v3", "stick-pull-v3")
MINI_HORIZON = 50
GOAL_SEED = 0
"""Seed of Meta-World's goal generation: every run sees the same 50 goals per class."""
PACKAGES = ("metaworld", "mujoco")


def ml45_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the 45 train class names, the 5 held-out test class names), without building them."""
    from metaworld import env_dict

    return tuple(env_dict.ML45_V3["train"]), tuple(env_dict.ML45_V3["test"])


@functools.lru_cache(maxsize=None)
def goal_sets(train: tuple[str, ...], test: tuple[str, ...]):
    """The metaworld benchmark object holding the goal variants; built once per process
    (ML45 takes ~16 s) and only when an env is first made."""
    import metaworld

    if (train, test) == ml45_classes():
        return metaworld.ML45(seed=GOAL_SEED)
    return metaworld.CustomML(list(train), list(test), seed=GOAL_SEED)


# One idle simulator per class, kept for the next env of that class in this process:
# building one compiles its MuJoCo model (0.15-0.5 s here) and the trial wrapper builds a
# fresh env every trial. One per class bounds the memory (~28 MB each, ~1.4 GB for all
# 50 ML45 classes, what metaworld's own 45-env vector costs).
_IDLE_SIMS = IdlePool()


class MetaWorldTaskEnv(gym.Env):
    """One ML45 class; each seeded reset draws one of its goal variants."""

    def __init__(self, name: str, env_cls: type, variants: list[Any], horizon: int, seed: int):
        self.name = name
        self.variants = variants
        self.sim = _IDLE_SIMS.take(name, env_cls)
        self.sim.max_path_length = horizon  # the sim truncates here; reward code never reads it
        self.sim.seed(seed)
        low = self.sim.sawyer_observation_space.low.astype(np.float32)
        high = self.sim.sawyer_observation_space.high.astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.rng = np.random.default_rng(seed)
        self.variant: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            self.variant = None
        if self.variant is None:
            self.variant = int(self.rng.integers(len(self.variants)))
            self.sim.set_task(self.variants[self.variant])
        obs, _ = self.sim.reset()
        return obs.astype(np.float32), {"variant": self.variant}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.sim.step(np.asarray(action, np.float32))
        # info["success"] is per step; the trial wrapper counts an episode as successful
        # if it is ever true, as the paper does.
        return obs.astype(np.float32), float(reward), bool(terminated), bool(truncated), \
            {"success": bool(info["success"])}

    def close(self):
        if self.sim is not None:
            _IDLE_SIMS.give_back(self.name, self.sim)
            self.sim = None


def _task(name: str, split: str, train: tuple[str, ...], test: tuple[str, ...],
          horizon: int) -> TaskSpec:
    def make(seed: int) -> gym.Env:
        sets = goal_sets(train, test)
        classes = sets.train_classes if split == "train" else sets.test_classes
        tasks = sets.train_tasks if split == "train" else sets.test_tasks
        variants = [t for t in tasks if t.env_name == name]
        return MetaWorldTaskEnv(name, classes[name], variants, horizon, seed)

    return TaskSpec(name=name, make=make)


def metaworld_benchmark(name: str, train: tuple[str, ...], test: tuple[str, ...],
                        horizon: int, probe: TaskSpec | None = None) -> Benchmark:
    """Any set of Meta-World v3 classes with goal variants (tests use small subsets)."""
    return Benchmark(
        name=name,
        train_tasks=tuple(_task(n, "train", train, test, horizon) for n in train),
        eval_tasks=tuple(_task(n, "test", train, test, horizon) for n in test),
        k=K, horizon=horizon, packages=PACKAGES, probe=probe)


def ml45_benchmark(mini: bool) -> Benchmark:
    """ML45: 45 train classes, the 5 test classes held out for evaluation only.
    mini: a 4-class set (reach, button-press, door-open, stick-pull) with 50-step episodes and no held-out set."""
    if mini:
        return metaworld_benchmark("ml45-mini", MINI_CLASSES, (), MINI_HORIZON)
    train, test = ml45_classes()
    # The runtime check builds one ML45 class from a goal set of its own (under a second),
    # not from the full ML45 goal sets (~20 s): same simulator, same packages.
    probe = _task(train[0], "train", (train[0],), (), HORIZON)
    return metaworld_benchmark("ml45", train, test, HORIZON, probe)
