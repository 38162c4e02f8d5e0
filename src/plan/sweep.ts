// A sweep plan: the sweep file merged with the command-line flags, expanded into cells with
// stable keys.
import { createHash } from "node:crypto";
import type { RunRequest } from "../bridge/request.js";
import type { PlannedRun } from "../store/runs.js";
import type { Objective, Scale, SweepFile } from "./sweep-file.js";
import { OBJECTIVES } from "./sweep-file.js";

export interface PlanFlags {
  actors?: Objective[];
  critics?: Objective[];
  seeds?: number[];
  scale?: Scale;
  steps?: number;
  name?: string;
}

export interface SweepPlan {
  name: string;
  source: string;
  benchmark: string;
  benchmarkDef: Record<string, unknown> | null;
  scale: Scale;
  steps: number | null;
  overrides: Record<string, unknown>;
  actors: Objective[];
  critics: Objective[];
  seeds: number[];
}

/** Flags win over the file; the file wins over the defaults (full 2x2, 3 seeds, paper scale). */
export function makePlan(file: SweepFile, flags: PlanFlags): SweepPlan {
  const scale = flags.scale ?? file.scale ?? "paper";
  const benchmark = file.benchmark;
  return {
    name: flags.name ?? file.name ?? (scale === "paper" ? benchmark : `${benchmark}-${scale}`),
    source: file.file,
    benchmark,
    benchmarkDef: file.benchmarkDef,
    scale,
    steps: flags.steps ?? file.steps ?? null,
    overrides: file.overrides,
    actors: flags.actors ?? file.actors ?? [...OBJECTIVES],
    critics: flags.critics ?? file.critics ?? [...OBJECTIVES],
    seeds: flags.seeds ?? file.seeds ?? [0, 1, 2],
  };
}

/** JSON with object keys sorted at every level: equal configs give equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A run's identity: what it trains (not where or on which device). The readable prefix
 * helps a person browsing runs/; the hash makes it unique.
 */
export function runKey(request: Omit<RunRequest, "run_dir" | "device">): string {
  const canonical = canonicalJson({
    benchmark: request.benchmark, benchmark_def: request.benchmark_def ?? null, actor: request.actor,
    critic: request.critic, seed: request.seed, scale: request.scale, steps: request.steps ?? null,
    overrides: request.overrides,
  });
  const hash = createHash("sha256").update(canonical).digest("hex").slice(0, 10);
  return `${request.benchmark}-${request.actor}-${request.critic}-s${request.seed}-${hash}`;
}

/** Every cell of the grid, in a fixed order (actor, critic, seed). */
export function expandGrid(plan: SweepPlan, runDirOf: (key: string) => string): PlannedRun[] {
  const runs: PlannedRun[] = [];
  for (const actor of plan.actors) {
    for (const critic of plan.critics) {
      for (const seed of plan.seeds) {
        const base = {
          benchmark: plan.benchmark, actor, critic, seed, scale: plan.scale,
          ...(plan.steps !== null ? { steps: plan.steps } : {}),
          overrides: plan.overrides, benchmark_def: plan.benchmarkDef,
        };
        const key = runKey(base);
        const runDir = runDirOf(key);
        // The device is chosen per attempt by the executor's slot; "auto" until then.
        const request: RunRequest = { run_dir: runDir, ...base, device: "auto" };
        runs.push({ key, benchmark: plan.benchmark, actor, critic, seed, scale: plan.scale, runDir, request });
      }
    }
  }
  return runs;
}
