"""Multi-task POPGym (popgym 1.0.7): the paper's 27 tasks, a rescaled variant, a mini set.

The raw envs are POPGym's own Gymnasium envs; their Discrete / MultiDiscrete / Tuple
observations are one-hot flattened and padded, and their MultiDiscrete actions
(MineSweeper) flattened into the union Discrete(27), by amago2.envs.spaces. Every return
lies near [-1, 1]; the paper's x100 is the global `reward_multiplier` of the preset
(amago2.presets), so the per-task multipliers below are extra, for the rescaled variants.

The paper's "k = 1 (+ visible first episode)", as AMAGO's multi-domain POPGym does it:
a trial is two episodes of the task; the first is practice, so its rewards are 0 to
the learner but shown in the observation ("reward", the step's raw reward, which with
"state" sorted after it sits at the same place of "vec" for every task); the second
episode is the one that counts. Its trial metrics are therefore the last inner episode:
the first one reports a return of 0.

Score: POPGym scales every task's rewards so an episode's return lies in [-1, 1] with 1
the best possible (each step pays a fixed share of 1, e.g. +-1/episode length:
popgym/envs/*.py). The score is that return as is, so tasks aggregate and the numbers
stay those POPGym and AMAGO report; a rescaled variant's multipliers change what is
trained on, never the score.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from amago2.errors import ConfigError
from amago2.envs.base import Benchmark, TaskSpec

K = 2
"""One practice episode, then the one that counts."""
PACKAGES = ("popgym",)

# The paper's 27: seven families at Easy/Medium/Hard, MultiarmedBandit at Easy/Medium,
# HigherLower at all three, and MineSweeperEasy. popgym spells VelocityOnlyCartpole with
# a lower-case p.
_THREE_LEVELS = ("Autoencode", "RepeatPrevious", "RepeatFirst", "CountRecall",
                 "PositionOnlyCartPole", "VelocityOnlyCartpole", "NoisyPositionOnlyCartPole",
                 "HigherLower")
PAPER_TASKS = (
    tuple(f"{family}{level}" for family in _THREE_LEVELS for level in ("Easy", "Medium", "Hard"))
    + ("MultiarmedBanditEasy", "MultiarmedBanditMedium", "MineSweeperEasy"))

# popgym-rescaled (not in the paper): the families alternate between x100 and x0.1, so
# each scale holds memory and control tasks, easy and hard ones, and the effective
# reward scales (with the preset's global x100) span 10 to 10^4.
RESCALED_FAMILY_MULTIPLIERS = {
    "Autoencode": 100.0, "RepeatPrevious": 0.1, "RepeatFirst": 100.0, "CountRecall": 0.1,
    "PositionOnlyCartPole": 100.0, "VelocityOnlyCartpole": 0.1,
    "NoisyPositionOnlyCartPole": 100.0, "MultiarmedBandit": 0.1, "HigherLower": 100.0,
    "MineSweeper": 0.1,
}

# popgym-mini: five Easy tasks, one per kind of memory, with per-task multipliers that
# spread their scales over three orders of magnitude for quick uneven-scale runs.
MINI_MULTIPLIERS = {
    "RepeatPreviousEasy": 100.0,
    "CountRecallEasy": 1.0,
    "PositionOnlyCartPoleEasy": 0.1,
    "MultiarmedBanditEasy": 10.0,
    "MineSweeperEasy": 1.0,
}

VARIANTS = ("popgym", "popgym-rescaled", "popgym-mini")


def _family(task: str) -> str:
    for level in ("Easy", "Medium", "Hard"):
        if task.endswith(level):
            return task[: -len(level)]
    raise ValueError(task)


class PracticeFirstEpisode(gym.Wrapper):
    """The first episode since the env was built (or reset with a seed) pays the learner
    nothing; every step's raw reward is part of the observation."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Dict({
            "reward": gym.spaces.Box(-np.inf, np.inf, (1,), np.float32),
            "state": env.observation_space})
        self.episodes_started = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.episodes_started = 0
        self.episodes_started += 1
        state, info = self.env.reset(seed=seed, options=options)
        return {"reward": np.zeros(1, np.float32), "state": state}, info

    def step(self, action):
        state, reward, terminated, truncated, info = self.env.step(action)
        shown = {"reward": np.array([reward], np.float32), "state": state}
        practice = self.episodes_started == 1
        return shown, 0.0 if practice else float(reward), terminated, truncated, info


def popgym_score(episode_return: float) -> float:
    """The return, already on POPGym's common [-1, 1] scale (see the module docstring)."""
    return float(episode_return)


def popgym_task(task: str, reward_multiplier: float = 1.0) -> TaskSpec:
    """A POPGym env by its short name, e.g. "RepeatPreviousEasy"."""
    import popgym  # noqa: F401  (registers the popgym-* ids with Gymnasium)

    env_id = f"popgym-{task}-v0"

    def make(seed: int) -> gym.Env:
        env = gym.make(env_id)
        env.action_space.seed(seed)
        return PracticeFirstEpisode(env)

    return TaskSpec(name=task, make=make, reward_multiplier=reward_multiplier, score=popgym_score)


def popgym_benchmark(variant: str) -> Benchmark:
    if variant == "popgym":
        tasks = [popgym_task(t) for t in PAPER_TASKS]
    elif variant == "popgym-rescaled":
        tasks = [popgym_task(t, RESCALED_FAMILY_MULTIPLIERS[_family(t)]) for t in PAPER_TASKS]
    elif variant == "popgym-mini":
        tasks = [popgym_task(t, m) for t, m in MINI_MULTIPLIERS.items()]
    else:
        raise ConfigError(f"unknown POPGym variant '{variant}' (known: {', '.join(VARIANTS)})")
    # horizon None: every POPGym env ends its own episodes (7 to 831 steps).
    return Benchmark(name=variant, train_tasks=tuple(tasks), eval_tasks=(), k=K, horizon=None,
                     packages=PACKAGES)
