"""Hyperparameter presets per benchmark and scale (docs/METHOD.md, "Scales").

`paper` is the paper's table. `small` keeps the paper's model and objectives and shortens
the run to about one GPU-day. `cpu` is sized to learn small tasks in about five minutes a
run on a 2-core CPU; `tiny` shrinks the network and the run further, to a smoke test of
seconds that learns nothing. Every scale keeps what defines the method (the objectives,
4 critics, the 7 gammas, REDQ, the loss weights, the architecture): only sizes, budgets
and the optimisation settings that go with a budget change.
"""

from __future__ import annotations

from typing import Any

from amago2.errors import ConfigError

# Paper presets (docs/METHOD.md, "The paper's settings per benchmark"). Keys are AgentConfig/TrainConfig field names.
# The paper gives no run lengths: each total_steps below is our choice, of the order of the
# paper's training curves, and is what a `paper` run trains for unless --steps says more.
_ML45 = dict(lr=5e-4, batch_size=24, replay_max_steps=8_000_000, weight_decay=1e-4,
             grad_clip=2.0, reward_multiplier=1.0, num_bins=128, d_model=320, d_ff=1280,
             n_layers=3, n_heads=8, max_seq_len=256, tstep_hidden=512, tstep_dim=256,
             total_steps=100_000_000)
_POPGYM = dict(lr=1e-4, batch_size=24, replay_max_trajectories=15_000, weight_decay=1e-4,
               grad_clip=1.0, reward_multiplier=100.0, num_bins=64, d_model=256, d_ff=1024,
               n_layers=3, n_heads=8, max_seq_len=600, tstep_hidden=512, tstep_dim=200,
               total_steps=50_000_000)
_PROCGEN = dict(lr=1e-4, batch_size=24, replay_max_steps=18_000_000, weight_decay=5e-3,
                grad_clip=1.0, reward_multiplier=1.0, num_bins=128, d_model=512, d_ff=2048,
                n_layers=3, n_heads=8, max_seq_len=128, total_steps=100_000_000)
_ATARI = dict(lr=1e-4, batch_size=32, replay_max_steps=8_000_000, weight_decay=5e-3,
              grad_clip=1.0, reward_multiplier=0.25, num_bins=128, d_model=256, d_ff=1024,
              n_layers=3, n_heads=8, max_seq_len=64, total_steps=100_000_000)
_BABYAI = dict(lr=1e-4, batch_size=24, replay_max_steps=10_000_000, weight_decay=1e-3,
               grad_clip=1.0, reward_multiplier=1000.0, num_bins=32, d_model=256, d_ff=1024,
               n_layers=4, n_heads=8, max_seq_len=512, total_steps=100_000_000)
PAPER_BINS = 128
"""The bin count of a benchmark whose preset names none (docs/METHOD.md)."""
# Sets that are not in the paper take the AgentConfig/TrainConfig defaults.
_GENERIC = dict(total_steps=10_000_000)

PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "ml45": _ML45,
    "ml45-mini": _ML45,
    "popgym": _POPGYM,
    "popgym-rescaled": _POPGYM,
    "popgym-mini": _POPGYM,
    "procgen": _PROCGEN,
    "procgen-rescaled": _PROCGEN,
    "atari": _ATARI,
    "babyai": _BABYAI,
    "gym-mini": _GENERIC,
}

# Benchmarks whose trials outgrow one replay file (ML45: 1,500 steps; BabyAI: up to
# ~2,000; Procgen: 2,000; Atari: up to 27,000 steps of 84x84x3 frames) save them in
# chunks of this many contexts, as AMAGO's traj_save_len does (3-4 x max_seq_len).
# POPGym is not chunked: its 15k-trajectory buffer counts whole trials.
CHUNKED = {"ml45", "procgen", "procgen-rescaled", "atari", "babyai"}
CHUNK_CONTEXTS = 4

SMALL = dict(total_steps=10_000_000, parallel_actors=16)

TINY = dict(d_model=64, d_ff=128, n_layers=2, n_heads=4, tstep_hidden=128, tstep_dim=64,
            head_hidden=64, batch_size=8, warmup_updates=50, total_steps=3_000,
            parallel_actors=4, steps_per_epoch=100, updates_per_epoch=20,
            replay_max_steps=200_000, replay_max_trajectories=0, explore_anneal_steps=500,
            eval_every_epochs=4, ckpt_every_updates=50, log_every_updates=10)
TINY_MAX_SEQ_LEN = 64

# The cpu scale: tiny's network with a budget that learns. 48k env steps and 6,000 updates
# (one per 8 env steps, the ratio of the paper presets), lr 5e-4 (ML45's),
# 100 warm-up updates. tau 0.02 where the paper has 0.003: its time constant of 333
# updates suits runs of millions of updates; in a budget of 6,000 the target heads would
# trail the critics for a large part of the run (measured at the tiny scale: mean Q stayed
# at -3 to -5 where returns are in the hundreds). Exploration anneals over the first ~40%.
# 10 evaluation trials a task: with 3, one evaluation of POPGym's bandit under random play
# read 0.28 where 100 trials read 0.00 (its per-trial spread is 0.19), noise the seeds'
# intervals do not show. Measured cost, on 2 busy cores: one evaluation of ML45-mini, the
# longest (4 tasks x 1,500-step trials, bound by the simulator), went from 10 to 31 s, so
# its runs (8 evaluations, random play's included) take about 3 minutes more; gym-mini's
# went from 12 to 18 s, POPGym's are a few seconds.
CPU = dict(TINY, total_steps=48_000, parallel_actors=8, steps_per_epoch=100, updates_per_epoch=100,
           lr=5e-4, warmup_updates=100, batch_size=8, tau=0.02, explore_anneal_steps=2_500,
           eval_every_epochs=10, eval_trials_per_task=10, ckpt_every_updates=1000, log_every_updates=50)
CPU_MAX_SEQ_LEN = 32
SMALL_HEAD_MIN_BINS = 16


def small_head_bins(base: dict[str, Any]) -> int:
    """The bin count of the tiny and cpu scales: the benchmark's quartered, at least 16.
    The paper's 128 bins go with 256-wide critic heads (an output layer half the size of
    the hidden one); the small scales' heads are 64 wide, where 128 bins would make the
    output layer twice the hidden one and the Ind critic's update about 2x the Dep
    critic's (bench/learner.py, tiny sizes)."""
    return max(SMALL_HEAD_MIN_BINS, base.get("num_bins", PAPER_BINS) // 4)


def scale_replacements(benchmark_def: dict[str, Any] | None, scale: str) -> dict[str, dict[str, Any]]:
    """The keys of a user-defined benchmark's own preset that the scale sets to another
    value ({key: {"preset": theirs, "scale": what runs}}), so that the CLI can say so: a
    scale sizes every benchmark alike, over what the benchmark's preset says."""
    if benchmark_def is None or scale == "paper":
        return {}
    own = benchmark_def.get("preset", {})
    scaled = preset_for("user", scale, benchmark_def)
    return {k: {"preset": v, "scale": scaled[k]} for k, v in sorted(own.items()) if scaled.get(k) != v}


def benchmark_names() -> list[str]:
    return sorted(PAPER_PRESETS)


def preset_for(benchmark: str, scale: str, benchmark_def: dict[str, Any] | None = None) -> dict[str, Any]:
    """The overrides a benchmark at a scale applies on top of the config defaults."""
    if benchmark_def is not None:
        base = dict(_GENERIC)
        base.update(benchmark_def.get("preset", {}))
    elif benchmark in PAPER_PRESETS:
        base = dict(PAPER_PRESETS[benchmark])
    else:
        raise ConfigError(f"unknown benchmark '{benchmark}' (known: {', '.join(benchmark_names())})")
    if scale == "small":
        base.update(SMALL)
    elif scale == "tiny":
        context = min(base.get("max_seq_len", TINY_MAX_SEQ_LEN), TINY_MAX_SEQ_LEN)
        base.update(TINY, max_seq_len=context, num_bins=small_head_bins(base))
    elif scale == "cpu":
        context = min(base.get("max_seq_len", CPU_MAX_SEQ_LEN), CPU_MAX_SEQ_LEN)
        base.update(CPU, max_seq_len=context, num_bins=small_head_bins(base))
    if benchmark_def is None and benchmark in CHUNKED:
        base["replay_chunk_steps"] = CHUNK_CONTEXTS * base["max_seq_len"]
    return base
