"""Trial wrapper, shared spaces and Gymnasium task sets (docs/METHOD.md, "Data")."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago2.collect import evaluate, random_actions
from amago2.errors import ConfigError
from amago2.envs import gym_sets
from amago2.envs.base import TaskSpec
from amago2.envs.registry import get_benchmark
from amago2.envs.spaces import SpaceLayout, layout_for_tasks
from amago2.envs.trial import TrialEnv


class Countdown(gym.Env):
    """Episodes of `length` steps; obs is the step count; reports success at step 2 only."""

    observation_space = gym.spaces.Box(0, 100, (2,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, length: int = 4):
        self.length = length

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.t, 7], dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        return (np.array([self.t, 7], dtype=np.float32), 2.0, self.t >= self.length, False,
                {"success": self.t == 2})


def task(name, env_fn, mult=1.0):
    return TaskSpec(name=name, make=lambda seed: env_fn(), reward_multiplier=mult)


def trial(tasks, k=3, horizon=None, seed=0):
    layout = layout_for_tasks(tasks)
    return TrialEnv(list(enumerate(tasks)), layout, k, horizon, seed)


def run_trial(env, action=0):
    obs, info = env.reset(seed=1)
    steps = [(obs, 0.0, False, info)]
    while True:
        obs, reward, terminated, truncated, info = env.step(action)
        assert not truncated
        steps.append((obs, reward, terminated, info))
        if terminated:
            return steps


def test_trial_resets_inner_env_and_ends_after_k_episodes():
    env = trial([task("count", Countdown, mult=10.0)], k=3)
    steps = run_trial(env)
    assert len(steps) == 1 + 3 * 4  # done only after the third inner episode
    assert [s[2] for s in steps].count(True) == 1 and steps[-1][2]
    reset_bits = [float(s[0]["vec"][2]) for s in steps]
    # The reset bit marks the first observation of each inner episode: 0, 4, 8 (not the last).
    assert [i for i, b in enumerate(reset_bits) if b == 1.0] == [0, 4, 8]
    assert [float(s[0]["vec"][0]) for s in steps[:6]] == [0, 1, 2, 3, 0, 1]
    assert all(s[1] == 20.0 for s in steps[1:])  # raw 2.0 x the task's multiplier
    ends = [s[3] for s in steps if "episode_return" in s[3]]
    assert [e["episode"] for e in ends] == [0, 1, 2]
    assert [e["episode_return"] for e in ends] == [8.0, 8.0, 8.0]  # raw, not multiplied
    assert all(e["episode_success"] is True for e in ends)  # reached once, at step 2
    assert all(s[3]["task"] == "count" for s in steps)


def test_horizon_cuts_inner_episodes():
    env = trial([task("count", lambda: Countdown(length=50))], k=2, horizon=5)
    assert len(run_trial(env)) == 1 + 2 * 5


def test_task_identity_never_reaches_the_observation():
    tasks = [task("a", Countdown, mult=1.0), task("b", Countdown, mult=100.0)]
    layout = layout_for_tasks(tasks)
    seen = {}
    for index, spec in enumerate(tasks):
        env = TrialEnv([(index, spec)], layout, 1, None, seed=0)
        steps = run_trial(env)
        seen[spec.name] = np.stack([s[0]["vec"] for s in steps])
        assert set(steps[0][0]) == {"vec"}
    np.testing.assert_array_equal(seen["a"], seen["b"])


def test_padding_one_hot_and_invalid_action_flag():
    cartpole = gym_sets.gym_task("CartPole-v1")
    frozen = gym_sets.gym_task("FrozenLake-v1")
    layout = layout_for_tasks([cartpole, frozen])
    assert layout.action_space == gym.spaces.Discrete(4)  # union of 2 and 4 actions
    assert layout.observation_space["vec"].shape == (16 + 1 + 1,)  # one-hot 16, reset bit, flag
    env = TrialEnv([(1, frozen)], layout, 1, None, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs["vec"][:16].sum() == 1.0 and obs["vec"][0] == 1.0  # state 0, one-hot
    env = TrialEnv([(0, cartpole)], layout, 1, None, seed=0)
    obs, _ = env.reset(seed=0)
    assert np.all(obs["vec"][4:16] == 0.0) and obs["vec"][16] == 1.0 and obs["vec"][17] == 0.0
    obs, *_ = env.step(3)  # CartPole has no action 3: replaced by a valid one, flagged
    assert obs["vec"][17] == 1.0
    obs, *_ = env.step(1)
    assert obs["vec"][17] == 0.0


def test_multidiscrete_parts_are_flattened():
    layout = SpaceLayout([gym.spaces.MultiDiscrete([2, 3]), gym.spaces.Discrete(4)],
                         [gym.spaces.MultiDiscrete([4, 4]), gym.spaces.Discrete(27)])
    assert layout.num_actions == 27 and layout.vec_dim == 5 + 1 + 1
    obs = layout.encode(0, np.array([1, 2]), reset_bit=False, invalid_flag=False)
    np.testing.assert_array_equal(obs["vec"], [0, 1, 0, 0, 1, 0, 0])
    raw, invalid = layout.decode_action(0, 6, np.random.default_rng(0))
    assert raw.tolist() == [1, 2] and not invalid
    raw, invalid = layout.decode_action(0, 20, np.random.default_rng(0))
    assert invalid and 0 <= raw[0] < 4 and 0 <= raw[1] < 4


def test_continuous_union_rescales_to_each_task():
    layout = SpaceLayout([gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,))],
                         [gym.spaces.Box(-2, 2, (1,)), gym.spaces.Box(0, 1, (2,))])
    assert layout.action_space == gym.spaces.Box(-1, 1, (2,), np.float32)
    assert not layout.has_invalid_flag and layout.vec_dim == 4
    raw, _ = layout.decode_action(0, np.array([1.0, -1.0]), np.random.default_rng(0))
    np.testing.assert_allclose(raw, [2.0])
    raw, _ = layout.decode_action(1, np.array([-1.0, 0.0]), np.random.default_rng(0))
    np.testing.assert_allclose(raw, [0.0, 0.5])


def test_random_play_is_uniform_over_each_tasks_own_actions():
    """A union draw a task lacks becomes a random valid one, so random play is uniform over
    the task's actions (not piled onto a replacement), and uniform over a box's bounds."""
    rng = np.random.default_rng(0)
    layout = SpaceLayout([gym.spaces.Box(0, 1, (1,))] * 2, [gym.spaces.Discrete(2), gym.spaces.Discrete(6)])
    draws = random_actions(layout, 60_000, rng)
    raw = np.array([layout.decode_action(0, a, rng)[0] for a in draws])
    np.testing.assert_allclose(np.bincount(raw, minlength=2) / len(raw), [0.5, 0.5], atol=0.01)
    np.testing.assert_allclose(np.bincount(draws, minlength=6) / len(draws), [1 / 6] * 6, atol=0.01)
    boxes = SpaceLayout([gym.spaces.Box(0, 1, (1,))], [gym.spaces.Box(0.0, 4.0, (2,))])
    raw = np.array([boxes.decode_action(0, a, rng)[0] for a in random_actions(boxes, 20_000, rng)])
    np.testing.assert_allclose(raw.mean(axis=0), [2.0, 2.0], atol=0.05)
    assert raw.min() >= 0.0 and raw.max() <= 4.0 and raw.min() < 0.01 and raw.max() > 3.99


def test_mixed_action_kinds_are_rejected():
    with pytest.raises(ConfigError, match="mix discrete and continuous"):
        SpaceLayout([gym.spaces.Box(-1, 1, (1,))] * 2, [gym.spaces.Discrete(2), gym.spaces.Box(-1, 1, (1,))])


def test_gym_mini_spans_the_builtins():
    bench = get_benchmark("gym-mini")
    names = [t.name for t in bench.train_tasks]
    assert names == list(gym_sets.GYM_MINI_IDS) and bench.k == 2
    layout = layout_for_tasks(bench.train_tasks)
    assert layout.action_space == gym.spaces.Discrete(6)  # Taxi's 6 actions
    assert layout.flat_dim == 500  # Taxi's one-hot state


def test_gym_mini_scores_map_the_documented_return_bounds_to_0_and_1():
    bench = get_benchmark("gym-mini")
    for spec in bench.train_tasks:
        low, high = gym_sets.GYM_MINI_RETURN_RANGES[spec.name]
        assert (spec.score(low), spec.score(high)) == (0.0, 1.0), spec.name
    # The bounds are per-step reward x time limit: they hold for the installed gymnasium
    # only while its registered limits are the documented ones.
    limits = {name: gym.spec(name).max_episode_steps for name in gym_sets.GYM_MINI_IDS}
    ranges = gym_sets.GYM_MINI_RETURN_RANGES
    assert ranges["CartPole-v1"][1] == limits["CartPole-v1"]
    assert ranges["Acrobot-v1"][0] == -limits["Acrobot-v1"]
    assert ranges["MountainCar-v0"][0] == -limits["MountainCar-v0"]
    assert ranges["Taxi-v3"][0] == -10 * limits["Taxi-v3"]


class ConstantAgent:
    """An agent for `evaluate` that always takes action 0 (push or accelerate left, torque
    -1, move south): some of its returns are known in advance. It has no memory to keep."""

    def init_acting(self, n):
        return None

    def act(self, state, obs, prev_action, prev_reward, time, sample):
        return torch.zeros(len(time), dtype=torch.long)

    def env_actions(self, actions):
        return actions.numpy()


def test_gym_mini_eval_reports_carry_normalised_scores_in_0_1():
    bench = get_benchmark("gym-mini")
    tasks = list(enumerate(bench.train_tasks))
    report = evaluate(ConstantAgent(), layout_for_tasks(bench.train_tasks), tasks, bench.k, bench.horizon,
                      trials_per_task=1, seed=0, device=torch.device("cpu"))
    for _, spec in tasks:
        entry = report[spec.name]
        assert len(entry["score"]) == bench.k
        assert entry["score"] == pytest.approx([spec.score(r) for r in entry["return"]])
        assert all(0.0 <= s <= 1.0 for s in entry["score"]), (spec.name, entry)
    # Pushing left forever never reaches MountainCar's flag: its documented minimum, score 0.
    assert report["MountainCar-v0"]["return"] == [-200.0, -200.0]
    assert report["MountainCar-v0"]["score"] == [0.0, 0.0]


def test_user_defined_set_with_a_users_registered_env():
    bench = get_benchmark("mine", {"tasks": [
        {"env_id": "bandit_env:TwoArmedBandit-v0", "reward_multiplier": 100},
        {"env_id": "CartPole-v1", "name": "cp", "kwargs": {"max_episode_steps": 7}}],
        "eval_tasks": [{"env_id": "Acrobot-v1"}], "k": 3, "horizon": 20})
    assert [t.name for t in bench.train_tasks] == ["bandit_env:TwoArmedBandit-v0", "cp"]
    assert bench.train_tasks[0].reward_multiplier == 100.0 and bench.k == 3 and bench.horizon == 20
    assert [t.name for t in bench.eval_tasks] == ["Acrobot-v1"]
    env = bench.train_tasks[1].make(0)
    env.reset(seed=0)
    truncated_at = next(t for t in range(1, 100) if env.step(t % 2)[3])
    assert truncated_at == 7  # the kwargs reached gym.make


@pytest.mark.parametrize("definition, message", [
    ({"tasks": [{"env_id": "NoSuchEnv-v0"}]}, "not a registered Gymnasium environment"),
    ({"tasks": [{"env_id": "no_such_module:X-v0"}]}, "cannot import module 'no_such_module'"),
    ({"tasks": [{"env_id": "CartPole-v1", "reward_multiplier": -1}]}, "reward_multiplier must be a positive"),
    ({"tasks": [{"env_id": "CartPole-v1", "weight": 2}]}, "unknown key"),
    ({"tasks": [{"env_id": "CartPole-v1"}], "k": 0}, "k must be a positive integer"),
    ({"tasks": []}, "at least one task"),
    ({"tasks": [{"env_id": "CartPole-v1"}], "horizon": "long"}, "horizon must be"),
])
def test_bad_user_sets_are_config_errors(definition, message):
    with pytest.raises(ConfigError, match=message):
        get_benchmark("mine", definition)


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'.*gym-mini"):
        get_benchmark("nope")


def test_the_example_user_env_keeps_its_hidden_variant_within_a_trial_and_draws_one_per_trial(monkeypatch):
    """experiments/user-env/meta_bandit.py, the README's example of the meta-RL contract."""
    import sys
    from pathlib import Path

    from amago2.envs.gym_sets import from_definition

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "experiments" / "user-env"))
    sys.modules.pop("meta_bandit", None)
    bench = from_definition("meta-bandit", {"tasks": [{"env_id": "meta_bandit:MetaBandit-v0", "kwargs": {"scale": 1000.0},
                                                        "return_range": [0, 20000]}], "k": 2})
    task = bench.train_tasks[0]
    paying = set()
    for seed in range(12):
        env = task.make(seed)
        env.reset(seed=seed)
        arm = env.unwrapped.paying_arm
        paying.add(arm)
        for _ in range(3):  # unseeded resets: the trial's later episodes keep the variant
            env.reset()
            assert env.unwrapped.paying_arm == arm
            _, reward, _, _, info = env.step(arm)
            assert reward == 1000.0 and info["success"]
    assert len(paying) > 1, "seeded resets draw new variants"
    assert task.score(20000.0) == 1.0 and task.score(4000.0) == 0.2  # random play: one pull in five pays
