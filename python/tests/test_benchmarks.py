"""The paper's benchmarks build their real environments and run real trials.

Every adapter runs at least one full trial with random actions through the trial
wrapper (the slow benchmarks on a subset of their tasks), checking: one shared padded
observation space, reset bits at inner-episode boundaries, no task identity in the
observations, per-task info keys, and the per-task reward multipliers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from amago2 import presets
from amago2.config import resolve_config
from amago2.errors import ConfigError
from amago2.envs import atari, babyai, metaworld, popgym, procgen, registry
from amago2.envs.registry import BENCHMARKS
from amago2.envs.spaces import layout_for_tasks
from amago2.envs.trial import TrialEnv

HAS_PROCGEN = importlib.util.find_spec("procgen") is not None


def run_trial(tasks, k, horizon, seed=0, task_index=0, actions=None):
    """One full trial of tasks[task_index] with random (or given) actions.

    Returns (layout, observations, rewards, infos)."""
    layout = layout_for_tasks(tasks, seed=seed)
    trial = TrialEnv([(task_index, tasks[task_index])], layout, k, horizon, seed=seed)
    trial.action_space.seed(seed)
    obs, info = trial.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    terminated = False
    while not terminated:
        action = trial.action_space.sample() if actions is None else actions(len(rewards))
        obs, reward, terminated, truncated, info = trial.step(action)
        assert not truncated
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
    trial.close()
    return layout, observations, np.asarray(rewards), infos


def check_trial(tasks, k, horizon, task_index=0, seed=0):
    """The checks every benchmark shares; returns what they were computed from."""
    spec = tasks[task_index]
    layout, observations, rewards, infos = run_trial(tasks, k, horizon, seed, task_index)
    for obs in observations:
        assert layout.observation_space.contains(obs), {k_: v.shape for k_, v in obs.items()}
    reset_bits = np.array([obs["vec"][layout.flat_dim] for obs in observations])
    ends = [i for i, info in enumerate(infos) if "episode_return" in info]
    assert len(ends) == k, "one episode_return per inner episode"
    # The bit is 1 on the first observation and on each observation after an inner
    # episode ended, except after the last one (the trial is over).
    assert np.flatnonzero(reset_bits).tolist() == [0] + ends[:-1]
    assert all(info["task"] == spec.name for info in infos)
    assert [infos[i]["episode"] for i in ends] == list(range(k))
    raw_total = sum(infos[i]["episode_return"] for i in ends)
    assert rewards.sum() == pytest.approx(spec.reward_multiplier * raw_total, rel=1e-5, abs=1e-6)
    return layout, observations, rewards, infos, ends


# --- Meta-World ---------------------------------------------------------------------


def test_ml45_lists_45_train_classes_and_holds_out_the_5_test_classes():
    bench = metaworld.ml45_benchmark(mini=False)  # names only: building waits for make()
    train = {t.name for t in bench.train_tasks}
    test = {t.name for t in bench.eval_tasks}
    assert len(train) == 45
    assert test == {"bin-picking-v3", "box-close-v3", "hand-insert-v3", "door-lock-v3",
                    "door-unlock-v3"}
    assert not train & test
    assert (bench.k, bench.horizon) == (3, 500)


@pytest.fixture(scope="module")
def ml45_mini():
    return metaworld.ml45_benchmark(mini=True)


def test_ml45_mini_runs_every_task_with_hidden_goals(ml45_mini):
    tasks = list(ml45_mini.train_tasks)
    assert [t.name for t in tasks] == list(metaworld.MINI_CLASSES)
    for index, spec in enumerate(tasks):
        layout, observations, _, infos, ends = check_trial(tasks, ml45_mini.k, ml45_mini.horizon,
                                                           task_index=index, seed=index)
        assert layout.observation_space["vec"].shape == (39 + 1,)
        assert isinstance(layout.action_space, gym.spaces.Box)
        assert layout.action_space.shape == (4,)
        assert ends == [50, 100, 150]
        # The goal dims (36:39 of Meta-World's 39) are zero: the task is not observable.
        assert all(np.all(obs["vec"][36:39] == 0) for obs in observations)
        assert all(isinstance(infos[i]["episode_success"], bool) for i in ends)


def test_ml45_goal_is_fixed_within_a_trial_and_varies_across_trials(ml45_mini):
    env = ml45_mini.train_tasks[0].make(0)
    goals = []
    for seed in range(6):
        env.reset(seed=seed)
        goal = env.sim._target_pos.copy()
        env.reset()
        assert np.array_equal(env.sim._target_pos, goal), "inner episodes keep the variant"
        goals.append(tuple(goal))
    env.close()
    assert len(set(goals)) > 1, "each seeded reset draws a goal variant"


def test_metaworld_env_truncates_itself_at_its_horizon(ml45_mini):
    env = ml45_mini.train_tasks[1].make(0)
    env.reset(seed=0)
    truncations = [env.step(env.action_space.sample())[3] for _ in range(metaworld.MINI_HORIZON)]
    assert truncations == [False] * (metaworld.MINI_HORIZON - 1) + [True]
    env.reset()  # the same env runs the next inner episode instead of raising
    assert env.step(env.action_space.sample())[3] is False
    env.close()


def test_ml45_held_out_class_runs_a_full_500_step_trial():
    bench = metaworld.metaworld_benchmark("ml45-subset", ("reach-v3",), ("door-lock-v3",),
                                          metaworld.HORIZON)
    tasks = [*bench.train_tasks, *bench.eval_tasks]
    _, observations, _, _, ends = check_trial(tasks, bench.k, bench.horizon, task_index=1)
    assert ends == [500, 1000, 1500], "each inner episode lasts the 500-step horizon"
    assert all(obs["vec"].dtype == np.float32 for obs in observations)


# --- POPGym -------------------------------------------------------------------------


def test_popgym_paper_set_is_the_27_tasks_padded_to_the_run_time_maxima():
    bench = popgym.popgym_benchmark("popgym")
    assert len(bench.train_tasks) == 27
    assert bench.eval_tasks == ()
    layout = layout_for_tasks(bench.train_tasks)
    # The practice reward shown, 26 = CountRecallHard's two one-hot 13s, then the reset
    # bit and the invalid-action flag.
    assert layout.observation_space["vec"].shape == (1 + 26 + 1 + 1,)
    assert set(layout.observation_space.spaces) == {"vec"}
    assert layout.action_space == gym.spaces.Discrete(27)


@pytest.mark.parametrize("variant", ["popgym", "popgym-mini"])
def test_popgym_every_task_runs_a_full_trial(variant):
    bench = popgym.popgym_benchmark(variant)
    tasks = list(bench.train_tasks)
    for index in range(len(tasks)):
        check_trial(tasks, bench.k, bench.horizon, task_index=index, seed=index)


def test_popgym_rescaled_and_mini_multipliers_are_applied():
    rescaled = {t.name: t.reward_multiplier for t in popgym.popgym_benchmark("popgym-rescaled").train_tasks}
    assert set(rescaled.values()) == {100.0, 0.1}
    assert rescaled["CountRecallHard"] == 0.1 and rescaled["RepeatFirstMedium"] == 100.0
    mini = popgym.popgym_benchmark("popgym-mini")
    assert {t.name: t.reward_multiplier for t in mini.train_tasks} == popgym.MINI_MULTIPLIERS
    # RepeatPreviousEasy (x100) pays +-1/n per step: the trial's rewards are 100 times them.
    rewards = check_trial(list(mini.train_tasks), mini.k, mini.horizon, task_index=0)[2]
    assert np.abs(rewards).max() > 1.0


def test_popgym_first_episode_is_practice_with_its_rewards_shown():
    task = popgym.popgym_task("RepeatPreviousEasy", reward_multiplier=100.0)
    layout, observations, rewards, infos = run_trial([task], popgym.K, None)
    ends = [i for i, info in enumerate(infos) if "episode_return" in info]
    assert len(ends) == 2
    practice, counted = slice(0, ends[0]), slice(ends[0], ends[1])
    shown = np.array([obs["vec"][0] for obs in observations[1:]])  # the step's raw reward
    assert np.all(rewards[practice] == 0) and np.any(shown[practice] != 0)
    assert np.allclose(rewards[counted], 100.0 * shown[counted]) and np.any(rewards[counted] != 0)
    assert infos[ends[0]]["episode_return"] == 0.0


def test_popgym_score_is_the_counted_episodes_return_on_the_common_scale():
    assert all(t.score is not None for t in popgym.popgym_benchmark("popgym").train_tasks)
    task = popgym.popgym_task("MultiarmedBanditEasy", reward_multiplier=100.0)
    assert (task.score(-1.0), task.score(1.0)) == (-1.0, 1.0)
    _, _, rewards, infos = run_trial([task], popgym.K, None)
    practice, counted = [info["episode_return"] for info in infos if "episode_return" in info]
    assert practice == 0.0 and -1.0 <= counted <= 1.0
    # The multiplier scales what is trained on, never the score.
    assert rewards.sum() == pytest.approx(100.0 * counted) and task.score(counted) == counted


def test_popgym_invalid_action_is_replaced_and_flagged():
    tasks = [popgym.popgym_task("CountRecallEasy"), popgym.popgym_task("MineSweeperEasy")]
    # MineSweeperEasy has 16 actions (4x4) of the union 27: action 20 is invalid for it.
    layout, observations, _, _ = run_trial(tasks, 1, None, task_index=1, actions=lambda t: 20)
    flags = [obs["vec"][layout.flat_dim + 1] for obs in observations]
    assert flags[0] == 0 and all(f == 1 for f in flags[1:])


def test_popgym_unknown_variant_is_a_config_error():
    with pytest.raises(ConfigError, match="popgym-mini"):
        popgym.popgym_benchmark("popgym-large")


# --- BabyAI -------------------------------------------------------------------------


def test_babyai_split_is_50_train_and_18_held_out_registered_tasks():
    bench = babyai.babyai_benchmark()
    train = [t.name for t in bench.train_tasks]
    held_out = [t.name for t in bench.eval_tasks]
    assert (len(set(train)), len(set(held_out))) == (50, 18)
    assert not set(train) & set(held_out)
    for name in train + held_out:
        gym.spec(f"BabyAI-{name}")  # raises if the id is not registered


def test_babyai_missions_tokenize_without_unknown_words():
    bench = babyai.babyai_benchmark()
    for spec in bench.train_tasks + bench.eval_tasks:
        env = spec.make(0)
        for seed in range(2):
            obs, _ = env.reset(seed=seed)
            mission = env.env.unwrapped.mission
            tokens = obs["tokens"]
            assert babyai.UNKNOWN_WORD not in tokens, mission
            words = [babyai.VOCABULARY[t - 2] for t in tokens if t != babyai.NO_WORD]
            assert " ".join(words) == mission
        env.close()


def test_babyai_trials_replay_one_layout_and_show_image_tokens_direction():
    bench = babyai.babyai_benchmark()
    tasks = [*bench.train_tasks, *bench.eval_tasks]
    names = [t.name for t in tasks]
    for name in ("GoToRedBall-v0", "OpenDoor-v0", "GoToObjS6-v1", "GoToLocalS6N2-v0"):
        layout, observations, _, infos, ends = check_trial(tasks, bench.k, bench.horizon,
                                                           task_index=names.index(name))
        assert set(layout.observation_space.spaces) == {"vec", "img", "tokens"}
        assert layout.observation_space["img"].shape == (7, 7, 3)
        assert layout.observation_space["vec"].shape == (4 + 1,)  # direction one-hot, reset bit
        # The second attempt starts from the same layout as the first.
        second = observations[ends[0]]
        assert np.array_equal(second["img"], observations[0]["img"])
        assert np.array_equal(second["tokens"], observations[0]["tokens"])
        assert all(isinstance(infos[i]["episode_success"], bool) for i in ends)


# --- Atari --------------------------------------------------------------------------


def test_atari_games_share_84x84_rgb_and_18_actions():
    bench = atari.atari_benchmark()
    assert [t.name for t in bench.train_tasks] == list(atari.GAMES) and len(atari.GAMES) == 10
    layout = layout_for_tasks(bench.train_tasks)
    assert layout.observation_space["img"] == gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
    assert layout.observation_space["vec"].shape == (1,)  # the reset bit only
    assert layout.action_space == gym.spaces.Discrete(18)


def test_atari_full_trial_and_human_normalised_score():
    bench = atari.atari_benchmark()
    # Breakout: random play loses its 5 lives in ~200 steps, the shortest full game here.
    breakout = bench.train_tasks[atari.GAMES.index("Breakout")]
    check_trial([breakout], bench.k, bench.horizon)
    pong = bench.train_tasks[atari.GAMES.index("Pong")]
    assert pong.score(-20.7) == pytest.approx(0.0) and pong.score(14.6) == pytest.approx(1.0)


def test_atari_rewards_are_not_clipped():
    env = atari.atari_task("MsPacman").make(0)
    env.reset(seed=0)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(300)]
    env.close()
    assert max(rewards) >= 10.0  # a pellet is worth 10 points


def test_area_resize_averages_blocks():
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:2, :3] = 200  # top-left 2x3 block; each output pixel covers one such block
    resized = atari.AreaResize(4, 6, 2)(frame)
    assert resized[..., 0].tolist() == [[200, 0], [0, 0]]
    odd = atari.AreaResize(210, 160, 84)(np.full((210, 160, 3), 77, np.uint8))
    assert odd.shape == (84, 84, 3) and np.all(odd == 77)


# --- Procgen ------------------------------------------------------------------------


@pytest.mark.skipif(HAS_PROCGEN, reason="procgen is installed here")
def test_missing_procgen_says_how_to_install_it():
    with pytest.raises(ConfigError, match=r"procgen2==0\.10\.7") as error:
        procgen.procgen_benchmark(rescaled=False)
    assert "numpy<2" in str(error.value) and "AMAGO2_PYTHON" in str(error.value)


# Marked `procgen`: `npm test` runs these in the Procgen runtime (.venv-procgen) where it exists.
@pytest.mark.procgen
@pytest.mark.skipif(not HAS_PROCGEN, reason="procgen is not installed (it needs its own "
                    "environment with numpy<2: see amago2.envs.procgen.INSTALL_HINT)")
def test_procgen_two_attempts_at_one_level_and_rescaling():
    bench = procgen.procgen_benchmark(rescaled=True)
    assert {t.name: t.reward_multiplier for t in bench.train_tasks} == {
        "climber": 0.1, "coinrun": 100.0, "jumper": 1.0, "ninja": 1.0, "leaper": 1.0}
    tasks = [*bench.train_tasks, *bench.eval_tasks]
    assert all(t.score is not None for t in tasks), "every Procgen task is scored"
    names = [t.name for t in tasks]
    for name in ("leaper", "coinrun", "jumper-unseen-levels"):
        layout, observations, _, _, ends = check_trial(tasks, bench.k, bench.horizon,
                                                       task_index=names.index(name))
        assert layout.observation_space["img"].shape == (64, 64, 3)
        assert layout.action_space == gym.spaces.Discrete(15)
        assert np.array_equal(observations[ends[0]]["img"], observations[0]["img"]), \
            "the second attempt starts the same level"


# --- Reused simulators ---------------------------------------------------------------


def _rollout(spec, seed, actions):
    env = spec.make(seed)
    frames = [env.reset(seed=seed)[0]] + [env.step(a)[0] for a in actions]
    env.close()  # gives the simulator back for the next env of this task
    return frames


@pytest.mark.parametrize("which", ["metaworld", "atari"])
def test_a_reused_simulator_replays_a_seed_exactly_like_a_fresh_one(which, ml45_mini):
    if which == "metaworld":
        spec = ml45_mini.train_tasks[0]
        actions = [np.full(4, 0.5, np.float32)] * 20
    else:
        spec = atari.atari_task("Breakout")
        actions = [1, 3, 4, 3, 4] * 4
    first = _rollout(spec, 7, actions)
    _rollout(spec, 8, actions[::-1])  # leaves different state in the simulator
    again = _rollout(spec, 7, actions)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


# --- Presets ------------------------------------------------------------------------


def test_every_registered_benchmark_has_presets_that_resolve():
    assert presets.benchmark_names() == sorted(BENCHMARKS)
    for name in presets.benchmark_names():
        for scale in ("tiny", "cpu", "small", "paper"):
            cfg = resolve_config({"run_dir": "/tmp/x", "benchmark": name, "actor": "ind",
                                  "critic": "ind", "seed": 0, "scale": scale})
            assert cfg.train.total_steps > 0


def test_paper_presets_run_the_settings_table_of_the_method_doc():
    """docs/METHOD.md's table of the paper's settings and what a `paper` run resolves to
    agree, cell by cell: a change to either that the other does not follow fails here."""
    method = (Path(__file__).resolve().parents[2] / "docs" / "METHOD.md").read_text()
    section = method.split("## The paper's settings per benchmark", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]
    benchmark = {"Meta-World ML45": "ml45", "POPGym": "popgym", "Procgen (easy)": "procgen",
                 "Atari (ALE v5, RGB 84x84, no reward clipping)": "atari", "BabyAI": "babyai"}
    assert [r["benchmark"] for r in rows] == list(benchmark)

    def number(text: str) -> float:
        return float(text.replace("M steps", "e6").replace("k trajectories", "e3"))

    for row in rows:
        cfg = resolve_config({"run_dir": "/tmp/x", "benchmark": benchmark[row["benchmark"]], "actor": "ind",
                              "critic": "ind", "seed": 0, "scale": "paper"})
        a, t = cfg.agent, cfg.train
        replay = t.replay_max_trajectories if "trajectories" in row["replay"] else t.replay_max_steps
        d_model, d_ff = (int(x) for x in row["d_model / d_ff"].split(" / "))
        layers, heads = (int(x) for x in row["layers / heads"].split(" / "))
        assert (a.reward_multiplier, t.lr, t.batch_size, replay, t.weight_decay, t.grad_clip) == (
            number(row["reward x"]), number(row["lr"]), int(row["batch"]), number(row["replay"]),
            number(row["L2"]), number(row["clip"])), row["benchmark"]
        assert (a.d_model, a.d_ff, a.n_layers, a.n_heads, a.max_seq_len, a.num_bins) == (
            d_model, d_ff, layers, heads, int(row["context"]), int(row["bins"])), row["benchmark"]


def test_long_trials_are_saved_in_chunks_at_every_scale():
    for scale in ("tiny", "paper"):
        for name in ("ml45", "atari", "procgen", "babyai"):
            p = presets.preset_for(name, scale)
            assert p["replay_chunk_steps"] == presets.CHUNK_CONTEXTS * p["max_seq_len"]
        assert presets.preset_for("popgym", scale).get("replay_chunk_steps", 0) == 0
    # A swept context length resizes the chunks with it; POPGym's whole trials stay unchunked.
    for name, overrides, chunk in (("ml45", {"max_seq_len": 512}, presets.CHUNK_CONTEXTS * 512),
                                   ("ml45", {"max_seq_len": 512, "replay_chunk_steps": 3000}, 3000),
                                   ("popgym", {"max_seq_len": 512}, 0)):
        cfg = resolve_config({"run_dir": "/tmp/x", "benchmark": name, "actor": "ind", "critic": "ind", "seed": 0,
                              "scale": "cpu", "overrides": overrides})
        assert cfg.train.replay_chunk_steps == chunk, (name, overrides)


def test_a_user_task_with_a_return_range_is_scored_on_it_and_a_bad_range_is_refused():
    from amago2.envs.gym_sets import from_definition

    bench = from_definition("mine", {"tasks": [{"env_id": "CartPole-v1", "return_range": [0, 500]},
                                               {"env_id": "Acrobot-v1"}]})
    cartpole, acrobot = bench.train_tasks
    assert cartpole.score(125.0) == 0.25 and cartpole.score(500) == 1.0
    assert acrobot.score is None
    for bad in ([500, 0], [0], "0..500", [0, True]):
        with pytest.raises(ConfigError, match=r"return_range must be \[lowest, highest\]"):
            from_definition("mine", {"tasks": [{"env_id": "CartPole-v1", "return_range": bad}]})


def test_every_built_in_benchmark_but_meta_world_scores_its_tasks():
    """Meta-World's normalised headline is its success rate (the paper's metric); every
    other built-in benchmark gives each task a score, so tables aggregate across scales."""
    for name in BENCHMARKS:
        if name.startswith("ml45") or name.startswith("procgen"):  # Procgen: its own test, in its runtime
            continue
        bench = registry.get_benchmark(name)
        assert all(t.score is not None for t in bench.train_tasks + bench.eval_tasks), name


def test_procgen_scores_on_the_easy_mode_normalisation():
    assert procgen.EASY_RETURN_RANGES["coinrun"] == (5.0, 10.0)
    task = procgen.procgen_task("coinrun", held_out=False)
    assert task.score(5.0) == 0.0 and task.score(10.0) == 1.0 and task.score(7.5) == 0.5


def test_the_cpu_scale_changes_budgets_and_sizes_never_the_method():
    def resolved(name, scale):
        return resolve_config({"run_dir": "/tmp/x", "benchmark": name, "actor": "dep", "critic": "ind", "seed": 0,
                               "scale": scale})
    method = ("actor", "critic", "n_critics", "redq_subset", "gammas", "critic_loss_weight", "bin_limit",
              "popart_beta", "popart_init_nu", "adv_samples", "prob_min", "prob_max", "log_std_min", "log_std_max")
    for name, bins in (("ml45-mini", 32), ("popgym-mini", 16), ("gym-mini", 32), ("babyai", 16)):
        paper, cpu = resolved(name, "paper"), resolved(name, "cpu")
        assert {k: getattr(cpu.agent, k) for k in method} == {k: getattr(paper.agent, k) for k in method}, name
        assert cpu.agent.num_bins == bins and cpu.agent.max_seq_len == 32 and cpu.train.total_steps == 48_000
        assert resolved(name, "tiny").agent.num_bins == bins  # both small scales size the bins alike
        assert cpu.agent.reward_multiplier == paper.agent.reward_multiplier
