// The dry run's cost model: what finished runs of a cell took, read from their events.
import type { Store } from "./db.js";

/** Wall time per env step of one actor x critic cell, over its succeeded runs. */
export interface CellCost {
  actor: string;
  critic: string;
  /** Succeeded runs of the cell the figure comes from. */
  runs: number;
  /** Median over those runs of (seconds their attempts ran) / (env steps they took). */
  secondsPerStep: number;
}

interface TimedEvent {
  run_key: string;
  actor: string;
  critic: string;
  type: string;
  t: number;
  step: number;
}

/**
 * The measured cost of every cell of `benchmark` at `scale` that has succeeded in this
 * store. A run's time is that of its attempts, each from its 'started' event to its last
 * event, so the time between a crash and a resume is not counted; the update-to-data
 * ratio is the scale's, so seconds per env step covers acting, updates, evaluations and
 * checkpoints alike. The figure is as the runs ran: alone or beside others.
 */
export function measuredCellCosts(db: Store, benchmark: string, scale: string): CellCost[] {
  const events = db.prepare(
    `SELECT e.run_key, r.actor, r.critic, e.type, e.t, e.step
       FROM events e JOIN runs r ON r.key = e.run_key
      WHERE r.benchmark = ? AND r.scale = ? AND r.status = 'succeeded'
      ORDER BY e.run_key, e.seq`,
  ).all(benchmark, scale) as TimedEvent[];
  const perRun = new Map<string, { actor: string; critic: string; seconds: number; steps: number }>();
  let attempt: { start: TimedEvent; last: TimedEvent } | null = null;
  const close = () => {
    if (attempt === null) return;
    const run = perRun.get(attempt.start.run_key)!;
    run.seconds += attempt.last.t - attempt.start.t;
    run.steps += attempt.last.step - attempt.start.step;
    attempt = null;
  };
  for (const e of events) {
    if (attempt !== null && (e.run_key !== attempt.start.run_key || e.type === "started")) close();
    if (!perRun.has(e.run_key)) perRun.set(e.run_key, { actor: e.actor, critic: e.critic, seconds: 0, steps: 0 });
    if (e.type === "started") attempt = { start: e, last: e };
    else if (attempt !== null) attempt.last = e;
  }
  close();
  const byCell = new Map<string, number[]>();
  for (const run of perRun.values()) {
    if (run.steps <= 0) continue;
    const cell = `${run.actor}/${run.critic}`;
    byCell.set(cell, [...(byCell.get(cell) ?? []), run.seconds / run.steps]);
  }
  return [...byCell].sort(([a], [b]) => a.localeCompare(b)).map(([cell, rates]) => {
    const [actor, critic] = cell.split("/");
    return { actor, critic, runs: rates.length, secondsPerStep: median(rates) };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
