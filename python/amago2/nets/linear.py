"""Linear layers as acting uses them: a few rows (one per actor) against weights that
change only between acting calls.

F.linear computes x W^T through a transposed view of W, which for one to a few rows ran
at a fraction of the memory bandwidth on the project's 2-thread CPU. The same fp32
product measured faster in other forms, chosen per call by the number of rows: one row
as x @ W^T with W^T kept contiguous; several, on CPU in fp32, through oneDNN with the
weight packed once into its blocked layout (a plain GEMM repacks the weight on every
call); several elsewhere as (W @ x^T)^T. Against F.linear these made ML45 acting with 8
actors about 1.5x as fast (bench/learner.py). Training and autograd take F.linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _onednn_packing_works() -> bool:
    """The packed ops belong to torch's oneDNN CPU backend (Inductor uses them); a build
    without them, or one where they changed, takes the (W @ x^T)^T form instead."""
    try:
        weight, x = torch.arange(6.0).view(2, 3), torch.ones(2, 3)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 2)
        out = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
        return bool(torch.equal(out, F.linear(x, weight)))
    except (AttributeError, RuntimeError):
        return False


ONEDNN_PACKING = _onednn_packing_works()
PACK_MIN_ELEMENTS = 65_536
"""Smaller weights (the tiny preset's, 256 KiB and under) stay unpacked: oneDNN's cost per
call outweighed repacking a weight that small (tiny acting, 8 actors: 9.2k against 6.8k
steps/s)."""


class FrozenWeight:
    """One layer's weight (out, in) in the forms acting multiplies by, with the key its
    layer compares to tell when the weight has changed. Copies and pickles of a layer get
    None in its place (a packed tensor can be neither): the copy builds its own on first
    use."""

    def __init__(self, weight: Tensor, key: tuple):
        self.key = key
        self.weight = weight
        # Each form is made on first use: acting with several actors never needs W^T.
        self.weight_t: Tensor | None = None
        self.packed: Tensor | None = None

    def __reduce__(self):
        return type(None), ()

    def linear(self, x: Tensor, bias: Tensor) -> Tensor:
        """x (..., in) -> (..., out)."""
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] == 1:
            if self.weight_t is None:
                self.weight_t = self.weight.t().contiguous()
            out = torch.addmm(bias, rows, self.weight_t)
        elif (ONEDNN_PACKING and self.weight.numel() >= PACK_MIN_ELEMENTS and rows.device.type == "cpu"
              and rows.dtype == self.weight.dtype == torch.float32):
            if self.packed is None:  # the row count only tunes the layout; any count may follow
                self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.contiguous(), rows.shape[0])
            out = torch.ops.mkldnn._linear_pointwise(rows, self.packed, bias, "none", [], "")
        else:
            out = torch.addmm(bias[:, None], self.weight, rows.T).T
        return out.reshape(*x.shape[:-1], -1)


def forget_frozen_weights(root: nn.Module) -> None:
    """Drop the cached FrozenWeights of every layer below root. For weight changes that
    bump no version counter: a fused optimiser step is one."""
    for module in root.modules():
        module.__dict__.pop("_frozen", None)


def frozen(module: nn.Module) -> bool:
    """Evaluation mode without autograd: acting and evaluation."""
    return not module.training and not torch.is_grad_enabled()


class Linear(nn.Linear):
    """nn.Linear (same parameters, same state dict) that acts through a FrozenWeight."""

    def forward(self, x: Tensor) -> Tensor:
        if not frozen(self):
            return F.linear(x, self.weight, self.bias)
        # Rebuilt when the weight changes in place (a load bumps its version counter; the
        # learner forgets the caches after its fused step, which bumps none) or is
        # replaced (a device or dtype move). The cache holds the old storage, so a new
        # one cannot reuse its address.
        key = (self.weight.data_ptr(), self.weight._version)
        cached = getattr(self, "_frozen", None)
        if cached is None or cached.key != key:
            self._frozen = cached = FrozenWeight(self.weight.detach(), key)
        return cached.linear(x, self.bias)
