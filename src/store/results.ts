// What runs measured, as the store holds it: evaluation rows and metric series, read for
// the reports. Read-only queries; the orchestrator may be writing at the same time (WAL).
import type { Store } from "./db.js";
import type { EvalPolicy } from "./events.js";

/** One task's one episode of one evaluation (table evals). */
export interface EvalRow {
  seq: number;
  step: number;
  split: "train" | "test";
  policy: EvalPolicy;
  task: string;
  episode: number;
  trials: number;
  return: number | null;
  return_nonfinite: "nan" | "inf" | "-inf" | null;
  success: number | null;
  score: number | null;
}

/** A run's evaluation rows in the order they were recorded: by event, split, task, episode. */
export function evalRowsOf(db: Store, key: string): EvalRow[] {
  return db.prepare(`SELECT seq, step, split, policy, task, episode, trials, return, return_nonfinite, success, score
    FROM evals WHERE run_key = ? ORDER BY seq, split, task, episode`).all(key) as EvalRow[];
}

/** A run's finite metric values whose names start with `prefix`, by step and name. */
export function metricRowsOf(db: Store, key: string, prefix: string): { step: number; name: string; value: number }[] {
  return db.prepare(`SELECT step, name, value FROM metrics
    WHERE run_key = ? AND substr(name, 1, length(?)) = ? AND value IS NOT NULL ORDER BY step, name`)
    .all(key, prefix, prefix) as { step: number; name: string; value: number }[];
}
