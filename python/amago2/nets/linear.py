"""Linear layers as acting uses them: a few rows (one per actor) against weights that
change only between acting calls.

F.linear computes x W^T through a transposed view of W, which for one to a few rows ran
at a fraction of the memory bandwidth on the project's 2-thread CPU. The same fp32
product in another layout measured faster: one row as x @ W^T with W^T kept contiguous,
several as (W @ x^T)^T. Together they made ML45 acting about 20-35% faster
(bench/learner.py). Training and autograd take F.linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def frozen_linear(x: Tensor, weight: Tensor, weight_t: Tensor, bias: Tensor) -> Tensor:
    """x (..., in) -> (..., out) for weight (out, in) and weight_t, a contiguous copy of
    its transpose."""
    rows = x.reshape(-1, x.shape[-1])
    if rows.shape[0] == 1:
        out = torch.addmm(bias, rows, weight_t)
    else:
        out = torch.addmm(bias[:, None], weight, rows.T).T
    return out.reshape(*x.shape[:-1], -1)


def frozen(module: nn.Module) -> bool:
    """Evaluation mode without autograd: acting and evaluation."""
    return not module.training and not torch.is_grad_enabled()


class Linear(nn.Linear):
    """nn.Linear (same parameters, same state dict) with the acting layouts above."""

    def forward(self, x: Tensor) -> Tensor:
        if not frozen(self):
            return F.linear(x, self.weight, self.bias)
        # The cached transpose is rebuilt when the weight changes in place (an optimiser
        # step or a load bumps its version counter) or is replaced (a device or dtype
        # move). The cache holds the old storage, so a new one cannot reuse its address.
        cached = getattr(self, "_frozen", None)
        if (cached is None or cached[0].data_ptr() != self.weight.data_ptr()
                or cached[1] != self.weight._version):
            weight = self.weight.detach()
            self._frozen = cached = (weight, self.weight._version, weight.t().contiguous())
        return frozen_linear(x, cached[0], cached[2], self.bias)
