"""Long contexts: memory and time of one learner update, and acting steps/s, against max_seq_len.

    python bench/context.py                                   # tiny width, contexts 512..8192
    python bench/context.py --contexts 1024,4096 --encoders transformer,sink,gru

Each row runs in a fresh process: a tiny-width agent (amago2.presets.TINY's network), two
learner updates on a batch of `--batch` windows of the context's length (the second one
timed), then acting with 8 actors. "extra peak" is the resident high-water mark over the two
updates above the memory the process held just before them (a fresh process, because freed
memory stays in the heap and would hide a second row's needs): with SDPA's memory-efficient
kernels it grows linearly with the context. The column
"explicit mask" repeats the Transformer's update with the same causal mask written out as a
tensor, which sends SDPA to its plain kernel: the (context x context) scores it stores are
what the memory-efficient path avoids. On CUDA the same code runs SDPA's flash or
memory-efficient kernels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from amago2.agent import Agent  # noqa: E402
from amago2.config import AgentConfig, TrainConfig  # noqa: E402
from amago2.learner import Learner  # noqa: E402
from learner import ENCODERS, bench_acting, make_batch, spaces  # noqa: E402
from tables import load_average, peak_rss_gib, print_table, reset_peak_rss, rss_gib  # noqa: E402

SPEC = dict(batch=2, obs_dim=39, actions=("box", 4))


def tiny_agent(context: int, encoder: str) -> Agent:
    cfg = AgentConfig(actor="ind", critic="ind", d_model=64, d_ff=128, n_layers=2, n_heads=4, tstep_hidden=128,
                      tstep_dim=64, head_hidden=64, num_bins=32, max_seq_len=context, **ENCODERS[encoder])
    return Agent(cfg, *spaces(SPEC))


def one_row(context: int, encoder: str, batch_size: int, explicit_mask: bool) -> dict:
    """Seconds of the second of two learner updates, their extra peak GiB, and acting steps/s."""
    torch.manual_seed(0)
    agent = tiny_agent(context, encoder)
    learner = Learner(agent, TrainConfig(batch_size=batch_size))
    batch = agent.prepare_batch(make_batch(agent, batch_size, SPEC))
    if explicit_mask:
        # The plain causal mask, as a tensor: the same attention through SDPA's plain kernel.
        length = agent.cfg.max_seq_len + 1
        mask = torch.ones(length, length, dtype=torch.bool).tril()
        encode = agent.encode
        agent.encode = lambda b, attn_mask=None: encode(b, mask)  # type: ignore[method-assign]
    before = rss_gib()
    reset_peak_rss()
    learner.update(batch)
    start = time.perf_counter()
    learner.update(batch)
    seconds = time.perf_counter() - start
    extra = peak_rss_gib() - before
    acting = bench_acting(agent, SPEC, 8, torch.device("cpu")) if not explicit_mask else None
    return {"seconds": seconds, "extra_gib": extra, "acting": acting}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", default="512,1024,2048,4096,8192")
    parser.add_argument("--encoders", default="transformer,sink,gru,ff",
                        help=f"among {', '.join(ENCODERS)}; trmrl re-encodes its whole window at every acting step, "
                             "so its acting column takes minutes past a context of 1024")
    parser.add_argument("--batch", type=int, default=SPEC["batch"], help="windows per update")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)  # context,encoder,mask: one row, as JSON
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.row:
        context, encoder, mask = args.row.split(",")
        print(json.dumps(one_row(int(context), encoder, args.batch, mask == "mask")))
        return
    encoders = args.encoders.split(",")
    if not set(encoders) <= set(ENCODERS):
        parser.error(f"--encoders takes encoders among {', '.join(ENCODERS)}, not '{args.encoders}'")
    print(f"cpu ({args.threads} threads), torch {torch.__version__}, tiny width, batch {args.batch}; {load_average()}")

    def row(context: int, encoder: str, mask: bool) -> dict:
        out = subprocess.run([sys.executable, __file__, "--row", f"{context},{encoder},{'mask' if mask else 'sdpa'}",
                              "--batch", str(args.batch), "--threads", str(args.threads)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    rows = []
    for context in (int(c) for c in args.contexts.split(",")):
        for encoder in encoders:
            r = row(context, encoder, False)
            masked = "-"
            if encoder == "transformer":
                m = row(context, encoder, True)
                masked = f"{m['extra_gib']:.3f} GiB, {m['seconds']:.2f} s"
            rows.append((str(context), encoder, f"{r['seconds']:.2f}", f"{r['extra_gib']:.3f}", masked, f"{r['acting']:.0f}"))
            print(f"  measured context {context} {encoder}", file=sys.stderr, flush=True)
    print_table(("context", "encoder", "s/update", "extra peak GiB", "explicit mask (plain kernel)", "act 8 (steps/s)"), rows)
    print(f"at the end: {load_average()}")


if __name__ == "__main__":
    main()
