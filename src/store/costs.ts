// The dry run's cost model: what finished runs of a cell took, read from their events.
import type { Store } from "./db.js";

/** Wall time per env step of one cell (actor x critic x values of the asked-for axes), over its succeeded runs. */
export interface CellCost {
  actor: string;
  critic: string;
  /** The runs' values of the axis keys asked for (absent: the run did not set it). */
  settings: Record<string, unknown>;
  /** Succeeded runs of the cell the figure comes from. */
  runs: number;
  /** Median over those runs of (seconds their attempts ran) / (env steps they took). */
  secondsPerStep: number;
}

/**
 * The measured cost of every cell of `benchmark` at `scale` that has succeeded in this
 * store, a cell being an actor, a critic and the values of `axisKeys` in the runs'
 * overrides (a model size changes what a step costs; no axis keys: actor x critic). A
 * run's time is that of its attempts, each from its 'started' event to its last
 * event, so the time between a crash and a resume is not counted; the update-to-data
 * ratio is the scale's, so seconds per env step covers acting, updates, evaluations and
 * checkpoints alike. The figure is as the runs ran: alone or beside others. The attempts
 * are summed inside SQLite: a long run has hundreds of thousands of events.
 */
export function measuredCellCosts(db: Store, benchmark: string, scale: string, axisKeys: readonly string[] = []): CellCost[] {
  const runs = db.prepare(
    `WITH numbered AS (
       SELECT e.run_key, e.t, e.step,
              SUM(e.type = 'started') OVER (PARTITION BY e.run_key ORDER BY e.seq) AS attempt
         FROM events e JOIN runs r ON r.key = e.run_key
        WHERE r.benchmark = ? AND r.scale = ? AND r.status = 'succeeded'),
     attempts AS (
       SELECT run_key, MAX(t) - MIN(t) AS seconds, MAX(step) - MIN(step) AS steps
         FROM numbered WHERE attempt > 0 GROUP BY run_key, attempt)
     SELECT r.actor, r.critic, r.request, SUM(a.seconds) AS seconds, SUM(a.steps) AS steps
       FROM attempts a JOIN runs r ON r.key = a.run_key
      GROUP BY a.run_key HAVING SUM(a.steps) > 0`,
  ).all(benchmark, scale) as { actor: string; critic: string; request: string; seconds: number; steps: number }[];
  const byCell = new Map<string, { actor: string; critic: string; settings: Record<string, unknown>; rates: number[] }>();
  for (const run of runs) {
    const overrides = (JSON.parse(run.request) as { overrides?: Record<string, unknown> }).overrides ?? {};
    const settings = Object.fromEntries(axisKeys.filter((k) => k in overrides).map((k) => [k, overrides[k]]));
    const cell = JSON.stringify([run.actor, run.critic, axisKeys.map((k) => settings[k] ?? null)]);
    const entry = byCell.get(cell) ?? { actor: run.actor, critic: run.critic, settings, rates: [] };
    entry.rates.push(run.seconds / run.steps);
    byCell.set(cell, entry);
  }
  return [...byCell].sort(([a], [b]) => a.localeCompare(b)).map(([, c]) =>
    ({ actor: c.actor, critic: c.critic, settings: c.settings, runs: c.rates.length, secondsPerStep: median(c.rates) }));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
