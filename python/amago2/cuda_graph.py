"""One learner update as a CUDA graph: the same kernels, launched by one call.

At the paper's ML45 size an update dispatches 2,400 to 2,700 tensor ops (counted on the
CPU; views among them launch nothing), each a few microseconds of the host's time, and
wherever the GPU finishes a kernel sooner than the host launches the next, it waits
(bench/learner.py measures the share: "GPU idle in update", eager and graphed). A CUDA
graph records the update's kernels once and replays them with one launch, with the same
kernels on the same memory, so the arithmetic is the eager update's.

What a replay cannot redo is Python: anything decided on the host when the graph was
recorded stays as it was then. The update is written for that. Every quantity that moves
between updates lives in a tensor on the device (the learning rate, AdamW's step counts,
PopArt's and the input norm's statistics and counters), random draws come from the
device's generator (which graphs advance at each replay), shapes are fixed (replay windows
are padded to max_seq_len), and no op reads a value back to the host
(python/tests/test_agent.py checks that on the CPU, test_cuda.py with the driver).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

WARMUP_CALLS = 3
"""Eager calls, on a side stream, before the capture: they run the lazy setup (cuBLAS
handles, the autograd engine's streams, the optimiser's state) that a capture must not see,
as PyTorch's CUDA graph guide does. Each is a real update."""


class GraphedStep:
    """fn(inputs) -> outputs, for dicts (nested) of CUDA tensors of fixed shapes, where fn
    changes state only in place: its first WARMUP_CALLS calls run eagerly, the next records
    it as a CUDA graph on a copy of its inputs, and from then on each call copies its inputs
    there, replays the graph and returns copies of the outputs (a replay overwrites the
    recorded ones)."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: Any = None
        self.outputs: Any = None

    def __call__(self, inputs: Any) -> Any:
        if self.graph is None and self.calls < WARMUP_CALLS:
            self.calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                outputs = self.fn(inputs)
            torch.cuda.current_stream().wait_stream(side)
            return outputs
        if self.graph is None:
            self._capture(inputs)
        else:
            _copy_into(self.inputs, inputs)
        self.graph.replay()
        return _map(torch.clone, self.outputs)

    def _capture(self, inputs: Any) -> None:
        """Record fn on a copy of inputs (recording runs nothing: the replay that follows does)."""
        self.inputs = _map(torch.clone, inputs)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.outputs = self.fn(self.inputs)
        except Exception as e:
            # A failure inside the recording makes ending it fail too: then the first error,
            # the one that names the op, is the context of the one raised.
            first = e.__context__ if e.__context__ is not None else e
            raise RuntimeError(f"the update could not be recorded as a CUDA graph ({type(first).__name__}: {first}); "
                               "the override cuda_graph=false runs it eagerly") from e
        self.graph = graph


def _map(fn: Callable[[torch.Tensor], torch.Tensor], tree: Any) -> Any:
    return {k: _map(fn, v) for k, v in tree.items()} if isinstance(tree, dict) else fn(tree)


def _copy_into(dst: Any, src: Any) -> None:
    for key, value in dst.items():
        if isinstance(value, dict):
            _copy_into(value, src[key])
        else:
            value.copy_(src[key], non_blocking=True)
