"""The paper's argument, measured in every run: what each task of a batch does to the update.

The agent is never told which task it is in, but the replay knows which task collected
each window, so the learner can measure, per task of a batch (each a (T,) tensor over the
benchmark's T training tasks):

    step_share         the task's share of the batch's real steps (0: not in this batch)
    critic_loss        the critic objective's loss on those steps
    actor_loss         the actor objective's loss on those steps
    critic_grad_share  the task's share of the critic loss's gradient at the encoder output
    actor_grad_share   the same for the actor loss
    value_scale        mean |Q(h, a_t)| at the acting discount (the last gamma), over critics
    filter_pass        the Ind actor's pass rate, the fraction of steps with A(h, a_t) > 0

The gradient is taken at the encoder output (the state every head reads): that is where
all tasks meet in the one shared sequence model, and there the decomposition is exact,
since every loss term of a step reads that step's state alone, so the rows of one task's
steps hold exactly that task's gradient. One backward pass through the heads per loss
gives every task's share (not one per task through the whole network). On a batch of two
tasks whose rewards are 1000x apart (python/tests/test_agent.py) the larger takes nearly
all of the Dep critic's gradient and the two share the Ind critic's; in training a task
whose targets are already fitted takes little under either, so a share says where error
remains as well as where the scale is.

Everything stays on the device (no host sync); the trainer averages over the updates that
measured and reports the tasks that had steps.
"""

from __future__ import annotations

import torch
from torch import Tensor


def task_metrics(aux: dict, task: Tensor, num_tasks: int) -> dict[str, Tensor]:
    """The quantities above from one update's loss terms (`Agent.loss`'s aux, whose graphs
    are still alive) and the task index of each window, task (B,)."""
    mask = aux["mask"].detach().float()                                     # (N,)
    n, b = mask.shape[0], task.shape[0]
    step_task = task.to(mask.device).long().repeat_interleave(n // b)       # (N,) windows are row-major

    def per_task(x: Tensor) -> Tensor:
        """Sum of x (N,) over each task's real steps -> (T,)."""
        return torch.zeros(num_tasks, device=mask.device).index_add_(0, step_task, x.detach().float() * mask)

    steps = per_task(torch.ones_like(mask))
    per_step = steps.clamp(min=1.0)
    out = {"step_share": steps / steps.sum().clamp(min=1.0),
           "critic_loss": per_task(aux["critic_steps"]) / per_step,
           "actor_loss": per_task(aux["actor_steps"]) / per_step,
           "value_scale": per_task(aux["q_replay"][:, -1].abs().mean(0)) / per_step}
    for name in ("critic", "actor"):
        grad, = torch.autograd.grad(aux[f"{name}_loss"], aux["state"], retain_graph=True)
        norms = per_task(grad.float().square().sum(-1)).sqrt()
        out[f"{name}_grad_share"] = norms / norms.sum().clamp(min=torch.finfo(norms.dtype).tiny)
    if aux["advantage"] is not None:
        out["filter_pass"] = per_task((aux["advantage"] > 0).float().mean(0)) / per_step
    return out


class TaskMetricsWindow:
    """The per-task metrics of the updates that measured them between two metrics events:
    each quantity averaged, per task, over the measuring updates whose batch held the task."""

    def __init__(self, task_names: list[str]):
        self.task_names = task_names
        self.sums: dict[str, Tensor] = {}
        self.counts: Tensor | None = None

    def add(self, by_task: dict[str, Tensor]) -> None:
        present = (by_task["step_share"] > 0).float()
        for name, value in by_task.items():
            kept = torch.where(present > 0, value, torch.zeros_like(value))
            self.sums[name] = self.sums[name] + kept if name in self.sums else kept
        self.counts = present if self.counts is None else self.counts + present

    def flush(self) -> dict[str, float]:
        """{"task/<task name>/<quantity>": mean} for every task seen; starts a new window."""
        if self.counts is None:
            return {}
        counts = self.counts.cpu()
        out = {}
        for name, total in self.sums.items():
            total = total.cpu()
            for i, task in enumerate(self.task_names):
                if counts[i] > 0:
                    out[f"task/{task}/{name}"] = float(total[i] / counts[i])
        self.sums, self.counts = {}, None
        return out
