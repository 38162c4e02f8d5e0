"""Bench-only entry point (AMAGO2_ENTRY=emit_probe:train, PYTHONPATH=bench): the real
amago2.bridge.train, with the time Python spends blocked in `emit` (the bridge callback and
the worker's IPC forward) added up and written to <run_dir>/emit_timing.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

from amago2 import bridge


def train(request_json: str, emit) -> str:
    spent = {"emit_s": 0.0, "events": 0}

    def timed_emit(line: str):
        start = time.perf_counter()
        try:
            return emit(line)
        finally:
            spent["emit_s"] += time.perf_counter() - start
            spent["events"] += 1

    summary = bridge.train(request_json, timed_emit)
    Path(json.loads(request_json)["run_dir"], "emit_timing.json").write_text(json.dumps(spent))
    return summary
