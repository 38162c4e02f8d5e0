"""Benchmark names -> Benchmark objects. Benchmark modules are imported only when asked for,
so a missing optional package (metaworld, ale-py, procgen, ...) only matters to the runs
that use it."""

from __future__ import annotations

import importlib
import importlib.metadata
import time
from dataclasses import dataclass, field
from typing import Any

from amago2.errors import ConfigError
from amago2.envs.base import Benchmark


@dataclass(frozen=True)
class BenchmarkEntry:
    module: str                  # amago2.envs.<module>
    function: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    packages: tuple[str, ...] = ("gymnasium",)
    """pip dists the benchmark imports: named in the install hint, listed by environment_report."""


BENCHMARKS: dict[str, BenchmarkEntry] = {
    "gym-mini": BenchmarkEntry("gym_sets", "gym_mini"),
    "ml45": BenchmarkEntry("metaworld", "ml45_benchmark", {"mini": False}, ("metaworld",)),
    "ml45-mini": BenchmarkEntry("metaworld", "ml45_benchmark", {"mini": True}, ("metaworld",)),
    "popgym": BenchmarkEntry("popgym", "popgym_benchmark", {"variant": "popgym"}, ("popgym",)),
    "popgym-rescaled": BenchmarkEntry("popgym", "popgym_benchmark", {"variant": "popgym-rescaled"},
                                      ("popgym",)),
    "popgym-mini": BenchmarkEntry("popgym", "popgym_benchmark", {"variant": "popgym-mini"}, ("popgym",)),
    "babyai": BenchmarkEntry("babyai", "babyai_benchmark", {}, ("minigrid",)),
    "atari": BenchmarkEntry("atari", "atari_benchmark", {}, ("ale-py",)),
    "procgen": BenchmarkEntry("procgen", "procgen_benchmark", {"rescaled": False}, ("procgen2", "gym")),
    "procgen-rescaled": BenchmarkEntry("procgen", "procgen_benchmark", {"rescaled": True}, ("procgen2", "gym")),
}


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def get_benchmark(name: str, benchmark_def: dict[str, Any] | None = None) -> Benchmark:
    """The benchmark called `name`, or the user-defined set `benchmark_def` named `name`.

    A benchmark whose packages are missing is a ConfigError saying how to install them
    (the benchmark module's own hint when it raises one); an ImportError with every package
    installed is raised as it is, since installing them again would not help."""
    if benchmark_def is not None:
        from amago2.envs import gym_sets
        return gym_sets.from_definition(name, benchmark_def)
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark '{name}' (known: {', '.join(sorted(BENCHMARKS))}; "
                          "or define one with benchmark_def)")
    entry = BENCHMARKS[name]
    try:
        module = importlib.import_module(f"amago2.envs.{entry.module}")
        return getattr(module, entry.function)(**entry.kwargs)
    except ImportError as e:
        missing = [d for d in entry.packages if installed_version(d) is None]
        if not missing:
            raise  # its packages are all there and one still fails to import: a broken runtime
        raise ConfigError(f"benchmark '{name}' could not be loaded ({e}); "
                          f"install it with: pip install {' '.join(missing)}") from e


def check_benchmark(name: str, benchmark_def: dict[str, Any] | None = None) -> dict[str, Any]:
    """Whether this interpreter can run benchmark `name`: it is loaded and one environment of
    it is built, reset and stepped once (every task of a user-defined set, whose tasks are
    independent Gymnasium ids). Never raises; returns a JSON-ready result:

    {"state": "ok" | "missing" | "broken" | "invalid", "error": str | None,
     "task": str | None, "seconds": float, "packages": {dist: version | None}}

    "missing": a package the benchmark needs is not installed; "broken": everything is
    installed and it still fails (a package that does not import, a missing system library);
    "invalid": the benchmark itself is wrong (an unknown name, a user-defined task whose
    Gymnasium id is not registered): its ConfigError says what.
    Building the environment is what finds a broken runtime: importing a benchmark module
    alone loads few of its packages (Meta-World's are imported when a simulator is made).
    """
    start = time.monotonic()
    packages = BENCHMARKS[name].packages if benchmark_def is None and name in BENCHMARKS else ("gymnasium",)
    task_name = None
    try:
        benchmark = get_benchmark(name, benchmark_def)
        packages = benchmark.packages
        tasks = benchmark.train_tasks if benchmark_def is not None else (benchmark.probe or benchmark.train_tasks[0],)
        for task in tasks:
            task_name = task.name
            env = task.make(0)
            try:
                env.reset(seed=0)
                env.step(env.action_space.sample())
            finally:
                env.close()
        state, error = "ok", None
    except Exception as e:  # noqa: BLE001 - the contract: report what failed, never raise
        if None in (installed_version(d) for d in packages):
            state = "missing"
        else:
            state = "invalid" if isinstance(e, ConfigError) else "broken"
        error = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
    return {"state": state, "error": error, "task": task_name, "seconds": round(time.monotonic() - start, 2),
            "packages": {d: installed_version(d) for d in packages}}
