"""The CUDA paths: bf16 autocast in the update, the bf16 KV cache, no host sync inside an
update, checkpoints that move between GPU and CPU, two runs sharing one GPU.

Skipped where torch sees no CUDA device; `bench/gpu-check` runs them on a GPU machine
(`pytest -m cuda`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from amago2.config import TrainConfig
from amago2.cuda_graph import WARMUP_CALLS, GraphedStep
from amago2.learner import Learner
from learner_fixtures import ENCODER_OVERRIDES, OBS_DIM, PAIRS, make_agent, random_batch
from loop_fixtures import bandit_request, read_events, train, worker_env

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda")


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("actor, critic", PAIRS)
def test_update_runs_under_bf16_autocast_with_fp32_losses(actor, critic, discrete):
    agent = make_agent(actor, critic, discrete).to(CUDA)
    batch = agent.prepare_batch(random_batch(agent))
    products = []
    agent.traj.blocks[0].ff1.register_forward_hook(lambda module, args, out: products.append(out.dtype))
    total, aux = agent.loss(batch, agent.sample_noise(batch))
    assert products == [torch.bfloat16]                              # the encoder's matmuls ran in bf16
    assert aux["state"].dtype == torch.float32                       # its final LayerNorm: fp32 under autocast
    for name in ("critic_loss", "actor_loss", "critic_steps", "actor_steps", "y", "q_replay"):
        assert aux[name].dtype == torch.float32, name                # every loss term in fp32
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in agent.parameters())  # fp32 weights


ENCODERS = pytest.mark.parametrize("encoder", list(ENCODER_OVERRIDES.values()), ids=list(ENCODER_OVERRIDES))


@ENCODERS
@pytest.mark.parametrize("discrete", [False, True])
def test_bf16_acting_matches_the_training_forward(discrete, encoder):
    """The acting path (bf16 memory, one step at a time) against the training forward over
    the same steps (bf16 autocast, the whole window at once), for every trajectory encoder:
    bf16 tolerance."""
    agent = make_agent("ind", "ind", discrete, **encoder).to(CUDA).train(False)
    window = agent.cfg.max_seq_len
    g = torch.Generator().manual_seed(3)
    steps, actors = window, 3
    obs = torch.randn(actors, steps, OBS_DIM, generator=g)
    prev_action = torch.zeros(actors, steps, agent.action_dim)
    prev_reward = torch.randn(actors, steps, 1, generator=g)
    time = torch.arange(steps).repeat(actors, 1)
    state = agent.init_acting(actors)
    if not encoder:
        assert all(k.dtype == torch.bfloat16 for k in state.memory.keys)
    obs, prev_action, prev_reward, time = (x.to(CUDA) for x in (obs, prev_action, prev_reward, time))
    with torch.no_grad(), agent._autocast():
        stepped = torch.stack([
            agent.traj.step(agent.tstep({"vec": obs[:, t]}, prev_action[:, t], prev_reward[:, t]), time[:, t],
                            state.memory).float()
            for t in range(steps)], 1)
        full = agent.traj(agent.tstep({"vec": obs}, prev_action, prev_reward), time).float()
    error = (stepped - full).norm() / full.norm()
    assert error < 2e-2, float(error)                                # bf16 operands: 1e-3 to 1e-2


GRAPHED = pytest.mark.parametrize("graphed", [False, True], ids=["eager", "cuda-graph"])


@GRAPHED
@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("actor, critic", PAIRS)
def test_an_update_makes_no_host_sync(actor, critic, discrete, graphed):
    """The whole update (loss, backward, clipping, the fused AdamW step, PopArt, input norm,
    Polyak, task metrics), eager or a CUDA graph's replay, queues GPU work without waiting
    for it: sync debug mode raises on any call that would block the host."""
    _update_without_sync(make_agent(actor, critic, discrete).to(CUDA), graphed)


@ENCODERS
def test_no_trajectory_encoder_adds_a_host_sync_to_the_update(encoder):
    _update_without_sync(make_agent("ind", "ind", True, **encoder).to(CUDA), graphed=True)


def _update_without_sync(agent, graphed: bool) -> None:
    learner = Learner(agent, TrainConfig(batch_size=4, task_metrics_every_updates=1, cuda_graph=graphed), num_tasks=2)
    batch = agent.prepare_batch(random_batch(agent))
    batch["task"] = torch.tensor([0, 1, 0, 1], device=CUDA)
    for _ in range(WARMUP_CALLS + 1 if graphed else 1):              # the lazy setup; the capture
        learner.update(batch)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        metrics = learner.update(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert isinstance(learner.steps[True], GraphedStep) == graphed
    if graphed:
        assert learner.steps[True].graph is not None
    assert "task/step_share" in metrics
    assert torch.isfinite(metrics["losses/critic"]).item()


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("actor, critic", PAIRS)
def test_the_graphed_update_computes_the_eager_one(actor, critic, discrete):
    """12 updates, graphed and eager, from one initialisation on the same batches (no dropout,
    the same noise draws): each kind (with and without the task metrics) is warmed up 3
    times, recorded at its 4th call and replayed from then on, and every update's losses
    and the final state agree within the tolerance of atomics' summation order. A replay
    that read a stale learning rate, statistic or spectral estimate would drift away."""
    def learner(graphed: bool) -> Learner:
        agent = make_agent(actor, critic, discrete, dropout=0.0).to(CUDA)
        return Learner(agent, TrainConfig(batch_size=4, lr=1e-3, warmup_updates=6, task_metrics_every_updates=2,
                                          cuda_graph=graphed), num_tasks=2)
    eager, graphed = learner(False), learner(True)
    batches = [eager.agent.prepare_batch(random_batch(eager.agent, seed=i)) for i in range(12)]
    for b in batches:
        b["task"] = torch.tensor([0, 1, 0, 1], device=CUDA)
    noise = [eager.agent.sample_noise(b) for b in batches]
    drawn = eager.agent.sample_noise(batches[0])                     # in one place, as a graph reads it
    for lrn in (eager, graphed):
        lrn.agent.sample_noise = lambda _: drawn                      # the same draws for both
    for i, b in enumerate(batches):
        for field in dataclasses.fields(drawn):
            if getattr(drawn, field.name) is not None:
                getattr(drawn, field.name).copy_(getattr(noise[i], field.name))
        m_eager, m_graphed = eager.update(b), graphed.update(b)
        for name in ("losses/critic", "losses/actor", "grad/norm"):
            assert torch.allclose(m_graphed[name], m_eager[name], rtol=1e-3, atol=1e-5), (i, name)
    assert all(step.graph is not None for step in graphed.steps.values())
    for (name, g), (_, e) in zip(graphed.agent.state_dict().items(), eager.agent.state_dict().items()):
        assert torch.allclose(g.double(), e.double(), rtol=1e-3, atol=1e-5), name
    assert int(graphed.agent.popart_t) == 13                         # moved at every replay too


def _on(device: str, request: dict) -> dict:
    return {**request, "device": device}


def test_a_checkpoint_written_on_the_gpu_resumes_on_the_cpu_and_back(tmp_path):
    """One run of 3 x 48 steps, stopped after each third (16 updates) and resumed on the
    other device: the same request each time (a resumed run keeps its recorded length)."""
    steps = 48  # 4 epochs of 2 actors x one 6-step trial, 4 updates each
    for third, device in enumerate(("cuda", "cpu", "cuda"), start=1):
        def stop_at_this_third(line: str, third=third) -> bool:
            return third < 3 and json.loads(line)["update"] >= 16 * third
        summary = train(_on(device, bandit_request(tmp_path, steps=3 * steps, ckpt_every_updates=4)), stop_at_this_third)
        assert summary["status"] == ("succeeded" if third == 3 else "stopped"), (device, summary)
        assert summary["steps"] == third * steps, (device, summary)
    starts = [e for e in read_events(tmp_path) if e["type"] == "started"]
    assert [e["device"].split(":")[0] for e in starts] == ["cuda", "cpu", "cuda"]
    assert [e["resumed"] for e in starts] == [False, True, True]
    assert [e["step"] for e in starts] == [0, steps, 2 * steps]
    assert [e["versions"].get("gpu") for e in starts] == [torch.cuda.get_device_name(0), None, torch.cuda.get_device_name(0)]


def test_two_runs_on_one_gpu_do_not_interfere(tmp_path):
    """Two workers on one GPU at once (`--runs-per-gpu 2`), each through the worker's own
    entry point: both finish, each with its own journal, and each trains as it does alone
    (the same seed gives the same first losses within bf16 reduction-order tolerance)."""
    def request(name: str, seed: int) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        path = run_dir / "request.json"
        path.write_text(json.dumps(_on("cuda", bandit_request(run_dir, steps=6 * 2 * 8, seed=seed))))
        return path

    env = worker_env(CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0])

    def launch(path: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "amago2", "train", str(path)], env=env,
                                stdout=(path.parent / "stdout").open("w"), stderr=subprocess.STDOUT)

    alone = launch(request("alone", 0))
    assert alone.wait() == 0
    together = [launch(request("a", 0)), launch(request("b", 1))]
    assert [p.wait() for p in together] == [0, 0]

    def first_losses(name: str) -> np.ndarray:
        events = read_events(tmp_path / name)
        assert events[-1]["type"] == "finished" and events[-1]["summary"]["status"] == "succeeded"
        m = next(e["metrics"] for e in events if e["type"] == "metrics" and "losses/critic" in e["metrics"])
        return np.array([m["losses/critic"], m["losses/actor"]])

    assert np.allclose(first_losses("a"), first_losses("alone"), rtol=2e-2, atol=1e-3)
    assert not np.allclose(first_losses("b"), first_losses("a"), rtol=1e-6)  # another seed, another run
