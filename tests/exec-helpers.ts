// Shared by the executor tests: a tiny real training request, an executor run that records
// everything the handlers see, and process-liveness checks.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify as toYaml } from "yaml";
import { startLocal } from "../src/exec/local.js";
import type { RunRequest } from "../src/bridge/request.js";
import type { LocalExecution, RunOutcome, RunSpec } from "../src/exec/types.js";
import { VENV_PYTHON } from "./helpers.js";

/**
 * A real amago2 run small enough for a 2-core machine: CartPole as a user-defined
 * benchmark, 20-step episodes, 2 actors x 20 steps per epoch (40 env steps), 2 updates per
 * epoch, a metrics event per update and a checkpoint every 2 updates.
 */
export const TINY_BENCHMARK_DEF = { tasks: [{ env_id: "CartPole-v1" }], k: 1, horizon: 20 };
export const TINY_OVERRIDES = {
  parallel_actors: 2, steps_per_epoch: 20, updates_per_epoch: 2, log_every_updates: 1,
  ckpt_every_updates: 2, batch_size: 2, max_seq_len: 16,
};

/** A sweep file `<dir>/<name>.yaml` of one-seed tiny CartPole runs (TINY_OVERRIDES) over `axes`; its path. */
export function writeTinySweep(dir: string, name: string, steps: number, axes: Record<string, unknown[]>): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, toYaml({
    name, benchmark: { name: "cartpole-tiny", ...TINY_BENCHMARK_DEF }, axes, seeds: 1, scale: "tiny", steps,
    overrides: TINY_OVERRIDES,
  }));
  return file;
}

export function tinySpec(root: string, seed: number, steps = 40): RunSpec {
  const runDir = path.join(root, `run-${seed}`);
  const request: RunRequest = {
    run_dir: runDir, benchmark: "cartpole-tiny", actor: "ind", critic: "dep", seed, scale: "tiny",
    steps, device: "auto", overrides: TINY_OVERRIDES, benchmark_def: TINY_BENCHMARK_DEF,
  };
  return { key: `seed-${seed}`, runDir, request };
}

export interface Event {
  seq: number;
  type: string;
  update: number;
  pid?: number;
  resumed?: boolean;
  summary?: Record<string, unknown>;
}

/** Everything the executor reported about one run. */
export interface RunRecord {
  workerPid: number | null;
  device: string | null;
  lines: string[];
  events: Event[];
  outcome: RunOutcome | null;
  exits: number;
  /** Date.now() at the last event and at onExit: how fast an end is noticed (reported, not asserted). */
  lastEventAtMs: number;
  exitAtMs: number;
}

/** Reactions to what the executor reports, to stop it or kill a worker at a given point. */
export interface Steering {
  onEvent?(key: string, event: Event, exec: LocalExecution, records: Map<string, RunRecord>): void;
  onExit?(key: string, outcome: RunOutcome, exec: LocalExecution): void;
}

/**
 * Runs `specs` through a real local executor with `env` added to this process's
 * environment (which the workers inherit) until it is idle.
 */
export async function runExecutor(
  specs: RunSpec[],
  opts: { parallel: number; env: Record<string, string> },
  steer: Steering = {},
): Promise<Map<string, RunRecord>> {
  const records = new Map<string, RunRecord>();
  const record = (key: string) => {
    if (!records.has(key)) records.set(key, { workerPid: null, device: null, lines: [], events: [], outcome: null, exits: 0, lastEventAtMs: 0, exitAtMs: 0 });
    return records.get(key)!;
  };
  const saved = Object.fromEntries(Object.keys(opts.env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, opts.env);
  try {
    let exec!: LocalExecution;
    exec = startLocal(specs, { parallel: opts.parallel, gpus: null, runsPerGpu: 1, python: VENV_PYTHON }, {
      claim: () => true,
      onStart: (key, info) => Object.assign(record(key), { workerPid: info.pid, device: info.device }),
      onEvent: (key, line) => {
        const event = JSON.parse(line) as Event;
        record(key).lines.push(line);
        record(key).events.push(event);
        record(key).lastEventAtMs = Date.now();
        steer.onEvent?.(key, event, exec, records);
      },
      onExit: (key, outcome) => {
        record(key).outcome = outcome;
        record(key).exits += 1;
        record(key).exitAtMs = Date.now();
        steer.onExit?.(key, outcome, exec);
      },
    });
    await exec.idle;
    return records;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export function journalLines(runDir: string): string[] {
  const file = path.join(runDir, "events.jsonl");
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : [];
}

/** True while `pid` is a live process (a zombie nobody reaped counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/**
 * Waits until `pid` is gone, or `withinMs` passed. A process killed by the kernel on its
 * parent's death (PR_SET_PDEATHSIG) goes away asynchronously, and nobody this test owns can
 * wait() for it, so its exit can only be observed by looking.
 */
export async function waitUntilGone(pid: number, withinMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** The Python pid a run reported in its `started` events (one per attempt). */
export function pythonPids(rec: RunRecord): number[] {
  return rec.events.filter((e) => e.type === "started").map((e) => e.pid!);
}

/** Live processes whose command line mentions `needle` (a run directory). */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle) && isAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
