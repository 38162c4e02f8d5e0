"""Multi-game Atari (ale-py 0.12.1, ALE v5) at the paper's settings.

Each game is `ALE/<Game>-v5` with its v5 defaults (frameskip 4, sticky actions 0.25, an
episode cap of 108,000 frames = 30 minutes = 27,000 agent steps) and
`full_action_space=True`, so every game shares Discrete(18). The RGB frame is
area-averaged to 84x84 ("img", uint8 HWC). No reward clipping, no frame stacking, no
life-loss resets: the Transformer's context is the agent's memory.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from amago2.envs.base import Benchmark, IdlePool, TaskSpec

K = 1
FRAME_SIZE = 84
PACKAGES = ("ale-py",)

# Standard reference scores (random policy, human tester) used for the human-normalised
# score (return - random) / (human - random), as in the DQN / Agent57 tables.
REFERENCE_SCORES = {
    "Pong": (-20.7, 14.6),
    "Boxing": (0.1, 12.1),
    "Breakout": (1.7, 30.5),
    "Gopher": (257.6, 2412.5),
    "MsPacman": (307.3, 6951.6),
    "ChopperCommand": (811.0, 7387.8),
    "CrazyClimber": (10780.5, 35829.4),
    "BattleZone": (2360.0, 37187.5),
    "Qbert": (163.9, 13455.0),
    "Seaquest": (68.4, 42054.7),
}
GAMES = tuple(REFERENCE_SCORES)


def human_normalized(game: str):
    random_score, human_score = REFERENCE_SCORES[game]
    return lambda episode_return: (episode_return - random_score) / (human_score - random_score)


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output pixel, the input pixels it covers and their weights (the covered
    fraction / scale): the 'area' resampling filter as (n_out, taps) index and weight
    arrays, zero-weight padded."""
    scale = n_in / n_out
    taps = int(np.ceil(scale)) + 1
    index = np.zeros((n_out, taps), dtype=np.intp)
    weight = np.zeros((n_out, taps), dtype=np.float32)
    for j in range(n_out):
        start, end = j * scale, (j + 1) * scale
        for t, i in enumerate(range(int(start), min(int(np.ceil(end)), n_in))):
            index[j, t] = i
            weight[j, t] = (min(end, i + 1) - max(start, i)) / scale
    return index, weight


class AreaResize:
    """Resize HWC uint8 frames by area averaging, as a few weighted gathers per axis.

    Not a matrix product on purpose: BLAS threads contending with the learner for a
    loaded CPU turned a 0.3 ms resize into 16 ms; gathers stay single-threaded."""

    def __init__(self, height: int, width: int, size: int):
        self.row_index, self.row_weight = _area_taps(height, size)
        self.col_index, self.col_weight = _area_taps(width, size)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        pixels = frame.astype(np.float32)
        rows = sum(self.row_weight[:, t, None, None] * pixels[self.row_index[:, t]]
                   for t in range(self.row_index.shape[1]))
        small = sum(self.col_weight[None, :, t, None] * rows[:, self.col_index[:, t]]
                    for t in range(self.col_index.shape[1]))
        return np.rint(small).astype(np.uint8)


# One idle emulator per game, kept for the next env of that game in this process. The
# trial wrapper builds a fresh env every trial, and each ROM load costs ~0.35 s here:
# reuse leaves only the one a seeded reset needs, instead of two (gym.make's and the
# reset's).
_IDLE_EMULATORS = IdlePool()


def _build_emulator(game: str) -> gym.Env:
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(f"ALE/{game}-v5", full_action_space=True)


class AtariGameEnv(gym.Env):
    def __init__(self, game: str, seed: int):
        self.game = game
        self.env = _IDLE_EMULATORS.take(game, lambda: _build_emulator(game))
        self.env.action_space.seed(seed)
        height, width, channels = self.env.observation_space.shape
        self.resize = AreaResize(height, width, FRAME_SIZE)
        self.observation_space = gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, channels), np.uint8)
        self.action_space = self.env.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        frame, info = self.env.reset(seed=seed)
        return self.resize(frame), info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(int(action))
        return self.resize(frame), float(reward), terminated, truncated, info

    def close(self):
        if self.env is not None:
            _IDLE_EMULATORS.give_back(self.game, self.env)
            self.env = None


def atari_task(game: str) -> TaskSpec:
    return TaskSpec(name=game, make=lambda seed: AtariGameEnv(game, seed),
                    score=human_normalized(game))


def atari_benchmark() -> Benchmark:
    # horizon None: ALE's own 108,000-frame cap is the paper's 30 minutes.
    return Benchmark(name="atari", train_tasks=tuple(atari_task(g) for g in GAMES),
                     eval_tasks=(), k=K, horizon=None, packages=PACKAGES)
