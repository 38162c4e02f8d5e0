"""What the bench scripts print their tables with, and measure memory with."""

from __future__ import annotations

import os
from pathlib import Path


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell, separated by |."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))


def load_average() -> str:
    """The host's 1/5/15-minute load: on a shared 2-core machine other processes decide
    much of what a CPU run measures (2-thread acting most of all), so it goes with a table."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the VmHWM high-water mark to the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def _status_gib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 2 ** 20
    return float("nan")


def peak_rss_gib() -> float:
    """The process's resident high-water mark since the last reset_peak_rss()."""
    return _status_gib("VmHWM")


def rss_gib() -> float:
    """The process's resident memory now."""
    return _status_gib("VmRSS")
