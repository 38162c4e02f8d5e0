"""Gradient flow, masking, the scale-invariance thesis, and the learner step (the trajectory
encoders' acting paths: test_encoders.py)."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from amago2.agent import Agent
from amago2.learner import Learner
from amago2.config import AgentConfig, TrainConfig
from amago2.nets.linear import Linear
from learner_fixtures import (ENCODER_OVERRIDES, OBS_DIM, PAIRS, TINY, DevicelessFactoryAudit, HostSyncAudit, OpTrace,
                              make_agent, random_batch)

BOTH = pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
# The trajectory encoders other than the default Transformer.
OTHER_ENCODERS = pytest.mark.parametrize("encoder", [e for e in ENCODER_OVERRIDES.values() if e],
                                         ids=[n for n, e in ENCODER_OVERRIDES.items() if e])


def _eval_loss(agent, batch, noise=None):
    batch = agent.prepare_batch(batch)
    return agent.loss(batch, noise if noise is not None else agent.sample_noise(batch))


@BOTH
@pytest.mark.parametrize("actor,critic", PAIRS)
def test_actor_loss_never_moves_critic_parameters(actor, critic, discrete):
    agent = make_agent(actor, critic, discrete)
    _, aux = _eval_loss(agent, random_batch(agent))
    aux["actor_loss"].backward()
    for name, p in agent.critics.named_parameters():
        assert p.grad is None or not p.grad.any(), name
    actor_grads = [p.grad for p in agent.actor.parameters()]
    assert all(g is not None and g.any() for g in actor_grads)
    encoder_grad = agent.traj.blocks[0].ff1.weight.grad
    assert encoder_grad is not None and encoder_grad.any()  # log-prob / reparam path trains it


@BOTH
@pytest.mark.parametrize("actor,critic", [("dep", "dep"), ("ind", "ind")])
def test_padded_steps_contribute_nothing(actor, critic, discrete):
    agent = make_agent(actor, critic, discrete).double().train(False)
    batch = random_batch(agent, dtype=torch.float64)
    l = agent.cfg.max_seq_len
    first_pad = l - 3  # random_batch pads the last 3 steps of its last sequence
    assert batch["mask"][-1, first_pad:].sum() == 0
    prepared = agent.prepare_batch(batch)
    noise = agent.sample_noise(prepared)
    base_total, base = agent.loss(prepared, noise)
    params = [p for p in agent.parameters() if p.requires_grad]
    base_grads = torch.autograd.grad(base_total, params, allow_unused=True)

    g = torch.Generator().manual_seed(7)
    junk = {k: v.clone() for k, v in batch.items() if k != "obs"}
    junk["obs"] = {"vec": batch["obs"]["vec"].clone()}
    junk["reward"][-1, first_pad:] = 1e4
    junk["done"][-1, first_pad:] = 1.0
    junk["action"][-1, first_pad:] = torch.flip(junk["action"][-1, first_pad:], dims=[-1])
    # Observation first_pad is the next state of the last real step; the later ones are padding.
    junk["obs"]["vec"][-1, first_pad + 1:] = torch.randn(3, OBS_DIM, generator=g, dtype=torch.float64) * 50
    junk["prev_reward"][-1, first_pad + 1:] = -3e3
    total, aux = agent.loss(agent.prepare_batch(junk), noise)
    assert base["critic_loss"] > 0 and base["actor_loss"] != 0
    assert torch.allclose(aux["critic_loss"], base["critic_loss"], rtol=1e-12)
    assert torch.allclose(aux["actor_loss"], base["actor_loss"], rtol=1e-12)
    grads = torch.autograd.grad(total, params, allow_unused=True)
    for a, b in zip(base_grads, grads):
        assert (a is None) == (b is None)
        assert a is None or torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def _two_task_batch(agent, scale_b: float, seed: int = 5):
    batch = random_batch(agent, batch_size=8, seed=seed)
    batch["mask"] = torch.ones_like(batch["mask"])
    batch["reward"][4:] *= scale_b
    batch["prev_reward"][4:] *= scale_b
    return batch


def _task_grad_norms(agent, batch, noise, which: str):
    """Gradient norms of one loss's terms of task A (sequences 0-3) and of task B (4-7), in
    one update on the batch of both (one PopArt state for both, as in training)."""
    params = list(agent.critics.parameters()) if which == "critic" else list(agent.actor.parameters())
    _, aux = agent.loss(batch, noise)
    steps = aux[f"{which}_steps"].view(8, -1)                 # (sequences, window)
    norms = []
    for task in (slice(0, 4), slice(4, 8)):
        grads = torch.autograd.grad(steps[task].mean(), params, allow_unused=True, retain_graph=True)
        norms.append(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
    return float(norms[0]), float(norms[1])


@BOTH
def test_thesis_task_gradient_shares(discrete):
    """Two tasks whose rewards differ by 1000x share the gradient under ind/ind; the
    large-scale task dominates the Dep critic's gradient."""
    ind = make_agent("ind", "ind", discrete).train(False)
    batch = ind.prepare_batch(_two_task_batch(ind, 1000.0))
    noise = ind.sample_noise(batch)
    for which in ("critic", "actor"):
        a, b = _task_grad_norms(ind, batch, noise, which)
        assert 1 / 4 < a / b < 4, (which, a, b)
    dep = make_agent("dep", "dep", discrete).train(False)
    a, b = _task_grad_norms(dep, batch, dep.sample_noise(batch), "critic")
    assert b / a > 50, (a, b)


@BOTH
def test_thesis_reward_scale_leaves_ind_losses_nearly_unchanged(discrete):
    results = {}
    for pair in (("ind", "ind"), ("dep", "dep")):
        agent = make_agent(*pair, discrete).train(False)
        losses = []
        for scale in (1.0, 1000.0):
            batch = random_batch(agent, seed=9, reward_scale=scale)
            batch["prev_reward"] = batch["prev_reward"] / scale  # same network input, rescaled targets only
            torch.manual_seed(11)
            _, aux = _eval_loss(agent, batch)
            losses.append((float(aux["critic_loss"].detach()), float(aux["actor_loss"].detach())))
        results[pair] = losses
    (c1, a1), (c1000, a1000) = results[("ind", "ind")]
    assert abs(c1000 - c1) / c1 < 0.1 and abs(a1000 - a1) <= 0.1 * abs(a1)
    # PopArt's first, adaptive move (halfway to the batch's moments from nu = 100) absorbs
    # part of a global rescale, not all of it: the Dep critic's loss still grows with c
    # (34x and 99x here for c = 1000).
    (d1, _), (d1000, _) = results[("dep", "dep")]
    assert d1000 / d1 > 10


@BOTH
def test_learner_update_steps_weights_targets_and_popart(discrete):
    agent = make_agent("ind", "dep", discrete)
    learner = Learner(agent, TrainConfig(lr=1e-3, warmup_updates=1))
    batch = random_batch(agent, reward_scale=100.0)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    metrics = learner.update(batch)
    assert {"losses/actor", "losses/critic", "q/mean", "actor/filter_frac", "popart/mu_last"} <= metrics.keys()
    assert all(torch.isfinite(v).all() for v in metrics.values())
    after = agent.state_dict()
    assert not torch.equal(before["traj.blocks.0.qkv.weight"], after["traj.blocks.0.qkv.weight"])
    # Polyak: the target moves by tau of the (online - target) gap, online having moved once.
    t0, o1, t1 = before["target_actor.net.0.weight"], after["actor.net.0.weight"], after["target_actor.net.0.weight"]
    assert torch.allclose(t1, t0 + agent.cfg.tau * (o1 - t0), atol=1e-7)
    assert after["popart_mu"][-1] > 0 and not torch.equal(before["popart_nu"], after["popart_nu"])
    assert int(after["popart_t"]) == 2  # the reference's counter: 1, then once per update
    assert not torch.equal(before["popart_w"], after["popart_w"])  # rescaled with the move
    assert int(after["tstep.vec_norm.t"]) == 2  # the input statistics moved once

    # state_dict round trip into a fresh learner reproduces the next update exactly.
    clone = Learner(make_agent("ind", "dep", discrete, seed=99), TrainConfig(lr=1e-3, warmup_updates=1))
    clone.load_state_dict(copy.deepcopy(learner.state_dict()))  # as from a file: AdamW would alias the moments
    assert clone.updates == 1
    # So does a checkpoint of the earlier learner: a LambdaLR's state, the lr as a float.
    earlier = copy.deepcopy(learner.state_dict())
    earlier["scheduler"] = {"last_epoch": 1, "base_lrs": [1e-3], "_last_lr": [1e-3]}
    earlier["optimizer"]["param_groups"][0].update(lr=1e-3, capturable=False)
    from_earlier = Learner(make_agent("ind", "dep", discrete, seed=98), TrainConfig(lr=1e-3, warmup_updates=1))
    from_earlier.load_state_dict(earlier)
    assert from_earlier.optimizer.param_groups[0]["lr"] is from_earlier.lr
    torch.manual_seed(0)
    m1 = learner.update(batch)
    torch.manual_seed(0)
    m2 = clone.update(batch)
    torch.manual_seed(0)
    m3 = from_earlier.update(batch)
    assert torch.equal(m1["losses/critic"], m2["losses/critic"])
    assert torch.equal(learner.agent.actor.net[0].weight, clone.agent.actor.net[0].weight)
    assert torch.equal(learner.agent.actor.net[0].weight, from_earlier.agent.actor.net[0].weight)


def _syncing_ops_in_an_update(agent) -> list[str]:
    learner = Learner(agent, TrainConfig(batch_size=4, task_metrics_every_updates=1), num_tasks=2)
    batch = random_batch(agent)
    batch["task"] = torch.tensor([0, 1, 0, 1])
    learner.update(batch)                                            # the first update's lazy setup
    with HostSyncAudit() as audit:
        metrics = learner.update(batch)
    assert "task/step_share" in metrics and "popart/mu_last" in metrics  # the whole update ran
    on_device = agent.prepare_batch(batch)
    with DevicelessFactoryAudit() as factories:                      # the step a CUDA graph records
        learner.steps[True](on_device)
    return audit.syncing + factories.made


@BOTH
@pytest.mark.parametrize("actor,critic", PAIRS)
def test_an_update_queues_no_op_that_waits_for_the_device(actor, critic, discrete):
    """Loss, backward, clipping, the fused AdamW step, PopArt, input norm, Polyak and the
    task metrics, with the replay batch's move to the device: no op that would make the
    host wait for a GPU, and no tensor made without a device inside the recorded step (the
    CUDA tests check the same on a GPU with sync debug mode and the recording itself)."""
    assert _syncing_ops_in_an_update(make_agent(actor, critic, discrete)) == []


@OTHER_ENCODERS
def test_no_trajectory_encoder_adds_an_op_that_waits_for_the_device(encoder):
    assert _syncing_ops_in_an_update(make_agent("ind", "ind", True, **encoder)) == []


def test_the_host_sync_audit_sees_reads_back_and_data_sized_outputs():
    x = torch.randn(6)
    with HostSyncAudit() as audit:
        float(x.sum())
        x[x > 0]
        torch.nonzero(x)
        x.to("cpu", copy=True)
        x.to("cpu", non_blocking=True, copy=True)
        x.repeat_interleave(2)
        torch.zeros(2, 6).scatter_(-1, torch.zeros(2, 1, dtype=torch.long), 1.0)
    assert audit.syncing == ["_local_scalar_dense.default", "index.Tensor with a boolean index",
                             "nonzero.default", "_to_copy.default to cpu (blocking)"]


def test_the_deviceless_factory_audit_sees_a_tensor_made_without_a_device():
    x = torch.randn(3)
    with DevicelessFactoryAudit() as audit:
        torch.where(x > 0, x, torch.zeros(()))
        torch.where(x > 0, x, 0.0)
        torch.zeros((), device=x.device)
        torch.zeros_like(x)
    assert audit.made == ["torch.zeros without a device"]


def _learner_state(learner) -> dict[str, torch.Tensor]:
    state = {f"agent.{k}": v for k, v in learner.agent.state_dict(keep_vars=True).items()}
    for i, p in enumerate(learner.params):
        state.update({f"adamw.{i}.{k}": v for k, v in learner.optimizer.state[p].items()})
    return {**state, "lr": learner.lr}


def _replay_check(agent) -> list[str]:
    """Two updates of each kind (with and without the task metrics; during the warmup, where
    the learning rate changes) after one of each: assert each pair ran the same ops with the
    same non-tensor arguments and that all state stayed in its memory; returns the names of
    the state tensors that changed."""
    learner = Learner(agent, TrainConfig(batch_size=4, warmup_updates=10, task_metrics_every_updates=2), num_tasks=2)
    batch = random_batch(agent)
    batch["task"] = torch.tensor([0, 1, 0, 1])
    learner.update(batch)
    learner.update(batch)                                            # both kinds have run once
    before = {k: (v.data_ptr(), v.detach().clone()) for k, v in _learner_state(learner).items()}
    traces = []

    def traced(step):  # what a GraphedStep would record: the step, not the update around it
        def run(batch):
            with OpTrace() as trace:
                out = step(batch)
            traces.append(trace.ops)
            return out
        return run
    learner.steps = {with_tasks: traced(step) for with_tasks, step in learner.steps.items()}
    for _ in range(4):                                               # with tasks, without, with, without
        learner.update(batch)
    assert traces[0] == traces[2] and traces[1] == traces[3]
    assert traces[0] != traces[1]                                    # the task metrics' ops
    after = _learner_state(learner)
    assert after.keys() == before.keys()
    assert [k for k, v in after.items() if v.data_ptr() != before[k][0]] == []
    return [k for k, v in after.items() if not torch.equal(v.detach(), before[k][1])]


@BOTH
@pytest.mark.parametrize("actor,critic", PAIRS)
def test_an_update_replays_as_recorded_with_state_changed_in_place(actor, critic, discrete):
    """What a CUDA graph of the update needs (amago2.cuda_graph), checked on the CPU: a replay
    of one update computes the next (same ops, same non-tensor arguments), and every weight,
    statistic, counter and optimiser moment stays in its memory, changed in place, so that
    replays move the state the agent and its checkpoint hold."""
    moved = _replay_check(make_agent(actor, critic, discrete))
    for key in ("agent.traj.blocks.0.qkv.weight", "agent.traj.blocks.0.qkv.u", "agent.target_actor.net.0.weight",
                "agent.popart_mu", "agent.popart_t", "agent.tstep.vec_norm.t", "adamw.0.step", "adamw.0.exp_avg", "lr"):
        assert key in moved, key


@OTHER_ENCODERS
def test_every_trajectory_encoder_replays_as_recorded(encoder):
    moved = _replay_check(make_agent("ind", "ind", True, **encoder))
    assert {"adamw.0.step", "lr", "agent.popart_t"} <= set(moved)


def test_image_and_token_observations_encode():
    cfg = AgentConfig(**TINY)
    space = gym.spaces.Dict({"vec": gym.spaces.Box(-1, 1, (3,)),
                             "img": gym.spaces.Box(0, 255, (7, 7, 3), dtype=np.uint8),
                             "tokens": gym.spaces.MultiDiscrete([20] * 6)})
    agent = Agent(cfg, space, gym.spaces.Discrete(4))
    state = agent.init_acting(2)
    obs = {"vec": np.zeros((2, 3), np.float32), "img": np.full((2, 7, 7, 3), 200, np.uint8),
           "tokens": np.array([[1, 2, 3, 0, 0, 0], [4, 5, 0, 0, 0, 0]])}
    actions = agent.act(state, obs, np.zeros((2, 4)), np.zeros(2), np.zeros(2))
    assert actions.shape == (2, 4) and agent.env_actions(actions).shape == (2,)
    learner = Learner(agent, TrainConfig(warmup_updates=1))
    b, l = 2, cfg.max_seq_len
    action = torch.nn.functional.one_hot(torch.randint(0, 4, (b, l)), 4).float()
    batch = {"obs": {"vec": torch.randn(b, l + 1, 3), "img": torch.randint(0, 255, (b, l + 1, 7, 7, 3), dtype=torch.uint8),
                     "tokens": torch.randint(0, 20, (b, l + 1, 6))},
             "prev_action": torch.cat((torch.zeros(b, 1, 4), action), 1), "prev_reward": torch.zeros(b, l + 1, 1),
             "time": torch.arange(l + 1).repeat(b, 1), "action": action, "reward": torch.ones(b, l, 1),
             "done": torch.zeros(b, l, 1), "mask": torch.ones(b, l, 1)}
    metrics = learner.update(batch)
    assert torch.isfinite(metrics["losses/critic"])
    assert agent.tstep.cnn.net[0].weight.grad is not None


def test_input_norm_moves_as_the_reference_and_only_centres_a_feature_that_barely_varied():
    from amago2.nets.timestep import InputNorm
    beta = InputNorm.BETA
    g = torch.Generator().manual_seed(2)
    norm = InputNorm(3).double()
    first = torch.randn(5, 3, generator=g, dtype=torch.float64) * 4 + 2
    first[:, 2] = 0.0  # a feature that is always 0 so far (padding, a one-hot entry never on)
    norm.update(first, torch.ones(5))
    step = 1 / (2 - beta)  # the first update's adaptive step, beta / (1 - (1 - beta)^2)
    assert torch.allclose(norm.mu, step * first.mean(0))
    assert torch.allclose(norm.nu, (1 - step) * 1.0 + step * first.square().mean(0))
    # Padding rows (weight 0) and an empty batch change nothing.
    second = torch.randn(9, 3, generator=g, dtype=torch.float64)
    second[:, 2] = 0.0
    mu, nu = norm.mu.clone(), norm.nu.clone()
    padded = torch.cat((second, torch.full((4, 3), 1e6, dtype=torch.float64)))
    norm.update(padded, torch.cat((torch.ones(9), torch.zeros(4))))
    step = beta / (1 - (1 - beta) ** 3)
    assert torch.allclose(norm.mu, (1 - step) * mu + step * second.mean(0))
    assert torch.allclose(norm.nu, (1 - step) * nu + step * second.square().mean(0))
    before = (norm.mu.clone(), norm.nu.clone(), int(norm.t))
    norm.update(padded[:0], torch.zeros(0))
    assert torch.equal(norm.mu, before[0]) and torch.equal(norm.nu, before[1]) and int(norm.t) == before[2]
    x = torch.tensor([[2.0, 2.0, 1.0]], dtype=torch.float64)
    sigma = torch.sqrt(norm.nu - norm.mu ** 2 + 1e-5)
    assert torch.allclose(norm(x), (x - norm.mu) / sigma)
    # Long after, the always-0 feature's moments have decayed to ~0 (sigma ~ 0.003): a 1
    # there is only centred, where dividing would make it ~300.
    with torch.no_grad():
        norm.nu[2] = 0.0
    out = norm(x)
    assert torch.allclose(out[0, :2], (x[0, :2] - norm.mu[:2]) / sigma[:2])
    assert float(out[0, 2]) == 1.0


@pytest.mark.parametrize("actors", [1, 3])
def test_acting_uses_the_weights_of_the_latest_update(actors):
    """Acting caches weights in its own layouts (one for one actor, another for several)
    between optimiser steps, whose fused kernel bumps no version counter; several updates
    between two acting calls (the training loop's usual rhythm) must still reach them."""
    agent = make_agent("ind", "ind", discrete=False)
    learner = Learner(agent, TrainConfig(batch_size=4, lr=1e-2, warmup_updates=1))
    obs = {"vec": np.random.default_rng(0).standard_normal((actors, OBS_DIM)).astype(np.float32)}
    zeros_a, zeros_r = np.zeros((actors, 2), np.float32), np.zeros(actors, np.float32)

    def greedy_action(agent):
        return agent.act(agent.init_acting(actors), obs, zeros_a, zeros_r, np.zeros(actors), sample=False)

    before = greedy_action(agent)
    for seed in range(3):
        learner.update(random_batch(agent, seed=seed))
        greedy_action(agent)  # an acting call between updates fills the caches
    for seed in range(3, 6):
        learner.update(random_batch(agent, seed=seed))
    cached = greedy_action(agent)
    uncached = make_agent("ind", "ind", discrete=False)
    uncached.load_state_dict(agent.state_dict())
    fresh = greedy_action(uncached.train(False))
    assert not torch.allclose(before, fresh, atol=1e-4)  # the updates moved the policy
    assert torch.allclose(cached, fresh, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_acting_linear_layouts_compute_f_linear(dtype):
    """Acting multiplies through other layouts (and on CPU fp32 a oneDNN-packed weight)
    chosen by the number of rows; each is the same product as F.linear."""
    layer = Linear(256, 300).to(dtype).train(False)  # large enough to be packed
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for rows in (1, 3, 8, 3):  # the packed weight, tuned for 3 rows, serves 8 as well
            x = torch.randn(rows, 1, 256, generator=g, dtype=dtype)
            expected = torch.nn.functional.linear(x, layer.weight, layer.bias)
            assert torch.allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
        copied = copy.deepcopy(layer)  # the cached forms are not copied, only rebuilt
        assert torch.allclose(copied(x), expected, rtol=1e-5, atol=1e-5)


@BOTH
def test_task_metrics_split_the_gradient_at_the_encoder_output_exactly_by_task(discrete):
    """Per task of a batch (amago2.task_metrics): the rows of the gradient at the encoder
    output hold each task's own gradient, so the shares are those of per-task backward
    passes; under dep/dep the 1000x task takes nearly all of the critic's, under ind/ind
    the two tasks share it."""
    from amago2.task_metrics import task_metrics

    task = torch.tensor([0] * 4 + [1] * 4)
    shares = {}
    for pair in (("ind", "ind"), ("dep", "dep")):
        agent = make_agent(*pair, discrete).train(False)
        batch = agent.prepare_batch(_two_task_batch(agent, 1000.0))
        _, aux = agent.loss(batch, agent.sample_noise(batch))
        measured = task_metrics(aux, task, num_tasks=3)  # task 2 is not in the batch
        assert torch.equal(measured["step_share"], torch.tensor([0.5, 0.5, 0.0]))
        steps = aux["critic_steps"].view(8, -1)
        by_hand = []
        for rows in (slice(0, 4), slice(4, 8)):  # each task's own loss, differentiated alone
            own = steps[rows].sum() / aux["mask"].sum()
            grad, = torch.autograd.grad(own, aux["state"], retain_graph=True)
            by_hand.append(grad.norm())
        by_hand = torch.stack(by_hand)
        assert torch.allclose(measured["critic_grad_share"][:2], by_hand / by_hand.sum(), rtol=1e-4)
        assert measured["critic_grad_share"][2] == 0 and torch.isclose(measured["actor_grad_share"].sum(), torch.tensor(1.0))
        assert torch.allclose(measured["critic_loss"][:2], steps.mean(1).view(2, 4).mean(1), rtol=1e-5)
        assert ("filter_pass" in measured) == (pair[0] == "ind")
        shares[pair] = float(measured["critic_grad_share"][1])
    assert shares[("dep", "dep")] > 0.95, shares
    assert 0.2 < shares[("ind", "ind")] < 0.8, shares
