// The result summary of a sweep: one row per grid cell, printed at the end of a sweep
// with no succeeded run and by `status`. Its values are the ones `amago2 table` prints
// (the IQM of each headline metric over the cell's runs x tasks, with "final" as
// report/model.ts defines it) minus the bootstrap intervals, so `status` stays instant.
// `collect` returns rows, `render` text.
import { collectSweeps } from "./collect.js";
import { cellMatrix, cellsOf, describePoint, headlineMetrics, TRIAL_RULE, type ScorePoint } from "./model.js";
import { iqm } from "./stats.js";
import type { Store } from "../store/db.js";
import { renderColumns } from "../ui/columns.js";

const FINAL: ScorePoint = { atSteps: null };

export interface MetricSummary {
  /** The table's metric id ("success", "score", "test/return", ...). */
  id: string;
  short: string;
  label: string;
  /** IQM over the counted runs x tasks of their final scores; null when no run counts yet. */
  iqm: number | null;
  /** Runs that count towards the final value (succeeded ones with an evaluation). */
  counted: number;
}

export interface CellSummary {
  /** "ind/dep", plus any other swept axis: "ind/dep lr=0.001". */
  label: string;
  actor: string;
  critic: string;
  runs: number;
  succeeded: number;
  failed: number;
  metrics: MetricSummary[];
}

export function collectSweepSummary(db: Store, sweep: string): CellSummary[] {
  const [record] = collectSweeps(db, [sweep]);
  const metrics = headlineMetrics(record.runs);
  return cellsOf(record).map((cell) => ({
    label: cell.label,
    actor: cell.actor,
    critic: cell.critic,
    runs: cell.runs.length,
    succeeded: cell.runs.filter((r) => r.status === "succeeded").length,
    failed: cell.runs.filter((r) => r.status === "failed" || r.status === "crashed").length,
    metrics: metrics.map((metric) => {
      const { runs, tasks, matrix } = cellMatrix(cell, metric, FINAL);
      return { id: metric.id, short: metric.short, label: metric.label, iqm: tasks.length ? iqm(matrix) : null, counted: runs.length };
    }),
  }));
}

const fmt = (x: number | null) => (x === null ? "-" : x.toFixed(3));

/** The cells, then the definitions the values follow (the same words `table` prints). */
export function renderCellSummaries(cells: CellSummary[]): string {
  const metrics = cells[0]?.metrics ?? [];
  const table = renderColumns(
    ["cell", "runs", "ok", "failed", ...metrics.map((m) => `${m.short} IQM`)],
    cells.map((c) => [c.label, String(c.runs), String(c.succeeded), String(c.failed), ...c.metrics.map((m) => fmt(m.iqm))]),
  );
  if (metrics.length === 0) return table;
  const notes = [
    "IQM = interquartile mean of all run x task scores, as `amago2 table` prints it (which adds 95% intervals)",
    describePoint(FINAL),
    TRIAL_RULE,
    ...metrics.map((m) => `${m.short} = ${m.label}`),
  ];
  return [table, ...notes.map((n) => `- ${n}`)].join("\n");
}
