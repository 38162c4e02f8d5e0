// Fixture databases for the report tests, built the way the product builds them: sweeps
// and runs planned through the store, then event journals ingested by the store's own
// ingest function. Two sources: journals recorded from real tiny runs
// (tests/fixtures/report), and small synthetic journals with values chosen by the test.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { RunRequest } from "../src/bridge/request.js";
import { openStore } from "../src/store/db.js";
import { ingestLines } from "../src/store/ingest.js";
import { claimRun, markEnded, upsertSweep, type RunCell, type RunEnd } from "../src/store/runs.js";

export interface FixtureRun extends RunCell {
  request: RunRequest;
  status: string;
  /** Journal lines, in order. */
  events: string[];
}

export interface FixtureSweep {
  sweep: { name: string; benchmark: string; scale: string; source: string; command: string };
  runs: FixtureRun[];
}

export const RECORDED_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../tests/fixtures/report");

/** Plan the sweeps, ingest every journal, and leave each run in its recorded status. */
export function buildStore(home: string, sweeps: FixtureSweep[]): void {
  const db = openStore(home);
  try {
    for (const { sweep, runs } of sweeps) {
      upsertSweep(db, sweep, runs.map((r) => ({
        key: r.key, benchmark: r.benchmark, actor: r.actor, critic: r.critic, seed: r.seed, scale: r.scale,
        runDir: path.join(home, "runs", r.key), request: r.request,
      })));
      for (const run of runs) {
        if (run.status === "planned") continue;
        claimRun(db, run.key, { pid: process.pid, host: "fixture" }, sweep.command, 0, () => true);
        const result = ingestLines(db, run.key, run.events);
        if (result.invalid.length) throw new Error(`fixture ${run.key}: ${result.invalid[0].reason}`);
        if (run.status !== "running") markEnded(db, run.key, { status: run.status as RunEnd["status"] });
      }
    }
  } finally {
    db.close();
  }
}

/** The recorded sweep: manifest.json (sweep and runs) plus runs/<key>.jsonl journals. */
export function recordedSweep(): FixtureSweep {
  const manifest = JSON.parse(readFileSync(path.join(RECORDED_DIR, "manifest.json"), "utf8")) as
    { sweep: FixtureSweep["sweep"]; runs: Omit<FixtureRun, "events">[] };
  return {
    sweep: manifest.sweep,
    runs: manifest.runs.map((r) => ({
      ...r,
      events: readFileSync(path.join(RECORDED_DIR, "runs", `${r.key}.jsonl`), "utf8").split("\n").filter((l) => l !== ""),
    })),
  };
}

// ---------------------------------------------------------------- synthetic journals

export interface SyntheticValue {
  return: number[];
  success: number[] | null;
  score?: number[];
}

export interface SyntheticSpec {
  name: string;
  benchmark: string;
  tasks: string[];
  seeds: number;
  evalSteps: number[];
  /** Per-episode values of one evaluation; `combo` is the run's values of the extra axes. */
  value(actor: string, critic: string, seed: number, step: number, task: string, combo: Record<string, unknown>): SyntheticValue;
  /** Status per run (default succeeded); a running run's journal stops at `stopAt` steps. */
  status?(actor: string, critic: string, seed: number): { status: string; stopAt?: number };
  overrides?(actor: string, critic: string): Record<string, unknown>;
  /** Extra hyperparameter axes: one run per combination (in its overrides) per actor, critic and seed. */
  combos?: Record<string, unknown>[];
  /** Random play's values, recorded at step 0 before the agent's evaluations, as a fresh run does. */
  randomPlay?(seed: number, task: string): SyntheticValue;
  /** The learner's per-task measurements ({quantity: value}) logged at each evaluation step. */
  taskMetrics?(actor: string, critic: string, seed: number, step: number, task: string): Record<string, number>;
}

/** A 2 x 2 sweep whose journals follow docs/INTERFACES.md section 2 exactly. */
export function syntheticSweep(spec: SyntheticSpec): FixtureSweep {
  const runs: FixtureRun[] = [];
  for (const actor of ["dep", "ind"] as const) {
    for (const critic of ["dep", "ind"] as const) {
      for (const combo of spec.combos ?? [{}]) for (let seed = 0; seed < spec.seeds; seed++) {
        const { status, stopAt } = spec.status?.(actor, critic, seed) ?? { status: "succeeded" };
        const overrides = { ...spec.overrides?.(actor, critic), ...combo };
        const suffix = Object.entries(overrides).map(([k, v]) => `-${k}${String(v)}`).join("");
        const key = `${spec.name}-${actor}-${critic}${suffix}-s${seed}`;
        const events: string[] = [];
        const push = (type: string, step: number, extra: Record<string, unknown>): void => {
          events.push(JSON.stringify({ seq: events.length, t: 1_700_000_000 + events.length, type, step, update: Math.floor(step / 10), ...extra }));
        };
        push("started", 0, { resumed: false, config: { train: { total_steps: spec.evalSteps.at(-1) } }, total_steps: spec.evalSteps.at(-1),
          versions: { python: "3.11.7", torch: "2.13.0" }, device: "cpu", pid: 4242 });
        const evalTasks = (v: (task: string) => SyntheticValue) => Object.fromEntries(spec.tasks.map((task) => {
          const value = v(task);
          return [task, { trials: 2, return: value.return, success: value.success, score: value.score ?? null }];
        }));
        if (spec.randomPlay) push("eval", 0, { split: "train", policy: "random", tasks: evalTasks((task) => spec.randomPlay!(seed, task)) });
        for (const step of spec.evalSteps) {
          if (stopAt !== undefined && step > stopAt) break;
          const tasks = evalTasks((task) => spec.value(actor, critic, seed, step, task, combo));
          if (spec.taskMetrics) {
            const metrics = Object.fromEntries(spec.tasks.flatMap((task) =>
              Object.entries(spec.taskMetrics!(actor, critic, seed, step, task)).map(([q, v]) => [`task/${task}/${q}`, v])));
            push("metrics", step, { metrics });
          }
          push("eval", step, { split: "train", tasks });
        }
        if (status !== "running") {
          push("finished", spec.evalSteps.at(-1) ?? 0, { summary: { status: status === "succeeded" ? "succeeded" : "failed" } });
        }
        runs.push({ key, benchmark: spec.benchmark, actor, critic, seed, scale: "tiny", status, events,
          request: { run_dir: `/runs/${key}`, benchmark: spec.benchmark, actor, critic, seed, scale: "tiny", device: "auto", overrides } });
      }
    }
  }
  return {
    sweep: { name: spec.name, benchmark: spec.benchmark, scale: "tiny", source: `experiments/${spec.benchmark}.yaml`,
      command: `amago2 sweep ${spec.benchmark} --scale tiny` },
    runs,
  };
}
