"""Run requests and journal readers shared by the training-loop and bridge tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import bandit_env
from amago2 import bridge

TESTS_DIR = Path(__file__).resolve().parent

BANDIT_K = 6
"""Inner episodes per bandit trial: a trial is exactly 6 steps."""

TINY_NET = dict(d_model=32, d_ff=64, n_layers=1, n_heads=2, max_seq_len=8, tstep_hidden=32,
                tstep_dim=32, head_hidden=32, num_bins=32)


def bandit_request(run_dir: Path, *, steps: int, actor: str = "ind", critic: str = "ind", seed: int = 0,
                   **overrides: Any) -> dict[str, Any]:
    """A tiny run on the two-armed bandit trial (a user-registered Gymnasium env)."""
    ov = dict(TINY_NET, batch_size=8, warmup_updates=10, parallel_actors=2, steps_per_epoch=BANDIT_K,
              updates_per_epoch=4, explore_anneal_steps=250, eval_every_epochs=2, eval_trials_per_task=2,
              ckpt_every_updates=1000, log_every_updates=4)
    ov.update(overrides)
    return {"run_dir": str(run_dir), "benchmark": "bandit", "actor": actor, "critic": critic, "seed": seed,
            "scale": "tiny", "steps": steps, "device": "cpu", "overrides": ov,
            "benchmark_def": {"tasks": [{"env_id": f"bandit_env:{bandit_env.ENV_ID}"}], "k": BANDIT_K}}


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (Path(run_dir) / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def never_stop(line: str) -> bool:
    json.loads(line)  # every event must be one JSON object
    return False


def train(request: dict[str, Any], emit=never_stop) -> dict[str, Any]:
    """One run through bridge.train, in this process; its summary."""
    return json.loads(bridge.train(json.dumps(request), emit))


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a `python -m amago2 train` child: this folder importable (the
    bandit env lives here), plus `extra`."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]), **extra)
