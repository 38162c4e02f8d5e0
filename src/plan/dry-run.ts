// `--dry-run` of `sweep` and `ablate`: the plan as it will run (every hyperparameter as
// Python resolves it), what is still to do, and its estimated run time from the store's
// own measured costs.
import type { ResolvedRun } from "../bridge/request.js";
import { measuredCellCosts, type CellCost } from "../store/costs.js";
import { openStoreReadOnly } from "../store/db.js";
import { describeKeptSettings } from "../store/events.js";
import { getRun, type PlannedRun } from "../store/runs.js";
import { renderColumns } from "../ui/columns.js";
import { formatDuration } from "../ui/progress.js";
import { describeCombo } from "./axes.js";
import type { Description } from "./describe.js";
import { canonicalJson, comboOf, gridFactors, type SweepPlan } from "./sweep.js";

export interface DryRunReport {
  sweep: string;
  benchmark: string;
  scale: string;
  source: string;
  /** The grid's factors: [["actor", 2], ["critic", 2], ["num_bins", 4], ["seeds", 3]]. */
  grid: [string, number][];
  /** The hyperparameter axes besides actor and critic: their keys and points. */
  axes: { keys: string[]; points: unknown[][] }[];
  runs: {
    key: string; actor: string; critic: string; seed: number;
    /** The run's values of the axes' keys. */
    settings: Record<string, unknown>;
    /** Env steps still to do: none once it has succeeded, the rest after a checkpoint. */
    stepsToDo: number;
    /** stepsToDo x its cell's measured seconds per env step; null without a measurement. */
    estimatedSeconds: number | null;
    /** Settings the run keeps from its first attempt when it resumes, where they differ
     * from today's resolution: {key: [kept, resolved now]}. */
    keptSettings: Record<string, [unknown, unknown]>;
  }[];
  /** Env steps of each run, as the first combination of the axes resolves it (total_steps may be swept). */
  stepsPerRun: number;
  estimatedEnvSteps: number;
  stepsToDo: number;
  /** The measured cost of each cell, from this store's succeeded runs at this benchmark and scale. */
  costModel: CellCost[];
  /** Trial shape and task counts of a built-in benchmark; null for a user-defined set or
   * a benchmark whose packages this interpreter lacks. */
  benchmarkInfo: { tasks: number; evalTasks: number; k: number | null; horizon: number | null } | null;
  /** Every hyperparameter the runs will use (defaults <- benchmark preset <- scale <- overrides), as Python
   * resolves them for the first combination of the axes (the swept keys vary: see `axes`). */
  hyperparameters: Record<string, unknown>;
  /** The hyperparameters the benchmark's preset at this scale sets (shown first), as Python says. */
  presetKeys: string[];
  /** Keys of a user benchmark's own preset that the scale sets otherwise. */
  replacedByScale: Record<string, { preset: unknown; scale: unknown }>;
  /** Why the runs could not start here yet (a missing runtime), or null. */
  notInstalled: string | null;
}

/** What the store already knows of a sweep's runs: how far each got, and what cells cost. */
export interface StoreHistory {
  progress: Map<string, { status: string; step: number }>;
  costModel: CellCost[];
}

export function readHistory(home: string, plan: SweepPlan, runs: PlannedRun[]): StoreHistory {
  const db = openStoreReadOnly(home);
  if (db === null) return { progress: new Map(), costModel: [] };
  try {
    const progress = new Map<string, { status: string; step: number }>();
    for (const r of runs) {
      const row = getRun(db, r.key);
      if (row) progress.set(r.key, { status: row.status, step: row.step });
    }
    return { progress, costModel: measuredCellCosts(db, plan.benchmark, plan.scale, plan.axes.flatMap((a) => a.keys)) };
  } finally {
    db.close();
  }
}

/**
 * `resolved` holds what Python resolves one run of each combination of the axes to, in
 * the grid's order (one entry when there are no axes); `kept`, per run that has started
 * before, what it keeps when it resumes (ResolvedRun.kept_settings).
 */
export function collectDryRun(plan: SweepPlan, runs: PlannedRun[], desc: Description, resolved: ResolvedRun[],
  notInstalled: string | null = null, history: StoreHistory = { progress: new Map(), costModel: [] },
  kept: ReadonlyMap<string, Record<string, [unknown, unknown]>> = new Map()): DryRunReport {
  const combos = runs.map((r) => canonicalJson(comboOf(plan, r)));
  const comboKeys = [...new Set(combos)]; // in the grid's order, as `resolved` holds them
  const stepsOf = (i: number) => Number(resolved[comboKeys.indexOf(combos[i])].config.train.total_steps);
  const planned = runs.map((r, i) => {
    const known = history.progress.get(r.key);
    const settings = comboOf(plan, r);
    const stepsToDo = known?.status === "succeeded" ? 0 : Math.max(0, stepsOf(i) - (known?.step ?? 0));
    const cost = history.costModel.find((c) => c.actor === r.actor && c.critic === r.critic &&
      canonicalJson(c.settings) === combos[i]);
    return { key: r.key, actor: r.actor, critic: r.critic, seed: r.seed, settings, stepsToDo,
      estimatedSeconds: cost ? stepsToDo * cost.secondsPerStep : stepsToDo === 0 ? 0 : null,
      keptSettings: stepsToDo > 0 ? kept.get(r.key) ?? {} : {} };
  });
  const first = resolved[0];
  const perRun = Number(first.config.train.total_steps);
  const info = plan.benchmarkDef ? null : desc.benchmarks[plan.benchmark];
  // Only an interpreter that can build the benchmark knows its tasks and trial shape.
  const built = info?.installed ? info : null;
  return {
    sweep: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source,
    grid: gridFactors(plan),
    axes: plan.axes.map((a) => ({ keys: a.keys, points: a.points })),
    runs: planned,
    stepsPerRun: perRun,
    estimatedEnvSteps: runs.reduce((sum, _, i) => sum + stepsOf(i), 0),
    stepsToDo: planned.reduce((sum, r) => sum + r.stepsToDo, 0),
    costModel: history.costModel,
    benchmarkInfo: built ? { tasks: built.tasks.length, evalTasks: built.eval_tasks.length, k: built.k, horizon: built.horizon } : null,
    // actor and critic are the grid's axes, shown per run, not settings of the sweep.
    hyperparameters: Object.fromEntries(Object.entries({ ...first.config.agent, ...first.config.train })
      .filter(([k]) => k !== "actor" && k !== "critic")),
    presetKeys: first.preset_keys,
    replacedByScale: first.replaced_by_scale,
    notInstalled,
  };
}

/** "scale tiny sets d_model=64 over the benchmark preset's 128, ...", or null. */
export function replacedByScaleLine(scale: string, replaced: ResolvedRun["replaced_by_scale"]): string | null {
  const parts = Object.entries(replaced).map(([k, v]) => `${k}=${JSON.stringify(v.scale)} over the benchmark preset's ${JSON.stringify(v.preset)}`);
  return parts.length ? `scale ${scale} sets ${parts.join(", ")} (use overrides to change what a scale sets)` : null;
}

/** The estimate's lines: run time still to do, and what it is based on. */
function estimateLines(report: DryRunReport, home: string): string[] {
  const todo = report.runs.filter((r) => r.stepsToDo > 0);
  if (todo.length === 0) return ["nothing to do: every run of this sweep has succeeded"];
  const lines = [`to do: ${todo.length} of ${report.runs.length} runs, ${report.stepsToDo.toLocaleString("en-US")} env steps`];
  const known = todo.filter((r) => r.estimatedSeconds !== null);
  if (known.length > 0) {
    const seconds = known.reduce((sum, r) => sum + r.estimatedSeconds!, 0);
    const basis = report.costModel.map((c) => `${[`${c.actor}/${c.critic}`, describeCombo(c.settings)].filter(Boolean).join(" ")} ` +
      `${formatDuration(c.secondsPerStep * report.stepsPerRun)} a run (${c.runs} succeeded)`).join(", ");
    lines.push(`estimated run time${known.length < todo.length ? ` of ${known.length} of them` : ""}: ` +
      `${formatDuration(seconds)} one after another, from the wall time per env step of this store's runs at scale ` +
      `${report.scale}: ${basis}; runs side by side share the machine and take longer each`);
  }
  const unknown = [...new Set(todo.filter((r) => r.estimatedSeconds === null)
    .map((r) => [`${r.actor}/${r.critic}`, describeCombo(r.settings)].filter(Boolean).join(" ")))];
  if (unknown.length > 0) {
    lines.push(`no estimate for ${unknown.join(", ")}: no run of ${unknown.length > 1 ? "these cells" : "this cell"} of ` +
      `${report.benchmark} at scale ${report.scale} has succeeded in ${home} yet (bench/loop.py measures the whole loop)`);
  }
  return lines;
}

/** One line per set of settings that runs resuming keep, naming the runs. */
function keptLines(report: DryRunReport): string[] {
  const byKept = new Map<string, string[]>();
  for (const r of report.runs) {
    const kept = describeKeptSettings(r.keptSettings);
    if (kept) byKept.set(kept, [...(byKept.get(kept) ?? []), r.key]);
  }
  return [...byKept].map(([kept, keys]) => `${keys.length === 1 ? "1 run resumes" : `${keys.length} runs resume`} with the ` +
    `settings ${keys.length === 1 ? "it" : "they"} started with, not the above: ${kept} (${keys.join(", ")})`);
}

export function renderDryRun(report: DryRunReport, home: string): string {
  const axisKeys = report.axes.flatMap((a) => a.keys);
  const shown = (v: unknown) => (Array.isArray(v) ? `[${v.join(",")}]` : String(v));
  const table = renderColumns(["key", "actor", "critic", ...axisKeys, "seed", "steps to do", "estimate"],
    report.runs.map((r) => [r.key, r.actor, r.critic, ...axisKeys.map((k) => shown(r.settings[k])), String(r.seed),
      r.stepsToDo.toLocaleString("en-US"), r.estimatedSeconds === null ? "?" : formatDuration(r.estimatedSeconds)]));
  const hp = report.hyperparameters;
  // A swept key shows every value it takes: {16|32|64}.
  const values = (k: string) => {
    const axis = report.axes.find((a) => a.keys.includes(k));
    return axis ? `{${axis.points.map((p) => shown(p[axis.keys.indexOf(k)])).join("|")}}` : shown(hp[k]);
  };
  const fmt = (k: string) => `${k}=${values(k)}`;
  const presetLine = report.presetKeys.filter((k) => k in hp).map(fmt).join(" ");
  const restLine = Object.keys(hp).filter((k) => !report.presetKeys.includes(k)).sort().map(fmt).join(" ");
  const b = report.benchmarkInfo;
  return [
    `sweep ${report.sweep}: ${report.benchmark} at scale ${report.scale} (${report.source})`,
    ...(b ? [`benchmark: ${b.tasks} training tasks, ${b.evalTasks} held-out; trials of k=${b.k ?? "?"} episodes, horizon ${b.horizon ?? "the env's own"}`] : []),
    `preset: ${presetLine}`,
    `other settings: ${restLine}`,
    table,
    ...keptLines(report),
    ...[replacedByScaleLine(report.scale, report.replacedByScale)].filter((l): l is string => l !== null),
    `grid: ${report.grid.map(([n, k]) => `${n} ${k}`).join(" x ")} = ${report.runs.length} runs`,
    axisKeys.includes("total_steps")
      ? `${report.runs.length} runs, ${report.estimatedEnvSteps.toLocaleString("en-US")} estimated env steps in all`
      : `${report.runs.length} runs x ${report.stepsPerRun.toLocaleString("en-US")} env steps = ${report.estimatedEnvSteps.toLocaleString("en-US")} estimated env steps`,
    ...estimateLines(report, home),
    ...(report.notInstalled ? [`not runnable here yet: ${report.notInstalled}`] : []),
  ].join("\n");
}
