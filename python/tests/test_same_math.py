"""The optimised update (agent.py) computes the same losses and gradients as the plain
loop formulation (reference.py), in float64, for every objective pair and action type."""

import pytest
import torch

import amago2.agent
from amago2.reference import reference_losses
from learner_fixtures import ENCODER_OVERRIDES, PAIRS, make_agent, random_batch


def _grads(agent, loss):
    named = [(name, p) for name, p in agent.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True, retain_graph=True)
    return {name: g for (name, _), g in zip(named, grads)}


@pytest.mark.parametrize("critic_rows", [amago2.agent.CRITIC_ROWS, 7], ids=["one-chunk", "chunks-of-7"])
@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
@pytest.mark.parametrize("actor,critic", PAIRS)
def test_optimised_update_matches_reference(actor, critic, discrete, critic_rows, monkeypatch):
    # The 32-step test batch is one chunk of the default size; chunks of 7 steps (the last
    # one shorter) exercise the chunked critic passes.
    monkeypatch.setattr(amago2.agent, "CRITIC_ROWS", critic_rows)
    _check_same_math(actor, critic, discrete)


# The Transformer is the test above; every other encoder with two of its cells.
OTHER_ENCODERS = {name: o for name, o in ENCODER_OVERRIDES.items() if name != "transformer"}


@pytest.mark.parametrize("encoder", list(OTHER_ENCODERS.values()), ids=list(OTHER_ENCODERS))
@pytest.mark.parametrize("actor,critic,discrete", [("ind", "ind", True), ("dep", "dep", False)])
def test_every_trajectory_encoder_keeps_the_update_the_reference(encoder, actor, critic, discrete):
    _check_same_math(actor, critic, discrete, **encoder)


def _check_same_math(actor, critic, discrete, **encoder):
    agent = make_agent(actor, critic, discrete, reward_multiplier=3.0, **encoder).double()
    agent.train(False)  # no dropout, no power-iteration step: both evaluations see one network
    with torch.no_grad():  # non-trivial PopArt statistics and target heads that differ from online
        agent.popart_mu.copy_(torch.tensor([0.7, -1.3]))
        agent.popart_nu.copy_(torch.tensor([2.0, 5.0]))
        agent.popart_w.copy_(torch.tensor([0.8, 1.7]))
        agent.popart_b.copy_(torch.tensor([0.2, -0.4]))
        agent.popart_t.fill_(6)
        for p in list(agent.target_critics.parameters()) + list(agent.target_actor.parameters()):
            p.add_(0.05 * torch.randn_like(p))
        for name, p in agent.traj.named_parameters():
            if name.endswith(("sink_k", "sink_v")):
                p.normal_()  # a sink that is not yet zero
    batch = agent.prepare_batch(random_batch(agent, dtype=torch.float64))
    noise = agent.sample_noise(batch)
    assert noise.redq.shape[0] == 2
    if discrete and noise.baseline is not None:
        # Keep each step's replay action out of its baseline samples: where every sample
        # equals it, the advantage is 0 up to rounding, and the filter's verdict on such a
        # tie depends on the order of additions, not on the mathematics.
        replay = batch["action"].reshape(-1, agent.action_dim).bool()
        noise.baseline.masked_fill_(replay.expand_as(noise.baseline), float("-inf"))

    _, aux = agent.loss(batch, noise)
    ref = reference_losses(agent, batch, noise)
    for name in ("actor", "critic"):
        ours, theirs = aux[f"{name}_loss"], ref[name]
        assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12), (name, ours, theirs)
        g_ours, g_ref = _grads(agent, ours), _grads(agent, theirs)
        touched = 0
        for key in g_ours:
            a, b = g_ours[key], g_ref[key]
            if a is None or b is None:
                assert (a is None or not a.any()) and (b is None or not b.any()), key
                continue
            touched += 1
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-11), (name, key, (a - b).abs().max())
        assert touched > 0
