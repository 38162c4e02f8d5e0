// What a report says about a sweep besides its results, as plain text, for the HTML and the
// Markdown renderers alike: the plan and one row per run.

import type { RunRecord, SweepRecord } from "./model.js";

/** The plan as [label, value] pairs: where the sweep came from and what it varies. */
export function planRows(sweep: SweepRecord): [string, string][] {
  const uniq = (xs: (string | number)[]): string => [...new Set(xs)].sort().join(", ");
  const counts = new Map<string, number>();
  for (const run of sweep.runs) counts.set(run.status, (counts.get(run.status) ?? 0) + 1);
  return [
    ["benchmark", sweep.benchmark],
    ["scale", sweep.scale],
    ["sweep file", sweep.source],
    ["command", sweep.command],
    ["planned", new Date(sweep.createdAt * 1000).toISOString()],
    ["actor", uniq(sweep.runs.map((r) => r.actor))],
    ["critic", uniq(sweep.runs.map((r) => r.critic))],
    ["seeds", uniq(sweep.runs.map((r) => r.seed))],
    ...sweep.axes.map((a): [string, string] => [a, uniq(sweep.runs.map((r) => r.axes[a] ?? ""))]),
    ["runs", `${sweep.runs.length}: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}`],
  ];
}

/** The runs table's header, before its last column (the run key with its config). */
export function runHeader(sweep: SweepRecord): string[] {
  return ["actor", "critic", ...sweep.axes, "seed", "status", "env steps", "attempts", "device", "error"];
}

/** One run under runHeader. */
export function runCells(run: RunRecord, axes: string[]): string[] {
  const progress = run.totalSteps ? `${run.step} / ${run.totalSteps}` : String(run.step);
  return [run.actor, run.critic, ...axes.map((a) => run.axes[a] ?? ""), String(run.seed), run.status, progress,
    String(run.attempts), run.device ?? "", run.error ?? ""];
}
