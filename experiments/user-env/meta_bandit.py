"""An example of a user's own meta-RL task family for amago2 (README, "Your own benchmark").

`MetaBandit-v0`: one of `arms` arms pays `scale` per pull, the others nothing; an episode is
`pulls` pulls. Which arm pays is the hidden task variant. It follows amago2's contract:

- a seeded `reset(seed=s)` draws a new variant from `s` (amago2 does this once per trial,
  on a freshly made env);
- an unseeded `reset()` keeps the variant (amago2 does this between the trial's episodes),
  so an agent that found the paying arm in the first episode can exploit it in the next;
- the observation says nothing about the variant (a constant here): the agent must infer
  it from its previous actions and rewards, which amago2 feeds it with every observation;
- `info["success"]` is True on a step that pulled the paying arm; amago2 counts an episode
  as a success if any of its steps reports one.

Its return lies in [0, pulls * scale]: declare that as the task's `return_range` in the
sweep file, so that tasks with different `scale`s aggregate as scores in [0, 1] (random
play scores 1 / arms). Register it by importing this module: amago2 imports `module` of an
`env_id` written "module:MetaBandit-v0", so put this folder on PYTHONPATH.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "MetaBandit-v0"


class MetaBandit(gym.Env):
    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    def __init__(self, arms: int = 5, pulls: int = 20, scale: float = 1.0):
        self.action_space = gym.spaces.Discrete(arms)
        self.arms, self.pulls, self.scale = arms, pulls, scale
        self.paying_arm = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:  # a new trial: a new hidden variant
            self.paying_arm = int(self.np_random.integers(self.arms))
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        paid = int(action) == self.paying_arm
        return (np.zeros(1, np.float32), self.scale * paid, False, self.t >= self.pulls,
                {"success": paid})


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=MetaBandit)
