"""Whole training loop throughput, per benchmark and actor x critic cell. Prints one table;
never part of the tests.

    python bench/loop.py                          # gym-mini, popgym-mini, ml45-mini; all four cells
    python bench/loop.py --only gym-mini --cells ind/ind --steps 16000

Each row is one real training run through the worker's own entry point (bridge.train, as
`amago2 sweep` runs it), at the scale's preset ratio of updates to env steps, its
evaluations and checkpoints included, for --steps env steps (the cpu scale's first 10
epochs by default, one evaluation among them, as in a whole run). The shares come from the
time/<part>_s metrics every run records: acting (the agent's forward pass and the
exploration noise), env (steps, resets and the trial wrapper), replay (writing
trajectories and sampling batches), update (the gradient steps), eval, checkpoint, and
events (writing metrics and heartbeats); "other" is what none of them covers.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from amago2 import bridge  # noqa: E402
from tables import load_average, print_table  # noqa: E402  (bench/tables.py, next to this file)

BENCHMARKS = ("gym-mini", "popgym-mini", "ml45-mini")
CELLS = ("dep/dep", "dep/ind", "ind/dep", "ind/ind")
PARTS = ("act", "env", "replay", "update", "eval", "checkpoint", "events")


def measure(benchmark: str, cell: str, scale: str, steps: int, seed: int) -> dict:
    actor, critic = cell.split("/")
    with tempfile.TemporaryDirectory(prefix="amago2-loop-") as run_dir:
        request = {"run_dir": run_dir, "benchmark": benchmark, "actor": actor, "critic": critic,
                   "seed": seed, "scale": scale, "steps": steps, "device": "cpu"}
        last: dict[str, float] = {}

        def emit(line: str) -> bool:
            event = json.loads(line)
            if event["type"] == "metrics" and "time/wall_s" in event["metrics"]:
                last.update(event["metrics"], step=event["step"], update=event["update"])
            return False

        summary = json.loads(bridge.train(json.dumps(request), emit))
    if summary["status"] != "succeeded":
        raise SystemExit(f"{benchmark} {cell}: the run {summary['status']}: {summary['error']}")
    wall = last["time/wall_s"]
    seconds = {part: last[f"time/{part}_s"] for part in ("act", "env", "update", "eval", "checkpoint", "events")}
    seconds["replay"] = last["time/replay_s"] + last["time/sample_s"]
    return {"steps_per_s": last["step"] / wall, "updates_per_s": last["update"] / wall, "wall": wall,
            "shares": {part: seconds[part] / wall for part in PARTS},
            "other": 1 - sum(seconds.values()) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=BENCHMARKS, default=None)
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma list (default {','.join(CELLS)})")
    parser.add_argument("--scale", choices=("cpu", "tiny"), default="cpu")
    parser.add_argument("--steps", type=int, default=8000, help="env steps per run (default 8000)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cells = args.cells.split(",")
    if not set(cells) <= set(CELLS):
        parser.error(f"--cells takes actor/critic pairs among {', '.join(CELLS)}, not '{args.cells}'")
    torch.set_num_threads(args.threads)
    print(f"{args.scale} scale, {args.steps} env steps per run, {args.threads} threads, torch {torch.__version__}; "
          + load_average())
    header = ("benchmark", "cell", "env steps/s", "updates/s", "wall s", *(f"{p} %" for p in PARTS), "other %")
    rows = []
    for benchmark in [args.only] if args.only else BENCHMARKS:
        for cell in cells:
            r = measure(benchmark, cell, args.scale, args.steps, seed=0)
            rows.append((benchmark, cell, f"{r['steps_per_s']:.0f}", f"{r['updates_per_s']:.1f}", f"{r['wall']:.0f}",
                         *(f"{100 * r['shares'][p]:.1f}" for p in PARTS), f"{100 * r['other']:.1f}"))
            print(f"  measured {benchmark} {cell}", file=sys.stderr, flush=True)
    print_table(header, rows)
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
