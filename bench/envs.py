"""Environment throughput per benchmark: random actions through the trial wrapper.

    python bench/envs.py                       # every benchmark, 5 s of stepping each
    python bench/envs.py ml45-mini atari --seconds 10

One process, one TrialEnv per benchmark drawing a task uniformly per trial (as one
training actor does), so the figures include the per-trial env construction, the
observation encoding and the reward multipliers, but no agent. "build" is the time to
get the Benchmark and make every task once for the shared spaces (ML45 builds its goal
sets there). Not part of the test suite: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from amago2.errors import ConfigError
from amago2.envs.registry import BENCHMARKS, get_benchmark
from amago2.envs.spaces import layout_for_tasks
from amago2.envs.trial import TrialEnv


def measure(name: str, seconds: float, seed: int) -> dict:
    start = time.perf_counter()
    bench = get_benchmark(name)
    tasks = [*bench.train_tasks, *bench.eval_tasks]
    layout = layout_for_tasks(tasks, seed=seed)
    build_s = time.perf_counter() - start

    train = list(enumerate(bench.train_tasks))
    trial = TrialEnv(train, layout, bench.k, bench.horizon, seed=seed)
    trial.action_space.seed(seed)
    trial.reset(seed=seed)
    steps = trials = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        # check the clock every 100 steps so the clock itself costs nothing measurable
        for _ in range(100):
            _, _, terminated, _, _ = trial.step(trial.action_space.sample())
            steps += 1
            if terminated:
                trials += 1
                trial.reset()
    elapsed = time.perf_counter() - start
    trial.close()
    return {"benchmark": name, "tasks": f"{len(bench.train_tasks)}+{len(bench.eval_tasks)}",
            "build_s": build_s, "steps": steps, "trials": trials, "steps_per_s": steps / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", nargs="*", default=sorted(BENCHMARKS),
                        help=f"any of {', '.join(sorted(BENCHMARKS))} (default: all)")
    parser.add_argument("--seconds", type=float, default=5.0, help="stepping time per benchmark")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = [b for b in args.benchmarks if b not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(sorted(BENCHMARKS))}",
              file=sys.stderr)
        return 2

    print(f"# env steps/s, random actions, 1 process, {os.cpu_count()} CPUs visible")
    print(f"| {'benchmark':<17} | {'tasks':>6} | {'build s':>7} | {'steps':>8} | {'trials':>6} | {'steps/s':>8} |")
    print(f"|{'-' * 19}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 8}|{'-' * 10}|")
    for name in args.benchmarks:
        try:
            row = measure(name, args.seconds, args.seed)
        except ConfigError as e:
            print(f"| {name:<17} | not available: {e}")
            continue
        print(f"| {row['benchmark']:<17} | {row['tasks']:>6} | {row['build_s']:>7.1f} | "
              f"{row['steps']:>8} | {row['trials']:>6} | {row['steps_per_s']:>8.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
