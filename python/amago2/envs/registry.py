"""Benchmark names -> Benchmark objects. Benchmark modules are imported only when asked for,
so a missing optional package (metaworld, ale-py, procgen, ...) only matters to the runs
that use it."""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any

from amago2.config import ConfigError
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
    (the benchmark module's own hint when it raises one)."""
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
        missing = [d for d in entry.packages if installed_version(d) is None] or list(entry.packages)
        raise ConfigError(f"benchmark '{name}' could not be loaded ({e}); "
                          f"install it with: pip install {' '.join(missing)}") from e
