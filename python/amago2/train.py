"""The training loop: collect, update, evaluate; checkpoint; resume.

One epoch = every actor steps `steps_per_epoch` times (fewer in the last epoch, so the run
stops at `total_steps`), then `updates_per_epoch` gradient updates (skipped while the
replay is empty), then an evaluation every `eval_every_epochs` epochs and after the last.
Before its first epoch a fresh run evaluates twice at step 0: the untrained agent (AMAGO's
learn loop also evaluates before its first epoch) and uniform random play over the union
action space (`policy: "random"`), the floor the run's scores are read against.

Checkpoints (`ckpt/latest.pt`, tmp + rename) every `ckpt_every_updates` updates, on stop
and at the end hold the learner state, the counters, every RNG state (python, numpy,
torch CPU/CUDA, the replay's and the collector's generators) and the replay's next file
index. Resuming reloads all of it and continues mid-epoch; the actors start fresh trials
(an env's internal state cannot be saved, so a trial unfinished at the checkpoint is
lost). When trials end exactly at the checkpoint, as at an epoch boundary with trials
whose length divides steps_per_epoch, a stopped-and-resumed run equals an unbroken one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import random
import time as clock
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from amago2.collect import Collector, evaluate
from amago2.config import RunConfig
from amago2.errors import ConfigError
from amago2.envs.registry import get_benchmark, installed_version
from amago2.envs.spaces import layout_for_tasks
from amago2.replay import TrajectoryReplay
from amago2.task_metrics import TaskMetricsWindow

HEARTBEAT_S = 10.0


class Journal(Protocol):
    """Where events go (bridge.RunJournal). `event` returns nothing; a true reply of the
    host to any event sets `stop_requested`."""

    stop_requested: bool

    def event(self, type: str, step: int, update: int, **fields: Any) -> None: ...


@dataclass
class Counters:
    env_steps: int = 0
    updates: int = 0
    epoch: int = 0
    epoch_actor_steps: int = 0
    """Steps each actor has taken in the current epoch."""
    epoch_updates: int = 0
    """Updates done in the current epoch."""


def pick_device(requested: str) -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device("cuda", torch.cuda.current_device())


def versions(packages: tuple[str, ...], device: torch.device) -> dict[str, str | None]:
    """What a run used: Python, torch (and the CUDA it was built for), numpy, the benchmark's
    packages; on a GPU, which one (its model, compute capability, cuDNN, and which of the
    machine's GPUs it was: CUDA_VISIBLE_DEVICES)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__,
                                  "cuda": torch.version.cuda, "numpy": np.__version__}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        out.update({"gpu": torch.cuda.get_device_name(device), "gpu_capability": f"{major}.{minor}",
                    "cudnn": str(torch.backends.cudnn.version()),
                    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})
    out.update({dist: installed_version(dist) for dist in ("gymnasium", *packages)})
    return out


def atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def checkpoint_path(run_dir: Path) -> Path:
    """Where a run keeps its checkpoint: while it exists, the run resumes from it."""
    return run_dir / "ckpt" / "latest.pt"


class Trainer:
    def __init__(self, cfg: RunConfig, journal: Journal, kept_settings: dict[str, list[Any]] | None = None):
        """kept_settings: the settings a resumed run kept from its first attempt where
        amago2 now resolves others ({key: [kept, resolved now]}, config.keep_recorded_settings);
        the started event reports them."""
        from amago2.agent import Agent  # the heavy part; imported once a run starts
        from amago2.learner import Learner

        self.cfg, self.journal = cfg, journal
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_path = checkpoint_path(self.run_dir)
        self.device = pick_device(cfg.device)
        self.benchmark = get_benchmark(cfg.benchmark, cfg.benchmark_def)
        resumed = self.ckpt_path.exists()
        self.counters = Counters()
        self.last_beat = clock.monotonic()
        self.started_at = clock.perf_counter()
        self.seconds = {"update": 0.0, "sample": 0.0, "eval": 0.0, "checkpoint": 0.0, "events": 0.0}
        """Time this attempt spent on each part of the loop besides collecting (the
        collector keeps its own): reported as time/<part>_s with every collect phase."""
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        b, t = self.benchmark, cfg.train
        self.train_tasks = list(enumerate(b.train_tasks))
        self.test_tasks = [(len(b.train_tasks) + i, s) for i, s in enumerate(b.eval_tasks)]
        # Held-out tasks share the layout so the trained network can be evaluated on them.
        self.layout = layout_for_tasks([*b.train_tasks, *b.eval_tasks], seed=cfg.seed)
        self.agent = Agent(cfg.agent, self.layout.observation_space, self.layout.action_space).to(self.device)
        self.learner = Learner(self.agent, t, num_tasks=len(b.train_tasks))
        self.replay = TrajectoryReplay(self.run_dir / "replay", cfg.agent.max_seq_len,
                                       t.replay_max_steps, t.replay_max_trajectories)
        self.replay_rng = np.random.default_rng(cfg.seed + 1)
        self.collector = Collector(self.agent, self.layout, self.train_tasks, b.k, b.horizon,
                                   t.parallel_actors, self.replay, t, cfg.seed + 2, self.device)
        if resumed:
            self._load()
        else:
            self.replay.restore(0)  # a fresh run owns an empty buffer
        # Emitted once set up, so that a resumed run's event carries its restored counters.
        self.event("started", resumed=resumed, config=cfg.to_json(), total_steps=cfg.train.total_steps,
                   kept_settings=kept_settings or {},
                   versions=versions(self.benchmark.packages, self.device), device=str(self.device), pid=os.getpid())

    # -- checkpoints -------------------------------------------------------------------
    def _rng_state(self) -> dict[str, Any]:
        state = {"python": random.getstate(), "numpy": np.random.get_state(),
                 "torch": torch.get_rng_state(), "replay": self.replay_rng.bit_generator.state,
                 "collector": self.collector.rng.bit_generator.state}
        if self.device.type == "cuda":  # this run's GPU only: a resume may see other GPUs, or none
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def checkpoint(self) -> None:
        start = clock.perf_counter()
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"learner": self.learner.state_dict(), "counters": dataclasses.asdict(self.counters),
                   "replay_next_index": self.replay.next_index, "rng": self._rng_state(),
                   "config": self.cfg.to_json()}
        atomic_write_bytes(self.ckpt_path, lambda f: torch.save(payload, f))
        self.seconds["checkpoint"] += clock.perf_counter() - start
        self.event("checkpoint", path=str(self.ckpt_path))

    def _load(self) -> None:
        payload = torch.load(self.ckpt_path, map_location=self.device, weights_only=False)
        self.learner.load_state_dict(payload["learner"])
        self.counters = Counters(**payload["counters"])
        self.replay.restore(payload["replay_next_index"])
        rng = payload["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"].cpu())
        # A list is an older checkpoint's state of every visible GPU, written by CPU runs
        # too: it is not this run's generator, so it is left alone.
        if isinstance(rng.get("cuda"), torch.Tensor) and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"].cpu(), self.device)
        self.replay_rng.bit_generator.state = rng["replay"]
        self.collector.rng.bit_generator.state = rng["collector"]

    # -- events ------------------------------------------------------------------------
    def event(self, type: str, **fields: Any) -> None:
        start = clock.perf_counter()
        self.journal.event(type, self.counters.env_steps, self.counters.updates, **fields)
        self.seconds["events"] += clock.perf_counter() - start

    def time_shares(self) -> dict[str, float]:
        """time/<part>_s: the seconds this attempt has spent on each part of the loop, and
        time/wall_s in all (bench/loop.py reads them; so does the dry run's cost model)."""
        parts = {**self.collector.seconds, **self.seconds}
        out = {f"time/{part}_s": value for part, value in parts.items()}
        out["time/wall_s"] = clock.perf_counter() - self.started_at
        return out

    def tick(self) -> None:
        """A heartbeat at most every HEARTBEAT_S seconds, so a live run is told from a hung one."""
        if clock.monotonic() - self.last_beat >= HEARTBEAT_S:
            self.heartbeat()

    def heartbeat(self) -> None:
        self.event("heartbeat")
        self.last_beat = clock.monotonic()

    # -- phases ------------------------------------------------------------------------
    def _collect_phase(self) -> None:
        c, t = self.counters, self.cfg.train
        left_total = math.ceil(max(0, t.total_steps - c.env_steps) / t.parallel_actors)
        todo = min(t.steps_per_epoch - c.epoch_actor_steps, left_total)
        if todo <= 0:
            return
        start = clock.monotonic()
        taken = self.collector.collect(todo, c.env_steps, lambda: self.journal.stop_requested, self.tick)
        c.env_steps += taken
        c.epoch_actor_steps += taken // t.parallel_actors
        if taken == 0:  # stopped before the first step
            return
        seconds = clock.monotonic() - start
        metrics = {"perf/env_steps_per_s": taken / max(seconds, 1e-9), "perf/collect_s": seconds,
                   "replay/trajectories": float(len(self.replay)),
                   "replay/steps": float(self.replay.total_steps), **self.time_shares()}
        returns = self.collector.drain_episode_returns()
        if returns:
            metrics["collect/episode_return"] = float(np.mean(returns))
        self.event("metrics", metrics=metrics)

    def _update_phase(self) -> None:
        c, t = self.counters, self.cfg.train
        if len(self.replay) == 0:
            c.epoch_updates = t.updates_per_epoch
            return
        window: dict[str, torch.Tensor] = {}
        by_task = TaskMetricsWindow([spec.name for _, spec in self.train_tasks])
        window_n, window_s = 0, 0.0
        while c.epoch_updates < t.updates_per_epoch and not self.journal.stop_requested:
            sampling = clock.perf_counter()
            batch = self.replay.sample(t.batch_size, self.replay_rng)  # the learner moves it
            updating = clock.perf_counter()
            metrics = self.learner.update(batch)
            self.seconds["sample"] += updating - sampling
            self.seconds["update"] += clock.perf_counter() - updating
            measured = {name[len("task/"):]: metrics.pop(name) for name in list(metrics) if name.startswith("task/")}
            if measured:
                by_task.add(measured)
            for name, value in metrics.items():  # summed on device: no sync per update
                value = torch.as_tensor(value, dtype=torch.float32).detach()
                window[name] = window[name] + value if name in window else value
            c.updates += 1
            c.epoch_updates += 1
            window_n += 1
            window_s += clock.perf_counter() - sampling
            if c.updates % t.log_every_updates == 0:
                flat = {name: float(v.item()) / window_n for name, v in window.items()}
                flat.update({"perf/updates_per_s": window_n / max(window_s, 1e-9), "perf/learner_s": window_s})
                flat.update(by_task.flush())
                self.event("metrics", metrics=flat)
                window, window_n, window_s = {}, 0, 0.0
            if t.ckpt_every_updates > 0 and c.updates % t.ckpt_every_updates == 0:
                self.checkpoint()
            self.tick()

    def _evaluate(self, random_play: bool = False) -> bool:
        """Evaluate every split and record it; False when a stop request cut it short (what
        it had not finished is not recorded: the resumed run evaluates again)."""
        t, b = self.cfg.train, self.benchmark
        # Random play and the untrained agent at step 0 share a seed: the same task
        # variants and env resets, so the two are compared pair by pair.
        seed = self.cfg.seed * 1_000_003 + self.counters.epoch
        for split, tasks in (("train", self.train_tasks), ("test", self.test_tasks)):
            if tasks:
                start = clock.perf_counter()
                report = evaluate(self.agent, self.layout, tasks, b.k, b.horizon, t.eval_trials_per_task, seed,
                                  self.device, self.tick, random_play, lambda: self.journal.stop_requested)
                self.seconds["eval"] += clock.perf_counter() - start
                if report is None:
                    return False
                extra = {"policy": "random"} if random_play else {}
                self.event("eval", split=split, tasks=report, **extra)
        return True

    def run(self) -> str:
        """Train until total_steps or a stop request. Returns "succeeded" or "stopped"."""
        c, t = self.counters, self.cfg.train
        try:
            # Not after a stop request (a stop goes straight to its checkpoint); if one comes
            # during them, the resumed run measures both again, and the tables and curves
            # keep the later measurement at a step.
            if c.env_steps == 0 and c.updates == 0 and not self.journal.stop_requested:
                if self._evaluate(random_play=True):
                    self._evaluate()
            # An epoch stopped part-way resumes where it was, the last one too: its
            # remaining updates and its evaluation are still to do.
            while not self.journal.stop_requested and not self._finished():
                self._collect_phase()
                if self.journal.stop_requested:
                    break
                self._update_phase()
                if self.journal.stop_requested:
                    break
                last = c.env_steps >= t.total_steps
                # A stop during this evaluation leaves the epoch open: the resumed run has
                # no steps or updates left in it, and evaluates again.
                if (last or (t.eval_every_epochs > 0 and (c.epoch + 1) % t.eval_every_epochs == 0)) and not self._evaluate():
                    break
                c.epoch += 1
                c.epoch_actor_steps = 0
                c.epoch_updates = 0
                self.heartbeat()
            if not self.journal.stop_requested:  # a stop goes straight to its checkpoint
                self.event("metrics", metrics=self.time_shares())  # the attempt's whole loop
            self.checkpoint()
        finally:
            self.collector.close()
        return "succeeded" if self._finished() else "stopped"

    def _finished(self) -> bool:
        """Every step taken and the last epoch closed: its updates and its evaluation done."""
        return self.counters.env_steps >= self.cfg.train.total_steps and self.counters.epoch_actor_steps == 0
