// Reads sweeps, their runs and every run's evaluations out of the store into the report
// model; the queries themselves are the store's (store/runs.ts, store/results.ts).

import type { Store } from "../store/db.js";
import { evalRowsOf, metricRowsOf, type EvalRow } from "../store/results.js";
import { listSweeps, overviewOf, requireSweep, runsOfSweep, type RunRow, type SweepRow } from "../store/runs.js";
import type { EvalRecord, RunRecord, SweepRecord, TaskEval, TaskMetricPoint } from "./model.js";

const NON_FINITE: Record<string, number> = { nan: NaN, inf: Infinity, "-inf": -Infinity };

function parseJson(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

/** One EvalRecord per eval event and split, tasks holding their per-episode values in order. */
function evalRecords(rows: EvalRow[]): EvalRecord[] {
  const records = new Map<string, EvalRecord>();
  for (const row of rows) {
    const id = `${row.seq}/${row.split}`;
    const record = records.get(id) ?? { seq: row.seq, step: row.step, split: row.split, tasks: new Map() };
    records.set(id, record);
    const task: TaskEval = record.tasks.get(row.task) ??
      { trials: row.trials, returns: [], success: row.success === null ? null : [], score: row.score === null ? null : [] };
    record.tasks.set(row.task, task);
    task.returns.push(row.return ?? NON_FINITE[row.return_nonfinite ?? "nan"]);
    if (row.success !== null) task.success?.push(row.success);
    if (row.score !== null) task.score?.push(row.score);
  }
  return [...records.values()];
}

/** The learner's per-task measurements: metrics named "task/<task>/<quantity>" (the task's name may hold '/'). */
function taskMetricsOf(db: Store, key: string): TaskMetricPoint[] {
  return metricRowsOf(db, key, "task/").map((row) => {
    const cut = row.name.lastIndexOf("/");
    return { step: row.step, task: row.name.slice("task/".length, cut), quantity: row.name.slice(cut + 1), value: row.value };
  });
}

/** The request's settings that can differ between cells of a sweep, besides actor, critic and seed. */
function settingsOf(request: Record<string, unknown>): Record<string, string> {
  const settings: Record<string, string> = {};
  if (request.steps !== undefined && request.steps !== null) settings.steps = String(request.steps);
  settings.scale = String(request.scale);
  const overrides = (request.overrides ?? {}) as Record<string, unknown>;
  for (const [name, value] of Object.entries(overrides)) settings[name] = typeof value === "string" ? value : JSON.stringify(value);
  return settings;
}

/**
 * Settings whose value is not the same for every run: the sweep's extra axes, the ones it
 * declared first in the order its grid nests them, then any other in name order.
 */
function sweptAxes(settings: Record<string, string>[], declared: readonly string[] = []): string[] {
  const names = [...new Set(settings.flatMap((s) => Object.keys(s)))].sort();
  const varied = names.filter((name) => new Set(settings.map((s) => s[name] ?? "")).size > 1);
  return [...declared.filter((d) => varied.includes(d)), ...varied.filter((v) => !declared.includes(v))];
}

/** A sweep's runs, each one's settings, and the axes among them (sweptAxes), the declared ones first. */
function sweepSettings(db: Store, sweep: SweepRow): { rows: RunRow[]; settings: Record<string, string>[]; axes: string[] } {
  const rows = runsOfSweep(db, sweep.name);
  const settings = rows.map((r) => settingsOf(JSON.parse(r.request) as Record<string, unknown>));
  const declared = sweep.axes ? (JSON.parse(sweep.axes) as string[]) : [];
  return { rows, settings, axes: sweptAxes(settings, declared) };
}

/**
 * Each run's values of the axes its sweeps vary besides actor, critic and seed ({num_bins:
 * "16"}), by run key: `runs` and `status` show them. A run in several sweeps gets the axes
 * of each.
 */
export function sweptSettings(db: Store, sweeps: readonly SweepRow[] = listSweeps(db)): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const sweep of sweeps) {
    const { rows, settings, axes } = sweepSettings(db, sweep);
    rows.forEach((row, i) => out.set(row.key, { ...out.get(row.key), ...Object.fromEntries(axes.map((a) => [a, settings[i][a] ?? ""])) }));
  }
  return out;
}

function runRecord(db: Store, row: RunRow, settings: Record<string, string>, axes: string[]): RunRecord {
  const evals = evalRowsOf(db, row.key);
  return {
    ...overviewOf(row),
    command: row.command,
    axes: Object.fromEntries(axes.map((a) => [a, settings[a] ?? ""])),
    request: parseJson(row.request),
    config: parseJson(row.config),
    versions: parseJson(row.versions),
    error: row.error_type ? `${row.error_type}: ${row.error_message ?? ""}` : null,
    evals: evalRecords(evals.filter((e) => e.policy === "agent")),
    randomPlay: evalRecords(evals.filter((e) => e.policy === "random")),
    taskMetrics: taskMetricsOf(db, row.key),
  };
}

/**
 * The named sweeps (every sweep when `names` is empty), in the order given. An unknown
 * name is a user error listing the known ones.
 */
export function collectSweeps(db: Store, names: readonly string[]): SweepRecord[] {
  const known = listSweeps(db);
  const wanted = names.length ? names : known.map((s) => s.name);
  return wanted.map((name) => {
    const sweep = requireSweep(db, name);
    const { rows, settings, axes } = sweepSettings(db, sweep);
    return {
      name: sweep.name,
      benchmark: sweep.benchmark,
      scale: sweep.scale,
      source: sweep.source,
      command: sweep.command,
      createdAt: sweep.created_at,
      axes,
      runs: rows.map((row, i) => runRecord(db, row, settings[i], axes)),
    };
  });
}
