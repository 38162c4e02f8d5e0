"""Disk-backed trajectory replay (docs/METHOD.md, "Data").

One `.npy` file per trajectory (or chunk of a long one), written atomically (temporary
name, then rename), named `<index>_<steps>.npy`: `index` counts every file the run has
written, `steps` is its number of transitions, so the FIFO limits need no file opened.

A file of T transitions is a structured array of T+1 records, one per observation t:
    obs.<key>     the dict observation o_t
    time          int64, absolute step in the trial
    prev_action   float32 (A,), a_{t-1} (one-hot if discrete); zeros at trial start
    prev_reward   float32, r_{t-1} after the task's reward multiplier; 0 at trial start
    prev_done     float32, 1 if step t-1 ended the trial (only the last record of a trial)
    task          int32, the benchmark's index of the task that collected it (the same in
                  every record): never shown to the agent, only for per-task metrics
Everything is aligned on observations, so a window is one contiguous slice of records:
sampling memory-maps the file and reads only the window's rows (one header parse per
file; a `.npz` with a member per array measured ~4 ms per window, mostly header parsing).
Actions, rewards and dones of the window's transitions are the `prev_*` fields of the
records after each observation.

Resume: the checkpoint stores `next_index`. On restore the directory is rescanned and every
file with index >= next_index (written after that checkpoint by a run that then died) is
deleted, so the buffer is exactly what the checkpoint's counters describe. Files the FIFO
trimmed after the checkpoint stay gone; they were the oldest and would soon have gone.
"""

from __future__ import annotations

import os
import re
from collections import deque
from pathlib import Path

import numpy as np
import torch

FILE_RE = re.compile(r"^(\d{9})_(\d+)\.npy$")


class TrajectoryReplay:
    def __init__(self, directory: str | Path, max_seq_len: int, max_steps: int,
                 max_trajectories: int = 0):
        """max_trajectories: 0 means no limit by count."""
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.L = max_seq_len
        self.max_steps = max_steps
        self.max_trajectories = max_trajectories
        self.files: deque[tuple[int, int]] = deque()  # (index, steps), oldest first
        self.total_steps = 0
        self.next_index = 0
        self.restore()

    def restore(self, next_index: int | None = None) -> None:
        """Rebuild the index from disk, dropping the files a checkpoint does not know about
        (index >= next_index). None keeps every file and continues after the newest."""
        for tmp in self.dir.glob(".tmp-*"):
            tmp.unlink()
        found = []
        for path in self.dir.iterdir():
            m = FILE_RE.match(path.name)
            if not m:
                continue
            index, steps = int(m.group(1)), int(m.group(2))
            if next_index is not None and index >= next_index:
                path.unlink()
            else:
                found.append((index, steps))
        found.sort()
        self.files = deque(found)
        self.total_steps = sum(s for _, s in found)
        self.next_index = next_index if next_index is not None else (found[-1][0] + 1 if found else 0)

    def path(self, index: int, steps: int) -> Path:
        return self.dir / f"{index:09d}_{steps}.npy"

    def __len__(self) -> int:
        return len(self.files)

    def add(self, traj: dict[str, np.ndarray]) -> Path:
        """Save one trajectory given as arrays over its T transitions:
        obs.<key> (T+1, ...), time (T+1,), action (T, A), reward (T,), done (T,),
        prev_action0 (A,) and prev_reward0 () (what came before obs 0), task ()."""
        steps = int(traj["action"].shape[0])
        assert steps >= 1 and traj["time"].shape[0] == steps + 1, "T actions need T+1 observations"
        records = to_records(traj)
        final = self.path(self.next_index, steps)
        tmp = self.dir / f".tmp-{final.name}"
        with open(tmp, "wb") as f:
            np.save(f, records)
        os.replace(tmp, final)
        self.files.append((self.next_index, steps))
        self.total_steps += steps
        self.next_index += 1
        self._trim()
        return final

    def _trim(self) -> None:
        def over() -> bool:
            return (self.total_steps > self.max_steps
                    or (self.max_trajectories > 0 and len(self.files) > self.max_trajectories))

        while len(self.files) > 1 and over():  # the newest file always stays
            index, steps = self.files.popleft()
            self.path(index, steps).unlink()
            self.total_steps -= steps

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict:
        """A batch of windows in the layout of docs/INTERFACES.md ("Replay batch")."""
        windows = [self._window(self.files[int(rng.integers(len(self.files)))], rng)
                   for _ in range(batch_size)]
        obs_keys = [k for k in windows[0] if k.startswith("obs.")]
        batch = {name: torch.from_numpy(np.stack([w[name] for w in windows]))
                 for name in ("prev_action", "prev_reward", "time", "action", "reward", "done", "mask", "task")}
        batch["obs"] = {k[4:]: torch.from_numpy(np.stack([w[k] for w in windows])) for k in obs_keys}
        return batch

    def _window(self, entry: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
        index, steps = entry
        L = self.L
        start = int(rng.integers(max(0, steps - L) + 1))
        w = min(L, steps - start)  # transitions in this window; the rest is padding
        rows = np.array(np.load(self.path(index, steps), mmap_mode="r")[start: start + w + 1])

        def pad(x: np.ndarray, n: int, dtype) -> np.ndarray:
            out = np.zeros((n, *x.shape[1:]), dtype=dtype)
            out[: x.shape[0]] = x
            return out

        out = {k: pad(rows[k], L + 1, rows.dtype[k].base) for k in rows.dtype.names if k.startswith("obs.")}
        out["time"] = pad(rows["time"], L + 1, np.int64)
        out["prev_action"] = pad(rows["prev_action"], L + 1, np.float32)
        out["prev_reward"] = pad(rows["prev_reward"], L + 1, np.float32)[:, None]
        out["action"] = pad(rows["prev_action"][1:], L, np.float32)
        out["reward"] = pad(rows["prev_reward"][1:], L, np.float32)[:, None]
        out["done"] = pad(rows["prev_done"][1:], L, np.float32)[:, None]
        mask = np.zeros((L, 1), dtype=np.float32)
        mask[:w] = 1.0
        out["mask"] = mask
        out["task"] = np.int64(rows["task"][0])
        return out


def to_records(traj: dict[str, np.ndarray]) -> np.ndarray:
    """The arrays of `TrajectoryReplay.add` as one record per observation (the file format)."""
    obs_keys = [k for k in traj if k.startswith("obs.")]
    n = traj["time"].shape[0]
    A = traj["action"].shape[1]
    dtype = np.dtype([(k, traj[k].dtype, traj[k].shape[1:]) for k in obs_keys]
                     + [("time", np.int64), ("prev_action", np.float32, (A,)),
                        ("prev_reward", np.float32), ("prev_done", np.float32), ("task", np.int32)])
    records = np.zeros(n, dtype=dtype)
    for k in obs_keys:
        records[k] = traj[k]
    records["time"] = traj["time"]
    records["prev_action"][0] = traj["prev_action0"]
    records["prev_action"][1:] = traj["action"]
    records["prev_reward"][0] = traj["prev_reward0"]
    records["prev_reward"][1:] = traj["reward"]
    records["prev_done"][1:] = traj["done"]
    records["task"] = traj["task"]
    return records
