"""The AMAGO-2 agent: the network, its acting, and the losses of one update (docs/METHOD.md,
docs/INTERFACES.md section 4); amago2.learner takes the gradient step.

One update's losses, composed from ACTOR_LOSSES[cfg.actor] and CRITIC_LOSSES[cfg.critic]:
encode the window once, evaluate the critic ensemble on the replay actions (training the
encoder), build the TD targets from Polyak target heads on the online encoder output
(no_grad, a random REDQ subset), and let the actor objective read the terms it needs.
Every random draw of the update lives in an UpdateNoise, so the plain reference
formulation (reference.py) can be compared exactly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cached_property

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from amago2.config import AgentConfig
from amago2.losses import (ACTOR_LOSSES, CRITIC_LOSSES, PopArt, masked_mean, popart_step_size,
                           popart_update, redq_reduce, symlog, symlog_bins, td_target)
from amago2.nets.heads import (ActorHead, CriticEnsemble, CriticParams, categorical_probs, categorical_sample,
                               critic_forward, gumbel_noise, one_hot, project_state, straight_through_sample,
                               tanh_gaussian_log_prob, tanh_gaussian_params, tanh_gaussian_sample)
from amago2.nets.timestep import TimestepEncoder
from amago2.nets.feedforward import FeedForwardEncoder
from amago2.nets.recurrent import GRUEncoder
from amago2.nets.trmrl import TrMRLEncoder, WindowMemory
from amago2.nets.transformer import KVCache, TrajectoryEncoder

FLOAT_KEYS = ("prev_action", "prev_reward", "action", "reward", "done", "mask")


def loss_precision(x: Tensor) -> Tensor:
    """Losses run in fp32 (or wider): undo bf16 autocast outputs, keep fp32/fp64 as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


CRITIC_ROWS = 1024
"""Steps per chunk of every pass through a critic ensemble. Its (C, G, steps, hidden)
activations are the update's largest tensors: whole-batch ones at the ML45 size are 168 MB
each, and the no-grad passes (TD target, advantage baseline) and the backward pass's
gradients used to add several of them to the peak. In chunks of 1024 steps each is 28 MB:
the peak holds a chunk's worth of them instead of a batch's, and below glibc's 32 MiB
mmap ceiling they are served from the heap rather than faulted in page by page on every
update. Every step is computed exactly as before, so the mathematics is unchanged."""


def row_chunks(x: Tensor, dim: int) -> tuple[Tensor, ...]:
    """x in chunks of CRITIC_ROWS steps along dim. A split rather than slices: the backward
    of each slice writes a zero tensor the size of the whole input, a split's backward one
    concatenation (at the POPGym size those fills took 1.1 s of a 4.6 s update)."""
    return x.split(CRITIC_ROWS, dim)


@dataclass
class UpdateNoise:
    """All randomness of one update (shapes for G gammas, N steps, A action dims, K samples).
    The action draws are standard normal for continuous actions (tanh-Gaussian samples) and
    standard Gumbel for discrete ones (Gumbel-max samples)."""

    redq: Tensor
    """(S, G, N) indices of the target critics each step's TD target reduces, drawn per
    element with replacement (the reference's draw)."""
    target: Tensor
    """(G, N, A) draws for a' ~ target policy."""
    policy: Tensor | None = None
    """(G, N, A) draws for the Dep actor's reparameterised sample."""
    baseline: Tensor | None = None
    """(K, G, N, A) draws for the Ind actor's advantage baseline."""


@dataclass
class ActingState:
    memory: KVCache | Tensor | WindowMemory | None
    """The trajectory encoder's memory of every actor's trial: the Transformer's KV cache, the
    GRU's hidden state, TrMRL's window of tokens, or nothing for the memory-free encoder."""


def make_traj_encoder(cfg: AgentConfig) -> nn.Module:
    """The configured sequence model over a trial (cfg.traj_encoder)."""
    if cfg.traj_encoder == "gru":
        return GRUEncoder(cfg.tstep_dim, cfg.d_model, cfg.n_layers)
    if cfg.traj_encoder == "ff":
        return FeedForwardEncoder(cfg.tstep_dim, cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.dropout)
    if cfg.traj_encoder == "trmrl":
        return TrMRLEncoder(cfg.tstep_dim, cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.n_layers, cfg.dropout, cfg.max_seq_len)
    return TrajectoryEncoder(cfg.tstep_dim, cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.n_layers,
                             cfg.dropout, cfg.max_seq_len, cfg.attention_sink)


class Agent(nn.Module):
    def __init__(self, cfg: AgentConfig, observation_space: gym.spaces.Dict, action_space: gym.Space):
        super().__init__()
        self.cfg = cfg
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.action_dim = int(action_space.n) if self.discrete else int(action_space.shape[0])
        self.critic_objective = CRITIC_LOSSES[cfg.critic]
        self.actor_objective = ACTOR_LOSSES[cfg.actor]
        g = len(cfg.gammas)
        self.tstep = TimestepEncoder(observation_space, self.action_dim, cfg.tstep_hidden, cfg.tstep_dim)
        self.traj = make_traj_encoder(cfg)
        actor_outputs = self.action_dim if self.discrete else 2 * self.action_dim
        self.actor = ActorHead(cfg.d_model, cfg.head_hidden, g, actor_outputs)
        self.critics = CriticEnsemble(cfg.d_model, cfg.head_hidden, cfg.n_critics, self.action_dim,
                                      self.critic_objective.outputs_per_value(cfg.num_bins))
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        gammas = torch.tensor(cfg.gammas, dtype=torch.float64)
        self.register_buffer("gammas", gammas.float())
        self.register_buffer("gamma_feat", symlog(1.0 / (1.0 - gammas)).float())
        self.register_buffer("bins", symlog_bins(cfg.num_bins, cfg.bin_limit))
        self.register_buffer("popart_mu", torch.zeros(g))
        self.register_buffer("popart_nu", torch.full((g,), cfg.popart_init_nu))
        self.register_buffer("popart_w", torch.ones(g))
        self.register_buffer("popart_b", torch.zeros(g))
        # The reference's update counter: it starts at 1 and counts up before each use, so
        # the k-th statistics update takes the step size of t = k + 1.
        self.register_buffer("popart_t", torch.ones((), dtype=torch.long))

    # ------------------------------------------------------------ shared pieces

    @property
    def device(self) -> torch.device:
        return self.gammas.device

    def _autocast(self):
        """bf16 autocast on CUDA only; CPU stays fp32 (lower precision would change results)."""
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def prepare_batch(self, batch: dict) -> dict:
        """Move a replay batch to the agent's device; float arrays take the parameters' dtype."""
        dtype = self.gammas.dtype
        out = {k: torch.as_tensor(v).to(self.device, non_blocking=True) for k, v in batch.items() if k != "obs"}
        for k in FLOAT_KEYS:
            out[k] = out[k].to(dtype)
        out["obs"] = {k: torch.as_tensor(v).to(self.device, non_blocking=True) for k, v in batch["obs"].items()}
        out["obs"]["vec"] = out["obs"]["vec"].to(dtype)
        return out

    def encode(self, batch: dict, attn_mask: Tensor | None = None) -> Tensor:
        """Encoder output (B, L+1, d_model) at every observation of the window."""
        emb = self.tstep(batch["obs"], batch["prev_action"], batch["prev_reward"])
        return self.traj(emb, batch["time"], attn_mask)

    def popart(self) -> PopArt:
        """The PopArt state as of the last update."""
        return PopArt(self.popart_mu, self.popart_nu, self.popart_w, self.popart_b)

    def values(self, out: Tensor, popart: PopArt) -> Tensor:
        """Unnormalised scalar Q: ensemble outputs (C, G, N, P) -> (C, G, N)."""
        return self.critic_objective.value(out, popart, self.bins)

    def normalized(self, out: Tensor, popart: PopArt) -> Tensor:
        """PopArt-normalised Q (the Dep actor's scale): (C, G, N, P) -> (C, G, N)."""
        return self.critic_objective.normalized(out, popart, self.bins)

    def sample_actions(self, policy: tuple[Tensor, ...], draws: Tensor, reparameterised: bool = False) -> Tensor:
        """Actions (G, n, A) from policy parameters (G, n, ...) and draws (G, n, A): the
        categorical probabilities (probs,) or the tanh-Gaussian (mean, log_std). A
        reparameterised discrete sample is the reference's straight-through one."""
        if self.discrete:
            (probs,) = policy
            return straight_through_sample(probs, draws) if reparameterised else categorical_sample(probs, draws)
        mean, log_std = policy
        return tanh_gaussian_sample(mean, log_std, draws)

    def policy_params(self, raw: Tensor) -> tuple[Tensor, ...]:
        """Actor outputs (G, n, P) -> (probs,) for discrete actions, (mean, log_std) otherwise."""
        cfg = self.cfg
        if self.discrete:
            return (categorical_probs(raw, cfg.prob_min, cfg.prob_max),)
        return tanh_gaussian_params(raw, cfg.log_std_min, cfg.log_std_max)

    def sample_noise(self, batch: dict) -> UpdateNoise:
        b, l = batch["action"].shape[:2]
        cfg, dev, dtype = self.cfg, self.device, self.gammas.dtype
        redq = torch.randint(cfg.n_critics, (cfg.redq_subset, len(cfg.gammas), b * l), device=dev)
        shape = (len(cfg.gammas), b * l, self.action_dim)

        def draws(shape):
            return gumbel_noise(shape, dev, dtype) if self.discrete else torch.randn(shape, device=dev, dtype=dtype)
        return UpdateNoise(
            redq=redq,
            target=draws(shape),
            policy=draws(shape) if cfg.actor == "dep" else None,
            baseline=draws((cfg.adv_samples, *shape)) if cfg.actor == "ind" else None,
        )

    # ------------------------------------------------------------ the update's losses

    def loss(self, batch: dict, noise: UpdateNoise) -> tuple[Tensor, dict]:
        """actor_loss + critic_loss_weight * critic_loss, and {metrics, y, mask, popart,
        actor_loss, critic_loss, actor_steps, critic_steps, state, q_replay, advantage} (the
        losses keep their graphs; the *_steps are their terms per step (N,), of which they
        are the masked means; state is the encoder output (N, D) the heads read; advantage
        the Ind actor's (G, N), else None). As in the reference, the TD targets are built
        with the PopArt state of the last update, the state then moves towards them, and
        every loss term reads the moved state; `popart` is that state, for the learner to
        keep (the loss itself changes nothing)."""
        cfg = self.cfg
        b, l, a = batch["action"].shape
        n = b * l
        mask = batch["mask"].reshape(n)
        action = batch["action"].reshape(n, a)
        before = self.popart()
        with self._autocast():
            s = self.encode(batch)
            s_cur = s[:, :-1].reshape(n, -1)
            s_next = s[:, 1:].reshape(n, -1).detach()
            policy_raw = loss_precision(self.actor(s_cur).transpose(0, 1))          # (G, N, P)
            online = self.critics.params()
            state_proj = project_state(online, s_cur)                        # (C, N, H)
            # A discrete replay action is its exact one-hot vector (deviation: the reference
            # clips it to [0.001, 0.99] and renormalises it, unlike its sampled actions).
            q_replay_out = loss_precision(torch.cat([
                critic_forward(online, proj, self.gamma_feat, act, self.discrete)
                for proj, act in zip(row_chunks(state_proj, 1), row_chunks(action, 0))], dim=2))  # (C, G, N, P)
            with torch.no_grad():
                reward, done = batch["reward"].reshape(n), batch["done"].reshape(n)
                target = self.target_critics.params()
                y = torch.cat([self._td_target(target, before, *chunk) for chunk in zip(
                    row_chunks(noise.redq, -1), row_chunks(s_next, 0), row_chunks(reward, 0), row_chunks(done, 0),
                    row_chunks(noise.target, 1))], dim=-1)                       # (G, N)
                popart = popart_update(before, y, mask, popart_step_size(cfg.popart_beta, self.popart_t + 1))
        critic_steps = self.critic_objective.loss(q_replay_out, y, popart, self.bins)      # (N,)
        terms = _ActorTerms(self, popart, policy_raw, q_replay_out, state_proj, action, noise)
        actor_steps = self.actor_objective.loss(terms)                                     # (N,)
        critic_loss, actor_loss = masked_mean(critic_steps, mask), masked_mean(actor_steps, mask)
        total = actor_loss + cfg.critic_loss_weight * critic_loss
        metrics = {"losses/actor": actor_loss.detach(), "losses/critic": critic_loss.detach(),
                   "q/mean": masked_mean(terms.q_replay.mean(0), mask),
                   "popart/mu_last": popart.mu[-1].clone(), "popart/sigma_last": popart.sigma[-1].clone()}
        if "advantage" in terms.__dict__:
            metrics["actor/filter_frac"] = masked_mean((terms.advantage > 0).to(mask.dtype), mask)
        return total, {"metrics": metrics, "y": y, "mask": mask, "popart": popart,
                       "actor_loss": actor_loss, "critic_loss": critic_loss,
                       "actor_steps": actor_steps, "critic_steps": critic_steps,
                       "state": s_cur, "q_replay": terms.q_replay, "advantage": terms.__dict__.get("advantage")}

    def _td_target(self, target: CriticParams, popart: PopArt, subset: Tensor, s_next: Tensor, reward: Tensor,
                   done: Tensor, target_draws: Tensor) -> Tensor:
        """y (G, n) for n steps from the target critics at one a' ~ target policy (as the
        reference samples it), each step reducing its own random subset of them (subset
        (S, G, n)); no_grad. s_next (n, D), reward and done (n,), target_draws (G, n, A)."""
        proj = project_state(target, s_next)
        next_raw = loss_precision(self.target_actor(s_next).transpose(0, 1))
        a_next = self.sample_actions(self.policy_params(next_raw), target_draws)
        out = critic_forward(target, proj, self.gamma_feat, a_next.to(proj.dtype), self.discrete)
        q_next = self.values(loss_precision(out), popart)                      # (C, G, n)
        q_next = redq_reduce(q_next, subset, self.actor_objective.target_reduction)
        return td_target(reward, done, self.gammas, q_next, self.cfg.reward_multiplier)

    # ------------------------------------------------------------ acting

    def init_acting(self, num_actors: int) -> ActingState:
        dtype = torch.bfloat16 if self.device.type == "cuda" else self.gammas.dtype
        return ActingState(self.traj.init_state(num_actors, self.device, dtype))

    def reset_acting(self, state: ActingState, which) -> None:
        """Forget the memory of the actors whose trial ended: which (N,) bool."""
        self.traj.reset_state(state.memory, torch.as_tensor(which, device=self.device))

    @torch.inference_mode()  # no autograd bookkeeping at all: about 5-10% of a step's host time
    def act(self, state: ActingState, obs: dict, prev_action, prev_reward, time, sample: bool = True) -> Tensor:
        """One step for N actors with the last gamma's policy -> actions (N, A) float32 on CPU
        in the batch format (one-hot if discrete). env_actions() converts them for the env."""
        # Switching modes walks every submodule, a sizeable share of a step's host time;
        # Learner.update leaves the agent in evaluation mode, so this rarely has to.
        was_training = self.training
        if was_training:
            self.train(False)
        dtype = self.gammas.dtype
        obs_t = {k: torch.as_tensor(v, device=self.device) for k, v in obs.items()}
        obs_t["vec"] = obs_t["vec"].to(dtype)
        prev_action = torch.as_tensor(prev_action, device=self.device, dtype=dtype)
        prev_reward = torch.as_tensor(prev_reward, device=self.device, dtype=dtype).reshape(-1, 1)
        time = torch.as_tensor(time, device=self.device, dtype=torch.long).reshape(-1)
        with self._autocast():
            emb = self.tstep(obs_t, prev_action, prev_reward)
            h = self.traj.step(emb, time, state.memory)
            raw = loss_precision(self.actor(h)[:, -1])
        if was_training:
            self.train(True)
        policy = self.policy_params(raw)
        if self.discrete:
            (probs,) = policy
            choice = torch.multinomial(probs, 1)[:, 0] if sample else probs.argmax(-1)
            actions = one_hot(choice, self.action_dim, torch.float32)
        else:
            mean, log_std = policy
            eps = torch.randn_like(mean) if sample else torch.zeros_like(mean)
            actions = tanh_gaussian_sample(mean, log_std, eps).to(torch.float32)
        return actions.cpu()

    def env_actions(self, actions: Tensor) -> np.ndarray:
        """Batch-format actions (N, A) -> what the env takes: int64 (N,) or float32 (N, A)."""
        return actions.argmax(-1).numpy() if self.discrete else actions.numpy()


class _ActorTerms:
    """The quantities actor objectives read, each computed only when first asked for."""

    def __init__(self, agent: Agent, popart: PopArt, policy_raw, q_replay_out, state_proj, action, noise):
        self.agent, self.popart = agent, popart
        self.q_replay_out, self.state_proj, self.action, self.noise = q_replay_out, state_proj, action, noise
        self.policy = agent.policy_params(policy_raw)                       # each (G, N, ...)

    @cached_property
    def q_replay(self) -> Tensor:
        """Unnormalised Q(h, a_t) (C, G, N); the critic loss's outputs, detached."""
        return self.agent.values(self.q_replay_out.detach(), self.popart)

    @cached_property
    def log_prob_replay(self) -> Tensor:
        """log pi_g(a_t | h) (G, N), with gradient to the actor and the encoder."""
        if self.agent.discrete:
            (probs,) = self.policy
            index = self.action.argmax(-1).view(1, -1, 1).expand(probs.shape[0], -1, 1)
            return probs.gather(-1, index).squeeze(-1).log()
        mean, log_std = self.policy
        return tanh_gaussian_log_prob(mean, log_std, self.action)

    def _frozen_critic_values(self, policy: tuple[Tensor, ...], draws: Tensor, reparameterised: bool,
                              reduce) -> Tensor:
        """reduce(critic outputs (C, G, rows, P)) at a ~ pi for every chunk of rows, through
        frozen critics on the detached encoder output, concatenated -> (G, N)."""
        agent = self.agent
        frozen = agent.critics.params(detach=True)
        chunks = []
        for proj, chunk_draws, *chunk_policy in zip(row_chunks(self.state_proj.detach(), 1), row_chunks(draws, 1),
                                                    *(row_chunks(p, 1) for p in policy)):
            sample = agent.sample_actions(tuple(chunk_policy), chunk_draws, reparameterised)
            with agent._autocast():
                out = loss_precision(critic_forward(frozen, proj, agent.gamma_feat, sample.to(proj.dtype), agent.discrete))
            chunks.append(reduce(out))
        return torch.cat(chunks, dim=-1)

    @cached_property
    def advantage(self) -> Tensor:
        """mean_c Q_c(h, a_t) - mean_c E_pi Q_c(h, a) (G, N), no gradient; E_pi by the mean
        over the K samples of noise.baseline (the reference's K = 3)."""
        agent = self.agent
        with torch.no_grad():
            policy = tuple(p.detach() for p in self.policy)
            baseline = sum(self._frozen_critic_values(policy, draws, False,
                                                      lambda out: agent.values(out, self.popart).mean(0))
                           for draws in self.noise.baseline) / self.noise.baseline.shape[0]
            return self.q_replay.mean(0) - baseline

    @cached_property
    def q_policy_norm(self) -> Tensor:
        """min_c of the PopArt-normalised Q(h, a ~ pi) (G, N) through frozen critics on the
        detached encoder output: the gradient reaches only the policy, through the
        reparameterised sample. Deviation: one sample per step and gamma (noise.policy),
        where the reference's multi-task agent averages 3; the same expectation at a third
        of the cost."""
        agent = self.agent
        return self._frozen_critic_values(self.policy, self.noise.policy, True,
                                          lambda out: agent.normalized(out, self.popart).min(0).values)
