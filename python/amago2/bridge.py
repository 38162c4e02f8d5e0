"""The only surface the TypeScript side calls (docs/INTERFACES.md sections 1-3).

Every function takes and returns JSON strings: pythonia's `.valueOf()` on a non-JSON object
kills Python, so nothing else ever crosses. `train` never raises.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import platform
import signal
import sys
import threading
import time as clock
import traceback
from pathlib import Path
from typing import Any, Callable

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the Node worker) dies: pythonia
    leaves Python running if Node is SIGKILLed, and an orphaned trainer holds a GPU."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_die_with_parent()

Emit = Callable[[str], Any]


# How long a run waits for an earlier process still writing its directory, and how often
# it looks. Such a writer is a worker that outlived its amago2 and is checkpointing on its
# way out (seconds); one still there after this long is not stopping.
WRITER_WAIT_S = 120.0
WRITER_POLL_S = 0.2


class RunBusy(RuntimeError):
    """Another live process writes this run's directory."""


def _hold_run_dir(run_dir: Path) -> Any:
    """Take `<run_dir>/writer.lock` (flock, exclusive) for as long as this process writes
    the run; returns the open lock file, which holds it until closed or this process dies.

    The store's claims say which amago2 owns a run, but a worker whose amago2 was killed
    keeps writing until its checkpoint, and if the kill came between the claim and the
    record of the worker's pid, nothing in the store says it exists. Two writers would
    number their events alike and resume each other's checkpoints; so the second waits.
    """
    lock = open(run_dir / "writer.lock", "a+", encoding="utf-8")
    deadline = clock.monotonic() + WRITER_WAIT_S
    announced = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "a process"
            if clock.monotonic() > deadline:
                lock.close()
                raise RunBusy(f"{holder} still writes {run_dir} after {WRITER_WAIT_S:.0f} s; "
                              "stop it, then run the same command again") from None
            if not announced:
                print(f"amago2: waiting for {holder}, which still writes {run_dir}", file=sys.stderr, flush=True)
                announced = True
            clock.sleep(WRITER_POLL_S)
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                lock.close()
                raise
            # A filesystem without locks (Lustre mounted without `flock`, some NFS setups):
            # the store's claims are then the only guard, as they were before this lock.
            print(f"amago2: {run_dir} cannot be locked ({e.strerror}); a run's leftover worker "
                  "is not waited for here", file=sys.stderr, flush=True)
            break
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()} on {platform.node()}\n")
    lock.flush()
    return lock


class RunJournal:
    """`<run_dir>/events.jsonl`: each event is appended and flushed, then passed to emit.

    Opening it takes the run directory for this process (`_hold_run_dir`), waiting for any
    earlier writer to finish. Then a torn last line (a crash mid-write) is cut off and `seq`
    continues after the last complete event, so a resumed run's events follow the dead run's.
    """

    def __init__(self, run_dir: Path, emit: Emit | None):
        run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = _hold_run_dir(run_dir)
        self.path = run_dir / "events.jsonl"
        self.emit = emit
        self.stop_requested = False
        self.seq = self._recover()
        self.file = open(self.path, "a", encoding="utf-8")

    def _recover(self) -> int:
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(len(complete))
        for line in reversed(complete.splitlines()):
            try:
                return int(json.loads(line)["seq"]) + 1
            except (ValueError, KeyError, TypeError):
                continue  # an unreadable complete line: look further back
        return 0

    def event(self, type: str, step: int, update: int, **fields: Any) -> None:
        record = {"seq": self.seq, "t": clock.time(), "type": type, "step": int(step),
                  "update": int(update), **fields}
        line = json.dumps(record)
        self.file.write(line + "\n")
        self.file.flush()
        self.seq += 1
        if self.emit is not None and self.emit(line) is True:
            self.stop_requested = True

    def close(self) -> None:
        self.file.close()
        self.lock.close()


def _error_info(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc))}


def train(request_json: str, emit: Emit | None = None) -> str:
    """Run one training run to its end, a stop request or an error; return the summary JSON."""
    start = clock.monotonic()
    journal: RunJournal | None = None
    trainer = None
    restore_signals: Callable[[], None] = lambda: None
    summary: dict[str, Any] = {"status": "failed", "steps": 0, "updates": 0, "wall_s": 0.0, "error": None}
    try:
        from amago2.config import resolve_config
        from amago2.errors import ConfigError

        try:
            request = json.loads(request_json)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"run request is not valid JSON ({e})") from e
        if not isinstance(request, dict):
            raise ConfigError("run request must be a JSON object")
        run_dir = request.get("run_dir")
        if not isinstance(run_dir, str) or not os.path.isabs(run_dir):
            raise ConfigError(f"run request needs 'run_dir', an absolute path; got {run_dir!r}")
        journal = RunJournal(Path(run_dir), emit)
        restore_signals = _stop_on_signals(journal)
        cfg = resolve_config(request)

        from amago2.train import Trainer

        cfg, kept = _settings_to_resume(cfg, Path(run_dir))
        _write_config(Path(run_dir), cfg.to_json())
        trainer = Trainer(cfg, journal, kept_settings=kept)
        summary["status"] = trainer.run()
    except Exception as exc:  # noqa: BLE001 - the contract: report, never raise
        summary["error"] = _error_info(exc)
        summary["status"] = "failed"
        if journal is not None:
            _report_error(journal, trainer, summary["error"])
    restore_signals()
    if trainer is not None:
        summary["steps"] = trainer.counters.env_steps
        summary["updates"] = trainer.counters.updates
    summary["wall_s"] = clock.monotonic() - start
    if journal is not None:
        step, update = summary["steps"], summary["updates"]
        try:
            journal.event("finished", step, update, summary=summary)
        except Exception:  # noqa: BLE001 - the host is gone; the journal has the event
            pass
        journal.close()
    return json.dumps(summary)


def _stop_on_signals(journal: RunJournal) -> Callable[[], None]:
    """Make SIGINT and SIGTERM (Slurm's scancel and preemption) a clean stop, checkpoint
    first, for the duration of the run; returns what puts the old handlers back. Handlers
    can only be set from the main thread, where pythonia runs its calls."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request_stop(signum, frame) -> None:
        journal.stop_requested = True

    for sig in previous:
        signal.signal(sig, request_stop)
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def _report_error(journal: RunJournal, trainer, error: dict[str, str]) -> None:
    step = trainer.counters.env_steps if trainer is not None else 0
    update = trainer.counters.updates if trainer is not None else 0
    try:
        journal.event("error", step, update, error_type=error["type"], message=error["message"],
                      traceback=error["traceback"])
    except Exception:  # noqa: BLE001 - emit itself failed: the line is in the journal
        pass


def _settings_to_resume(cfg: Any, run_dir: Path) -> tuple[Any, dict[str, list[Any]]]:
    """(cfg, kept): for a run that will resume (a checkpoint and a recorded config in its
    directory), cfg with the settings its first attempt recorded, and those that differ
    from today's resolution {key: [kept, resolved now]} (config.keep_recorded_settings);
    for a fresh run, cfg as it is and {}."""
    from amago2.config import keep_recorded_settings
    from amago2.train import checkpoint_path

    recorded = run_dir / "config.json"
    if not (checkpoint_path(run_dir).exists() and recorded.exists()):
        return cfg, {}
    return keep_recorded_settings(cfg, json.loads(recorded.read_text(encoding="utf-8")))


def _write_config(run_dir: Path, config: dict[str, Any]) -> None:
    tmp = run_dir / ".tmp-config.json"
    tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / "config.json")


def describe() -> str:
    """Benchmarks (tasks, k, horizon, packages, install state, presets), objectives, scales
    and hyperparameter defaults, for `amago2 benchmarks` and sweep validation."""
    import dataclasses

    from amago2 import presets
    from amago2.config import OBJECTIVES, SCALES, AgentConfig, TrainConfig
    from amago2.errors import ConfigError
    from amago2.envs import registry

    benchmarks = {}
    for name in sorted(registry.BENCHMARKS):
        info: dict[str, Any] = {"tasks": [], "eval_tasks": [], "k": None, "horizon": None,
                                "packages": list(registry.BENCHMARKS[name].packages),
                                "installed": False, "install_hint": None,
                                "presets": {s: presets.preset_for(name, s) for s in SCALES}}
        try:
            b = registry.get_benchmark(name)
            info.update(tasks=[t.name for t in b.train_tasks], eval_tasks=[t.name for t in b.eval_tasks],
                        k=b.k, horizon=b.horizon, packages=list(b.packages), installed=True)
        except ConfigError as e:
            info["install_hint"] = str(e)
        except ImportError as e:  # installed but broken: check_benchmarks says what to do
            info["install_hint"] = f"{type(e).__name__}: {e}"
        benchmarks[name] = info
    defaults = {**dataclasses.asdict(AgentConfig()), **dataclasses.asdict(TrainConfig())}
    return json.dumps({"benchmarks": benchmarks, "objectives": list(OBJECTIVES), "scales": list(SCALES),
                       "hyperparameters": defaults})


def resolve_run(request_json: str) -> str:
    """The full config a run request resolves to, exactly as a fresh run records it, for the
    CLI to check and show before anything is recorded: {"config": ..., "preset_keys": the
    keys the benchmark's preset at the run's scale sets, in the preset's order,
    "replaced_by_scale": presets.scale_replacements(...), "kept_settings": what the run
    keeps from its first attempt if it resumes, as train() will ({key: [kept, resolved
    now]}, {} for a fresh run)}, or {"error": the ConfigError's message, "keys": the
    settings it is about}."""
    from amago2 import presets
    from amago2.config import resolve_config
    from amago2.errors import ConfigError

    request = json.loads(request_json)
    try:
        cfg = resolve_config(request)
    except ConfigError as e:
        return json.dumps({"error": str(e), "keys": list(e.keys)})
    _, kept = _settings_to_resume(cfg, Path(request["run_dir"]))
    return json.dumps({"config": cfg.to_json(),
                       "preset_keys": list(presets.preset_for(cfg.benchmark, cfg.scale, cfg.benchmark_def)),
                       "replaced_by_scale": presets.scale_replacements(cfg.benchmark_def, cfg.scale),
                       "kept_settings": kept})


def resolve_runs(requests_json: str) -> str:
    """resolve_run for each request of a JSON list, in one call: the CLI checks every
    combination of a sweep's hyperparameter axes before it records anything."""
    return "[" + ",".join(resolve_run(json.dumps(request)) for request in json.loads(requests_json)) + "]"


def check_benchmarks(request_json: str) -> str:
    """Whether each benchmark asked for can run here, one environment of it built and stepped
    (`envs.registry.check_benchmark`), for `amago2 doctor`, `setup` and the check `sweep`
    makes before it records anything. Takes {"benchmarks": [{"name", "benchmark_def"?}]} or
    {"benchmarks": "all"} (every built-in one); returns [{"name", **check result}] in order."""
    from amago2.envs import registry

    asked = json.loads(request_json)["benchmarks"]
    if asked == "all":
        asked = [{"name": name} for name in sorted(registry.BENCHMARKS)]
    return json.dumps([{"name": b["name"], **registry.check_benchmark(b["name"], b.get("benchmark_def"))}
                       for b in asked])


def environment_report() -> str:
    """Python, torch and CUDA, for `amago2 doctor` (benchmark packages: check_benchmarks)."""
    import torch

    cuda = torch.cuda.is_available()
    return json.dumps({
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": {"available": cuda, "version": torch.version.cuda,
                 "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []},
    })


def procgen_report() -> str:
    """The versions of a Procgen runtime, once one game has started, for `amago2 setup
    --procgen` and `amago2 doctor`. procgen is imported first, so an interpreter without it
    fails before torch loads; starting a game loads procgen's prebuilt library, which
    `import procgen` alone does not: that library links the system's libGL and GLib, so a
    machine without them is found out here rather than in the middle of a run."""
    import importlib.metadata

    from procgen import ProcgenGym3Env

    import torch

    ProcgenGym3Env(num=1, env_name="coinrun").close()
    versions = {dist: importlib.metadata.version(dist) for dist in ("numpy", "gym", "procgen2")}
    return json.dumps({"python": platform.python_version(), "torch": torch.__version__, **versions})
