"""Test-only entry points that fail on purpose (docs/INTERFACES.md section 5).

The worker calls ``AMAGO2_ENTRY=amago2.testing:train_with_fault`` in tests that check how
the TypeScript side survives a Python that dies, hangs or raises mid-run. The fault is
injected by wrapping ``emit``, so the real training loop runs unchanged until the fault.
``AMAGO2_FAULT`` is JSON: ``{"kind": "os_exit"|"segfault"|"sigkill"|"raise"|"hang",
"after_updates": N}``; the fault fires right after the first ``metrics`` or
``checkpoint`` event that comes N or more gradient updates after this attempt started
has been passed on, so the executor has seen that event (and a checkpoint written before
it is on disk). Counting from the attempt's start lets a retry that resumes from a
checkpoint finish when it needs fewer than N updates.

To give runs of one executor different faults (the environment is shared by all its
workers), ``AMAGO2_FAULT`` may also be a list of such objects, each with a ``"seed"``: a
run takes the entry with its request's seed, and trains normally when there is none.

Never used outside tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
from typing import Callable

Emit = Callable[[str], bool]
Train = Callable[[str, Emit], str]

FAULT_KINDS = ("os_exit", "segfault", "sigkill", "raise", "hang")
TRIGGER_EVENTS = ("metrics", "checkpoint")
# The exit status of the "os_exit" fault: distinctive, so a test can tell it apart.
OS_EXIT_CODE = 71


class InjectedFault(RuntimeError):
    """The exception the "raise" fault throws from inside the training loop."""


def read_fault(seed: int | None) -> tuple[str, int] | None:
    """The fault ``AMAGO2_FAULT`` asks for in the run with ``seed``, as (kind, after_updates)."""
    raw = os.environ.get("AMAGO2_FAULT")
    if raw is None:
        raise ValueError("AMAGO2_FAULT is not set; it is JSON like "
                         '{"kind": "os_exit", "after_updates": 2}')
    spec = json.loads(raw)
    if isinstance(spec, list):
        spec = next((entry for entry in spec if entry.get("seed") == seed), None)
        if spec is None:
            return None
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"AMAGO2_FAULT kind must be one of {', '.join(FAULT_KINDS)}; got {kind!r}")
    after = spec.get("after_updates", 0)
    if not isinstance(after, int) or after < 0:
        raise ValueError(f"AMAGO2_FAULT after_updates must be an integer >= 0; got {after!r}")
    return kind, after


def trigger(kind: str) -> None:
    """Fails the way ``kind`` says; only "raise" returns control (by raising)."""
    if kind == "os_exit":
        os._exit(OS_EXIT_CODE)
    if kind == "segfault":
        ctypes.string_at(0)  # reads address 0: a real SIGSEGV, not a signal sent to ourselves
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "raise":
        raise InjectedFault("fault injected by AMAGO2_FAULT")
    if kind == "hang":
        threading.Event().wait()  # never set: Python stays alive and silent


def with_fault(train: Train) -> Train:
    """``train`` with the fault from ``AMAGO2_FAULT`` injected through its ``emit``."""

    def train_with_fault(request_json: str, emit: Emit) -> str:
        fault = read_fault(json.loads(request_json).get("seed"))
        if fault is None:
            return train(request_json, emit)
        kind, after_updates = fault
        first_update: list[int] = []  # the update counter of this attempt's first event

        def faulty_emit(event_json: str) -> bool:
            stop = emit(event_json)
            event = json.loads(event_json)
            if not first_update:
                first_update.append(event["update"])
            done = event["update"] - first_update[0]
            if event["type"] in TRIGGER_EVENTS and done >= after_updates:
                trigger(kind)
            return stop

        return train(request_json, faulty_emit)

    return train_with_fault


def train_with_fault(request_json: str, emit: Emit) -> str:
    """``amago2.bridge.train`` with the fault from ``AMAGO2_FAULT``."""
    from amago2 import bridge  # imported here so that loading this module stays cheap

    return with_fault(bridge.train)(request_json, emit)
