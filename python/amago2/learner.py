"""The learner: one gradient step on a replay batch, then everything else that moves the
agent's weights or statistics (PopArt, the input norm, the Polyak targets)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from amago2.agent import Agent
from amago2.config import TrainConfig
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
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                           fused=True)  # one kernel per step on CPU and CUDA
        warmup = max(1, cfg.warmup_updates)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup))
        self.updates = 0

    def update(self, batch: dict) -> dict[str, Tensor]:
        """One gradient step on a replay batch (docs/INTERFACES.md section 4). The agent is in
        training mode (dropout, power iteration) only inside the step, and left in evaluation
        mode for the acting that comes between steps. Every task_metrics_every_updates-th
        update also returns "task/<quantity>" tensors (T,) (amago2.task_metrics)."""
        agent = self.agent
        agent.train()
        batch = agent.prepare_batch(batch)
        total, aux = agent.loss(batch, agent.sample_noise(batch))
        every = self.cfg.task_metrics_every_updates
        by_task = (task_metrics(aux, batch["task"], self.num_tasks)
                   if every > 0 and self.updates % every == 0 and "task" in batch else {})
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        # The fused step bumps no version counter, so acting's cached weights cannot see it.
        forget_frozen_weights(agent)
        self.scheduler.step()
        with torch.no_grad():
            self._keep_popart(aux["popart"])
            self._update_input_norm(batch)
            self._polyak()
        agent.train(False)
        self.updates += 1
        metrics = aux["metrics"]
        metrics["grad/norm"] = grad_norm.detach()
        metrics["lr"] = torch.tensor(self.scheduler.get_last_lr()[0])
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
                "scheduler": self.scheduler.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.updates = state["updates"]
