"""Run configuration: every hyperparameter of an amago2 run, with the paper's defaults.

Configuration is passed explicitly. The TypeScript side sends a `RunRequest` as JSON;
`resolve_config` turns it into a frozen `RunConfig` by layering

    AgentConfig/TrainConfig defaults (docs/METHOD.md, "The agent")
    <- the benchmark's preset at the requested scale (amago2.presets)
    <- the user's overrides (flat keys, the field names below)

and the resolved config is what every run records. Unknown keys and wrong types are
errors that name the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from amago2 import presets
from amago2.errors import ConfigError

OBJECTIVES = ("dep", "ind")
MAX_SEED = 2**31 - 1
"""numpy and torch take seeds below 2^32; the largest seed a run may have."""
MAX_INT = 10**12
"""The largest integer setting: more env steps than any run takes (10^12)."""
SCALES = ("tiny", "cpu", "small", "paper")
TRAJ_ENCODERS = ("transformer", "gru", "ff", "trmrl")
DEVICES = ("auto", "cpu", "cuda")
PAPER_GAMMAS = (0.1, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999)


@dataclass(frozen=True)
class AgentConfig:
    """The network and its objectives (docs/METHOD.md, "The agent" and "The four objectives")."""

    actor: str = "ind"
    """Actor objective: 'dep' (-Q through frozen critics) or 'ind' (binary-filtered BC)."""
    critic: str = "ind"
    """Critic objective: 'dep' (PopArt regression) or 'ind' (two-hot symlog classification)."""
    traj_encoder: str = "transformer"
    """The sequence model over a trial (docs/METHOD.md, "Trajectory encoders"): 'transformer'
    (the paper's), 'gru' (RL^2's recurrent memory), 'ff' (no memory across timesteps) or
    'trmrl' (TrMRL's working and episodic memories)."""
    attention_sink: bool = False
    """Transformer only: a learned key and value per layer and head that every query may attend
    to, so that attention can put its weight on nothing (ReLIC's Sink-KV)."""
    d_model: int = 256
    """Transformer width (the GRU's hidden size and the FF encoder's width)."""
    d_ff: int = 1024
    """Transformer feed-forward width."""
    n_layers: int = 3
    """Transformer blocks."""
    n_heads: int = 8
    """Attention heads."""
    max_seq_len: int = 256
    """Context length L: training windows hold L+1 observations and L actions; acting keeps L."""
    dropout: float = 0.05
    """Dropout on feed-forward outputs and the embeddings."""
    tstep_hidden: int = 512
    """Timestep encoder MLP hidden width (vector observations)."""
    tstep_dim: int = 256
    """Timestep encoder output width."""
    head_hidden: int = 256
    """Actor and critic MLP width (2 hidden layers each)."""
    n_critics: int = 4
    """Critic ensemble size."""
    redq_subset: int = 2
    """Target critics reduced per TD target (REDQ: 2 of the 4, drawn for every step and gamma)."""
    gammas: tuple[float, ...] = PAPER_GAMMAS
    """Discount factors learned in parallel; the agent acts with the last."""
    num_bins: int = 128
    """Bins of the Ind critic's two-hot distribution."""
    bin_limit: float = 1e5
    """Bins span symlog(-bin_limit)..symlog(bin_limit)."""
    critic_loss_weight: float = 10.0
    """Total loss = actor_loss + critic_loss_weight * critic_loss."""
    tau: float = 0.003
    """Polyak rate of the target actor and critic heads."""
    popart_beta: float = 5e-4
    """PopArt's base step size beta: update t moves the statistics by beta / (1 - (1 - beta)^t)."""
    popart_init_nu: float = 100.0
    """PopArt initial second moment."""
    adv_samples: int = 3
    """Policy samples in the Ind actor's advantage baseline (the reference's 3)."""
    reward_multiplier: float = 1.0
    """Global multiplier in the TD target: y = r * reward_multiplier + ..."""
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    prob_min: float = 1e-3
    prob_max: float = 0.99


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, data collection, evaluation and checkpointing."""

    lr: float = 1e-4
    weight_decay: float = 1e-3
    warmup_updates: int = 500
    grad_clip: float = 1.0
    batch_size: int = 24
    total_steps: int = 1_000_000
    """Environment steps (summed over parallel actors) before the run finishes."""
    parallel_actors: int = 8
    steps_per_epoch: int = 1000
    """Environment steps per actor collected between update phases."""
    updates_per_epoch: int = 1000
    """Gradient updates per epoch."""
    replay_max_steps: int = 8_000_000
    """FIFO replay limit in timesteps (oldest trajectory files deleted first)."""
    replay_max_trajectories: int = 0
    """FIFO replay limit in trajectory files (POPGym's 15k); 0 = no limit by count."""
    replay_chunk_steps: int = 0
    """Trajectories longer than this are saved in chunks; 0 = one file per trajectory."""
    explore_start: float = 1.0
    explore_end: float = 0.05
    explore_anneal_steps: int = 1_000_000
    """Steps of each actor (not all actors together, as in the reference) over which
    exploration anneals from explore_start to explore_end."""
    eval_every_epochs: int = 5
    """Evaluate after every this many epochs, and always after the last; 0 = after the last only."""
    eval_trials_per_task: int = 1
    ckpt_every_updates: int = 1000
    """Checkpoint every this many updates, and always on stop and at the end; 0 = only then."""
    log_every_updates: int = 50
    """A `metrics` event every this many updates (the default logging rate)."""
    task_metrics_every_updates: int = 10
    """Every this many updates, the update also measures per task of its batch the losses,
    each task's share of their gradient, the value scale and the filter's pass rate
    (amago2.task_metrics: two backward passes through the heads); 0 = never."""
    cuda_graph: bool = True
    """On CUDA, replay the update as a CUDA graph (amago2.cuda_graph: the same kernels, one
    launch); false runs it eagerly. No effect on the CPU."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. `to_json()` is what the run records."""

    run_dir: str
    benchmark: str
    seed: int
    scale: str
    device: str
    agent: AgentConfig
    train: TrainConfig
    benchmark_def: dict[str, Any] | None = None
    """A user-defined benchmark (from a sweep file); None for a built-in name."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


AGENT_KEYS = {f.name: f for f in dataclasses.fields(AgentConfig)}
TRAIN_KEYS = {f.name: f for f in dataclasses.fields(TrainConfig)}
assert not AGENT_KEYS.keys() & TRAIN_KEYS.keys(), "override keys must be unique"
REQUEST_KEYS = {"run_dir", "benchmark", "actor", "critic", "seed", "scale", "steps",
                "device", "overrides", "benchmark_def"}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check an override against the type of its default; ints may stand for floats."""
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)
        value = tuple(float(v) for v in value) if ok else value
    else:
        ok = True
    if not ok:
        raise ConfigError(f"override '{key}' must be {type(default).__name__}, got {value!r}", (key,))
    return value


def apply_overrides(agent: AgentConfig, train: TrainConfig, overrides: dict[str, Any]):
    agent_kw: dict[str, Any] = {}
    train_kw: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in AGENT_KEYS:
            agent_kw[key] = _coerce(key, value, getattr(agent, key))
        elif key in TRAIN_KEYS:
            train_kw[key] = _coerce(key, value, getattr(train, key))
        else:
            known = ", ".join(sorted([*AGENT_KEYS, *TRAIN_KEYS]))
            raise ConfigError(f"unknown hyperparameter '{key}' (known: {known})", (key,))
    return dataclasses.replace(agent, **agent_kw), dataclasses.replace(train, **train_kw)


def keep_recorded_settings(cfg: RunConfig, recorded: dict[str, Any]) -> tuple[RunConfig, dict[str, list[Any]]]:
    """A resumed run goes on with the settings it started with. A run's key is its request,
    not its resolved settings, so an amago2 upgrade that changes a preset or a default
    would otherwise change a run half-way and leave it recorded with the new settings
    only. recorded is the config the run's first attempt wrote (RunConfig.to_json()).
    Returns cfg with each agent and train setting that differs set back to its recorded
    value, and those differences {key: [recorded, resolved now]}. A setting the recorded
    config lacks (new since) keeps its resolved value; device and run_dir are the request's
    (a run may resume on another device)."""
    changed: dict[str, list[Any]] = {}
    for section in ("agent", "train"):
        now = json.loads(json.dumps(dataclasses.asdict(getattr(cfg, section))))
        for key, value in recorded.get(section, {}).items():
            if key in now and now[key] != value:
                changed[key] = [value, now[key]]
    if not changed:
        return cfg, {}
    agent, train = apply_overrides(cfg.agent, cfg.train, {k: v[0] for k, v in changed.items()})
    return dataclasses.replace(cfg, agent=agent, train=train), changed


POSITIVE = ("total_steps", "batch_size", "lr", "grad_clip", "parallel_actors", "steps_per_epoch", "max_seq_len",
            "d_model", "d_ff", "n_layers", "n_heads", "tstep_hidden", "tstep_dim", "head_hidden", "n_critics",
            "adv_samples", "bin_limit", "popart_init_nu", "replay_max_steps", "log_every_updates",
            "eval_trials_per_task")
NON_NEGATIVE = ("weight_decay", "warmup_updates", "critic_loss_weight", "updates_per_epoch", "explore_anneal_steps",
                "eval_every_epochs", "ckpt_every_updates", "replay_chunk_steps", "replay_max_trajectories",
                "task_metrics_every_updates")
FRACTIONS = {"dropout": "[0, 1)", "tau": "[0, 1]", "popart_beta": "(0, 1]", "explore_start": "[0, 1]",
             "explore_end": "[0, 1]"}
"""Settings that are fractions, and their interval: a probability (dropout, discrete
exploration's epsilon, which is also continuous exploration's noise std on actions in
[-1, 1]) or a step size."""


def _in_interval(value: float, interval: str) -> bool:
    low, high = (float(x) for x in interval[1:-1].split(","))
    return (low <= value if interval[0] == "[" else low < value) and (value <= high if interval[-1] == "]" else value < high)


def validate(cfg: RunConfig) -> None:
    a, t = cfg.agent, cfg.train

    def setting(key: str):
        return getattr(a if key in AGENT_KEYS else t, key)

    def refuse(message: str, *keys: str):
        raise ConfigError(message, keys)

    if a.actor not in OBJECTIVES:
        refuse(f"actor must be one of dep, ind; got {a.actor!r}", "actor")
    if a.critic not in OBJECTIVES:
        refuse(f"critic must be one of dep, ind; got {a.critic!r}", "critic")
    if cfg.scale not in SCALES:
        raise ConfigError(f"scale must be one of {', '.join(SCALES)}; got {cfg.scale!r}")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {cfg.device!r}")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in 0..{MAX_SEED}; got {cfg.seed}")
    for section in (a, t):
        for field in dataclasses.fields(section):
            value = getattr(section, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                refuse(f"{field.name} must be a finite number; got {value}", field.name)
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
                refuse(f"{field.name} must be at most {MAX_INT:.0e}; got {value}", field.name)
    for key in POSITIVE:
        if setting(key) <= 0:
            refuse(f"{key} must be positive; got {setting(key)}", key)
    for key in NON_NEGATIVE:
        if setting(key) < 0:
            refuse(f"{key} must be >= 0; got {setting(key)}", key)
    for key, interval in FRACTIONS.items():
        if not _in_interval(setting(key), interval):
            refuse(f"{key} must be in {interval}; got {setting(key)}", key)
    if a.num_bins < 2:
        refuse(f"num_bins must be at least 2 (a two-hot target spans two bins); got {a.num_bins}", "num_bins")
    if not 0 < a.prob_min < a.prob_max <= 1:
        refuse(f"prob_min and prob_max must satisfy 0 < prob_min < prob_max <= 1; got {a.prob_min} and {a.prob_max}",
               "prob_min", "prob_max")
    if not a.log_std_min < a.log_std_max:
        refuse(f"log_std_min must be below log_std_max; got {a.log_std_min} and {a.log_std_max}",
               "log_std_min", "log_std_max")
    if a.traj_encoder not in TRAJ_ENCODERS:
        refuse(f"traj_encoder must be one of {', '.join(TRAJ_ENCODERS)}; got {a.traj_encoder!r}", "traj_encoder")
    if a.attention_sink and a.traj_encoder != "transformer":
        refuse(f"attention_sink needs traj_encoder transformer (there is no attention in {a.traj_encoder!r})",
               "attention_sink", "traj_encoder")
    if a.d_model % a.n_heads:
        refuse(f"d_model ({a.d_model}) must be divisible by n_heads ({a.n_heads})", "d_model", "n_heads")
    if not 1 <= a.redq_subset <= a.n_critics:
        refuse(f"redq_subset must be in 1..n_critics; got {a.redq_subset}", "redq_subset", "n_critics")
    if not a.gammas or not all(0 <= g < 1 for g in a.gammas):
        refuse(f"gammas must be a non-empty list in [0, 1); got {list(a.gammas)}", "gammas")
    if len(set(a.gammas)) != len(a.gammas):
        refuse(f"gammas must be distinct (each is learned once); got {list(a.gammas)}", "gammas")


def resolve_config(request: dict[str, Any]) -> RunConfig:
    """Build the full config of one run from the request the CLI sends.

    request: {run_dir, benchmark, actor, critic, seed, scale?, steps?, device?,
              overrides?, benchmark_def?}
    """
    unknown = set(request) - REQUEST_KEYS
    if unknown:
        raise ConfigError(f"unknown run request key(s): {', '.join(sorted(unknown))}")
    for key in ("run_dir", "benchmark", "actor", "critic", "seed"):
        if key not in request:
            raise ConfigError(f"run request is missing '{key}'")
    seed = request["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    scale = request.get("scale", "paper")
    if scale not in SCALES:
        raise ConfigError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    benchmark = request["benchmark"]
    benchmark_def = request.get("benchmark_def")
    preset = presets.preset_for(benchmark, scale, benchmark_def)
    agent, train = apply_overrides(AgentConfig(), TrainConfig(), preset)
    overrides = dict(request.get("overrides") or {})
    for key in ("actor", "critic"):
        if key in overrides:
            raise ConfigError(f"overrides may not set '{key}': the request's own '{key}' field sets it, and names the run")
    overrides["actor"] = request["actor"]
    overrides["critic"] = request["critic"]
    if request.get("steps") is not None:
        overrides["total_steps"] = request["steps"]
    agent, train = apply_overrides(agent, train, overrides)
    # A chunked benchmark saves trials in chunks of CHUNK_CONTEXTS contexts: an overridden
    # context length (a max_seq_len axis) resizes them too, or a long context's windows
    # would be cut at a chunk made for the preset's.
    if train.replay_chunk_steps and "replay_chunk_steps" not in overrides:
        train = dataclasses.replace(train, replay_chunk_steps=presets.CHUNK_CONTEXTS * agent.max_seq_len)
    cfg = RunConfig(run_dir=str(request["run_dir"]), benchmark=benchmark, seed=seed, scale=scale,
                    device=request.get("device", "auto"), agent=agent, train=train,
                    benchmark_def=benchmark_def)
    validate(cfg)
    return cfg
