// The result summary of a sweep: one row per (actor, critic) cell over its seeds. Printed
// at the end of `sweep`/`ablate` and by `status`. `collect` returns rows, `render` text.
import type { Store } from "../store/db.js";
import { finalEval, runsOfSweep, type RunRow } from "../store/runs.js";

export interface CellSummary {
  actor: string;
  critic: string;
  runs: number;
  succeeded: number;
  failed: number;
  /** Mean over runs with an eval of the final train-eval return (last inner episode, mean over tasks). */
  finalReturn: number | null;
  finalReturnStd: number | null;
  finalSuccess: number | null;
  evaluated: number;
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

function std(xs: number[]): number | null {
  const m = mean(xs);
  if (m === null || xs.length < 2) return null;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function collectCellSummaries(db: Store, runs: RunRow[]): CellSummary[] {
  const cells = new Map<string, RunRow[]>();
  for (const r of runs) {
    const id = `${r.actor}/${r.critic}`;
    cells.set(id, [...(cells.get(id) ?? []), r]);
  }
  return [...cells.values()].map((group) => {
    const evals = group.map((r) => finalEval(db, r.key)).filter((e) => e !== undefined);
    const returns = evals.map((e) => e.return).filter((x): x is number => x !== null);
    const successes = evals.map((e) => e.success).filter((x): x is number => x !== null);
    return {
      actor: group[0].actor,
      critic: group[0].critic,
      runs: group.length,
      succeeded: group.filter((r) => r.status === "succeeded").length,
      failed: group.filter((r) => r.status === "failed" || r.status === "crashed").length,
      finalReturn: mean(returns),
      finalReturnStd: std(returns),
      finalSuccess: mean(successes),
      evaluated: evals.length,
    };
  }).sort((a, b) => `${a.actor}${a.critic}`.localeCompare(`${b.actor}${b.critic}`));
}

export function collectSweepSummary(db: Store, sweep: string): CellSummary[] {
  return collectCellSummaries(db, runsOfSweep(db, sweep));
}

/** Columns padded to their widest cell; plain text (no colour) so it pipes cleanly. */
export function renderColumns(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const fmt = (x: number | null, digits = 2) => (x === null ? "-" : x.toFixed(digits));

export function renderCellSummaries(cells: CellSummary[]): string {
  return renderColumns(
    ["actor", "critic", "runs", "ok", "failed", "final return", "success"],
    cells.map((c) => [
      c.actor, c.critic, String(c.runs), String(c.succeeded), String(c.failed),
      c.finalReturn === null ? "-" : `${fmt(c.finalReturn)}${c.finalReturnStd === null ? "" : ` ± ${fmt(c.finalReturnStd)}`}`,
      fmt(c.finalSuccess),
    ]),
  );
}
