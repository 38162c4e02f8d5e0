"""Multi-game Procgen, easy distribution: climber, coinrun, jumper, ninja, leaper.

A variant is one level. `reset(seed=s)` picks a training level from `s` and `reset()`
replays it, so the k = 2 episodes of a trial are two attempts at the same level. The
64x64x3 uint8 frame is the "img" observation; all games share Discrete(15). Each game
ends its own episodes (1,000 steps at most), so a trial is at most 2,000 steps, within
the paper's 2,500. info["success"] is Procgen's "level complete".

Procgen needs numpy<2 and the old `gym`, which the main environment cannot have, so it
lives in an environment of its own (install_hint()). Its official wheels stop at Python
3.10; the `procgen2` re-upload of 0.10.7 installs on Python 3.11.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

from amago2.errors import ConfigError
from amago2.envs.base import Benchmark, TaskSpec, min_max_score

K = 2
GAMES = ("climber", "coinrun", "jumper", "ninja", "leaper")
RESCALED_MULTIPLIERS = {"coinrun": 100.0, "climber": 0.1}
# The Procgen paper's normalisation for the easy distribution (Cobbe et al. 2020, table of
# R_min, R_max per game): a score of 0 is about what a policy that learned nothing gets,
# 1 the most a level pays.
EASY_RETURN_RANGES = {"climber": (2.0, 12.6), "coinrun": (5.0, 10.0), "jumper": (3.0, 10.0),
                      "ninja": (3.5, 10.0), "leaper": (3.0, 10.0)}
TRAIN_LEVELS = 10_000
"""Training levels are 0..TRAIN_LEVELS-1; evaluation uses the levels above, never trained on."""
NUM_ACTIONS = 15
PACKAGES = ("procgen2", "gym")

# The project root of this (editable) checkout: <root>/python/amago2/envs/procgen.py.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
INSTALL_HINT = (
    "Procgen is not installed in this Python ({python}); procgen2==0.10.7 (wheels for Python "
    "3.11 only) needs numpy<2 and the old gym, so it has an environment of its own: run "
    "`amago2 setup --procgen` (creates {venv}, which procgen sweeps then use), or run "
    "`pip install -e '{root}/python[procgen]'` in a Python 3.11 venv of your own and set "
    "AMAGO2_PYTHON to its python")


def install_hint() -> str:
    """How to install Procgen next to this checkout."""
    return INSTALL_HINT.format(python=sys.executable, root=PROJECT_ROOT, venv=PROJECT_ROOT / ".venv-procgen")


def _require_procgen():
    try:
        from procgen import ProcgenGym3Env
    except ImportError as e:
        raise ConfigError(install_hint()) from e
    return ProcgenGym3Env


class ProcgenLevelEnv(gym.Env):
    """One Procgen game; each seeded reset picks a level that unseeded resets replay."""

    observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = gym.spaces.Discrete(NUM_ACTIONS)

    def __init__(self, game: str, first_level: int, num_levels: int, seed: int):
        self.make_gym3 = _require_procgen()
        self.game = game
        self.first_level, self.num_levels = first_level, num_levels
        self.level = self._draw_level(seed)
        self.game_seed = seed  # the in-level randomness (enemies, timing)
        self.gym3 = None
        self.at_episode_start = False

    def _draw_level(self, seed: int) -> int:
        return self.first_level + int(np.random.default_rng(seed).integers(self.num_levels))

    def _start_level(self) -> np.ndarray:
        # num_levels=1 locks the game to this level, so its automatic reset at episode
        # end replays the same level.
        if self.gym3 is not None:
            self.gym3.close()
        self.gym3 = self.make_gym3(num=1, env_name=self.game, distribution_mode="easy",
                                   num_levels=1, start_level=self.level,
                                   rand_seed=self.game_seed)
        _, obs, _ = self.gym3.observe()
        return obs["rgb"][0]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.level = self._draw_level(seed)
        if seed is not None or not self.at_episode_start:
            self.frame = self._start_level()
        self.at_episode_start = False
        return self.frame, {"level": self.level}

    def step(self, action):
        self.gym3.act(np.array([int(action)]))
        reward, obs, first = self.gym3.observe()
        self.frame = obs["rgb"][0]
        done = bool(first[0])
        info = {}
        if done:
            # gym3 has already reset into the same level; `frame` is its first frame,
            # which the next unseeded reset() hands out without rebuilding the game.
            self.at_episode_start = True
            info["success"] = bool(self.gym3.get_info()[0]["prev_level_complete"])
        return self.frame, float(reward[0]), done, False, info

    def close(self):
        if self.gym3 is not None:
            self.gym3.close()
            self.gym3 = None


def procgen_task(game: str, held_out: bool, reward_multiplier: float = 1.0) -> TaskSpec:
    first, count = (TRAIN_LEVELS, 2**31 - 1 - TRAIN_LEVELS) if held_out else (0, TRAIN_LEVELS)
    name = f"{game}-unseen-levels" if held_out else game
    return TaskSpec(name=name, make=lambda seed: ProcgenLevelEnv(game, first, count, seed),
                    reward_multiplier=reward_multiplier, score=min_max_score(*EASY_RETURN_RANGES[game]))


def procgen_benchmark(rescaled: bool) -> Benchmark:
    """The easy five-game set; rescaled multiplies coinrun by 100 and climber by 0.1."""
    _require_procgen()
    multipliers = RESCALED_MULTIPLIERS if rescaled else {}
    return Benchmark(
        name="procgen-rescaled" if rescaled else "procgen",
        train_tasks=tuple(procgen_task(g, False, multipliers.get(g, 1.0)) for g in GAMES),
        eval_tasks=tuple(procgen_task(g, True, multipliers.get(g, 1.0)) for g in GAMES),
        k=K, horizon=None, packages=PACKAGES)
