"""The learner: one gradient step on a replay batch, then everything else that moves the
agent's weights or statistics (PopArt, the input norm, the Polyak targets)."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from amago2.agent import Agent
from amago2.config import TrainConfig
from amago2.cuda_graph import GraphedStep
from amago2.losses import PopArt
from amago2.nets.linear import forget_frozen_weights
from amago2.task_metrics import task_metrics


class Learner:
    """AdamW with linear warmup and grad-norm clipping, then PopArt, input norm and Polyak
    updates: everything that changes the agent's weights or statistics."""

    def __init__(self, agent: Agent, cfg: TrainConfig, num_tasks: int = 1):
        """num_tasks: the benchmark's training tasks, which batches' `task` entries index."""
        self.agent, self.cfg, self.num_tasks = agent, cfg, num_tasks
        self.params = [p for name, p in agent.named_parameters() if not name.startswith("target_")]
        # The learning rate is a tensor on the device, set in place before each step, so that
        # a CUDA graph of the update reads the current one (a float would be recorded).
        self.lr = torch.zeros((), device=agent.device)
        self.optimizer = torch.optim.AdamW(self.params, lr=self.lr, weight_decay=cfg.weight_decay,
                                           fused=True, capturable=True)  # one kernel per step; steps on the device
        self.updates = 0
        self.steps = self._make_steps()

    def _make_steps(self) -> dict[bool, Callable[[dict], dict[str, Tensor]]]:
        """The step with and without the task metrics; on CUDA (cuda_graph) each replayed as
        its own CUDA graph, recorded at its first calls."""
        graphed = self.cfg.cuda_graph and self.agent.device.type == "cuda"
        steps = {with_tasks: partial(self._step, with_tasks=with_tasks) for with_tasks in (False, True)}
        return {k: GraphedStep(step) for k, step in steps.items()} if graphed else steps

    def learning_rate(self, update: int) -> float:
        """cfg.lr after a linear warmup over cfg.warmup_updates: update u (from 0) steps with
        lr * min(1, (u + 1) / warmup)."""
        return self.cfg.lr * min(1.0, (update + 1) / max(1, self.cfg.warmup_updates))

    def update(self, batch: dict) -> dict[str, Tensor]:
        """One gradient step on a replay batch (docs/INTERFACES.md section 4). The agent is in
        training mode (dropout, power iteration) only inside the step, and left in evaluation
        mode for the acting that comes between steps. Every task_metrics_every_updates-th
        update also returns "task/<quantity>" tensors (T,) (amago2.task_metrics). On CUDA
        (cuda_graph) the step is replayed as a CUDA graph (amago2.cuda_graph)."""
        batch = self.agent.prepare_batch(batch)
        every = self.cfg.task_metrics_every_updates
        with_tasks = every > 0 and self.updates % every == 0 and "task" in batch
        lr = self.learning_rate(self.updates)
        self.lr.fill_(lr)
        metrics = self.steps[with_tasks](batch)
        # The fused step bumps no version counter, so acting's cached weights cannot see it.
        forget_frozen_weights(self.agent)
        self.agent.train(False)
        self.updates += 1
        metrics["lr"] = torch.tensor(lr)
        return metrics

    def _step(self, batch: dict, with_tasks: bool) -> dict[str, Tensor]:
        """The update on a batch on the device: the losses, AdamW, then PopArt, the input norm
        and Polyak; its metrics (and with_tasks, the "task/<quantity>" ones). Everything it
        changes, it changes in place, as a CUDA graph needs."""
        agent = self.agent
        agent.train()
        total, aux = agent.loss(batch, agent.sample_noise(batch))
        by_task = task_metrics(aux, batch["task"], self.num_tasks) if with_tasks else {}
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            self._keep_popart(aux["popart"])
            self._update_input_norm(batch)
            self._polyak()
        metrics = aux["metrics"]
        metrics["grad/norm"] = grad_norm.detach()
        metrics.update({f"task/{name}": value for name, value in by_task.items()})
        return metrics

    def _keep_popart(self, popart: PopArt) -> None:
        """Keep the PopArt state the update's loss moved to (its affine layer included) and
        count the update."""
        agent = self.agent
        for buffer, value in zip((agent.popart_mu, agent.popart_nu, agent.popart_w, agent.popart_b), popart):
            buffer.copy_(value)
        agent.popart_t += 1

    def _update_input_norm(self, batch: dict) -> None:
        """Fold the window's real observations into the running input statistics. Observation
        t is real if step t or step t-1 is (the last one follows the last real step)."""
        mask = batch["mask"][..., 0] > 0
        pad = torch.zeros_like(mask[:, :1])
        real = torch.cat((mask, pad), 1) | torch.cat((pad, mask), 1)
        features = self.agent.tstep.norm_input(batch["obs"], batch["prev_reward"])
        self.agent.tstep.vec_norm.update(features.flatten(0, 1), real.flatten())

    def _polyak(self) -> None:
        agent, tau = self.agent, self.agent.cfg.tau
        for target, online in ((agent.target_actor, agent.actor), (agent.target_critics, agent.critics)):
            t_params, o_params = list(target.parameters()), list(online.parameters())
            torch._foreach_lerp_(t_params, o_params, tau)

    def state_dict(self) -> dict:
        return {"agent": self.agent.state_dict(), "optimizer": self.optimizer.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        """A checkpoint of this learner, or of an earlier one (which also saved a LambdaLR
        "scheduler": the warmup is now learning_rate(updates), the same rates)."""
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # a loaded group brings its saved lr and flags
            group.update(lr=self.lr, capturable=True, fused=True)
        self.updates = state["updates"]
        # The optimiser's state is new tensors now, which a graph recorded before would not
        # see: steps are recorded again.
        self.steps = self._make_steps()
