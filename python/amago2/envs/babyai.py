"""BabyAI (minigrid 3.2.0): the paper's 50 training tasks and 18 held-out tasks.

Observation of a raw env, a dict that amago2.envs.spaces maps onto the agent's keys:
- "img": the 7x7x3 uint8 egocentric grid view (object, colour, state codes);
- "tokens": the mission as 9 int64 word ids over a fixed 29-word vocabulary
  (0 = no word, 1 = unknown word, 2.. = the vocabulary), a MultiDiscrete space;
- "direction": the agent's heading, Discrete(4), one-hot flattened into "vec".

Variants: a variant is one procedurally generated layout. `reset(seed=s)` generates the
layout of seed `s` and `reset()` regenerates the same one, so the k = 2 episodes of a
trial are two attempts at the same (task, layout) pair.
"""

from __future__ import annotations

import contextlib
import io

import gymnasium as gym
import numpy as np

from amago2.envs.base import Benchmark, TaskSpec

K = 2
PACKAGES = ("minigrid",)

# The paper's split of the 68 BabyAI tasks that have single-clause missions. The
# paper's list names BabyAI-GoToObjS6-v0, registered as -v1 since minigrid 2.x.
TRAIN_TASKS = (
    "GoToLocalS7N5-v0", "GoToObjMaze-v0", "KeyCorridor-v0", "KeyCorridorS3R3-v0",
    "GoToRedBall-v0", "KeyCorridorS3R2-v0", "KeyCorridorS3R1-v0", "Unlock-v0",
    "GoToLocalS8N4-v0", "GoToObjMazeOpen-v0", "KeyCorridorS4R3-v0", "UnlockLocal-v0",
    "GoToObjMazeS5-v0", "GoToObjMazeS4R2-v0", "GoToLocal-v0", "PickupLoc-v0",
    "UnlockPickup-v0", "GoTo-v0", "FindObjS6-v0", "BlockedUnlockPickup-v0",
    "KeyCorridorS5R3-v0", "GoToObjS6-v1", "KeyInBox-v0", "Open-v0", "GoToOpen-v0",
    "GoToDoor-v0", "FindObjS7-v0", "OpenRedDoor-v0", "PickupDist-v0", "GoToImpUnlock-v0",
    "UnblockPickup-v0", "OpenDoor-v0", "GoToObjMazeS4-v0", "OneRoomS12-v0",
    "GoToObjMazeS6-v0", "GoToRedBallNoDists-v0", "OpenDoorDebug-v0", "GoToLocalS8N5-v0",
    "OneRoomS20-v0", "Pickup-v0", "GoToRedBlueBall-v0", "OpenDoorColor-v0",
    "PickupAbove-v0", "GoToObjDoor-v0", "OpenRedBlueDoors-v0", "UnlockToUnlock-v0",
    "OneRoomS16-v0", "GoToLocalS8N6-v0", "OneRoomS8-v0", "PickupDistDebug-v0",
)
HELD_OUT_TASKS = (
    "ActionObjDoor-v0", "FindObjS5-v0", "GoToLocalS5N2-v0", "GoToLocalS6N2-v0",
    "GoToLocalS6N3-v0", "GoToLocalS6N4-v0", "GoToLocalS7N4-v0", "GoToLocalS8N2-v0",
    "GoToLocalS8N3-v0", "GoToLocalS8N7-v0", "GoToObj-v0", "GoToObjMazeS7-v0",
    "GoToObjS4-v0", "GoToRedBallGrey-v0", "KeyCorridorS6R3-v0", "OpenDoorLoc-v0",
    "UnlockLocalDist-v0", "UnlockPickupDist-v0",
)

VOCABULARY = (
    "a", "ball", "behind", "blue", "box", "door", "door,", "front", "go", "green", "grey",
    "in", "key", "left", "object", "of", "on", "open", "pick", "purple", "red", "right",
    "the", "then", "to", "up", "yellow", "you", "your",
)
MISSION_TOKENS = 9
"""The longest mission of these 68 tasks has 9 words."""
NO_WORD, UNKNOWN_WORD = 0, 1
_WORD_IDS = {word: i + 2 for i, word in enumerate(VOCABULARY)}


def mission_tokens(mission: str) -> np.ndarray:
    """The mission as MISSION_TOKENS word ids; longer missions are cut (none of the 68 is)."""
    ids = np.full(MISSION_TOKENS, NO_WORD, dtype=np.int64)
    for i, word in enumerate(mission.split()[:MISSION_TOKENS]):
        ids[i] = _WORD_IDS.get(word, UNKNOWN_WORD)
    return ids


class BabyAITaskEnv(gym.Env):
    """One BabyAI task; each seeded reset draws a layout that unseeded resets replay."""

    def __init__(self, env_id: str, seed: int):
        self.env = gym.make(env_id)
        self.observation_space = gym.spaces.Dict({
            "img": self.env.observation_space["image"],
            "tokens": gym.spaces.MultiDiscrete(np.full(MISSION_TOKENS, len(VOCABULARY) + 2)),
            "direction": self.env.observation_space["direction"],
        })
        self.action_space = self.env.action_space
        self.layout_seed = int(np.random.default_rng(seed).integers(2**31 - 1))

    def _observation(self, raw: dict) -> dict:
        return {"img": raw["image"], "tokens": mission_tokens(raw["mission"]),
                "direction": int(raw["direction"])}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.layout_seed = seed
        # Some level generators print "Sampling rejected: ..." for every retried layout;
        # that is noise in a worker log.
        with contextlib.redirect_stdout(io.StringIO()):
            raw, info = self.env.reset(seed=self.layout_seed)
        return self._observation(raw), info

    def step(self, action):
        raw, reward, terminated, truncated, info = self.env.step(action)
        # BabyAI pays 1 - 0.9 * steps / max_steps once, on success, and nothing otherwise.
        info["success"] = bool(terminated and reward > 0)
        return self._observation(raw), float(reward), terminated, truncated, info

    def close(self):
        self.env.close()


def babyai_task(task: str) -> TaskSpec:
    import minigrid  # noqa: F401  (registers the BabyAI-* ids with Gymnasium)

    env_id = f"BabyAI-{task}"
    # BabyAI's return already lies in [0, 1] (1 - 0.9 * steps / max_steps on success, else 0):
    # it is its own score.
    return TaskSpec(name=task, make=lambda seed: BabyAITaskEnv(env_id, seed), score=float)


def babyai_benchmark() -> Benchmark:
    # horizon None: every task ends its own episodes at its max_steps.
    return Benchmark(name="babyai", train_tasks=tuple(babyai_task(t) for t in TRAIN_TASKS),
                     eval_tasks=tuple(babyai_task(t) for t in HELD_OUT_TASKS), k=K, horizon=None,
                     packages=PACKAGES)
