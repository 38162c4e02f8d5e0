"""Benchmarks made of any list of Gymnasium ids: `gym-mini` and user-defined sets.

A user-defined set comes from a sweep file as the run request's `benchmark_def`:

    {"tasks": [{"env_id": "CartPole-v1", "reward_multiplier": 1.0, "kwargs": {}, "name": "cp",
                "return_range": [0, 500]}],
     "eval_tasks": [...same form, optional...], "k": 2, "horizon": 200, "preset": {...}}

`return_range` (optional) is [lowest, highest] episode return: it gives the task a score,
(R - lowest) / (highest - lowest), so that tasks on different scales aggregate in tables.

`env_id` may be "module:EnvName-v0": Gymnasium imports the module first, which is how a
user's own registered env is reached. `preset` holds hyperparameter overrides and is read
by `amago2.presets`, not here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any, Callable

import gymnasium as gym

from amago2.errors import ConfigError
from amago2.envs.base import Benchmark, TaskSpec, min_max_score

# Five Gymnasium built-ins whose returns run from -500 (Acrobot) to +500 (CartPole) and
# 0/1 (FrozenLake): the uneven-scale problem at toy size. Taxi is Taxi-v3, the id
# gymnasium 1.2.3 registers.
GYM_MINI_IDS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "FrozenLake-v1", "Taxi-v3")
GYM_MINI_K = 2

# The bounds of an episode return, (min, max), from each env's documented reward schedule
# and time limit (gymnasium docs, "Rewards" and "Episode End" of each env, gymnasium
# 1.2.3). They are bounds, not always attainable (Acrobot cannot reach the goal in 0
# steps), so a return's score (R - min) / (max - min) always lies in [0, 1] and tasks
# whose raw returns differ by orders of magnitude aggregate in one table.
GYM_MINI_RETURN_RANGES = {
    "CartPole-v1": (0.0, 500.0),      # +1 per step, truncated at 500 steps
    "Acrobot-v1": (-500.0, 0.0),      # -1 per step until the goal (0), truncated at 500
    "MountainCar-v0": (-200.0, 0.0),  # -1 per step, truncated at 200
    "FrozenLake-v1": (0.0, 1.0),      # +1 on reaching the goal, 0 otherwise
    # -10 for an illegal pickup/drop-off (else -1) on each of at most 200 steps; +20 for
    # the delivery, which ends the episode and is the only positive reward.
    "Taxi-v3": (-2000.0, 20.0),
}

DEF_KEYS = {"tasks", "eval_tasks", "k", "horizon", "preset"}
TASK_KEYS = {"env_id", "reward_multiplier", "kwargs", "name", "return_range"}


def gym_task(env_id: str, reward_multiplier: float = 1.0, kwargs: dict[str, Any] | None = None,
             name: str | None = None, score: Callable[[float], float] | None = None) -> TaskSpec:
    kwargs = dict(kwargs or {})

    def make(seed: int) -> gym.Env:
        env = gym.make(env_id, **kwargs)
        env.action_space.seed(seed)
        return env

    return TaskSpec(name=name or env_id, make=make, reward_multiplier=float(reward_multiplier), score=score)


def gym_mini() -> Benchmark:
    tasks = tuple(gym_task(i, score=min_max_score(*GYM_MINI_RETURN_RANGES[i])) for i in GYM_MINI_IDS)
    return Benchmark(name="gym-mini", train_tasks=tasks, eval_tasks=(), k=GYM_MINI_K, horizon=None,
                     packages=("gymnasium",))


def _check_env_id(env_id: str) -> str | None:
    """Raise a ConfigError if the id cannot be made; return the module's dist name if any."""
    module, _, name = env_id.rpartition(":")
    dist = None
    if module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"env_id '{env_id}': cannot import module '{module}' ({e}); it must be importable "
                              "by this Python: install its package, or put its folder on PYTHONPATH") from e
        dists = importlib.metadata.packages_distributions().get(module.split(".")[0], [])
        dist = dists[0] if dists else None
    try:
        gym.spec(name)
    except gym.error.Error as e:
        raise ConfigError(f"env_id '{env_id}' is not a registered Gymnasium environment ({e})") from e
    return dist


def _parse_tasks(entries: Any, where: str) -> tuple[list[TaskSpec], set[str]]:
    if not isinstance(entries, list) or not all(isinstance(t, dict) for t in entries):
        raise ConfigError(f"benchmark_def.{where} must be a list of objects like "
                          '{"env_id": "CartPole-v1", "reward_multiplier": 1.0}')
    tasks, dists, names = [], set(), set()
    for i, entry in enumerate(entries):
        unknown = set(entry) - TASK_KEYS
        if unknown:
            raise ConfigError(f"benchmark_def.{where}[{i}]: unknown key(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(TASK_KEYS))})")
        env_id = entry.get("env_id")
        if not isinstance(env_id, str) or not env_id:
            raise ConfigError(f"benchmark_def.{where}[{i}].env_id must be a Gymnasium id string")
        mult = entry.get("reward_multiplier", 1.0)
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or mult <= 0:
            raise ConfigError(f"benchmark_def.{where}[{i}].reward_multiplier must be a positive number; "
                              f"got {mult!r}")
        kwargs = entry.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConfigError(f"benchmark_def.{where}[{i}].kwargs must be an object")
        score = None
        if "return_range" in entry:
            low_high = entry["return_range"]
            if not (isinstance(low_high, list) and len(low_high) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in low_high)
                    and low_high[0] < low_high[1]):
                raise ConfigError(f"benchmark_def.{where}[{i}].return_range must be [lowest, highest] episode "
                                  f"return with lowest < highest; got {low_high!r}")
            score = min_max_score(float(low_high[0]), float(low_high[1]))
        dist = _check_env_id(env_id)
        if dist:
            dists.add(dist)
        name = entry.get("name") or env_id
        if name in names:  # the same id twice (e.g. different kwargs) needs distinct names
            name = f"{name}#{i}"
        names.add(name)
        tasks.append(gym_task(env_id, mult, kwargs, name, score))
    return tasks, dists


def from_definition(name: str, definition: dict[str, Any]) -> Benchmark:
    """A Benchmark from a run request's `benchmark_def`."""
    if not isinstance(definition, dict):
        raise ConfigError("benchmark_def must be an object with 'tasks', 'k' and 'horizon'")
    unknown = set(definition) - DEF_KEYS
    if unknown:
        raise ConfigError(f"benchmark_def: unknown key(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(DEF_KEYS))})")
    train, dists = _parse_tasks(definition.get("tasks"), "tasks")
    if not train:
        raise ConfigError("benchmark_def.tasks must list at least one task")
    held_out, eval_dists = _parse_tasks(definition.get("eval_tasks", []), "eval_tasks")
    k = definition.get("k", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"benchmark_def.k must be a positive integer; got {k!r}")
    horizon = definition.get("horizon")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1):
        raise ConfigError(f"benchmark_def.horizon must be a positive integer or null; got {horizon!r}")
    return Benchmark(name=name, train_tasks=tuple(train), eval_tasks=tuple(held_out), k=k,
                     horizon=horizon, packages=("gymnasium", *sorted(dists | eval_dists)))
