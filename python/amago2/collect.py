"""Parallel actors and evaluation (docs/METHOD.md, "Data").

All actors step synchronously in this process; one batched `agent.act` call per step
serves them all through the agent's KV cache, one cache position per actor. On 2 CPU cores
subprocess vector envs gave no speedup (measured), and a single process keeps
the RNG streams, and so resume, deterministic.

Exploration: epsilon anneals linearly from explore_start to explore_end over
explore_anneal_steps steps of each actor (the reference's schedule counts each actor's own
steps, so P actors anneal over P x explore_anneal_steps env steps in all) and is
multiplied by a uniform draw per actor,
redrawn at each trial start, so some actors explore a lot and some barely. Discrete: with
probability epsilon a uniformly random action. Continuous: Gaussian noise of std epsilon,
clipped to [-1, 1].

An actor whose trial ended is reset lazily at its next step, never at the end of a
collection phase: a checkpoint then always sees finished trials as finished, and after a
resume every actor starts a fresh trial (env state cannot be saved; an unfinished trial is
lost, see train.py).
"""

from __future__ import annotations

import time as clock
from typing import Any, Callable, Sequence

import numpy as np
import torch

from amago2.envs.base import TaskSpec
from amago2.envs.spaces import SpaceLayout
from amago2.envs.trial import TrialEnv
from amago2.replay import TrajectoryReplay


def stack_obs(obs: Sequence[dict[str, np.ndarray]], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([o[k] for o in obs])).to(device) for k in obs[0]}


def act_batch(agent, state, obs, prev_action: np.ndarray, prev_reward: np.ndarray, time: np.ndarray,
              device: torch.device) -> np.ndarray:
    """One batched action for every actor: int indices (N,) if discrete, floats (N, A) otherwise."""
    actions = agent.act(state, stack_obs(obs, device), torch.from_numpy(prev_action).to(device),
                        torch.from_numpy(prev_reward).to(device)[:, None],
                        torch.from_numpy(time).to(device), sample=True)
    return agent.env_actions(actions)


class _Trajectory:
    """The steps of one actor since its trial (or its last chunk) began."""

    def __init__(self, task: int, obs: dict[str, np.ndarray], time: int, prev_action: np.ndarray,
                 prev_reward: float):
        self.task = task
        self.obs = [obs]
        self.time = [time]
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.dones: list[float] = []
        self.prev_action0 = prev_action
        self.prev_reward0 = prev_reward

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"obs.{k}": np.stack([o[k] for o in self.obs]) for k in self.obs[0]}
        out.update(time=np.asarray(self.time, dtype=np.int64),
                   action=np.stack(self.actions).astype(np.float32),
                   reward=np.asarray(self.rewards, dtype=np.float32),
                   done=np.asarray(self.dones, dtype=np.float32),
                   prev_action0=self.prev_action0.astype(np.float32),
                   prev_reward0=np.float32(self.prev_reward0), task=np.int32(self.task))
        return out


class Collector:
    def __init__(self, agent, layout: SpaceLayout, tasks: Sequence[tuple[int, TaskSpec]], k: int,
                 horizon: int | None, num_actors: int, replay: TrajectoryReplay, train_cfg,
                 seed: int, device: torch.device):
        self.agent, self.layout, self.replay, self.cfg, self.device = agent, layout, replay, train_cfg, device
        self.n = num_actors
        self.envs = [TrialEnv(tasks, layout, k, horizon, seed=seed + i) for i in range(num_actors)]
        self.rng = np.random.default_rng(seed)
        self.state = None
        self.needs_reset = np.ones(num_actors, dtype=bool)
        A = layout.action_dim
        self.obs: list[dict[str, np.ndarray]] = [{} for _ in range(num_actors)]
        self.prev_action = np.zeros((num_actors, A), dtype=np.float32)
        self.prev_reward = np.zeros(num_actors, dtype=np.float32)
        self.time = np.zeros(num_actors, dtype=np.int64)
        self.noise_scale = np.ones(num_actors)
        self.trajs: list[_Trajectory | None] = [None] * num_actors
        self.episode_returns: list[float] = []  # finished inner episodes since last drained
        self.seconds = {"act": 0.0, "env": 0.0, "replay": 0.0}
        """Time spent since the collector was made: choosing actions (the agent and the
        exploration noise), in the envs (steps and resets, the trial wrapper included) and
        writing trajectories to the replay."""

    def epsilon(self, actor_steps: int) -> float:
        """Epsilon after each actor has taken `actor_steps` steps."""
        c = self.cfg
        frac = min(1.0, actor_steps / max(1, c.explore_anneal_steps))
        return c.explore_start + (c.explore_end - c.explore_start) * frac

    def _reset_finished(self) -> None:
        which = self.needs_reset.copy()
        if not which.any():
            return
        for i in np.flatnonzero(which):
            self.obs[i], _ = self.envs[i].reset(seed=int(self.rng.integers(2**31 - 1)))
            self.noise_scale[i] = self.rng.uniform()
            self.prev_action[i] = 0.0
            self.prev_reward[i] = 0.0
            self.time[i] = 0
            self.trajs[i] = _Trajectory(self.envs[i].task_index, self.obs[i], 0, self.prev_action[i].copy(), 0.0)
        if self.state is None:
            self.state = self.agent.init_acting(self.n)
        else:
            self.agent.reset_acting(self.state, torch.from_numpy(which).to(self.device))
        self.needs_reset[:] = False

    def _explore(self, actions: np.ndarray, eps: np.ndarray) -> np.ndarray:
        if self.layout.discrete:
            randomize = self.rng.uniform(size=self.n) < eps
            return np.where(randomize, random_actions(self.layout, self.n, self.rng), actions)
        noise = self.rng.normal(size=actions.shape) * eps[:, None]
        return np.clip(actions + noise, -1.0, 1.0).astype(np.float32)

    def collect(self, steps_per_actor: int, env_steps: int,
                should_stop: Callable[[], bool] = lambda: False,
                on_tick: Callable[[], None] = lambda: None) -> int:
        """Step every actor `steps_per_actor` times (fewer if should_stop() turns true).

        env_steps: the run's step counter so far (sets epsilon). Returns env steps taken.
        """
        taken = 0
        chunk = self.cfg.replay_chunk_steps
        seconds = self.seconds
        for _ in range(steps_per_actor):
            if should_stop():
                break
            start = clock.perf_counter()
            self._reset_finished()
            acting = clock.perf_counter()
            actions = act_batch(self.agent, self.state, self.obs, self.prev_action, self.prev_reward,
                                self.time, self.device)
            actions = self._explore(actions, self.epsilon((env_steps + taken) // self.n) * self.noise_scale)
            stepping = clock.perf_counter()
            seconds["env"] += acting - start
            seconds["act"] += stepping - acting
            writing = 0.0
            for i, env in enumerate(self.envs):
                obs, reward, terminated, _, info = env.step(actions[i])
                action_vec = self.layout.action_vector(actions[i])
                traj = self.trajs[i]
                traj.obs.append(obs)
                traj.time.append(int(self.time[i]) + 1)
                traj.actions.append(action_vec)
                traj.rewards.append(reward)
                traj.dones.append(float(terminated))
                if "episode_return" in info:
                    self.episode_returns.append(info["episode_return"])
                if terminated or (chunk > 0 and len(traj.actions) >= chunk):
                    written = clock.perf_counter()
                    self.replay.add(traj.arrays())
                    writing += clock.perf_counter() - written
                    if not terminated:  # the next chunk starts where this one ended
                        self.trajs[i] = _Trajectory(traj.task, obs, int(self.time[i]) + 1, action_vec, reward)
                self.obs[i] = obs
                self.prev_action[i] = action_vec
                self.prev_reward[i] = reward
                self.time[i] += 1
                self.needs_reset[i] = terminated
            seconds["env"] += clock.perf_counter() - stepping - writing
            seconds["replay"] += writing
            taken += self.n
            on_tick()
        return taken

    def drain_episode_returns(self) -> list[float]:
        out, self.episode_returns = self.episode_returns, []
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()


def random_actions(layout: SpaceLayout, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random union actions, shaped as act_batch's. Decoded per task (an action a
    task lacks becomes a random valid one), a discrete draw is uniform over the task's own
    actions, and a continuous one uniform over its bounds."""
    if layout.discrete:
        return rng.integers(layout.num_actions, size=n)
    return rng.uniform(-1.0, 1.0, size=(n, layout.num_actions)).astype(np.float32)


def evaluate(agent, layout: SpaceLayout, tasks: Sequence[tuple[int, TaskSpec]], k: int,
             horizon: int | None, trials_per_task: int, seed: int, device: torch.device,
             on_tick: Callable[[], None] = lambda: None, random_play: bool = False,
             should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any] | None:
    """Run `trials_per_task` trials of every task with fresh memory, sampled actions and no
    exploration noise; with `random_play`, uniform random actions instead of the agent's
    (the floor a run's scores are read against). Returns the `tasks` field of an `eval` event,
    or None when should_stop() turned true first: a paper-scale evaluation takes minutes,
    longer than a scheduler waits between its stop signal and its kill."""
    runs = [(idx, spec) for idx, spec in tasks for _ in range(trials_per_task)]
    if not runs:
        return {}
    rng = np.random.default_rng(seed)
    envs = [TrialEnv([run], layout, k, horizon, seed=int(rng.integers(2**31 - 1))) for run in runs]
    n = len(envs)
    obs = [env.reset(seed=int(rng.integers(2**31 - 1)))[0] for env in envs]
    prev_action = np.zeros((n, layout.action_dim), dtype=np.float32)
    prev_reward = np.zeros(n, dtype=np.float32)
    time = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    returns: list[list[float]] = [[] for _ in range(n)]
    successes: list[list[bool | None]] = [[] for _ in range(n)]
    state = None if random_play else agent.init_acting(n)
    last_tick = clock.monotonic()
    while not done.all():
        if should_stop():
            for env in envs:
                env.close()
            return None
        actions = (random_actions(layout, n, rng) if random_play
                   else act_batch(agent, state, obs, prev_action, prev_reward, time, device))
        for i in np.flatnonzero(~done):
            obs[i], reward, terminated, _, info = envs[i].step(actions[i])
            if "episode_return" in info:
                returns[i].append(info["episode_return"])
                successes[i].append(info["episode_success"])
            prev_action[i] = layout.action_vector(actions[i])
            prev_reward[i] = reward
            time[i] += 1
            done[i] = terminated
        if clock.monotonic() - last_tick > 1.0:
            on_tick()
            last_tick = clock.monotonic()
    for env in envs:
        env.close()

    report: dict[str, Any] = {}
    for (_, spec), rets, succ in zip(runs, returns, successes):
        entry = report.setdefault(spec.name, {"spec": spec, "returns": [], "successes": []})
        entry["returns"].append(rets)
        entry["successes"].append(succ)
    out = {}
    for name, entry in report.items():
        rets = np.asarray(entry["returns"], dtype=np.float64)  # (trials, k)
        succ = entry["successes"]
        reports_success = any(s is not None for trial in succ for s in trial)
        spec = entry["spec"]
        out[name] = {
            "trials": len(rets),
            "return": rets.mean(axis=0).tolist(),
            "success": (np.asarray([[bool(s) for s in t] for t in succ], dtype=np.float64)
                        .mean(axis=0).tolist() if reports_success else None),
            "score": (np.asarray([[spec.score(r) for r in t] for t in rets]).mean(axis=0).tolist()
                      if spec.score is not None else None),
        }
    return out
