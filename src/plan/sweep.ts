// A sweep plan: the sweep file merged with the command-line flags, expanded into cells with
// stable keys: actor x critic x every hyperparameter axis (plan/axes.ts) x seeds.
import { createHash } from "node:crypto";
import type { RunRequest } from "../bridge/request.js";
import type { PlannedRun } from "../store/runs.js";
import { axisProduct, checkGridSize, describeCombo, mergeAxes, type Axis } from "./axes.js";
import type { Objective, Scale, SweepFile } from "./sweep-file.js";
import { OBJECTIVES } from "./sweep-file.js";

export interface PlanFlags {
  actors?: Objective[];
  critics?: Objective[];
  seeds?: number[];
  scale?: Scale;
  steps?: number;
  name?: string;
  /** --set key=value: pinned hyperparameters, over the file's overrides and axes. */
  set?: Record<string, unknown>;
  /** --axis: hyperparameter axes, replacing the file's axis over the same keys. */
  axes?: Axis[];
}

export interface SweepPlan {
  name: string;
  source: string;
  benchmark: string;
  benchmarkDef: Record<string, unknown> | null;
  scale: Scale;
  steps: number | null;
  /** The file's overrides; every cell has them. */
  overrides: Record<string, unknown>;
  /** --set's values; every cell has them, over the file's overrides. */
  set: Record<string, unknown>;
  actors: Objective[];
  critics: Objective[];
  /** Hyperparameter axes besides actor and critic, in the order the grid nests them. */
  axes: Axis[];
  seeds: number[];
}

/** Flags win over the file; the file wins over the defaults (full 2x2, 3 seeds, paper scale). */
export function makePlan(file: SweepFile, flags: PlanFlags): SweepPlan {
  const scale = flags.scale ?? file.scale ?? "paper";
  const benchmark = file.benchmark;
  const set = flags.set ?? {};
  const axes = mergeAxes(file.axes, flags.axes ?? [], set);
  const plan: SweepPlan = {
    name: flags.name ?? file.name ?? (scale === "paper" ? benchmark : `${benchmark}-${scale}`),
    source: file.file,
    benchmark,
    benchmarkDef: file.benchmarkDef,
    scale,
    steps: flags.steps ?? file.steps ?? null,
    overrides: Object.fromEntries(Object.entries(file.overrides).filter(([k]) => !(k in set) && !axes.some((a) => a.keys.includes(k)))),
    set,
    actors: flags.actors ?? file.actors ?? [...OBJECTIVES],
    critics: flags.critics ?? file.critics ?? [...OBJECTIVES],
    axes,
    seeds: flags.seeds ?? file.seeds ?? [0, 1, 2],
  };
  checkGridSize(gridFactors(plan));
  return plan;
}

/** The grid's factors as a person reads them: [["actor", 2], ["critic", 2], ["num_bins", 4], ["seeds", 3]]. */
export function gridFactors(plan: SweepPlan): [string, number][] {
  return [["actor", plan.actors.length], ["critic", plan.critics.length],
    ...plan.axes.map((a): [string, number] => [a.keys.join("+"), a.points.length]), ["seeds", plan.seeds.length]];
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

/**
 * Every cell of the grid, in a fixed order: actor, critic, each axis in turn, seed. A cell's
 * overrides are the file's, then --set, then its axis values; its key hashes them, so a
 * sweep without extra axes keeps the keys it always had, and the same cell asked for by two
 * sweeps is one run.
 */
export function expandGrid(plan: SweepPlan, runDirOf: (key: string) => string): PlannedRun[] {
  const runs: PlannedRun[] = [];
  const combos = axisProduct(plan.axes);
  for (const actor of plan.actors) {
    for (const critic of plan.critics) {
      for (const combo of combos) {
        for (const seed of plan.seeds) {
          const base = {
            benchmark: plan.benchmark, actor, critic, seed, scale: plan.scale,
            ...(plan.steps !== null ? { steps: plan.steps } : {}),
            overrides: { ...plan.overrides, ...plan.set, ...combo }, benchmark_def: plan.benchmarkDef,
          };
          const key = runKey(base);
          const runDir = runDirOf(key);
          // The device is chosen per attempt by the executor's slot; "auto" until then.
          const request: RunRequest = { run_dir: runDir, ...base, device: "auto" };
          runs.push({ key, benchmark: plan.benchmark, actor, critic, seed, scale: plan.scale, runDir, request });
        }
      }
    }
  }
  return runs;
}

/** A planned run's values of the plan's hyperparameter axes: {num_bins: 16, d_model: 64}. */
export function comboOf(plan: SweepPlan, run: PlannedRun): Record<string, unknown> {
  return Object.fromEntries(plan.axes.flatMap((a) => a.keys).map((k) => [k, run.request.overrides[k]]));
}

/**
 * Where the plan gave the settings named in `keys` (those a configuration error is about),
 * for the error's line: --set, else the axis that varies one of them (at the failing
 * combination), else the sweep file (its overrides, or its benchmark's preset).
 */
export function settingsOrigin(plan: SweepPlan, keys: readonly string[], combo: Record<string, unknown>): string {
  const set = keys.filter((k) => k in plan.set);
  if (set.length) return `--set ${describeCombo(Object.fromEntries(set.map((k) => [k, plan.set[k]])))}`;
  const axis = plan.axes.find((a) => a.keys.some((k) => keys.includes(k)));
  if (axis) return `${axis.origin}, at ${describeCombo(Object.fromEntries(axis.keys.map((k) => [k, combo[k]])))}`;
  return plan.axes.length ? `${plan.source}, at ${describeCombo(combo)}` : plan.source;
}
