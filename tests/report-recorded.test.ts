// The table, plot and report commands on journals recorded from a real tiny 2x2 sweep
// (tests/fixtures/report, see record.mjs there), ingested through the store's own ingest.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parsePlotOptions, runPlot } from "../src/commands/plot.js";
import { parseReportOptions, runReport } from "../src/commands/report.js";
import { parseTableOptions, runTable } from "../src/commands/table.js";
import type { Estimate } from "../src/report/table.js";
import { iqm } from "../src/report/stats.js";
import { collectStatus } from "../src/commands/status.js";
import type { CellSummary } from "../src/report/summary.js";
import { capture, tempDir } from "./helpers.js";
import { buildStore, recordedSweep, type FixtureSweep } from "./report-fixture.js";

const recorded = recordedSweep();
const NAME = recorded.sweep.name;
const CELLS = ["dep/dep", "dep/ind", "ind/dep", "ind/ind"];

async function table(fixture: FixtureSweep, args: Record<string, string | boolean>): Promise<string> {
  const { dir, cleanup } = tempDir("amago2-report-rec-");
  try {
    buildStore(dir, [fixture]);
    const { result, stdout } = await capture(() => runTable(parseTableOptions([NAME], { reps: "1000", ...args }, { AMAGO2_HOME: dir })));
    assert.equal(result, 0);
    return stdout;
  } finally {
    cleanup();
  }
}

type JsonTable = { columns: { id: string; kind: string }[]; rows: Record<string, unknown>[]; notes: string[] };

test("table: the 2x2 ablation with an interval in every metric column, in all four formats", async () => {
  const json = JSON.parse(await table(recorded, { format: "json", vs: "dep/dep" })) as JsonTable;
  assert.deepEqual(json.rows.map((r) => `${r.actor}/${r.critic}`), CELLS);
  const metricIds = json.columns.filter((c) => c.kind === "estimate" && !c.id.includes("poi_vs")).map((c) => c.id);
  assert.ok(metricIds.length >= 1);
  for (const row of json.rows) {
    assert.match(String(row.seeds), /^2\/2$/);
    for (const id of metricIds) {
      const e = row[id] as Estimate;
      assert.ok(Number.isFinite(e.value) && (e.lo as number) <= e.value && e.value <= (e.hi as number), `${id}: ${JSON.stringify(e)}`);
    }
  }

  const md = await table(recorded, {});
  const mdRows = md.split("\n").filter((l) => /^\| (dep|ind) \| (dep|ind) \|/.test(l));
  assert.equal(mdRows.length, 4);
  for (const line of mdRows) assert.equal((line.match(/-?[\d.]+ \[-?[\d.]+, -?[\d.]+\]/g) ?? []).length, metricIds.length, line);
  assert.match(md, /mean of its last 3 evaluations/);

  const csv = (await table(recorded, { format: "csv" })).trim().split("\n").map((l) => l.split(","));
  const header = csv[0];
  const plain = JSON.parse(await table(recorded, { format: "json" })) as JsonTable;
  plain.rows.forEach((row, i) => {
    for (const id of metricIds) {
      const e = row[id] as Estimate;
      assert.deepEqual([header.indexOf(id), header.indexOf(`${id}_lo`), header.indexOf(`${id}_hi`)].map((c) => Number(csv[i + 1][c])),
        [e.value, e.lo, e.hi]);
    }
  });

  const tex = await table(recorded, { format: "latex" });
  assert.equal((tex.match(/\\begin\{tabular\}/g) ?? []).length, (tex.match(/\\end\{tabular\}/g) ?? []).length);
  assert.match(tex, /\\toprule[\s\S]*\\midrule[\s\S]*\\bottomrule/);
});

type RecordedEval = { type: string; step: number; split: string; tasks: Record<string, { return: number[]; success: number[] }> };

/** Per cell, the run x task matrix of a per-trial value, by the table's final rule worked out by hand. */
function finalMatrices(pick: (t: { return: number[]; success: number[] }) => number): Map<string, number[][]> {
  const cells = new Map<string, number[][]>();
  for (const run of recorded.runs) {
    const evals = run.events.map((l) => JSON.parse(l) as RecordedEval)
      .filter((e) => e.type === "eval" && e.split === "train").sort((a, b) => a.step - b.step).slice(-3);
    const tasks = Object.keys(evals[0].tasks).sort();
    const row = tasks.map((task) => evals.reduce((sum, e) => sum + pick(e.tasks[task]), 0) / evals.length);
    const cell = `${run.actor}/${run.critic}`;
    cells.set(cell, [...(cells.get(cell) ?? []), row]);
  }
  return cells;
}

test("recorded ML45 trials: return and success (last ep.) are the last episode's; status shows the table's values", async () => {
  const { dir, cleanup } = tempDir("amago2-report-rec-");
  try {
    buildStore(dir, [recorded]);
    const env = { AMAGO2_HOME: dir };
    const { stdout } = await capture(() => runTable(parseTableOptions([NAME], { reps: "200", format: "json" }, env)));
    const json = JSON.parse(stdout) as JsonTable;
    const expected = {
      success: finalMatrices((t) => t.success.reduce((a, b) => a + b, 0) / t.success.length),
      success_last: finalMatrices((t) => t.success[t.success.length - 1]),
      return: finalMatrices((t) => t.return[t.return.length - 1]),
    };
    // The journals' episodes differ, so a trial mean would give another number.
    const trialMean = finalMatrices((t) => t.return.reduce((a, b) => a + b, 0) / t.return.length);
    const status = collectStatus(dir, NAME);
    if (Array.isArray(status)) throw new Error("status of one sweep gives its detail, not the list of sweeps");
    for (const row of json.rows) {
      const cell = `${row.actor}/${row.critic}`;
      const summary: CellSummary | undefined = status.cells.find((c) => c.label === cell);
      assert.ok(summary);
      for (const [id, matrices] of Object.entries(expected)) {
        const value = (row[`${id}/iqm`] as Estimate).value;
        assert.ok(Math.abs(value - iqm(matrices.get(cell) as number[][])) < 1e-9, `${cell} ${id}`);
        assert.equal(summary.metrics.find((m) => m.id === id)?.iqm, value, `${cell} ${id}: status != table`);
      }
      assert.notEqual((row["return/iqm"] as Estimate).value, iqm(trialMean.get(cell) as number[][]));
    }
  } finally {
    cleanup();
  }
});

test("a partial sweep: a run still going and one never started are marked, not averaged as complete", async () => {
  const partial: FixtureSweep = {
    sweep: recorded.sweep,
    runs: recorded.runs.map((run) => {
      if (run.actor === "ind" && run.critic === "ind" && run.seed === 1) {
        const firstEval = run.events.findIndex((l) => JSON.parse(l).type === "eval");
        return { ...run, status: "running", events: run.events.slice(0, firstEval + 1) };
      }
      if (run.actor === "dep" && run.critic === "ind" && run.seed === 1) return { ...run, status: "planned", events: [] };
      return run;
    }),
  };
  const json = JSON.parse(await table(partial, { format: "json" })) as JsonTable;
  const row = (cell: string) => json.rows.find((r) => `${r.actor}/${r.critic}` === cell) as Record<string, unknown>;
  assert.equal(row("ind/ind").seeds, "1/2 (1 running)");
  assert.equal(row("dep/ind").seeds, "1/2 (1 planned)");
  assert.equal(row("dep/dep").seeds, "2/2");
  const metric = json.columns.find((c) => c.kind === "estimate")?.id as string;
  assert.equal((row("ind/ind")[metric] as Estimate).partial, true);
  assert.equal((row("dep/dep")[metric] as Estimate).partial, false);
  assert.ok(json.notes.some((n) => n.startsWith("† = partial cell")));
});

test("plot and report draw the recorded curves", async () => {
  const { dir, cleanup } = tempDir("amago2-report-rec-");
  try {
    buildStore(dir, [recorded]);
    const env = { AMAGO2_HOME: dir };
    const out = path.join(dir, "plots");
    await capture(() => runPlot(parsePlotOptions([NAME], { out, reps: "200" }, env)));
    const svgs = readdirSync(out).filter((f) => f.endsWith(".svg") && !f.endsWith("-profile.svg"));
    assert.ok(svgs.length >= 1);
    for (const f of svgs) assert.equal((readFileSync(path.join(out, f), "utf8").match(/class="curve"/g) ?? []).length, 4, f);
    const file = path.join(dir, "report.html");
    await capture(() => runReport(parseReportOptions(NAME, { out: file, reps: "200" }, env)));
    const html = readFileSync(file, "utf8");
    assert.equal((html.match(/<tr class="run"/g) ?? []).length, recorded.runs.length);
    assert.match(html, /&#34;torch&#34;/);
  } finally {
    cleanup();
  }
});
