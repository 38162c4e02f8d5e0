"""The test-only fault injection (amago2/testing.py): which run fails, and when."""

from __future__ import annotations

import json

import pytest

from amago2.testing import InjectedFault, read_fault, with_fault


def scripted_train(updates: list[int], seed: int = 0):
    """A stand-in train that emits one metrics event per entry of `updates`."""

    def train(request_json: str, emit) -> str:
        for seq, update in enumerate(updates):
            emit(json.dumps({"seq": seq, "type": "metrics", "step": 0, "update": update}))
        return json.dumps({"status": "succeeded"})

    return train


def request(seed: int = 0) -> str:
    return json.dumps({"run_dir": "/tmp/x", "seed": seed})


def test_raise_fires_after_the_given_updates_of_this_attempt(monkeypatch):
    monkeypatch.setenv("AMAGO2_FAULT", json.dumps({"kind": "raise", "after_updates": 2}))
    seen: list[int] = []
    emit = lambda line: seen.append(json.loads(line)["update"]) or False
    # A resumed attempt starting at update 5: the fault counts from there, not from 0.
    with pytest.raises(InjectedFault):
        with_fault(scripted_train([5, 6, 7, 8]))(request(), emit)
    assert seen == [5, 6, 7]  # the triggering event was passed on before the fault


def test_an_attempt_needing_fewer_updates_finishes(monkeypatch):
    monkeypatch.setenv("AMAGO2_FAULT", json.dumps({"kind": "raise", "after_updates": 3}))
    summary = with_fault(scripted_train([2, 3, 4]))(request(), lambda line: False)
    assert json.loads(summary)["status"] == "succeeded"


def test_a_list_gives_each_seed_its_fault(monkeypatch):
    faults = [{"seed": 1, "kind": "os_exit"}, {"seed": 2, "kind": "hang", "after_updates": 4}]
    monkeypatch.setenv("AMAGO2_FAULT", json.dumps(faults))
    assert read_fault(1) == ("os_exit", 0)
    assert read_fault(2) == ("hang", 4)
    assert read_fault(3) is None
    summary = with_fault(scripted_train([0, 1]))(request(seed=3), lambda line: False)
    assert json.loads(summary)["status"] == "succeeded"


@pytest.mark.parametrize("spec", [{"kind": "explode"}, {"kind": "raise", "after_updates": -1}])
def test_a_bad_fault_is_refused(monkeypatch, spec):
    monkeypatch.setenv("AMAGO2_FAULT", json.dumps(spec))
    with pytest.raises(ValueError):
        read_fault(0)
