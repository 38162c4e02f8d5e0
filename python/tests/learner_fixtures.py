"""Tiny agents and random replay batches shared by the learner tests."""

from __future__ import annotations

import gymnasium as gym
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from amago2.agent import Agent
from amago2.config import AgentConfig

TINY = dict(d_model=16, d_ff=32, n_layers=2, n_heads=2, max_seq_len=8, tstep_hidden=16,
            tstep_dim=16, head_hidden=16, num_bins=16, gammas=(0.9, 0.99))
OBS_DIM = 5
PAIRS = [(a, c) for a in ("dep", "ind") for c in ("dep", "ind")]
# Every trajectory encoder, as the AgentConfig overrides that select it.
ENCODER_OVERRIDES = {"transformer": {}, "gru": {"traj_encoder": "gru"}, "ff": {"traj_encoder": "ff"},
                     "trmrl": {"traj_encoder": "trmrl"}, "sink": {"attention_sink": True}}


def make_agent(actor: str, critic: str, discrete: bool, seed: int = 0, **overrides) -> Agent:
    torch.manual_seed(seed)
    cfg = AgentConfig(actor=actor, critic=critic, **{**TINY, **overrides})
    obs_space = gym.spaces.Dict({"vec": gym.spaces.Box(-1, 1, (OBS_DIM,))})
    action_space = gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-1, 1, (2,))
    return Agent(cfg, obs_space, action_space)


def random_batch(agent: Agent, batch_size: int = 4, seed: int = 1, reward_scale: float = 1.0,
                 dtype=torch.float32) -> dict:
    """A replay batch in the docs/INTERFACES.md format, with some padding and some terminals."""
    g = torch.Generator().manual_seed(seed)
    b, l, a = batch_size, agent.cfg.max_seq_len, agent.action_dim
    if agent.discrete:
        action = torch.nn.functional.one_hot(torch.randint(0, a, (b, l), generator=g), a).to(dtype)
    else:
        action = torch.rand(b, l, a, generator=g, dtype=dtype) * 2 - 1
    reward = torch.rand(b, l, 1, generator=g, dtype=dtype) * reward_scale
    done = torch.zeros(b, l, 1, dtype=dtype)
    done[0, l // 2] = 1.0
    mask = torch.ones(b, l, 1, dtype=dtype)
    mask[-1, l - 3:] = 0.0
    zero = torch.zeros(b, 1, 1, dtype=dtype)
    return {"obs": {"vec": torch.randn(b, l + 1, OBS_DIM, generator=g, dtype=dtype)},
            "prev_action": torch.cat((torch.zeros(b, 1, a, dtype=dtype), action), 1),
            "prev_reward": torch.cat((zero, reward), 1),
            "time": torch.arange(l + 1).repeat(b, 1) + torch.randint(0, 50, (b, 1), generator=g),
            "action": action, "reward": reward, "done": done, "mask": mask}


class HostSyncAudit(TorchDispatchMode):
    """Records every op run inside it that makes the host wait for a CUDA device: a value
    read back (.item(), float(t), `if t:`), an output whose size depends on the data
    (nonzero, boolean indexing, unique, bincount), or a blocking copy between devices.
    It sees the ops on any device, so a CPU test can say that an update, run on CUDA,
    would queue its work without waiting (the CUDA tests check the same with the driver's
    own sync debug mode, where a GPU is lent)."""

    READS_BACK = {"_local_scalar_dense", "is_nonzero", "equal", "allclose", "nonzero", "masked_select",
                  "_unique2", "unique_dim", "unique_consecutive", "bincount", "repeat_interleave.Tensor"}

    def __init__(self):
        super().__init__()
        self.syncing: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name.split("::")[-1]
        overload = f"{name}.{func._overloadname}"
        if name in self.READS_BACK or overload in self.READS_BACK:
            self.syncing.append(overload)
        elif name in ("index", "index_put", "index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]):
            self.syncing.append(f"{overload} with a boolean index")
        elif name == "_to_copy" and "device" in kwargs and not kwargs.get("non_blocking", False):
            self.syncing.append(f"{overload} to {kwargs['device']} (blocking)")
        return func(*args, **kwargs)


class DevicelessFactoryAudit(TorchFunctionMode):
    """Records every tensor made inside it without a device named: on a CUDA run such a
    tensor is made on the CPU, and the first op that meets it with a device tensor copies it
    over, a blocking copy that a CUDA graph cannot record. On the CPU the same code makes the
    same calls, so a CPU test sees them (the tensor's device would not tell)."""

    FACTORIES = {torch.zeros, torch.ones, torch.empty, torch.full, torch.tensor, torch.as_tensor, torch.arange,
                 torch.linspace, torch.eye, torch.rand, torch.randn, torch.randint, torch.scalar_tensor}

    def __init__(self):
        super().__init__()
        self.made: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FACTORIES and kwargs.get("device") is None:
            self.made.append(f"torch.{func.__name__} without a device")
        return func(*args, **kwargs)


class OpTrace(TorchDispatchMode):
    """The ops run inside it, each with its arguments as a CUDA graph records them: a
    tensor by its shape and dtype (its memory is recorded, its values are read at replay),
    anything else (a Python number, a size) by its value, which a replay cannot change."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}

        def recorded(x):
            if isinstance(x, torch.Tensor):
                return ("tensor", x.dtype, tuple(x.shape))
            if isinstance(x, (list, tuple)):
                return tuple(recorded(v) for v in x)
            if isinstance(x, (bool, int, float, str, type(None), torch.dtype, torch.device, torch.layout,
                              torch.memory_format)):
                return x
            return type(x).__name__  # a profiler range's handle

        if func.namespace != "profiler":  # the optimiser's named range: no kernel
            self.ops.append((str(func), recorded(args), tuple(sorted((k, recorded(v)) for k, v in kwargs.items()))))
        return func(*args, **kwargs)
