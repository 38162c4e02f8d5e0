"""A user's own Gymnasium env, registered on import, for the learner's data and loop tests.

`TwoArmedBandit-v0`: one pull per episode; the paying arm is drawn from the reset seed and
kept across unseeded resets, so inside a k-episode trial the agent can learn which arm
pays from its previous action and reward. A random policy earns 0.5 per episode; an agent
that adapts in context earns 0.5 in the first episode and 1 afterwards. One step of
history (the previous action and reward, which every timestep token carries) is enough.

`CuedArm-v0` needs more: the first episode of a trial shows which arm will pay (the
observation is the cue) and pays nothing; the later episodes show nothing and pay the cued
arm. In the second episode only a memory of the first observation tells the arms apart;
from the third on, the previous action and reward do again.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "TwoArmedBandit-v0"


class TwoArmedBandit(gym.Env):
    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.good_arm = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.good_arm = int(self.np_random.integers(2))
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        reward = float(int(action) == self.good_arm)
        return np.zeros(1, dtype=np.float32), reward, True, False, {"success": reward > 0}


class CuedArm(gym.Env):
    observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.good_arm = 0
        self.cued = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = np.zeros(2, dtype=np.float32)
        if seed is not None:  # a new trial: a new arm, shown once
            self.good_arm = int(self.np_random.integers(2))
            obs[self.good_arm] = 1.0
        self.cued = seed is not None
        return obs, {}

    def step(self, action):
        reward = 0.0 if self.cued else float(int(action) == self.good_arm)
        return np.zeros(2, dtype=np.float32), reward, True, False, {"success": reward > 0}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=TwoArmedBandit)
CUED_ENV_ID = "CuedArm-v0"
if CUED_ENV_ID not in gym.registry:
    gym.register(CUED_ENV_ID, entry_point=CuedArm)
