// Learning curves: at every evaluation step, the IQM over runs x tasks of one metric with a
// stratified-bootstrap band, one curve per cell; and per-task panels (mean over runs).

import { bootstrapInterval, iqmStat, meanStat, performanceProfile, toBlock, type Statistic } from "./stats.js";
import {
  cellMatrix, cellsOf, RANDOM_PLAY, randomPlayMatrix, type Cell, type Metric, type RunRecord, type RunTaskMatrix, type ScorePoint,
  type SweepRecord,
} from "./model.js";

/** Curves take fewer repetitions than tables: one interval per point, and a band is a picture. */
export const DEFAULT_CURVE_REPS = 2_000;

export interface CurvePoint {
  /** The x value: env steps for learning curves, the threshold tau for profiles. */
  step: number;
  value: number;
  lo: number;
  hi: number;
  /** Runs that evaluated at this step. */
  runs: number;
}

export interface Curve {
  label: string;
  points: CurvePoint[];
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  curves: Curve[];
}

export interface CurveOptions {
  reps: number;
  seed: number;
}

/** Each run's value of `metric` per task at each evaluation step of the metric's split. */
function runSeries(run: RunRecord, metric: Metric): Map<number, Map<string, number>> {
  const series = new Map<number, Map<string, number>>();
  for (const e of run.evals) {
    if (e.split !== metric.split) continue;
    const scores = new Map<string, number>();
    for (const [task, result] of e.tasks) {
      const value = metric.of(result);
      if (value !== null) scores.set(task, value);
    }
    // Two evaluations at one step (a resumed run re-evaluating) keep the later one.
    if (scores.size) series.set(e.step, scores);
  }
  return series;
}

/**
 * One point per evaluation step that any run of the cell reached, over the runs evaluated
 * at exactly that step and the tasks they all have. Running runs are included: a curve
 * shows progress, and each point says how many runs it holds.
 */
function cellCurve(cell: Cell, metric: Metric, stat: Statistic, opts: CurveOptions,
  onlyTask: string | null): Curve {
  const perRun = cell.runs.map((r) => runSeries(r, metric));
  const steps = [...new Set(perRun.flatMap((s) => [...s.keys()]))].sort((a, b) => a - b);
  const points: CurvePoint[] = [];
  for (const step of steps) {
    const present = perRun.map((s) => s.get(step)).filter((m): m is Map<string, number> => m !== undefined);
    const tasks = (onlyTask !== null ? [onlyTask] : [...present[0].keys()])
      .filter((t) => present.every((m) => m.has(t)));
    if (tasks.length === 0) continue;
    const matrix = present.map((m) => tasks.map((t) => m.get(t) as number));
    const { block, runs, tasks: nTasks } = toBlock(matrix);
    const ci = bootstrapInterval(stat, matrix, opts.reps, opts.seed);
    points.push({ step, value: stat(block, runs, nTasks), lo: ci.lo, hi: ci.hi, runs });
  }
  return { label: cell.label, points };
}

/**
 * Random play (model.ts, RANDOM_PLAY_RULE) as a level line across the cells' steps, with its
 * bootstrap band; null when no run measured it or no cell has a point.
 */
function randomPlayCurve(random: RunTaskMatrix, stat: Statistic, opts: CurveOptions, onlyTask: string | null,
  cells: Curve[]): Curve | null {
  const t = onlyTask === null ? -1 : random.tasks.indexOf(onlyTask);
  const steps = cells.flatMap((c) => c.points.map((p) => p.step));
  if (random.tasks.length === 0 || (onlyTask !== null && t < 0) || steps.length === 0) return null;
  const matrix = t < 0 ? random.matrix : random.matrix.map((row) => [row[t]]);
  const { block, runs, tasks } = toBlock(matrix);
  const ci = bootstrapInterval(stat, matrix, opts.reps, opts.seed);
  const level = { value: stat(block, runs, tasks), lo: ci.lo, hi: ci.hi, runs };
  return { label: RANDOM_PLAY, points: [{ step: Math.min(...steps), ...level }, { step: Math.max(...steps), ...level }] };
}

/** The cells' curves of a panel, then random play's level (`random`: its matrix) where the runs measured it. */
function withRandomPlay(cells: Cell[], metric: Metric, random: RunTaskMatrix, stat: Statistic, opts: CurveOptions,
  onlyTask: string | null): Curve[] {
  const curves = cells.map((cell) => cellCurve(cell, metric, stat, opts, onlyTask));
  const level = randomPlayCurve(random, stat, opts, onlyTask, curves);
  return level ? [...curves, level] : curves;
}

/** The aggregate panel of a sweep: IQM over runs x tasks per cell. */
export function aggregatePanel(sweep: SweepRecord, metric: Metric, opts: CurveOptions): Panel {
  return {
    title: `${sweep.name}: ${metric.short}`,
    xLabel: "environment steps",
    yLabel: `IQM ${metric.short}`,
    curves: withRandomPlay(cellsOf(sweep), metric, randomPlayMatrix(sweep.runs, metric), iqmStat, opts, null),
  };
}

/** One small panel per task: mean over runs per cell, with its bootstrap band. */
export function perTaskPanels(sweep: SweepRecord, metric: Metric, opts: CurveOptions): Panel[] {
  const tasks = [...new Set(sweep.runs.flatMap((r) => r.evals
    .filter((e) => e.split === metric.split).flatMap((e) => [...e.tasks.keys()])))].sort();
  const cells = cellsOf(sweep);
  const random = randomPlayMatrix(sweep.runs, metric);
  return tasks.map((task) => ({
    title: task,
    xLabel: "environment steps",
    yLabel: `mean ${metric.short}`,
    curves: withRandomPlay(cells, metric, random, meanStat, opts, task),
  }));
}

/** Thresholds a performance profile is drawn at. */
const PROFILE_POINTS = 41;

/**
 * Performance profile of each cell at `point` (final scores by default): the fraction of
 * run x task scores strictly above tau, over tau spanning every cell's scores, with a
 * stratified-bootstrap band.
 */
export function profilePanel(sweep: SweepRecord, metric: Metric, point: ScorePoint, opts: CurveOptions): Panel {
  const cells = cellsOf(sweep).map((cell) => ({ cell, ...cellMatrix(cell, metric, point) }))
    .filter((c) => c.tasks.length > 0);
  const all = cells.flatMap((c) => c.matrix.flat()).filter(Number.isFinite);
  const lo = metric.normalised ? Math.min(0, ...all) : Math.min(...all);
  const hi = metric.normalised ? Math.max(1, ...all) : Math.max(...all);
  const taus = all.length ? Array.from({ length: PROFILE_POINTS }, (_, i) => lo + ((hi - lo) * i) / (PROFILE_POINTS - 1)) : [];
  return {
    title: `${sweep.name}: ${metric.short} profile`,
    xLabel: `${metric.short} threshold tau`,
    yLabel: `fraction of runs x tasks > tau`,
    curves: cells.map(({ cell, runs, matrix }) => ({
      label: cell.label,
      points: taus.map((tau, i) => {
        const above: Statistic = (block) => block.reduce((n, v) => n + (v > tau ? 1 : 0), 0) / block.length;
        const ci = bootstrapInterval(above, matrix, opts.reps, opts.seed);
        return { step: taus[i], value: performanceProfile(matrix, [tau])[0], lo: ci.lo, hi: ci.hi, runs: runs.length };
      }),
    })),
  };
}

// ---------------------------------------------------------------- the learner's per-task measurements

/** The per-task quantities drawn, with how each is shown (python/amago2/task_metrics.py defines them). */
export const TASK_QUANTITIES: Record<string, { title: string; yLabel: string; show: (v: number) => number }> = {
  critic_grad_share: { title: "each task's share of the critic's gradient", yLabel: "share of the gradient", show: (v) => v },
  actor_grad_share: { title: "each task's share of the actor's gradient", yLabel: "share of the gradient", show: (v) => v },
  step_share: { title: "each task's share of the batch's steps", yLabel: "share of the steps", show: (v) => v },
  filter_pass: { title: "the Ind actor's filter pass rate per task", yLabel: "fraction of A > 0", show: (v) => v },
  value_scale: { title: "the value scale per task", yLabel: "log10 mean |Q(h, a)|", show: (v) => Math.log10(Math.max(v, 1e-12)) },
};

/**
 * One panel per cell that measured `quantity`, one curve per task: at each logged step the
 * mean over the cell's runs, the band their minimum and maximum.
 */
export function taskQuantityPanels(sweep: SweepRecord, quantity: string): Panel[] {
  const shown = TASK_QUANTITIES[quantity];
  const panels: Panel[] = [];
  for (const cell of cellsOf(sweep)) {
    const byTask = new Map<string, Map<number, number[]>>();
    for (const run of cell.runs) {
      for (const p of run.taskMetrics) {
        if (p.quantity !== quantity) continue;
        const steps = byTask.get(p.task) ?? new Map<number, number[]>();
        byTask.set(p.task, steps);
        steps.set(p.step, [...(steps.get(p.step) ?? []), shown.show(p.value)]);
      }
    }
    if (byTask.size === 0) continue;
    const curves: Curve[] = [...byTask.keys()].sort().map((task) => ({
      label: task,
      points: [...byTask.get(task)!.entries()].sort(([a], [b]) => a - b).map(([step, values]) => ({
        step, value: values.reduce((s, v) => s + v, 0) / values.length, lo: Math.min(...values), hi: Math.max(...values), runs: values.length,
      })),
    }));
    panels.push({ title: `${cell.label}: ${shown.title}`, xLabel: "env steps", yLabel: shown.yLabel, curves });
  }
  return panels;
}
