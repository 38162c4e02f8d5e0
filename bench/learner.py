"""Learner and acting throughput (issue 7). Prints one table; never part of the tests.

    python bench/learner.py            # ML45 paper config + tiny config, 20 timed updates each
    python bench/learner.py --quick    # 5 timed updates, for a quick look while developing
    python bench/learner.py --only tiny --updates 40

CPU runs use 2 threads (the reference measurement's setting) unless --threads says
otherwise. "ref-equiv % of peak" = 619 GFLOP (one reference ML45 update) / (s per update)
/ the fp32 matmul peak measured in this same run: it exceeds 100% when work is removed.
On CUDA the bf16 matmul peak is measured too and the learner runs under bf16 autocast.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from amago2.agent import Agent, Learner  # noqa: E402
from amago2.config import AgentConfig, ConfigError, TrainConfig  # noqa: E402

REFERENCE_GFLOP = 619.0
REFERENCE_S_PER_UPDATE = 9.9

CONFIGS = {
    # The tiny preset's model (amago2.presets.TINY). First: peak memory is the process's
    # resident high-water mark, and the C library keeps some of a larger run's heap.
    "tiny": dict(agent=AgentConfig(actor="ind", critic="ind", d_model=64, d_ff=128, n_layers=2, n_heads=4,
                                   tstep_hidden=128, tstep_dim=64, head_hidden=64, max_seq_len=64),
                 batch=8, obs_dim=39, action_dim=4),
    # The ML45 paper model (SPEC section 4) with the AMAGO-2 objectives.
    "ml45": dict(agent=AgentConfig(actor="ind", critic="ind", d_model=320, d_ff=1280, n_layers=3, n_heads=8,
                                   max_seq_len=256, num_bins=128),
                 batch=24, obs_dim=39, action_dim=4),
}


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


def make_batch(agent: Agent, batch: int, obs_dim: int, action_dim: int) -> dict:
    l = agent.cfg.max_seq_len
    action = torch.rand(batch, l, action_dim) * 2 - 1
    reward = torch.randn(batch, l, 1)
    return {"obs": {"vec": torch.randn(batch, l + 1, obs_dim)},
            "prev_action": torch.cat((torch.zeros(batch, 1, action_dim), action), 1),
            "prev_reward": torch.cat((torch.zeros(batch, 1, 1), reward), 1),
            "time": torch.arange(l + 1).repeat(batch, 1), "action": action, "reward": reward,
            "done": torch.zeros(batch, l, 1), "mask": torch.ones(batch, l, 1)}


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the VmHWM high-water mark."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2 ** 20
    return float("nan")


def bench_learner(name: str, device: torch.device, warmup: int, updates: int) -> dict:
    spec = CONFIGS[name]
    torch.manual_seed(0)
    obs_space = gym.spaces.Dict({"vec": gym.spaces.Box(-np.inf, np.inf, (spec["obs_dim"],))})
    agent = Agent(spec["agent"], obs_space, gym.spaces.Box(-1, 1, (spec["action_dim"],))).to(device)
    learner = Learner(agent, TrainConfig(batch_size=spec["batch"]))
    batch = agent.prepare_batch(make_batch(agent, spec["batch"], spec["obs_dim"], spec["action_dim"]))
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
    s = statistics.median(times)
    return {"s_per_update": s, "updates_per_s": 1 / s,
            "timesteps_per_s": spec["batch"] * agent.cfg.max_seq_len / s, "peak_gib": max(peaks),
            "acting": {n: bench_acting(agent, spec["obs_dim"], spec["action_dim"], n, device) for n in (1, 8)}}


def bench_acting(agent: Agent, obs_dim: int, action_dim: int, actors: int, device: torch.device) -> float:
    """Steps/s (per actor step, all actors together) with a full, sliding cache."""
    state = agent.init_acting(actors)
    obs = {"vec": np.random.randn(actors, obs_dim).astype(np.float32)}
    prev_action, prev_reward = np.zeros((actors, action_dim), np.float32), np.zeros(actors, np.float32)
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


def load_average() -> str:
    """The host's 1/5/15-minute load: on a shared 2-core machine other processes decide
    much of what a CPU run measures (2-thread acting most of all), so it goes with the table."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 timed updates instead of 20")
    parser.add_argument("--updates", type=int, default=None, help="timed updates per config (>= 20 for the record)")
    parser.add_argument("--only", choices=sorted(CONFIGS), default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-env", action="store_true", help="skip timing the ML45 env for comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    updates = args.updates or (5 if args.quick else 20)
    peak32 = matmul_peak_gflops(device, torch.float32, 2048 if device.type == "cpu" else 8192)
    peak16 = matmul_peak_gflops(device, torch.bfloat16, 8192) if device.type == "cuda" else None
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"torch {torch.__version__}, fp32 matmul peak {peak32:.0f} GFLOP/s"
          + (f", bf16 peak {peak16:.0f} GFLOP/s" if peak16 else "") + f"; median of {updates} updates; "
          + load_average())
    peak = peak16 or peak32
    header = ("config", "s/update", "updates/s", "timesteps/s", "ref-equiv % of peak", "vs ref 9.9 s",
              "peak mem GiB", "act 1 (steps/s)", "act 8 (steps/s)")
    rows, acting = [], {}
    for name in [args.only] if args.only else list(CONFIGS):
        r = bench_learner(name, device, warmup=3 if name == "ml45" else 5, updates=updates)
        ref_frac = f"{100 * REFERENCE_GFLOP / r['s_per_update'] / peak:.0f}%" if name == "ml45" else "-"
        speedup = f"{REFERENCE_S_PER_UPDATE / r['s_per_update']:.2f}x" if name == "ml45" else "-"
        acting[name] = r["acting"][8]
        rows.append((name, f"{r['s_per_update']:.3f}", f"{r['updates_per_s']:.2f}", f"{r['timesteps_per_s']:.0f}",
                     ref_frac, speedup, f"{r['peak_gib']:.2f}", f"{r['acting'][1]:.0f}", f"{r['acting'][8]:.0f}"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
    if "ml45" in acting and not args.no_env:
        print(ml45_env_comparison(acting["ml45"]))
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
