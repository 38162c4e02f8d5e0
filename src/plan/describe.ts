// What Python says about itself (`amago2.bridge.describe()`, docs/INTERFACES.md section 1),
// checked on arrival, and the checks the planner makes against it.
import { UserError } from "../ui/errors.js";
import { NOT_AXES, pointValues } from "./axes.js";
import type { SweepPlan } from "./sweep.js";

export interface BenchmarkInfo {
  tasks: string[];
  eval_tasks: string[];
  k: number | null;
  horizon: number | null;
  packages: string[];
  installed: boolean;
  install_hint: string | null;
  presets: Record<string, Record<string, unknown>>;
}

export interface Description {
  benchmarks: Record<string, BenchmarkInfo>;
  hyperparameters: Record<string, unknown>;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validate describe()'s JSON; a mismatch is a bug between the two halves, not user input. */
export function asDescription(raw: unknown): Description {
  const bad = (what: string): never => {
    throw new Error(`amago2.bridge.describe() returned an unexpected shape: ${what}`);
  };
  if (!isMapping(raw)) bad("not an object");
  const d = raw as Record<string, unknown>;
  if (!isMapping(d.benchmarks)) bad("'benchmarks' is not an object");
  if (!isMapping(d.hyperparameters)) bad("'hyperparameters' is not an object");
  for (const [name, info] of Object.entries(d.benchmarks as Record<string, unknown>)) {
    if (!isMapping(info) || !Array.isArray(info.tasks) || typeof info.installed !== "boolean" || !isMapping(info.presets)) {
      bad(`benchmark '${name}' lacks tasks/installed/presets`);
    }
  }
  return raw as Description;
}

/**
 * `desc` with the benchmarks in `names` as `other` (another interpreter's describe())
 * knows them: what one interpreter cannot hold (Procgen) comes from the one that runs it.
 */
export function withBenchmarksFrom(desc: Description, other: Description, names: readonly string[]): Description {
  const taken = Object.fromEntries(names.filter((n) => n in other.benchmarks).map((n) => [n, other.benchmarks[n]]));
  return { ...desc, benchmarks: { ...desc.benchmarks, ...taken } };
}

/** Override keys must be hyperparameters Python knows, with the type of their default. */
export function checkOverrides(overrides: Record<string, unknown>, desc: Description, where: string): void {
  const known = Object.keys(desc.hyperparameters).filter((k) => !(k in NOT_AXES)).sort();
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in desc.hyperparameters)) {
      throw new UserError(`${where}: unknown hyperparameter '${key}' (known: ${known.join(", ")})`);
    }
    const def = desc.hyperparameters[key];
    const expected = Array.isArray(def) ? "list" : typeof def;
    const actual = Array.isArray(value) ? "list" : typeof value;
    if (def !== null && expected !== actual) {
      throw new UserError(`${where}: hyperparameter '${key}' must be a ${expected}, got ${JSON.stringify(value)}`);
    }
  }
}

/** Every value a plan sets or sweeps, checked against the configuration's schema (checkOverrides). */
export function checkPlanSettings(plan: SweepPlan, desc: Description): void {
  checkOverrides(plan.overrides, desc, plan.source);
  checkOverrides(plan.set, desc, "--set");
  for (const axis of plan.axes) {
    for (const point of axis.points) checkOverrides(pointValues(axis, point), desc, axis.origin);
  }
}
