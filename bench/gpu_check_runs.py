"""bench/gpu-check's last step: short real training runs of every actor x critic cell on
the device, then a markdown table of how each went. At once:

- eight runs, one per cell and action kind, each through the worker's own entry point
  (`python -m amago2 train`);
- the CLI's own sweep of gym-mini's four cells (`amago2 sweep`, on CUDA with `--gpus auto
  --runs-per-gpu 4`), through the bridge and the store, as a user runs one.

Exit 0 only if every run succeeded on the device asked for and made updates.

    python bench/gpu_check_runs.py DEVICE RUNS_DIR DEADLINE_S

Runs still going DEADLINE_S seconds after the start are asked to stop (SIGINT: a clean
stop, checkpoint first) and reported as cut off, so that the table is written whatever
happens; bench/gpu-check gives the step a little longer than that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# gym-mini is discrete; the continuous set is two classic-control tasks. Both need only
# gymnasium, which bench/gpu-check brings as a wheel.
CONTINUOUS = {"tasks": [{"env_id": "Pendulum-v1"},
                        {"env_id": "MountainCarContinuous-v0", "reward_multiplier": 100}], "k": 1}
# The tiny scale (4 actors, 100 steps each an epoch, then 20 updates), with fewer
# evaluations to fit the check's minutes: the two at step 0 (random play, the untrained
# agent) and the last. 2,400 env steps are 6 epochs; updates start once the replay holds a
# whole trial, which for gym-mini (two episodes of up to 500 steps a trial) takes 2 to 4
# epochs, so that each run makes some updates and one checkpoint (every 50) during training.
OVERRIDES = {"total_steps": 2400, "eval_every_epochs": 0}
CELLS = [(kind, actor, critic) for kind in ("discrete", "continuous")
         for actor in ("dep", "ind") for critic in ("dep", "ind")]
SWEEP_RUNS = 4  # gym-mini's four cells, one seed
GRACE_S = 20  # for a run asked to stop: its checkpoint, then its last event


def launch_worker(device: str, runs: Path, kind: str, actor: str, critic: str, threads: int) -> subprocess.Popen:
    run_dir = runs / f"{kind}-{actor}-{critic}"
    run_dir.mkdir(parents=True)
    request = {"run_dir": str(run_dir), "actor": actor, "critic": critic, "seed": 0, "scale": "tiny",
               "device": device, "overrides": OVERRIDES}
    request.update({"benchmark": "gym-mini"} if kind == "discrete"
                   else {"benchmark": "continuous", "benchmark_def": CONTINUOUS})
    (run_dir / "request.json").write_text(json.dumps(request))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, "-m", "amago2", "train", str(run_dir / "request.json")],
                            stdout=(run_dir / "stdout").open("w"), stderr=subprocess.STDOUT, env=env)


def launch_sweep(device: str, home: Path, node: str) -> subprocess.Popen:
    """`amago2 sweep gym-mini` at the same settings, into its own store, on this interpreter."""
    settings = [arg for key, value in OVERRIDES.items() if key != "total_steps" for arg in ("--set", f"{key}={value}")]
    slots = ["--gpus", "auto", "--runs-per-gpu", str(SWEEP_RUNS)] if device == "cuda" else ["--parallel", str(SWEEP_RUNS)]
    home.mkdir(parents=True)
    env = {**os.environ, "AMAGO2_HOME": str(home)}
    if device == "cuda" and "CUDA_VISIBLE_DEVICES" not in env and shutil.which("nvidia-smi") is None:
        # `--gpus auto` finds GPUs by these two; with neither it would fall back to CPU slots.
        env["CUDA_VISIBLE_DEVICES"] = "0"
    return subprocess.Popen(
        [node, str(ROOT / "bin" / "amago2.js"), "sweep", "gym-mini", "--scale", "tiny", "--seeds", "1",
         "--steps", str(OVERRIDES["total_steps"]), *settings, *slots, "--python", sys.executable],
        stdout=(home / "sweep.log").open("w"), stderr=subprocess.STDOUT, env=env)


def wait_all(procs: list[subprocess.Popen], deadline: float) -> set[int]:
    """Wait for every process; past the deadline ask the rest to stop, and kill those that
    do not within GRACE_S. Returns the indices of those cut off."""
    cut = set()
    for i, proc in enumerate(procs):
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            cut.add(i)
    for i in cut:
        procs[i].send_signal(signal.SIGINT)
    for i in cut:
        try:
            procs[i].wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            procs[i].kill()
            procs[i].wait()
    return cut


def row(name: str, run_dir: Path, rc: int, device: str, cut: bool) -> tuple[str, bool]:
    """The run's table row from its journal, and whether it succeeded on the device."""
    journal = run_dir / "events.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []
    finished = events[-1].get("summary", {}) if events and events[-1]["type"] == "finished" else {}
    started = next((e for e in events if e["type"] == "started"), {})
    evals = [e for e in events if e["type"] == "eval" and e.get("policy") != "random"]
    scores = {task: round(v["score"][-1], 3) if v.get("score") else round(v["return"][-1], 1)
              for task, v in (evals[-1]["tasks"].items() if evals else [])}
    status = "cut off at the deadline" if cut else finished.get("status")
    error = (finished.get("error") or {}).get("message", "")
    if not events and (run_dir / "stdout").exists():  # died before its journal: the end of what it printed
        error = "no journal; " + " / ".join((run_dir / "stdout").read_text().strip().splitlines()[-3:])
    error = error[:300].replace("|", "/").replace("\n", " ")
    wall = finished.get("wall_s") or (events[-1]["t"] - events[0]["t"] if events else 0.0)
    steps = finished.get("steps", events[-1].get("step", 0) if events else 0)
    updates = finished.get("updates", events[-1].get("update", 0) if events else 0)
    # A run that made no update has not run the update (its CUDA graph) on the device.
    ok = (not cut and rc == 0 and finished.get("status") == "succeeded" and updates > 0
          and started.get("device", "").startswith(device))
    return (f"| {name} | {rc} | {status} | {started.get('device')} | {steps} | {updates} | {wall:.0f} | "
            f"{steps / max(wall, 1e-9):.0f} | {scores} | {error} |"), ok


def sweep_rows(home: Path, rc: int, device: str, cut: bool) -> tuple[list[str], bool]:
    """A row per run the sweep recorded (its run directories), and whether all it should
    have run succeeded."""
    rows, oks = [], []
    for run_dir in sorted((home / "runs").glob("*")) if (home / "runs").exists() else []:
        request = json.loads((run_dir / "request.json").read_text()) if (run_dir / "request.json").exists() else {}
        line, ok = row(f"sweep {request.get('actor')}/{request.get('critic')}", run_dir, rc, device, cut)
        rows.append(line)
        oks.append(ok)
    return rows, len(oks) == SWEEP_RUNS and all(oks)


def main(device: str, runs: Path, deadline_s: float) -> int:
    threads = max(1, (os.cpu_count() or 1) // (len(CELLS) + SWEEP_RUNS))  # more threads than cores: spin-waits
    node = shutil.which("node")
    start = time.monotonic()
    procs = [launch_worker(device, runs, *cell, threads) for cell in CELLS]
    if node is not None:
        procs.append(launch_sweep(device, runs / "sweep-home", node))
    cut = wait_all(procs, start + deadline_s)
    print(f"{len(CELLS)} worker runs and {'a sweep of ' + str(SWEEP_RUNS) if node else 'no sweep (no node)'} at once, "
          f"{threads} thread(s) each, tiny scale with {OVERRIDES}; {time.monotonic() - start:.0f} s in all")
    print()
    print("| run | exit | status | device | env steps | updates | wall s | env steps/s | last eval | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    oks = []
    for i, cell in enumerate(CELLS):
        line, ok = row("-".join(cell), runs / "-".join(cell), procs[i].returncode, device, i in cut)
        print(line)
        oks.append(ok)
    if node is None:
        print("| sweep | - | not run: no node on this machine, none packed (bench/gpu-check --pack) | | | | | | | |")
        oks.append(False)
    else:
        home = runs / "sweep-home"
        lines, ok = sweep_rows(home, procs[-1].returncode, device, len(CELLS) in cut)
        print("\n".join(lines))
        oks.append(ok)
        log = (home / "sweep.log").read_text().splitlines()
        table = [line for line in log if line.startswith("|")]
        print()
        print(f"amago2 sweep exited {procs[-1].returncode}; its table:" if table
              else f"amago2 sweep exited {procs[-1].returncode}; the end of what it printed:")
        print("\n".join(table or log[-10:]))
    return 0 if all(oks) else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python bench/gpu_check_runs.py DEVICE RUNS_DIR DEADLINE_S", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])))
