// What the reports are made of: sweeps, their runs and each run's evaluations as read
// from the store, the benchmark's headline metrics, and the precise rule that turns a
// run's evaluations into one score per task ("final", or "at N env steps").

import type { RunOverview } from "../store/runs.js";

/** One task's result in one evaluation: a value per inner episode of the trial. */
export interface TaskEval {
  trials: number;
  returns: number[];
  success: number[] | null;
  score: number[] | null;
}

export type Split = "train" | "test";

export interface EvalRecord {
  seq: number;
  step: number;
  split: Split;
  tasks: Map<string, TaskEval>;
}

/**
 * One per-task measurement of the learner (python/amago2/task_metrics.py), from a metrics
 * event's "task/<task>/<quantity>" entry: each task's share of the gradient, its losses,
 * value scale and filter pass rate, averaged over the updates since the previous event.
 */
export interface TaskMetricPoint {
  step: number;
  task: string;
  quantity: string;
  value: number;
}

export interface RunRecord extends RunOverview {
  command: string;
  /** Swept settings besides actor, critic and seed (e.g. `lr`), as display strings. */
  axes: Record<string, string>;
  request: unknown;
  config: unknown;
  versions: unknown;
  error: string | null;
  /** The trained agent's evaluations, the untrained one's at step 0 first where the run has it. */
  evals: EvalRecord[];
  /** Uniform random play's evaluations (one per split, at step 0); empty for runs started before amago2 measured it. */
  randomPlay: EvalRecord[];
  taskMetrics: TaskMetricPoint[];
}

export interface SweepRecord {
  name: string;
  benchmark: string;
  scale: string;
  source: string;
  command: string;
  createdAt: number;
  /** Names of the swept axes besides actor, critic and seed, in display order. */
  axes: string[];
  runs: RunRecord[];
}

// ---------------------------------------------------------------- metrics

export interface Metric {
  id: string;
  /** Column header. */
  short: string;
  /** What the value is, for the notes under a table. */
  label: string;
  split: Split;
  /** Normalised so that 1 is the target (success, human-normalised score): the optimality gap applies. */
  normalised: boolean;
  of(task: TaskEval): number | null;
}

const average = (xs: number[]): number => xs.reduce((s, v) => s + v, 0) / xs.length;
const last = (xs: number[] | null): number | null => (xs && xs.length ? xs[xs.length - 1] : null);

/**
 * How a trial's k inner episodes become one value. Meta-RL reports the adapted
 * performance, so return and score are the last episode's: the earlier ones are the
 * agent's attempts at learning the task (and POPGym's first episode is practice that
 * pays 0). Success is the exception the paper reports both ways.
 */
export const TRIAL_RULE = "a trial's return and score are its last inner episode's (the performance after adapting to " +
  "the task in the earlier episodes; POPGym's first episode is practice and pays 0); success is given both averaged " +
  "over the trial's episodes and on its last episode";

const METRIC_KINDS = {
  success: { short: "success", label: "success rate averaged over the trial's episodes", normalised: true,
    of: (t: TaskEval) => (t.success && t.success.length ? average(t.success) : null) },
  success_last: { short: "success (last ep.)", label: "success rate on the trial's last episode", normalised: true,
    of: (t: TaskEval) => last(t.success) },
  score: { short: "score", label: "normalised score of the trial's last episode, the benchmark's per-task scale: " +
    "(R - lowest) / (highest - lowest) over the task's return range (gym-mini's documented bounds, Procgen's easy-mode " +
    "R_min and R_max, a user task's return_range), Atari human-normalised, BabyAI and POPGym their returns, which " +
    "lie in [0, 1] and [-1, 1]", normalised: true,
    of: (t: TaskEval) => last(t.score) },
  return: { short: "return", label: "return of the trial's last episode", normalised: false,
    of: (t: TaskEval) => last(t.returns) },
} as const;

type MetricKind = keyof typeof METRIC_KINDS;

function metric(kind: MetricKind, split: Split): Metric {
  const spec = METRIC_KINDS[kind];
  return {
    id: split === "train" ? kind : `test/${kind}`,
    short: split === "train" ? spec.short : `${spec.short} (held-out)`,
    label: split === "train" ? spec.label : `${spec.label}, on held-out tasks`,
    split,
    normalised: spec.normalised,
    of: spec.of,
  };
}

/**
 * The benchmark's headline columns, read off its evaluations: the normalised score where
 * the tasks have one (every built-in benchmark but Meta-World, and user tasks with a
 * return_range), then success (averaged over the trial, and on its last episode) where the
 * env reports it, then the raw return only where there is no score, since raw returns of
 * tasks on different scales do not aggregate (per task, `--per-task` shows them).
 * Train-split columns first, then held-out ones.
 */
export function headlineMetrics(runs: RunRecord[]): Metric[] {
  const out: Metric[] = [];
  for (const split of ["train", "test"] as const) {
    const evals = runs.flatMap((r) => r.evals.filter((e) => e.split === split));
    if (evals.length === 0) continue;
    const tasks = evals.flatMap((e) => [...e.tasks.values()]);
    const scored = tasks.some((t) => t.score !== null);
    if (scored) out.push(metric("score", split));
    if (tasks.some((t) => t.success !== null)) out.push(metric("success", split), metric("success_last", split));
    if (!scored) out.push(metric("return", split));
  }
  return out;
}

// ---------------------------------------------------------------- "final" and "at N steps"

/** How many of a run's latest evaluations the final score averages. */
export const FINAL_EVALS = 3;

/** Which evaluations make a run's score: the final ones, or the latest ones up to N env steps. */
export interface ScorePoint {
  atSteps: number | null;
}

export function describePoint(point: ScorePoint): string {
  const which = point.atSteps === null
    ? `a run's final score on a task is the mean of its last ${FINAL_EVALS} evaluations`
    : `a run's score on a task at ${point.atSteps} env steps is the mean of its last ${FINAL_EVALS} evaluations at or before that step`;
  const who = point.atSteps === null
    ? "only succeeded runs count"
    : `only runs that reached ${point.atSteps} steps count, running ones included`;
  return `${which} (fewer if it has fewer) after training began, each evaluation averaging its trials; ${who}`;
}

/** Whether a run contributes to a table at `point` (see describePoint). */
function runCounts(run: RunRecord, point: ScorePoint): boolean {
  if (point.atSteps === null) return run.status === "succeeded";
  return run.step >= point.atSteps;
}

/** A run's score per task for one metric at `point`; tasks the metric does not cover are absent. */
function runTaskScores(run: RunRecord, metric: Metric, point: ScorePoint): Map<string, number> {
  const evals = run.evals
    // Step 0's evaluation, before any update, is where a curve starts, not a result.
    .filter((e) => e.split === metric.split && e.step > 0 && (point.atSteps === null || e.step <= point.atSteps))
    .sort((a, b) => a.step - b.step || a.seq - b.seq)
    .slice(-FINAL_EVALS);
  const sums = new Map<string, { sum: number; n: number }>();
  for (const e of evals) {
    for (const [task, result] of e.tasks) {
      const value = metric.of(result);
      if (value === null) continue;
      const acc = sums.get(task) ?? { sum: 0, n: 0 };
      acc.sum += value;
      acc.n += 1;
      sums.set(task, acc);
    }
  }
  return new Map([...sums].map(([task, { sum, n }]) => [task, sum / n]));
}

/** A run's random-play score per task for one metric: its latest random-play evaluation of the metric's split. */
function randomPlayScores(run: RunRecord, metric: Metric): Map<string, number> {
  const latest = run.randomPlay.filter((e) => e.split === metric.split).at(-1);
  const scores = new Map<string, number>();
  for (const [task, result] of latest?.tasks ?? []) {
    const value = metric.of(result);
    if (value !== null) scores.set(task, value);
  }
  return scores;
}

// ---------------------------------------------------------------- cells

/** The runs of one grid cell (every seed of one actor/critic/axes setting). */
export interface Cell {
  /** "ind/dep", plus other axes: "ind/dep lr=0.001". */
  label: string;
  actor: string;
  critic: string;
  axes: Record<string, string>;
  runs: RunRecord[];
}

function cellLabel(actor: string, critic: string, axes: Record<string, string>): string {
  const extra = Object.entries(axes).map(([k, v]) => `${k}=${v}`);
  return [`${actor}/${critic}`, ...extra].join(" ");
}

/** Two axis values in the order a person expects: as numbers when both are (16 before 128), else as text. */
export function compareAxisValues(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  return a !== "" && b !== "" && Number.isFinite(x) && Number.isFinite(y) ? x - y : a.localeCompare(b);
}

function compareCells(a: Cell, b: Cell): number {
  const keys = ["actor", "critic", ...Object.keys(a.axes)];
  return keys.reduce((d, k) => d || compareAxisValues(axisValue(a, k), axisValue(b, k)), 0) || a.label.localeCompare(b.label);
}

/** Groups a sweep's runs into cells, ordered actor, critic, then the other axes. */
export function cellsOf(sweep: SweepRecord): Cell[] {
  const byLabel = new Map<string, Cell>();
  for (const run of sweep.runs) {
    const axes = Object.fromEntries(sweep.axes.map((a) => [a, run.axes[a] ?? ""]));
    const label = cellLabel(run.actor, run.critic, axes);
    const cell = byLabel.get(label) ?? { label, actor: run.actor, critic: run.critic, axes, runs: [] };
    cell.runs.push(run);
    byLabel.set(label, cell);
  }
  return [...byLabel.values()].sort(compareCells);
}

/** A cell's value of an axis: actor, critic, or one of the sweep's other axes. */
export function axisValue(cell: Cell, axis: string): string {
  if (axis === "actor") return cell.actor;
  if (axis === "critic") return cell.critic;
  return cell.axes[axis] ?? "";
}

/** The axes a sweep's cells can be told apart by: actor, critic, then its other swept settings. */
export function cellAxes(sweep: SweepRecord): string[] {
  return ["actor", "critic", ...sweep.axes];
}

/**
 * The runs x tasks score matrix of a cell at `point`, over the tasks every counted run
 * has a score for. `runs` are the counted ones; `matrix` is empty when none counts.
 */
export function cellMatrix(cell: Cell, metric: Metric, point: ScorePoint): RunTaskMatrix {
  return runTaskMatrix(cell.runs.filter((r) => runCounts(r, point)).map((run) => ({ run, scores: runTaskScores(run, metric, point) })));
}

/** The label of random play's row in tables and its line in plots. */
export const RANDOM_PLAY = "random play";

export const RANDOM_PLAY_RULE = `${RANDOM_PLAY} = uniform random actions over the benchmark's shared action space ` +
  "(a discrete draw a task lacks becomes a random valid one), evaluated like the agent at step 0 of every run with " +
  "the run's seeds; its row or column takes one measurement per seed of the sweep (runs of one seed draw the same " +
  "random actions, whatever their cell, so they are one sample, not several)";

/** Random play's seeds x tasks matrix of a metric: the first run of each seed that measured it (see RANDOM_PLAY_RULE). */
export function randomPlayMatrix(runs: RunRecord[], metric: Metric): RunTaskMatrix {
  const bySeed = new Map<number, { run: RunRecord; scores: Map<string, number> }>();
  for (const run of runs) {
    const scores = randomPlayScores(run, metric);
    if (scores.size > 0 && !bySeed.has(run.seed)) bySeed.set(run.seed, { run, scores });
  }
  return runTaskMatrix([...bySeed.values()]);
}

export interface RunTaskMatrix {
  runs: RunRecord[];
  tasks: string[];
  matrix: number[][];
}

/** Runs x tasks over the tasks every run with any score has; runs without one are left out. */
function runTaskMatrix(all: { run: RunRecord; scores: Map<string, number> }[]): RunTaskMatrix {
  const scored = all.filter((s) => s.scores.size > 0);
  if (scored.length === 0) return { runs: [], tasks: [], matrix: [] };
  const tasks = [...scored[0].scores.keys()].filter((t) => scored.every((s) => s.scores.has(t))).sort();
  return {
    runs: scored.map((s) => s.run),
    tasks,
    matrix: scored.map((s) => tasks.map((t) => s.scores.get(t) as number)),
  };
}
