// Builds the ablation tables (cells x headline metrics, or tasks x cells) as a neutral
// table model that render.ts prints in any format. All statistics come from stats.ts.

import {
  DEFAULT_POI_REPS, DEFAULT_REPS, STD_DDOF, bootstrapInterval, iqmStat, meanStat, meanStd, medianStat,
  optimalityGapStat, probabilityOfImprovement, probabilityOfImprovementInterval, toBlock,
  type ScoreMatrix, type Statistic,
} from "./stats.js";
import {
  axisValue, cellAxes, cellMatrix, cellsOf, compareAxisValues, describePoint, headlineMetrics, RANDOM_PLAY, RANDOM_PLAY_RULE,
  randomPlayMatrix, TRIAL_RULE, type Cell, type Metric, type ScorePoint, type SweepRecord,
} from "./model.js";
import { UserError } from "../ui/errors.js";

/** A number with an optional 95% interval or spread; `partial` marks fewer seeds than planned. */
export interface Estimate {
  value: number;
  lo?: number;
  hi?: number;
  std?: number;
  partial?: boolean;
}

export type TableValue = string | Estimate | null;

export interface Column {
  /** Stable machine name (CSV header, JSON key). */
  id: string;
  label: string;
  /** Spanning header over adjacent columns (the sweep, or the metric), if any. */
  group: string | null;
  kind: "text" | "estimate";
}

export interface TableModel {
  title: string;
  columns: Column[];
  rows: TableValue[][];
  /** Definitions printed under the table: what "final" means, the statistics, the marks. */
  notes: string[];
}

export type StatName = "iqm" | "mean" | "median" | "all";
export const STAT_NAMES: readonly StatName[] = ["iqm", "mean", "median", "all"];

export interface TableOptions {
  stat: StatName;
  perTask: boolean;
  /**
   * The baseline of the probability-of-improvement columns, or null: the axis values it
   * differs from each row's cell in ({actor: "dep", critic: "dep"}, or {num_bins: "128"}).
   */
  vs: CellSpec | null;
  /** Pivot (pivotTable): the axes whose value combinations are the rows, and those that are the columns. */
  rows?: string[];
  cols?: string[];
  point: ScorePoint;
  /** Bootstrap repetitions; null takes the defaults (50,000, or 2,000 for P(X > Y)). */
  reps: number | null;
  seed: number;
}

/** Axis values by axis name: {actor: "ind", num_bins: "128"}; values as the tables print them. */
export type CellSpec = Record<string, string>;

/** "dep/dep", or "num_bins=128 critic=ind": a cell spec as a person reads it. */
export function describeSpec(spec: CellSpec): string {
  const { actor, critic, ...rest } = spec;
  const head = actor !== undefined && critic !== undefined ? [`${actor}/${critic}`] : [];
  const others = Object.entries(head.length ? rest : spec).map(([k, v]) => `${k}=${v}`);
  return [...head, ...others].join(" ");
}

/** The cell that differs from `cell` only in what `vs` says, or undefined. */
function baselineOf(cell: Cell, cells: Cell[], axes: string[], vs: CellSpec): Cell | undefined {
  const target = (axis: string) => vs[axis] ?? axisValue(cell, axis);
  return cells.find((c) => axes.every((a) => axisValue(c, a) === target(a)));
}

interface StatSpec {
  id: string;
  label: string;
  /** Null for mean +- std, which has no bootstrap. */
  statistic: Statistic | null;
}

function statsFor(name: StatName, metric: Metric): StatSpec[] {
  const iqm = { id: "iqm", label: "IQM", statistic: iqmStat };
  const mean = { id: "mean", label: "mean", statistic: meanStat };
  const median = { id: "median", label: "median", statistic: medianStat };
  if (name === "iqm") return [iqm];
  if (name === "mean") return [mean];
  if (name === "median") return [median];
  const all: StatSpec[] = [iqm, mean, median, { id: "mean_std", label: "mean ± std", statistic: null }];
  if (metric.normalised) all.push({ id: "gap", label: "optimality gap", statistic: optimalityGapStat(1) });
  return all;
}

export const PARTIAL_MARK = "†";

const STAT_TITLES: Record<StatName, string> = {
  iqm: "IQM [95% CI]", mean: "mean [95% CI]", median: "median [95% CI]", all: "all statistics",
};

function estimateOf(spec: StatSpec, matrix: ScoreMatrix, opts: TableOptions, partial: boolean): Estimate {
  if (spec.statistic === null) {
    const { mean, std } = meanStd(matrix);
    return { value: mean, std, partial };
  }
  const { block, runs, tasks } = toBlock(matrix);
  const value = spec.statistic(block, runs, tasks);
  const ci = bootstrapInterval(spec.statistic, matrix, opts.reps ?? DEFAULT_REPS, opts.seed);
  return { value, lo: ci.lo, hi: ci.hi, partial };
}

/** "2/3 (1 running, 1 failed)": counted seeds over planned, and what the others are doing. */
function seedsText(cell: Cell, counted: number): string {
  const others = new Map<string, number>();
  for (const run of cell.runs) {
    if (run.status === "succeeded") continue;
    others.set(run.status, (others.get(run.status) ?? 0) + 1);
  }
  const extra = [...others].map(([status, n]) => `${n} ${status}`).join(", ");
  return `${counted}/${cell.runs.length}${extra ? ` (${extra})` : ""}`;
}

function axisNames(sweeps: SweepRecord[]): string[] {
  return [...new Set(sweeps.flatMap((s) => s.axes))];
}

function statNotes(opts: TableOptions, stats: Set<string>): string[] {
  const reps = opts.reps ?? DEFAULT_REPS;
  const notes: string[] = [];
  if (stats.has("iqm")) notes.push("IQM = interquartile mean of all run x task scores (the lowest and highest 25% dropped)");
  if (stats.has("mean")) notes.push("mean = mean over tasks of each task's mean over runs");
  if (stats.has("median")) notes.push("median = median over tasks of each task's mean over runs");
  if (stats.has("mean_std")) notes.push(`mean ± std = over runs of each run's task average; std with ddof = ${STD_DDOF}`);
  if (stats.has("gap")) notes.push("optimality gap = mean shortfall of the scores below 1");
  notes.push(`[lo, hi] = 95% stratified-bootstrap interval (runs resampled within each task; ${reps} repetitions, seed ${opts.seed})`);
  return notes;
}

function partialNote(): string {
  return `${PARTIAL_MARK} = partial cell: fewer counted seeds than planned (seeds = counted/planned), not comparable as complete`;
}

/** Cells x headline metrics, one column group per sweep (two benchmarks side by side). */
export function aggregateTable(sweeps: SweepRecord[], opts: TableOptions): TableModel {
  const axes = axisNames(sweeps);
  const keyColumns: Column[] = ["actor", "critic", ...axes].map((a) => ({ id: a, label: a, group: null, kind: "text" }));
  const columns: Column[] = [...keyColumns];
  const rowsByLabel = new Map<string, Map<string, TableValue>>();
  const randomRow = new Map<string, TableValue>(keyColumns.map((c) => [c.id, c.id === "actor" ? RANDOM_PLAY : ""]));
  const usedStats = new Set<string>();
  const metricNotes = new Map<string, string>();
  let anyPartial = false;
  let anyPoi = false;
  let anyRandom = false;

  for (const sweep of sweeps) {
    const group = sweeps.length > 1 ? sweep.name : null;
    const prefix = sweeps.length > 1 ? `${sweep.name}/` : "";
    const metrics = headlineMetrics(sweep.runs);
    const cells = cellsOf(sweep);
    columns.push({ id: `${prefix}seeds`, label: "seeds", group, kind: "text" });
    const axesHere = cellAxes(sweep);
    const vs = opts.vs;
    const baseline = vs && cells.some((c) => Object.entries(vs).every(([a, v]) => axisValue(c, a) === v)) ? vs : null;

    for (const cell of cells) {
      const row = rowsByLabel.get(cell.label) ?? new Map<string, TableValue>([
        ["actor", cell.actor], ["critic", cell.critic], ...axes.map((a): [string, TableValue] => [a, cell.axes[a] ?? ""]),
      ]);
      rowsByLabel.set(cell.label, row);
      const counted = metrics.length ? cellMatrix(cell, metrics[0], opts.point).runs.length : 0;
      row.set(`${prefix}seeds`, seedsText(cell, counted));
    }
    metrics.forEach((metric) => {
      metricNotes.set(metric.short, metric.label);
      const random = randomPlayMatrix(sweep.runs, metric);
      for (const spec of statsFor(opts.stat, metric)) {
        usedStats.add(spec.id);
        const id = `${prefix}${metric.id}/${spec.id}`;
        columns.push({ id, label: `${metric.short} ${spec.label}`, group, kind: "estimate" });
        for (const cell of cells) {
          const { runs, tasks, matrix } = cellMatrix(cell, metric, opts.point);
          const partial = runs.length < cell.runs.length;
          anyPartial ||= partial;
          const value = tasks.length ? estimateOf(spec, matrix, opts, partial) : null;
          rowsByLabel.get(cell.label)?.set(id, value);
        }
        if (random.tasks.length) {
          anyRandom = true;
          randomRow.set(`${prefix}seeds`, `${random.runs.length} seed${random.runs.length === 1 ? "" : "s"}`);
          randomRow.set(id, estimateOf(spec, random.matrix, opts, false));
        }
      }
    });
    if (baseline && metrics.length) {
      anyPoi = true;
      const metric = metrics[0];
      const id = `${prefix}${metric.id}/poi_vs_${specId(baseline)}`;
      columns.push({ id, label: `P(${metric.short} > ${describeSpec(baseline)})`, group, kind: "estimate" });
      for (const cell of cells) {
        const other = baselineOf(cell, cells, axesHere, baseline);
        const value = other && other !== cell ? poiEstimate(cell, other, metric, opts) : null;
        rowsByLabel.get(cell.label)?.set(id, value);
      }
    }
  }

  const notes = [describePoint(opts.point), TRIAL_RULE, ...statNotes(opts, usedStats)];
  notes.push(...[...metricNotes].map(([short, label]) => `${short} = ${label}`));
  if (anyPoi && opts.vs) notes.push(poiNote(opts));
  if (anyPartial) notes.push(partialNote());
  if (anyRandom) notes.push(RANDOM_PLAY_RULE);
  const keyOf = (row: Map<string, TableValue>) => keyColumns.map((c) => String(row.get(c.id) ?? ""));
  const rows = [...[...rowsByLabel.values()]
    .sort((a, b) => keyOf(a).reduce((d, v, i) => d || compareAxisValues(v, keyOf(b)[i]), 0)), ...(anyRandom ? [randomRow] : [])]
    .map((row) => columns.map((c) => row.get(c.id) ?? null));
  return { title: `${sweeps.map((s) => s.name).join(" + ")}: ${STAT_TITLES[opts.stat]}`, columns, rows, notes };
}

/** Whether a spec names exactly an actor and a critic ("dep/dep"), as the method's baseline does. */
export function isActorCritic(spec: CellSpec): boolean {
  const keys = Object.keys(spec);
  return keys.length === 2 && "actor" in spec && "critic" in spec;
}

/** "dep_dep" for an actor/critic baseline (the ids tables always had), else "num_bins-128_critic-ind". */
function specId(spec: CellSpec): string {
  return isActorCritic(spec) ? `${spec.actor}_${spec.critic}` : Object.entries(spec).map(([k, v]) => `${k}-${v}`).join("_");
}

function poiNote(opts: TableOptions): string {
  const vs = describeSpec(opts.vs ?? {});
  const differs = isActorCritic(opts.vs ?? {}) ? "" : ` (the row's cell with ${vs})`;
  return `P(a > ${vs}) = probability that a run of the row's cell beats a run of the baseline${differs} on a task ` +
    `(ties count half), averaged over tasks; interval from ${opts.reps ?? DEFAULT_POI_REPS} repetitions resampling both cells`;
}

function poiEstimate(cell: Cell, baseline: Cell, metric: Metric, opts: TableOptions): Estimate | null {
  const x = cellMatrix(cell, metric, opts.point);
  const y = cellMatrix(baseline, metric, opts.point);
  const tasks = x.tasks.filter((t) => y.tasks.includes(t));
  if (tasks.length === 0) return null;
  const pick = (m: { tasks: string[]; matrix: number[][] }): number[][] =>
    m.matrix.map((row) => tasks.map((t) => row[m.tasks.indexOf(t)]));
  const xs = pick(x);
  const ys = pick(y);
  const ci = probabilityOfImprovementInterval(xs, ys, opts.reps ?? DEFAULT_POI_REPS, opts.seed);
  const partial = x.runs.length < cell.runs.length || y.runs.length < baseline.runs.length;
  return { value: probabilityOfImprovement(xs, ys), lo: ci.lo, hi: ci.hi, partial };
}

/** Tasks x cells: one row per (sweep, task), a column per metric, cell and statistic. */
export function perTaskTable(sweeps: SweepRecord[], opts: TableOptions): TableModel {
  const columns: Column[] = [
    { id: "sweep", label: "sweep", group: null, kind: "text" },
    { id: "task", label: "task", group: null, kind: "text" },
  ];
  const known = new Set<string>();
  const rows: TableValue[][] = [];
  const pending: Map<string, TableValue>[] = [];
  const usedStats = new Set<string>();
  const metricNotes = new Map<string, string>();
  let anyPartial = false;
  let anyRandom = false;

  for (const sweep of sweeps) {
    const cells = cellsOf(sweep);
    const taskRows = new Map<string, Map<string, TableValue>>();
    for (const metric of headlineMetrics(sweep.runs)) {
      metricNotes.set(metric.short, metric.label);
      const random = randomPlayMatrix(sweep.runs, metric);
      anyRandom ||= random.tasks.length > 0;
      for (const spec of statsFor(opts.stat, metric)) {
        usedStats.add(spec.id);
        for (const cell of cells) {
          const id = `${metric.id}/${cell.label}/${spec.id}`;
          if (!known.has(id)) {
            known.add(id);
            columns.push({ id, label: `${cell.label} ${spec.label}`, group: metric.short, kind: "estimate" });
          }
          const { runs, tasks, matrix } = cellMatrix(cell, metric, opts.point);
          const partial = runs.length < cell.runs.length;
          anyPartial ||= partial;
          tasks.forEach((task, t) => {
            const row = taskRows.get(task) ?? new Map<string, TableValue>([["sweep", sweep.name], ["task", task]]);
            taskRows.set(task, row);
            row.set(id, estimateOf(spec, matrix.map((r) => [r[t]]), opts, partial));
          });
        }
        const id = `${metric.id}/random/${spec.id}`;
        if (random.tasks.length && !known.has(id)) {
          known.add(id);
          columns.push({ id, label: `${RANDOM_PLAY} ${spec.label}`, group: metric.short, kind: "estimate" });
        }
        random.tasks.forEach((task, t) => {
          taskRows.get(task)?.set(id, estimateOf(spec, random.matrix.map((r) => [r[t]]), opts, false));
        });
      }
    }
    pending.push(...[...taskRows.keys()].sort().map((t) => taskRows.get(t) as Map<string, TableValue>));
  }
  // Metric groups must be contiguous for spanning headers: order columns by group.
  const groups = [...new Set(columns.slice(2).map((c) => c.group))];
  const ordered = [...columns.slice(0, 2), ...groups.flatMap((g) => columns.slice(2).filter((c) => c.group === g))];
  for (const row of pending) rows.push(ordered.map((c) => row.get(c.id) ?? null));
  const notes = [describePoint(opts.point), TRIAL_RULE, ...statNotes(opts, usedStats)];
  notes.push(...[...metricNotes].map(([short, label]) => `${short} = ${label}`));
  if (anyPartial) notes.push(partialNote());
  if (anyRandom) notes.push(RANDOM_PLAY_RULE);
  const title = `${sweeps.map((s) => s.name).join(" + ")} per task: ${STAT_TITLES[opts.stat]} over runs`;
  return { title, columns: ordered, rows, notes };
}

/**
 * The rows and columns of a pivot over a sweep's axes: each given list as given, the other
 * taking every remaining axis whose value is not the same for all cells. An axis left out of
 * both, or named twice, or not an axis of the sweep, is refused: a table cell must be one
 * grid cell, never a silent pool of several.
 */
export function pivotAxes(sweep: SweepRecord, rows: string[] | undefined, cols: string[] | undefined): { rows: string[]; cols: string[] } {
  const axes = cellAxes(sweep);
  const cells = cellsOf(sweep);
  const varied = axes.filter((a) => new Set(cells.map((c) => axisValue(c, a))).size > 1);
  for (const name of [...(rows ?? []), ...(cols ?? [])]) {
    if (!axes.includes(name)) throw new UserError(`--rows/--cols: '${name}' is not an axis of sweep '${sweep.name}' (its axes: ${axes.join(", ")})`);
  }
  const named = [...(rows ?? []), ...(cols ?? [])];
  const twice = named.find((a, i) => named.indexOf(a) !== i);
  if (twice !== undefined) throw new UserError(`--rows and --cols name '${twice}' twice: an axis is either rows or columns`);
  const rest = varied.filter((a) => !named.includes(a));
  const out = { rows: rows ?? rest, cols: cols ?? rest };
  const missing = varied.filter((a) => !out.rows.includes(a) && !out.cols.includes(a));
  if (missing.length) {
    throw new UserError(`--rows and --cols must place every axis sweep '${sweep.name}' varies; ${missing.join(", ")} ` +
      `${missing.length > 1 ? "are" : "is"} in neither (its varied axes: ${varied.join(", ")})`);
  }
  if (out.cols.length === 0) throw new UserError(`--cols: sweep '${sweep.name}' has no axis left for the columns (its varied axes: ${varied.join(", ")})`);
  return out;
}

/**
 * One sweep pivoted: a row per combination of the row axes, a column per headline metric
 * and combination of the column axes (rows num_bins, columns critic, for example). Every
 * table cell is one grid cell's statistic, as in the unpivoted table.
 */
export function pivotTable(sweep: SweepRecord, opts: TableOptions): TableModel {
  const { rows: rowAxes, cols: colAxes } = pivotAxes(sweep, opts.rows, opts.cols);
  const cells = cellsOf(sweep);
  const comboOf = (cell: Cell, axes: string[]) => axes.map((a) => axisValue(cell, a));
  const byValue = (a: string[], b: string[]) => a.reduce((d, v, i) => d || compareAxisValues(v, b[i]), 0);
  const unique = (axes: string[]) =>
    [...new Map(cells.map((c) => [JSON.stringify(comboOf(c, axes)), comboOf(c, axes)])).values()].sort(byValue);
  const rowCombos = unique(rowAxes);
  const colCombos = unique(colAxes);
  const colText = (combo: string[]) => colAxes.map((a, i) => (a === "actor" || a === "critic" ? `${a} ${combo[i]}` : `${a}=${combo[i]}`)).join(", ");
  const columns: Column[] = rowAxes.map((a) => ({ id: a, label: a, group: null, kind: "text" }));
  const metrics = headlineMetrics(sweep.runs);
  const usedStats = new Set<string>();
  let anyPartial = false;
  const values = new Map<string, TableValue>();
  for (const metric of metrics) {
    for (const spec of statsFor(opts.stat, metric)) {
      usedStats.add(spec.id);
      for (const combo of colCombos) {
        const id = `${metric.id}/${colAxes.map((a, i) => `${a}=${combo[i]}`).join(",")}/${spec.id}`;
        columns.push({ id, label: `${colText(combo)}${spec.id === "iqm" && opts.stat === "iqm" ? "" : ` ${spec.label}`}`, group: metric.short, kind: "estimate" });
        for (const cell of cells.filter((c) => JSON.stringify(comboOf(c, colAxes)) === JSON.stringify(combo))) {
          const { runs, tasks, matrix } = cellMatrix(cell, metric, opts.point);
          const partial = runs.length < cell.runs.length;
          anyPartial ||= partial;
          values.set(`${JSON.stringify(comboOf(cell, rowAxes))}|${id}`, tasks.length ? estimateOf(spec, matrix, opts, partial) : null);
        }
      }
    }
  }
  const rows = rowCombos.map((combo) => columns.map((c, i): TableValue =>
    (i < rowAxes.length ? combo[i] : values.get(`${JSON.stringify(combo)}|${c.id}`) ?? null)));
  const notes = [describePoint(opts.point), TRIAL_RULE, ...statNotes(opts, usedStats)];
  notes.push(...metrics.map((m) => `${m.short} = ${m.label}`));
  if (anyPartial) notes.push(partialNote());
  const title = `${sweep.name}: ${STAT_TITLES[opts.stat]}, rows ${rowAxes.join(" x ")}, columns ${colAxes.join(" x ")}`;
  return { title, columns, rows, notes };
}

export function buildTable(sweeps: SweepRecord[], opts: TableOptions): TableModel {
  if (opts.rows !== undefined || opts.cols !== undefined) {
    if (sweeps.length !== 1) throw new UserError(`--rows/--cols pivot one sweep, got ${sweeps.length}: name one`);
    return pivotTable(sweeps[0], opts);
  }
  return opts.perTask ? perTaskTable(sweeps, opts) : aggregateTable(sweeps, opts);
}
