"""The trajectory encoders (traj_encoder: transformer | gru | ff | trmrl, and attention_sink):
acting step by step computes what the training forward computes, each actor's memory resets
alone, and the memory-free encoder remembers nothing."""

import numpy as np
import pytest
import torch

from learner_fixtures import ENCODER_OVERRIDES, OBS_DIM, make_agent

ENCODERS = pytest.mark.parametrize("encoder", list(ENCODER_OVERRIDES.values()), ids=list(ENCODER_OVERRIDES))


def _banded_causal(length: int, window: int) -> torch.Tensor:
    i = torch.arange(length)
    return (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)


def _what_acting_sees(agent, encoder: dict, emb, time):
    """The training forward as acting sees it: the Transformer's cache slides over the last
    max_seq_len steps (a banded mask); TrMRL re-encodes the window of the last max_seq_len
    steps, positions counted from its start; the GRU carries the whole trial and the FF
    encoder has nothing to carry (the plain forward)."""
    window = agent.cfg.max_seq_len
    steps = emb.shape[1]
    if encoder.get("traj_encoder") == "trmrl":
        return torch.stack([agent.traj(emb[:, max(0, t - window + 1):t + 1], time[:, max(0, t - window + 1):t + 1])[:, -1]
                            for t in range(steps)], 1)
    if encoder.get("traj_encoder") in ("gru", "ff"):
        return agent.traj(emb, time)
    return agent.traj(emb, time, attn_mask=_banded_causal(steps, window))


def _agent(encoder: dict, discrete: bool = False):
    agent = make_agent("ind", "ind", discrete=discrete, **encoder).double().train(False)
    with torch.no_grad():
        for name, p in agent.traj.named_parameters():
            if name.endswith(("sink_k", "sink_v")):
                p.normal_()  # a sink that changes the result: zeros would only add 1 to each softmax
    return agent


def _inputs(agent, actors: int, steps: int, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(actors, steps, agent.cfg.tstep_dim, generator=g, dtype=torch.float64)
    time = torch.arange(steps).repeat(actors, 1) + torch.tensor([[0], [100], [7]])[:actors]
    return emb, time


@ENCODERS
def test_acting_step_by_step_equals_the_training_forward(encoder):
    agent = _agent(encoder)
    window = agent.cfg.max_seq_len
    steps, actors = 2 * window + 5, 3
    emb, time = _inputs(agent, actors, steps)
    with torch.no_grad():
        state = agent.traj.init_state(actors, "cpu", torch.float64)
        stepped = torch.stack([agent.traj.step(emb[:, t], time[:, t], state) for t in range(steps)], 1)
        full = agent.traj(emb, time)
        assert torch.allclose(stepped, _what_acting_sees(agent, encoder, emb, time), atol=1e-10)
        assert torch.allclose(stepped[:, :window], full[:, :window], atol=1e-10), "a trial's first window is the forward's"
        if encoder.get("traj_encoder") not in ("gru", "ff"):
            assert not torch.allclose(stepped[:, window:], full[:, window:], atol=1e-6), "the window slid"
        if "attention_sink" in encoder:
            agent.traj.blocks[0].sink_k.zero_()
            assert not torch.allclose(agent.traj(emb, time), full, atol=1e-6), "the sink took part"


def test_the_memory_free_encoder_sees_each_step_alone_and_the_gru_does_not():
    ff, gru = _agent({"traj_encoder": "ff"}), _agent({"traj_encoder": "gru"})
    emb, time = _inputs(ff, 1, 12)
    changed = emb.clone()
    changed[:, 3] += 1.0  # a different step 3
    with torch.no_grad():
        for agent, remembers in ((ff, False), (gru, True)):
            a, b = agent.traj(emb, time), agent.traj(changed, time)
            assert torch.allclose(a[:, :3], b[:, :3], atol=1e-12), "nothing looks ahead"
            assert not torch.allclose(a[:, 3], b[:, 3], atol=1e-6)
            assert torch.allclose(a[:, 4:], b[:, 4:], atol=1e-12) != remembers


@ENCODERS
@pytest.mark.parametrize("discrete", [False, True], ids=["continuous", "discrete"])
def test_each_actor_resets_alone_and_acts_as_the_forward_from_its_reset(encoder, discrete):
    agent = _agent(encoder, discrete)
    g = torch.Generator().manual_seed(4)
    steps, reset_at = 14, 5
    a = agent.action_dim
    obs = torch.randn(2, steps, OBS_DIM, generator=g, dtype=torch.float64)
    prev_action = (torch.nn.functional.one_hot(torch.randint(0, a, (2, steps), generator=g), a).double() if discrete
                   else torch.rand(2, steps, a, generator=g, dtype=torch.float64) * 2 - 1)
    prev_reward = torch.randn(2, steps, 1, generator=g, dtype=torch.float64)
    time = torch.stack([torch.arange(steps), torch.cat([torch.arange(reset_at), torch.arange(steps - reset_at)])])
    state = agent.init_acting(2)
    greedy = []
    for t in range(steps):
        if t == reset_at:
            agent.reset_acting(state, np.array([False, True]))
        greedy.append(agent.act(state, {"vec": obs[:, t].numpy()}, prev_action[:, t], prev_reward[:, t],
                                time[:, t], sample=False))
    greedy = torch.stack(greedy, 1)
    with torch.no_grad():
        def expected(actor, start):
            emb = agent.tstep({"vec": obs[actor:actor + 1, start:]}, prev_action[actor:actor + 1, start:],
                              prev_reward[actor:actor + 1, start:])
            raw = agent.actor(_what_acting_sees(agent, encoder, emb, time[actor:actor + 1, start:]))[0, :, -1]
            if discrete:
                return torch.nn.functional.one_hot(raw.argmax(-1), a).float()
            return agent.env_actions(agent.sample_actions(agent.policy_params(raw), torch.zeros_like(raw[..., :a])))
        if discrete:
            assert torch.equal(greedy[0], expected(0, 0)) and torch.equal(greedy[1, reset_at:], expected(1, reset_at))
        else:
            assert np.allclose(greedy[0].numpy(), expected(0, 0), atol=1e-6)
            assert np.allclose(greedy[1, reset_at:].numpy(), expected(1, reset_at), atol=1e-6)


def test_attention_sink_needs_attention():
    from amago2.config import resolve_config
    from amago2.errors import ConfigError

    base = {"run_dir": "/tmp/x", "benchmark": "gym-mini", "actor": "ind", "critic": "ind", "seed": 0, "scale": "tiny"}
    with pytest.raises(ConfigError, match=r"attention_sink needs traj_encoder transformer \(there is no attention in 'gru'\)"):
        resolve_config({**base, "overrides": {"traj_encoder": "gru", "attention_sink": True}})
    with pytest.raises(ConfigError, match=r"traj_encoder must be one of transformer, gru, ff, trmrl; got 'lstm'"):
        resolve_config({**base, "overrides": {"traj_encoder": "lstm"}})


@pytest.mark.parametrize("encoder", [{}, {"attention_sink": True}], ids=["transformer", "sink"])
def test_a_4096_step_context_trains_and_acts_at_tiny_width(encoder):
    """bench/context.py measures how its memory grows; this says it runs at all, on CPU."""
    from amago2.config import TrainConfig
    from amago2.learner import Learner
    from learner_fixtures import random_batch

    agent = make_agent("ind", "ind", discrete=False, max_seq_len=4096, **encoder)
    learner = Learner(agent, TrainConfig(batch_size=1))
    metrics = learner.update(agent.prepare_batch(random_batch(agent, batch_size=1)))
    assert torch.isfinite(metrics["losses/critic"]) and torch.isfinite(metrics["losses/actor"])
    state = agent.init_acting(2)
    assert state.memory.keys[0].shape[2] == 4096
    for t in range(3):
        actions = agent.act(state, {"vec": np.zeros((2, OBS_DIM), np.float32)}, torch.zeros(2, 2), torch.zeros(2, 1),
                            torch.full((2,), t))
    assert actions.shape == (2, 2) and torch.isfinite(actions).all()
