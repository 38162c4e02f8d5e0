"""What the bench scripts print their tables with."""

from __future__ import annotations

import os


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
