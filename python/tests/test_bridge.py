"""bridge.py: the journal, bad input through train(), describe and environment_report
(docs/INTERFACES.md sections 1-3)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from amago2 import bridge
import bandit_env
from loop_fixtures import bandit_request, never_stop, read_events, train

torch.set_num_threads(1)  # tiny models on a shared 2-core machine: threads only contend


def test_events_reach_the_journal_before_emit(tmp_path):
    seen = []

    def emit(line: str) -> bool:
        on_disk = (tmp_path / "events.jsonl").read_text().splitlines()
        assert on_disk[-1] == line  # written and flushed first
        seen.append(json.loads(line))
        return False

    summary = json.loads(bridge.train(json.dumps(bandit_request(tmp_path, steps=24)), emit))
    assert summary["status"] == "succeeded" and summary["error"] is None
    assert seen == read_events(tmp_path)
    types = [e["type"] for e in seen]
    assert types[0] == "started" and types[-2:] == ["checkpoint", "finished"]
    assert {"metrics", "eval", "heartbeat"} <= set(types)
    started = seen[0]
    assert started["device"] == "cpu" and started["pid"] == os.getpid() and not started["resumed"]
    assert {"python", "torch", "cuda", "numpy", "gymnasium"} <= set(started["versions"])
    assert started["versions"]["torch"] == torch.__version__
    assert all(isinstance(e["t"], float) and e["step"] >= 0 and e["update"] >= 0 for e in seen)
    # The per-task measurements reach the journal under the task's name; one task has it all.
    task = f"task/bandit_env:{bandit_env.ENV_ID}"
    measured = [e["metrics"] for e in seen if e["type"] == "metrics" and f"{task}/critic_grad_share" in e["metrics"]]
    assert measured and all(m[f"{task}/critic_grad_share"] == 1.0 and m[f"{task}/step_share"] == 1.0 for m in measured)
    assert {f"{task}/{q}" for q in ("critic_loss", "actor_loss", "actor_grad_share", "value_scale", "filter_pass")} <= set(measured[0])
    assert seen[-1]["summary"] == summary


def test_a_torn_last_line_is_dropped_and_seq_continues(tmp_path):
    journal = bridge.RunJournal(tmp_path, None)
    for _ in range(3):
        journal.event("heartbeat", 0, 0)
    journal.close()
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('{"seq": 3, "t": 1.0, "ty')  # the process died mid-write
    again = bridge.RunJournal(tmp_path, None)
    again.event("heartbeat", 5, 1)
    again.close()
    events = read_events(tmp_path)
    assert [e["seq"] for e in events] == [0, 1, 2, 3] and events[-1]["step"] == 5


# A process that holds a run directory as a worker does: it opens the journal, writes two
# events, says "held", and on a line from stdin writes two more and exits.
HOLDER = """
import sys
from pathlib import Path
from amago2 import bridge
journal = bridge.RunJournal(Path(sys.argv[1]), None)
journal.event("heartbeat", 1, 0)
journal.event("heartbeat", 2, 0)
print("held", flush=True)
sys.stdin.readline()
journal.event("heartbeat", 3, 0)
journal.event("heartbeat", 4, 0)
journal.close()
"""

# A second writer of the same run: one event, tagged with step 99.
SECOND_WRITER = """
import sys
from pathlib import Path
from amago2 import bridge
journal = bridge.RunJournal(Path(sys.argv[1]), None)
journal.event("heartbeat", 99, 0)
journal.close()
"""


def _python(script: str, run_dir, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", script, str(run_dir)], env=env, text=True, **popen)


def test_a_second_writer_waits_for_the_first_and_numbers_its_events_after_it(tmp_path):
    # A worker that outlived its amago2 is still writing when the next worker of the run
    # starts: the second waits for the first to be gone, then continues its numbering.
    holder = _python(HOLDER, tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == "held\n"
    second = _python(SECOND_WRITER, tmp_path, stderr=subprocess.PIPE)
    waiting = second.stderr.readline()  # said before it reads the journal, not after
    assert waiting.startswith(f"amago2: waiting for pid {holder.pid} on "), waiting
    holder.communicate("go\n")
    second.communicate()
    assert (holder.returncode, second.returncode) == (0, 0)
    events = read_events(tmp_path)
    assert [(e["seq"], e["step"]) for e in events] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 99)]


def test_a_writer_that_does_not_stop_fails_the_run_without_touching_its_journal(tmp_path, monkeypatch):
    holder = _python(HOLDER, tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == "held\n"
        before = (tmp_path / "events.jsonl").read_bytes()
        monkeypatch.setattr(bridge, "WRITER_WAIT_S", 0.0)
        summary = train(bandit_request(tmp_path, steps=24))
        assert summary["status"] == "failed" and summary["error"]["type"] == "RunBusy"
        assert summary["error"]["message"].startswith(f"pid {holder.pid} on ")
        assert "run the same command again" in summary["error"]["message"]
        assert (tmp_path / "events.jsonl").read_bytes() == before
        assert not (tmp_path / "config.json").exists()
    finally:
        holder.communicate("go\n")


@pytest.mark.parametrize("change, error_type, message", [
    ({"benchmark": "nope", "benchmark_def": None}, "ConfigError", "unknown benchmark 'nope'"),
    ({"actor": "foo"}, "ConfigError", "actor must be one of dep, ind; got 'foo'"),
    ({"steps": -5}, "ConfigError", "total_steps must be positive; got -5"),
    ({"overrides": {"learning_rate": 1}}, "ConfigError", "unknown hyperparameter 'learning_rate'"),
    ({"overrides": {"actor": "ind"}}, "ConfigError", "overrides may not set 'actor'"),
    ({"benchmark_def": {"tasks": [{"env_id": "NoSuchEnv-v0"}]}}, "ConfigError", "NoSuchEnv-v0"),
])
def test_bad_config_is_a_failed_summary_and_an_error_event(tmp_path, change, error_type, message):
    request = {**bandit_request(tmp_path, steps=24), **change}
    summary = json.loads(bridge.train(json.dumps(request), never_stop))
    assert summary["status"] == "failed" and summary["updates"] == 0
    assert summary["error"]["type"] == error_type and message in summary["error"]["message"]
    events = read_events(tmp_path)
    assert [e["type"] for e in events] == ["error", "finished"]
    assert events[0]["error_type"] == error_type and message in events[0]["message"]
    assert "Traceback" in events[0]["traceback"]
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "replay").exists()


@pytest.mark.parametrize("request_json, message", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "must be a JSON object"),
    ('{"benchmark": "gym-mini"}', "needs 'run_dir', an absolute path"),
])
def test_unusable_requests_fail_without_a_journal(request_json, message):
    summary = json.loads(bridge.train(request_json, never_stop))
    assert summary["status"] == "failed" and message in summary["error"]["message"]


def test_an_exception_mid_run_is_reported_not_raised(tmp_path):
    def emit(line: str) -> bool:
        if json.loads(line)["type"] == "metrics" and json.loads(line)["update"] > 0:
            raise RuntimeError("the host broke")
        return False

    summary = json.loads(bridge.train(json.dumps(bandit_request(tmp_path, steps=48)), emit))
    assert summary["status"] == "failed" and summary["error"]["message"] == "the host broke"
    assert summary["updates"] == 4
    events = read_events(tmp_path)
    assert [e["type"] for e in events[-2:]] == ["error", "finished"]
    assert "RuntimeError: the host broke" in events[-2]["traceback"]


def test_python_dies_with_its_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    sig = ctypes.c_int(0)
    assert libc.prctl(2, ctypes.byref(sig), 0, 0, 0) == 0  # PR_GET_PDEATHSIG
    assert sig.value == signal.SIGKILL


def test_describe_and_environment_report_are_json():
    described = json.loads(bridge.describe())
    mini = described["benchmarks"]["gym-mini"]
    assert mini["installed"] and mini["k"] == 2 and "CartPole-v1" in mini["tasks"]
    assert set(mini["presets"]) == {"tiny", "cpu", "small", "paper"}
    assert described["objectives"] == ["dep", "ind"] and described["hyperparameters"]["lr"] == 1e-4
    report = json.loads(bridge.environment_report())
    assert report["torch"] == torch.__version__
    assert report["cuda"]["available"] == torch.cuda.is_available()
    assert len(report["cuda"]["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)


def test_a_stop_at_the_first_event_checkpoints_before_finishing(tmp_path):
    summary = json.loads(bridge.train(json.dumps(bandit_request(tmp_path, steps=24)), lambda line: True))
    assert summary["status"] == "stopped" and (summary["steps"], summary["updates"]) == (0, 0)
    assert [e["type"] for e in read_events(tmp_path)] == ["started", "checkpoint", "finished"]
    assert (tmp_path / "ckpt" / "latest.pt").exists()


def test_a_resumed_run_keeps_the_settings_it_started_with(tmp_path):
    """A run's key is its request, so an upgrade that resolves the same request to other
    settings must not change a run half-way: the resume keeps the recorded ones and says so."""
    request = bandit_request(tmp_path, steps=24)
    assert train(request, lambda line: True)["status"] == "stopped"
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["train"]["eval_trials_per_task"] == 2
    recorded["train"]["eval_trials_per_task"] = 3  # as if the first attempt's amago2 had resolved 3
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    # What `sweep --dry-run` is told before the resume: the fresh resolution, and what the run keeps.
    before = json.loads(bridge.resolve_run(json.dumps(request)))
    assert before["kept_settings"] == {"eval_trials_per_task": [3, 2]}
    assert before["config"]["train"]["eval_trials_per_task"] == 2
    assert train(request)["status"] == "succeeded"
    events = read_events(tmp_path)
    started = [e for e in events if e["type"] == "started"]
    assert [e["kept_settings"] for e in started] == [{}, {"eval_trials_per_task": [3, 2]}]
    assert started[1]["config"]["train"]["eval_trials_per_task"] == 3
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and all(task["trials"] == 3 for e in evals for task in e["tasks"].values())
    assert json.loads((tmp_path / "config.json").read_text())["train"]["eval_trials_per_task"] == 3


def test_resolve_run_gives_what_the_run_will_record_and_what_the_scale_replaced(tmp_path):
    base = {"run_dir": str(tmp_path), "benchmark": "ml45", "actor": "ind", "critic": "dep", "seed": 0}
    paper = json.loads(bridge.resolve_run(json.dumps(base)))["config"]
    assert paper["train"]["total_steps"] == 100_000_000 and paper["agent"]["d_model"] == 320
    tiny = json.loads(bridge.resolve_run(json.dumps({**base, "scale": "tiny", "steps": 77})))
    assert tiny["config"]["train"]["total_steps"] == 77 and tiny["config"]["agent"]["d_model"] == 64
    assert tiny["kept_settings"] == {}  # nothing in its directory: a fresh run
    assert tiny["replaced_by_scale"] == {}  # built-in presets are the scale's to size
    paper_keys = json.loads(bridge.resolve_run(json.dumps(base)))["preset_keys"]
    assert paper_keys[:3] == ["lr", "batch_size", "replay_max_steps"] and "replay_chunk_steps" in paper_keys
    assert "warmup_updates" not in paper_keys and "warmup_updates" in tiny["preset_keys"]  # the scale's own keys

    mine = {**base, "benchmark": "mine", "scale": "tiny",
            "benchmark_def": {"tasks": [{"env_id": "CartPole-v1"}], "preset": {"lr": 3e-4, "d_model": 128}}}
    resolved = json.loads(bridge.resolve_run(json.dumps(mine)))
    assert resolved["config"]["train"]["lr"] == 3e-4 and resolved["config"]["agent"]["d_model"] == 64
    assert resolved["replaced_by_scale"] == {"d_model": {"preset": 128, "scale": 64}}
    bad = json.loads(bridge.resolve_run(json.dumps({**base, "overrides": {"d_model": 100, "n_heads": 8}})))
    assert bad == {"error": "d_model (100) must be divisible by n_heads (8)", "keys": ["d_model", "n_heads"]}


def test_resolve_runs_answers_each_combination_of_a_grid_in_order(tmp_path):
    base = {"run_dir": str(tmp_path), "benchmark": "gym-mini", "actor": "ind", "critic": "ind", "seed": 0, "scale": "tiny"}
    cells = [{**base, "overrides": {"num_bins": 16, "d_model": 32}}, {**base, "overrides": {"num_bins": 32, "d_model": 30}}]
    first, second = json.loads(bridge.resolve_runs(json.dumps(cells)))
    assert (first["config"]["agent"]["num_bins"], first["config"]["agent"]["d_model"]) == (16, 32)
    assert second == {"error": "d_model (30) must be divisible by n_heads (4)", "keys": ["d_model", "n_heads"]}


@pytest.mark.parametrize("overrides, message, keys", [
    ({"dropout": 1.0}, "dropout must be in [0, 1); got 1.0", ["dropout"]),
    ({"tau": 1.5}, "tau must be in [0, 1]; got 1.5", ["tau"]),
    ({"popart_beta": 0.0}, "popart_beta must be in (0, 1]; got 0.0", ["popart_beta"]),
    ({"explore_end": -0.1}, "explore_end must be in [0, 1]; got -0.1", ["explore_end"]),
    ({"adv_samples": 0}, "adv_samples must be positive; got 0", ["adv_samples"]),
    ({"n_heads": 0}, "n_heads must be positive; got 0", ["n_heads"]),
    ({"critic_loss_weight": -1}, "critic_loss_weight must be >= 0; got -1.0", ["critic_loss_weight"]),
    ({"num_bins": 1}, "num_bins must be at least 2 (a two-hot target spans two bins); got 1", ["num_bins"]),
    ({"prob_max": 0.0005}, "prob_min and prob_max must satisfy 0 < prob_min < prob_max <= 1; got 0.001 and 0.0005",
     ["prob_min", "prob_max"]),
    ({"log_std_min": 3}, "log_std_min must be below log_std_max; got 3.0 and 2.0", ["log_std_min", "log_std_max"]),
    ({"gammas": [0.9, 0.99, 0.9]}, "gammas must be distinct (each is learned once); got [0.9, 0.99, 0.9]", ["gammas"]),
])
def test_a_setting_out_of_its_range_is_refused_naming_it(tmp_path, overrides, message, keys):
    """Values a run would crash on or silently misuse (a dropout of 1, no advantage samples,
    an empty log-std range) are refused before anything is recorded, with the settings
    named for the CLI to say where they were given."""
    request = {"run_dir": str(tmp_path), "benchmark": "gym-mini", "actor": "ind", "critic": "ind", "seed": 0,
               "scale": "tiny", "overrides": overrides}
    assert json.loads(bridge.resolve_run(json.dumps(request))) == {"error": message, "keys": keys}


def test_every_builtin_preset_is_within_the_ranges(tmp_path):
    from amago2.config import SCALES, resolve_config
    from amago2.presets import benchmark_names

    for benchmark in benchmark_names():
        for scale in SCALES:
            resolve_config({"run_dir": str(tmp_path), "benchmark": benchmark, "actor": "dep", "critic": "ind",
                            "seed": 0, "scale": scale})
