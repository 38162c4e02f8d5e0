"""The update's losses written plainly, for clarity rather than speed (tests only).

Loops over gammas, critics and action samples; each critic is an ordinary MLP on the
concatenated input [state, symlog(1 / (1 - gamma)), action] (a discrete action one-hot);
the two-hot target is built densely with a triangle kernel; log-probabilities come from
torch.distributions; discrete samples are drawn as torch's gumbel_softmax draws them,
from the update's own Gumbel noise. The optimised update in agent.py must match this in float64
(tests/test_same_math.py). It shares the networks' parameters and the trajectory encoder,
whose attention is the same either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from amago2.agent import Agent, UpdateNoise


def _masked_average(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum()


def _critic(agent: Agent, target: bool, c: int, g: int, state: Tensor, action: Tensor,
            frozen: bool = False) -> Tensor:
    """Critic c's raw outputs for gamma g: state (N, D), action (N, A) -> (N, P)."""
    net = agent.target_critics if target else agent.critics
    w1 = torch.cat([net.w_state[c], net.w_gamma[c], net.w_action[c]], dim=0)
    gamma_col = torch.full((state.shape[0], 1), float(agent.gamma_feat[g]), dtype=state.dtype)
    x = torch.cat([state, gamma_col, action], dim=-1)
    params = [w1, net.b1[c], net.w2[c], net.b2[c], net.w_out[c], net.b_out[c]]
    if frozen:
        params = [p.detach() for p in params]
    w1, b1, w2, b2, w_out, b_out = params
    h = F.leaky_relu(x @ w1 + b1)
    h = F.leaky_relu(h @ w2 + b2)
    return h @ w_out + b_out


def _popart_step(agent: Agent, g: int, y: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Gamma g's PopArt state after moving towards the targets y (N,): the reference's
    adaptive step at its counter t + 1, then (w, b) rescaled to keep sigma (w x + b) + mu."""
    beta, t = agent.cfg.popart_beta, int(agent.popart_t) + 1
    beta_t = beta / (1 - (1 - beta) ** t)
    mu, nu = agent.popart_mu[g], agent.popart_nu[g]
    mean, mean_sq = _masked_average(y, mask), _masked_average(y ** 2, mask)
    new_mu = (1 - beta_t) * mu + beta_t * mean
    new_nu = (1 - beta_t) * nu + beta_t * mean_sq
    sigma, new_sigma = _sigma(mu, nu), _sigma(new_mu, new_nu)
    return {"mu": new_mu, "sigma": new_sigma, "w": agent.popart_w[g] * sigma / new_sigma,
            "b": (sigma * agent.popart_b[g] + mu - new_mu) / new_sigma}


def _sigma(mu: Tensor, nu: Tensor) -> Tensor:
    return torch.sqrt(torch.clamp(nu - mu * mu, 1e-4, 1e8)).clamp(1e-4, 1e6)


def _before(agent: Agent, g: int) -> dict[str, Tensor]:
    mu, nu = agent.popart_mu[g], agent.popart_nu[g]
    return {"mu": mu, "sigma": _sigma(mu, nu), "w": agent.popart_w[g], "b": agent.popart_b[g]}


def _value(agent: Agent, stats: dict[str, Tensor], out: Tensor) -> Tensor:
    """Unnormalised scalar from one value's outputs (..., P)."""
    if agent.cfg.critic == "dep":
        return (stats["w"] * out[..., 0] + stats["b"]) * stats["sigma"] + stats["mu"]
    expected = (torch.softmax(out, -1) * agent.bins).sum(-1)
    return torch.sign(expected) * (torch.exp(expected.abs()) - 1)


def _normalized(agent: Agent, stats: dict[str, Tensor], out: Tensor) -> Tensor:
    if agent.cfg.critic == "dep":
        return stats["w"] * out[..., 0] + stats["b"]
    return (_value(agent, stats, out) - stats["mu"]) / stats["sigma"]


def _dense_two_hot(agent: Agent, y: Tensor) -> Tensor:
    bins = agent.bins
    # The bins are evenly spaced; rebuild the grid from its ends so that float32 rounding
    # of the stored centres does not leak into the comparison.
    width = (bins[-1] - bins[0]) / (bins.shape[0] - 1)
    grid = bins[0] + width * torch.arange(bins.shape[0], dtype=bins.dtype)
    x = torch.sign(y) * torch.log(1 + y.abs())
    x = x.clamp(float(bins[0]), float(bins[-1]))
    return torch.clamp(1 - (x[:, None] - grid[None, :]).abs() / width, min=0)


def _one_hot_sample(probs: Tensor, gumbel: Tensor) -> Tensor:
    return F.one_hot(torch.argmax(torch.log(probs) + gumbel, -1), probs.shape[-1]).to(probs.dtype)


def _gumbel_softmax_hard(probs: Tensor, gumbel: Tensor) -> Tensor:
    """torch.nn.functional.gumbel_softmax(log probs, tau=0.5, hard=True) with the given noise."""
    soft = torch.softmax((torch.log(probs) + gumbel) / 0.5, -1)
    return F.one_hot(soft.argmax(-1), probs.shape[-1]).to(soft.dtype) - soft.detach() + soft


def _policy(agent: Agent, raw: Tensor):
    """raw (N, P) for one gamma -> (probs) or (mean, std)."""
    cfg = agent.cfg
    if agent.discrete:
        probs = torch.softmax(raw, -1).clamp(cfg.prob_min, cfg.prob_max)
        return probs / probs.sum(-1, keepdim=True)
    a = agent.action_dim
    mean, raw_log_std = raw[:, :a], raw[:, a:]
    log_std = cfg.log_std_min + (cfg.log_std_max - cfg.log_std_min) * torch.sigmoid(2 * raw_log_std)
    return mean, log_std.exp()


def reference_losses(agent: Agent, batch: dict, noise: UpdateNoise) -> dict[str, Tensor]:
    cfg = agent.cfg
    b, l, a = batch["action"].shape
    n = b * l
    mask = batch["mask"].reshape(n)
    action = batch["action"].reshape(n, a)
    reward, done = batch["reward"].reshape(n), batch["done"].reshape(n)
    s = agent.encode(batch)
    s_cur = s[:, :-1].reshape(n, -1)
    s_next = s[:, 1:].reshape(n, -1).detach()
    s_frozen = s_cur.detach()
    policy_raw = agent.actor(s_cur)
    target_raw = agent.target_actor(s_next)
    reduce_min = cfg.actor == "dep"
    discrete_index = action.argmax(-1)
    critic_terms, actor_terms = [], []
    for g in range(len(cfg.gammas)):
        gamma = agent.gammas[g]  # the agent's stored (float32-rounded) discount
        # TD target: every target critic's value at s', then each step's own subset of them.
        with torch.no_grad():
            before = _before(agent, g)
            if agent.discrete:
                a_next = _one_hot_sample(_policy(agent, target_raw[:, g]), noise.target[g])
            else:
                mean, std = _policy(agent, target_raw[:, g])
                a_next = torch.tanh(mean + std * noise.target[g])
            per_critic = torch.stack([_value(agent, before, _critic(agent, True, c, g, s_next, a_next))
                                      for c in range(cfg.n_critics)])            # (C, N)
            chosen = per_critic[noise.redq[:, g], torch.arange(n)]                   # (S, N)
            q_next = chosen.min(0).values if reduce_min else chosen.mean(0)
            y = reward * cfg.reward_multiplier + gamma * (1 - done) * q_next
            stats = _popart_step(agent, g, y, mask)  # every loss term below reads the moved state
        # Critic loss, each critic separately.
        replay_values = []
        for c in range(cfg.n_critics):
            out = _critic(agent, False, c, g, s_cur, action)
            replay_values.append(_value(agent, stats, out.detach()))
            if cfg.critic == "dep":
                per_step = (_normalized(agent, stats, out) - (y - stats["mu"]) / stats["sigma"]) ** 2
            else:
                per_step = -(_dense_two_hot(agent, y) * torch.log_softmax(out, -1)).sum(-1)
            critic_terms.append(_masked_average(per_step, mask))
        # Actor loss.
        if agent.discrete:
            probs = _policy(agent, policy_raw[:, g])
        else:
            mean, std = _policy(agent, policy_raw[:, g])
        if cfg.actor == "dep":
            if agent.discrete:
                a_pi = _gumbel_softmax_hard(probs, noise.policy[g])
            else:
                a_pi = torch.tanh(mean + std * noise.policy[g])
            q_policy = torch.stack([_normalized(agent, stats, _critic(agent, False, c, g, s_frozen, a_pi, frozen=True))
                                    for c in range(cfg.n_critics)]).min(0).values
            actor_terms.append(_masked_average(-q_policy, mask))
        else:
            with torch.no_grad():
                q_replay = torch.stack(replay_values).mean(0)
                samples = []
                for draws in noise.baseline[:, g]:
                    a_k = _one_hot_sample(probs, draws) if agent.discrete else torch.tanh(mean + std * draws)
                    samples.append(torch.stack([_value(agent, stats, _critic(agent, False, c, g, s_frozen, a_k))
                                                for c in range(cfg.n_critics)]).mean(0))
                baseline = torch.stack(samples).mean(0)
                advantage = q_replay - baseline
            if agent.discrete:
                log_prob = torch.log(probs[torch.arange(n), discrete_index])
            else:
                edge = 1e-6
                a_t = action.clamp(-1 + edge, 1 - edge)
                u = torch.atanh(a_t)
                log_prob = (torch.distributions.Normal(mean, std).log_prob(u) - torch.log(1 - a_t ** 2)).sum(-1)
            keep = (advantage > 0).to(log_prob.dtype)
            actor_terms.append(_masked_average(-keep * log_prob, mask))
    critic_loss = torch.stack(critic_terms).mean()
    actor_loss = torch.stack(actor_terms).mean()
    return {"actor": actor_loss, "critic": critic_loss,
            "total": actor_loss + cfg.critic_loss_weight * critic_loss}
