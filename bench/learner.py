"""Learner and acting throughput, per actor x critic cell. Prints tables; never part of the tests.

    python bench/learner.py            # every config, all four cells, 20 timed updates each
    python bench/learner.py --quick    # 5 timed updates, for a quick look while developing
    python bench/learner.py --only tiny-discrete --cells ind/ind,dep/dep --updates 40
    python bench/learner.py --device cuda --only ml45,popgym   # what bench/gpu-check runs
    python bench/learner.py --only tiny-continuous,ml45 --cells ind/ind --encoders transformer,gru,ff,sink

The configs: the ML45 paper model (continuous, 4 action dims), the POPGym paper model
(discrete, the 27 actions of its union space, 64 bins), the Atari paper model (18 actions,
84 x 84 RGB through the IMPALA CNN) and the tiny preset's model with either action kind.
The second table gives each config's ratio of the Ind critic's update time to the Dep
critic's, per actor: the scale-free critic should cost at most 1.5x.

CPU runs use 2 threads (the reference measurement's setting) unless --threads says
otherwise. "ref-equiv % of peak" = 619 GFLOP (one reference ML45 update) / (s per update)
/ the fp32 matmul peak measured in this same run: it exceeds 100% when work is removed.
On CUDA the bf16 matmul peak is measured too, the learner runs under bf16 autocast, peak
memory is torch's allocated high-water mark in an eager update (a graph's replay allocates
nothing: its memory is the graph's own pool, so a replay's mark would leave the
activations out), and "GPU idle in update" is the share of one
profiled update (from its start on the host to its last kernel) in which the GPU runs
nothing: launch and host overhead (the target at the ML45 size: under 10%). The update
runs as a CUDA graph there (TrainConfig.cuda_graph); "eager s/update (idle)" times the same
update without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from amago2.agent import Agent  # noqa: E402
from amago2.learner import Learner  # noqa: E402
from amago2.config import AgentConfig, TrainConfig  # noqa: E402
from amago2.cuda_graph import WARMUP_CALLS  # noqa: E402
from amago2.errors import ConfigError
from amago2.presets import small_head_bins  # noqa: E402
from tables import load_average, peak_rss_gib, print_table, reset_peak_rss  # noqa: E402  (bench/tables.py, next to this file)

REFERENCE_GFLOP = 619.0
REFERENCE_S_PER_UPDATE = 9.9

def _tiny(actor: str, critic: str) -> AgentConfig:
    """The tiny preset's model (amago2.presets.TINY) with the bins it gives a benchmark of
    the paper's 128 (presets.small_head_bins: 32)."""
    return AgentConfig(actor=actor, critic=critic, d_model=64, d_ff=128, n_layers=2, n_heads=4,
                       tstep_hidden=128, tstep_dim=64, head_hidden=64, max_seq_len=64,
                       num_bins=small_head_bins({}))


CONFIGS = {
    # First: peak memory is the process's resident high-water mark, and the C library keeps
    # some of a larger run's heap.
    "tiny-continuous": dict(agent=_tiny, batch=8, obs_dim=39, actions=("box", 4)),
    "tiny-discrete": dict(agent=_tiny, batch=8, obs_dim=39, actions=("discrete", 5)),
    # The paper models (amago2.presets).
    "ml45": dict(agent=lambda actor, critic: AgentConfig(
        actor=actor, critic=critic, d_model=320, d_ff=1280, n_layers=3, n_heads=8, max_seq_len=256,
        num_bins=128), batch=24, obs_dim=39, actions=("box", 4)),
    "popgym": dict(agent=lambda actor, critic: AgentConfig(
        actor=actor, critic=critic, d_model=256, d_ff=1024, n_layers=3, n_heads=8, max_seq_len=600,
        tstep_hidden=512, tstep_dim=200, num_bins=64), batch=24, obs_dim=26 + 2, actions=("discrete", 27)),
    "atari": dict(agent=lambda actor, critic: AgentConfig(
        actor=actor, critic=critic, d_model=256, d_ff=1024, n_layers=3, n_heads=8, max_seq_len=64,
        num_bins=128), batch=32, obs_dim=2, image=(84, 84, 3), actions=("discrete", 18)),
}
CELLS = ("dep/dep", "dep/ind", "ind/dep", "ind/ind")
# --encoders: the trajectory encoder each row's agent is built with (AgentConfig keys).
ENCODERS = {"transformer": {}, "gru": {"traj_encoder": "gru"}, "ff": {"traj_encoder": "ff"},
            "trmrl": {"traj_encoder": "trmrl"}, "sink": {"attention_sink": True}}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    reps = 50 if device.type == "cuda" else 5
    best = float("inf")
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - start) / reps)
    return 2 * size ** 3 / best / 1e9


def spaces(spec: dict) -> tuple[gym.spaces.Dict, gym.Space]:
    obs = {"vec": gym.spaces.Box(-np.inf, np.inf, (spec["obs_dim"],))}
    if "image" in spec:
        obs["img"] = gym.spaces.Box(0, 255, spec["image"], np.uint8)
    kind, n = spec["actions"]
    return gym.spaces.Dict(obs), gym.spaces.Discrete(n) if kind == "discrete" else gym.spaces.Box(-1, 1, (n,))


def make_batch(agent: Agent, batch: int, spec: dict) -> dict:
    l, action_dim = agent.cfg.max_seq_len, agent.action_dim
    if agent.discrete:
        action = torch.nn.functional.one_hot(torch.randint(action_dim, (batch, l)), action_dim).float()
    else:
        action = torch.rand(batch, l, action_dim) * 2 - 1
    reward = torch.randn(batch, l, 1)
    obs = {"vec": torch.randn(batch, l + 1, spec["obs_dim"])}
    if "image" in spec:
        obs["img"] = torch.randint(0, 256, (batch, l + 1, *spec["image"]), dtype=torch.uint8)
    return {"obs": obs,
            "prev_action": torch.cat((torch.zeros(batch, 1, action_dim), action), 1),
            "prev_reward": torch.cat((torch.zeros(batch, 1, 1), reward), 1),
            "time": torch.arange(l + 1).repeat(batch, 1), "action": action, "reward": reward,
            "done": torch.zeros(batch, l, 1), "mask": torch.ones(batch, l, 1)}


def bench_learner(name: str, cell: str, encoder: str, device: torch.device, warmup: int, updates: int) -> dict:
    spec = CONFIGS[name]
    torch.manual_seed(0)
    actor, critic = cell.split("/")
    cfg = dataclasses.replace(spec["agent"](actor, critic), **ENCODERS[encoder])
    agent = Agent(cfg, *spaces(spec)).to(device)
    learner = Learner(agent, TrainConfig(batch_size=spec["batch"]))
    batch = agent.prepare_batch(make_batch(agent, spec["batch"], spec))
    s, peak = time_updates(learner, batch, device, warmup, updates)
    out = {"s_per_update": s, "updates_per_s": 1 / s, "gpu_idle": None, "eager_s_per_update": None,
           "timesteps_per_s": spec["batch"] * agent.cfg.max_seq_len / s, "peak_gib": peak}
    if device.type == "cuda":
        out["gpu_idle"] = gpu_idle_fraction(learner, batch)
        # The same update without its CUDA graph, from the same weights' successors: what
        # the graph saves (launch and host overhead), and the update's memory (the docstring).
        eager = Learner(agent, TrainConfig(batch_size=spec["batch"], cuda_graph=False))
        out["eager_s_per_update"], out["peak_gib"] = time_updates(eager, batch, device, warmup, updates)
        out["eager_gpu_idle"] = gpu_idle_fraction(eager, batch)
    out["acting"] = {n: bench_acting(agent, spec, n, device) for n in (1, 8)}
    return out


def time_updates(learner: Learner, batch: dict, device: torch.device, warmup: int, updates: int) -> tuple[float, float]:
    """(median seconds per update, peak memory GiB) over `updates` timed updates after
    `warmup` (on CUDA, warmup also covers the CUDA graph's eager calls and its recording)."""
    if learner.cfg.cuda_graph and device.type == "cuda":
        warmup = max(warmup, WARMUP_CALLS + 1)
    times, peaks = [], []
    for i in range(warmup + updates):
        if device.type == "cpu":
            reset_peak_rss()
        else:
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        start = time.perf_counter()
        learner.update(batch)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            peaks.append(peak_rss_gib() if device.type == "cpu"
                         else torch.cuda.max_memory_allocated(device) / 2 ** 30)
    return statistics.median(times), max(peaks)


def busy_union(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by the intervals (start, end), overlaps counted once."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


def gpu_idle_fraction(learner: Learner, batch: dict) -> float | None:
    """The share of one update's time in which the GPU runs nothing: from the update's
    start on the host to its last kernel's end, the time not covered by any kernel, copy
    or fill (torch.profiler's device events, less the ranges that named regions such as
    this one and the optimiser's step project onto the GPU's timeline: they span the gaps
    between kernels; a torch that does not mark them, as 2.4 does not, reads too low).
    None if the profiler saw no device events."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, record_function

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function("amago2.update"):
            learner.update(batch)
        torch.cuda.synchronize()
    events = prof.events()
    window = next(e.time_range for e in events if e.name == "amago2.update")
    device = [(e.time_range.start, e.time_range.end) for e in events
              if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)]
    if not device:
        return None
    start, end = window.start, max(window.end, max(stop for _, stop in device))
    return 1.0 - busy_union([(max(a, start), min(b, end)) for a, b in device if b > start]) / (end - start)


def bench_acting(agent: Agent, spec: dict, actors: int, device: torch.device) -> float:
    """Steps/s (per actor step, all actors together) with a full, sliding cache."""
    state = agent.init_acting(actors)
    obs = {"vec": np.random.randn(actors, spec["obs_dim"]).astype(np.float32)}
    if "image" in spec:
        obs["img"] = np.random.randint(0, 256, (actors, *spec["image"]), dtype=np.uint8)
    prev_action = np.zeros((actors, agent.action_dim), np.float32)
    prev_reward = np.zeros(actors, np.float32)
    step = 0
    for _ in range(agent.cfg.max_seq_len + 5):  # fill the cache so every step attends to max_seq_len keys
        agent.act(state, obs, prev_action, prev_reward, np.full(actors, step))
        step += 1
    timed = 200
    sync(device)
    start = time.perf_counter()
    for _ in range(timed):
        agent.act(state, obs, prev_action, prev_reward, np.full(actors, step))
        step += 1
    sync(device)
    return timed * actors / (time.perf_counter() - start)


def ml45_env_comparison(act8: float) -> str:
    """Acting is meant to keep up with the env: time ML45 itself (bench/envs.py's
    measurement: one process, random actions, through the trial wrapper an actor uses)."""
    from envs import measure  # bench/envs.py, next to this file

    try:
        env = measure("ml45", seconds=10.0, seed=0)["steps_per_s"]
    except ConfigError as e:
        return f"ML45 env not timed: {e}"
    return (f"ML45 env through the trial wrapper (1 process, random actions): {env:.0f} steps/s; "
            f"acting with 8 actors runs at {act8 / env:.2f}x that")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 timed updates instead of 20")
    parser.add_argument("--updates", type=int, default=None, help="timed updates per config (>= 20 for the record)")
    parser.add_argument("--only", default=None, help=f"comma list of configs among {', '.join(CONFIGS)}")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma list of actor/critic cells (default {','.join(CELLS)})")
    parser.add_argument("--encoders", default="transformer",
                        help=f"comma list of trajectory encoders among {', '.join(ENCODERS)} (default transformer)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-env", action="store_true", help="skip timing the ML45 env for comparison")
    args = parser.parse_args()
    cells = args.cells.split(",")
    configs = args.only.split(",") if args.only else list(CONFIGS)
    if not set(configs) <= set(CONFIGS):
        parser.error(f"--only takes configs among {', '.join(CONFIGS)}, not '{args.only}'")
    if not set(cells) <= set(CELLS):
        parser.error(f"--cells takes actor/critic pairs among {', '.join(CELLS)}, not '{args.cells}'")
    encoders = args.encoders.split(",")
    if not set(encoders) <= set(ENCODERS):
        parser.error(f"--encoders takes encoders among {', '.join(ENCODERS)}, not '{args.encoders}'")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        # The profiler (CUPTI) sees the kernels of a graph's replay only if it was set up
        # before the graph was recorded: once, before any learner records one.
        from torch.profiler._utils import _init_for_cuda_graphs
        _init_for_cuda_graphs()
    updates = args.updates or (5 if args.quick else 20)
    peak32 = matmul_peak_gflops(device, torch.float32, 2048 if device.type == "cpu" else 8192)
    peak16 = matmul_peak_gflops(device, torch.bfloat16, 8192) if device.type == "cuda" else None
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"torch {torch.__version__}, fp32 matmul peak {peak32:.0f} GFLOP/s"
          + (f", bf16 peak {peak16:.0f} GFLOP/s" if peak16 else "") + f"; median of {updates} updates; "
          + load_average())
    peak = peak16 or peak32
    header = ("config", "cell", "encoder", "s/update", "updates/s", "timesteps/s", "ref-equiv % of peak", "vs ref 9.9 s",
              "peak mem GiB", "act 1 (steps/s)", "act 8 (steps/s)", "GPU idle in update", "eager s/update (idle)")
    rows, seconds, acting = [], {}, {}
    for name in configs:
        for cell in cells:
            for encoder in encoders:
                # The reference figures are for one ML45 update of the AMAGO-2 objectives (ind/ind).
                is_ref = name == "ml45" and cell == "ind/ind" and encoder == "transformer"
                r = bench_learner(name, cell, encoder, device, warmup=3 if name in ("ml45", "popgym", "atari") else 5,
                                  updates=updates)
                if encoder == "transformer":
                    seconds[name, cell] = r["s_per_update"]
                    acting[name] = r["acting"][8]
                ref_frac = f"{100 * REFERENCE_GFLOP / r['s_per_update'] / peak:.0f}%" if is_ref else "-"
                speedup = f"{REFERENCE_S_PER_UPDATE / r['s_per_update']:.2f}x" if is_ref else "-"
                rows.append((name, cell, encoder, f"{r['s_per_update']:.3f}", f"{r['updates_per_s']:.2f}",
                             f"{r['timesteps_per_s']:.0f}", ref_frac, speedup, f"{r['peak_gib']:.2f}",
                             f"{r['acting'][1]:.0f}", f"{r['acting'][8]:.0f}",
                             "-" if r["gpu_idle"] is None else f"{100 * r['gpu_idle']:.1f}%",
                             "-" if r["eager_s_per_update"] is None else f"{r['eager_s_per_update']:.3f} (" + (
                                 "-" if r["eager_gpu_idle"] is None else f"{100 * r['eager_gpu_idle']:.1f}%") + ")"))
                print(f"  measured {name} {cell} {encoder}: {r['s_per_update']:.3f} s/update", file=sys.stderr, flush=True)
    print_table(header, rows)
    ratios = []
    for name in dict.fromkeys(n for n, _ in seconds):
        for actor in ("dep", "ind"):
            dep, ind = seconds.get((name, f"{actor}/dep")), seconds.get((name, f"{actor}/ind"))
            if dep and ind:
                ratios.append((name, actor, f"{dep:.3f}", f"{ind:.3f}", f"{ind / dep:.2f}x"))
    if ratios:
        print()
        print_table(("config", "actor", "dep critic s/update", "ind critic s/update", "ind / dep"), ratios)
    if "ml45" in acting and not args.no_env:
        print(ml45_env_comparison(acting["ml45"]))
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
