"""Disk-backed trajectory replay and collection into it (docs/METHOD.md, "Data")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amago2.replay import TrajectoryReplay

torch.set_num_threads(1)  # tiny models on a shared 2-core machine: threads only contend


def make_traj(T: int, start_time: int = 0, A: int = 3, done: bool = True, task: int = 0) -> dict[str, np.ndarray]:
    """A trajectory whose every entry encodes its time index, so windows can be checked."""
    time = np.arange(start_time, start_time + T + 1)
    action = np.zeros((T, A), dtype=np.float32)
    action[np.arange(T), time[:-1] % A] = 1.0
    return {"obs.vec": np.stack([time, -time], axis=1).astype(np.float32),
            "time": time, "action": action, "reward": time[:-1].astype(np.float32) + 0.5,
            "done": np.eye(T, dtype=np.float32)[-1] * float(done),
            "prev_action0": np.full(A, 9.0, dtype=np.float32), "prev_reward0": np.float32(-7), "task": np.int32(task)}


def test_short_trajectory_is_padded_and_masked(tmp_path):
    replay = TrajectoryReplay(tmp_path, max_seq_len=8, max_steps=1000)
    replay.add(make_traj(5))
    b = replay.sample(2, np.random.default_rng(0))
    assert b["obs"]["vec"].shape == (2, 9, 2) and b["action"].shape == (2, 8, 3)
    assert b["mask"][0, :, 0].tolist() == [1.0] * 5 + [0.0] * 3
    assert b["obs"]["vec"][0, :6, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert torch.all(b["obs"]["vec"][0, 6:] == 0) and torch.all(b["action"][0, 5:] == 0)
    assert b["prev_action"][0, 0].tolist() == [9.0] * 3  # the action before the trial
    assert torch.equal(b["prev_action"][0, 1:6], b["action"][0, :5])
    assert b["prev_reward"][0, :6, 0].tolist() == [-7.0, 0.5, 1.5, 2.5, 3.5, 4.5]
    assert b["done"][0, :, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert b["time"].dtype == torch.int64 and b["mask"].dtype == torch.float32


def test_long_trajectory_windows_are_contiguous_and_full(tmp_path):
    replay = TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=1000)
    replay.add(make_traj(20, start_time=100))
    b = replay.sample(400, np.random.default_rng(1))
    assert torch.all(b["mask"] == 1.0)
    starts = b["time"][:, 0]
    assert torch.equal(b["time"], starts[:, None] + torch.arange(5))
    assert torch.equal(b["obs"]["vec"][..., 0].long(), b["time"])
    assert torch.equal(b["reward"][..., 0], b["time"][:, :4].float() + 0.5)
    assert set(starts.tolist()) == set(range(100, 117))  # every start 0..T-L is drawn
    assert torch.all(b["done"][:, :, 0].sum(1) == (starts == 116).float())


def test_files_are_sampled_uniformly_whatever_their_length(tmp_path):
    replay = TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=1000)
    replay.add(make_traj(2, start_time=0, task=3))
    replay.add(make_traj(40, start_time=1000, task=1))
    b = replay.sample(1000, np.random.default_rng(2))
    long_share = (b["time"][:, 0] >= 1000).float().mean().item()
    assert 0.44 < long_share < 0.56
    assert torch.equal(b["task"], torch.where(b["time"][:, 0] >= 1000, 1, 3))  # each window knows its task


def test_fifo_trim_by_steps_and_by_count(tmp_path):
    replay = TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=25)
    for T in (10, 10, 10):
        replay.add(make_traj(T))
    assert [i for i, _ in replay.files] == [1, 2] and replay.total_steps == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000001_10.npy", "000000002_10.npy"]
    replay.add(make_traj(100))  # larger than the limit alone: the newest file always stays
    assert [i for i, _ in replay.files] == [3]

    by_count = TrajectoryReplay(tmp_path / "count", max_seq_len=4, max_steps=10**6, max_trajectories=2)
    for T in (3, 4, 5):
        by_count.add(make_traj(T))
    assert list(by_count.files) == [(1, 4), (2, 5)]


def test_restore_drops_files_written_after_the_checkpoint(tmp_path):
    replay = TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=1000)
    for T in (3, 4, 5, 6):
        replay.add(make_traj(T))
    (tmp_path / ".tmp-000000004_7.npy").write_bytes(b"torn")  # a crash mid-write
    again = TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=1000)
    again.restore(2)  # the checkpoint knew files 0 and 1 only
    assert list(again.files) == [(0, 3), (1, 4)] and again.total_steps == 7 and again.next_index == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000000_3.npy", "000000001_4.npy"]
    assert again.add(make_traj(2)).name == "000000002_2.npy"
    assert TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=1000).next_index == 3  # None: keep all


def test_collector_writes_chunks_that_continue_each_other(tmp_path):
    import bandit_env  # noqa: F401 - registers the env
    from amago2.agent import Agent
    from amago2.collect import Collector
    from amago2.config import AgentConfig, TrainConfig
    from amago2.envs.gym_sets import gym_task
    from amago2.envs.spaces import layout_for_tasks

    tasks = [gym_task(bandit_env.ENV_ID)]
    layout = layout_for_tasks(tasks)
    agent = Agent(AgentConfig(d_model=16, d_ff=32, n_layers=1, n_heads=2, max_seq_len=8, tstep_hidden=16,
                              tstep_dim=16, head_hidden=16, num_bins=16),
                  layout.observation_space, layout.action_space)
    replay = TrajectoryReplay(tmp_path, max_seq_len=8, max_steps=1000)
    cfg = TrainConfig(replay_chunk_steps=4)
    collector = Collector(agent, layout, list(enumerate(tasks)), 6, None, 2, replay, cfg, 0, torch.device("cpu"))
    assert collector.collect(12, 0) == 24  # two actors x two 6-step trials
    assert [s for _, s in replay.files] == [4, 4, 2, 2] * 2
    files = [np.load(replay.path(i, s)) for i, s in replay.files]
    first, second = files[0], files[2]  # actor 0: chunk 0..4 then 4..6 of the same trial
    assert first["time"].tolist() == [0, 1, 2, 3, 4] and second["time"].tolist() == [4, 5, 6]
    # The chunk boundary observation is in both files, with the same a_{t-1} and r_{t-1}.
    assert first[-1] == second[0]
    assert first["prev_done"].sum() == 0 and second["prev_done"].tolist() == [0.0, 0.0, 1.0]
    assert first["prev_action"][0].tolist() == [0.0, 0.0]
    assert first["prev_action"][1:].sum(1).tolist() == [1.0] * 4  # one-hot actions
    assert set(first["prev_reward"][1:].tolist()) <= {0.0, 1.0}
    # Reset bits: one-step episodes, so every observation but the trial's last starts one.
    assert first["obs.vec"][:, -1].tolist() == [1, 1, 1, 1, 1]
    assert second["obs.vec"][:, -1].tolist() == [1, 1, 0]


def test_exploration_anneals_and_scales_per_actor(tmp_path):
    import gymnasium as gym

    from amago2.collect import Collector
    from amago2.config import TrainConfig
    from amago2.envs.spaces import SpaceLayout

    layout = SpaceLayout([gym.spaces.Box(0, 1, (1,))], [gym.spaces.Discrete(5)])
    cfg = TrainConfig(explore_start=1.0, explore_end=0.05, explore_anneal_steps=1000)
    replay = TrajectoryReplay(tmp_path, max_seq_len=4, max_steps=100)
    collector = Collector(None, layout, [], 1, None, 4000, replay, cfg, 0, torch.device("cpu"))
    assert [collector.epsilon(s) for s in (0, 500, 1000, 10**6)] == pytest.approx([1.0, 0.525, 0.05, 0.05])
    greedy = np.zeros(4000, dtype=np.int64)
    scale = np.repeat([0.0, 1.0], 2000)  # per-actor draws: half never explore, half always
    explored = collector._explore(greedy, collector.epsilon(0) * scale)
    assert np.all(explored[:2000] == 0)
    assert np.bincount(explored[2000:], minlength=5) == pytest.approx([400] * 5, rel=0.2)
