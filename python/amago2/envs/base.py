"""What a benchmark is: a set of tasks the agent is never told apart (docs/INTERFACES.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym


@dataclass(frozen=True)
class TaskSpec:
    name: str
    """Reported in metrics only; never part of an observation."""
    make: Callable[[int], gym.Env]
    """seed -> one raw single-episode environment of this task."""
    reward_multiplier: float = 1.0
    """Per-task scale applied by the trial wrapper (the rescaled benchmarks)."""
    score: Callable[[float], float] | None = None
    """Normalised score of an episode return (e.g. Atari human-normalised), if defined."""


def min_max_score(low: float, high: float) -> Callable[[float], float]:
    """The score of a return on a task whose returns span [low, high]: 0 at low, 1 at high."""
    return lambda episode_return: (episode_return - low) / (high - low)


@dataclass(frozen=True)
class Benchmark:
    name: str
    train_tasks: tuple[TaskSpec, ...]
    eval_tasks: tuple[TaskSpec, ...]
    """Held-out tasks, evaluated and reported separately, never trained on; () if none."""
    k: int
    """Episodes per trial."""
    horizon: int | None
    """Max steps per inner episode; None keeps the env's own limit."""
    packages: tuple[str, ...]
    """pip distributions whose exact versions every run records."""
    probe: TaskSpec | None = None
    """A task the runtime check builds instead of the first training task, when that one
    is slow to build (ML45's goal sets take ~20 s); None: the first training task."""


class IdlePool:
    """Keeps one idle instance per name for the next env of that name to reuse.

    The trial wrapper builds a fresh env every trial; some simulators (Meta-World's MuJoCo
    models, ALE's ROM loads) cost tenths of a second to build. An instance belongs to one
    env at a time: taken when the env is made, given back when it is closed.
    """

    def __init__(self):
        self._idle: dict[str, Any] = {}

    def take(self, name: str, build: Callable[[], Any]) -> Any:
        instance = self._idle.pop(name, None)
        return instance if instance is not None else build()

    def give_back(self, name: str, instance: Any) -> None:
        if name in self._idle:
            instance.close()
        else:
            self._idle[name] = instance
