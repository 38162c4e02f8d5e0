// Tables over any axis: a sweep of actor x critic x num_bins pivoted (rows num_bins x actor,
// columns critic) in every format, --vs naming any cell, and the refusals that keep a table
// cell one grid cell.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseTableOptions, runTable } from "../src/commands/table.js";
import { UserError } from "../src/ui/errors.js";
import { capture, tempDir } from "./helpers.js";
import { buildStore, syntheticSweep, type SyntheticSpec } from "./report-fixture.js";

const BINS: Record<string, number> = { 16: 0.1, 32: 0.2, 128: 0.4 };
const spec: SyntheticSpec = {
  name: "bins", benchmark: "popgym-mini", tasks: ["a", "b"], seeds: 2, evalSteps: [0, 100],
  combos: [{ num_bins: 16 }, { num_bins: 32 }, { num_bins: 128 }],
  value: (actor, critic, seed, step, task, combo) => {
    const s = (BINS[String(combo.num_bins)] + (critic === "ind" ? 0.3 : 0) + (actor === "ind" ? 0.05 : 0)) * (step / 100) +
      seed * 0.01 + (task === "b" ? 0.02 : 0);
    return { success: [s, s], return: [10 * s, 10 * s], score: [s, s] };
  },
};

async function table(args: Record<string, string>): Promise<string> {
  const { dir, cleanup } = tempDir("amago2-pivot-");
  try {
    buildStore(dir, [syntheticSweep(spec)]);
    const out = await capture(() => runTable(parseTableOptions(["bins"], { reps: "200", ...args }, { AMAGO2_HOME: dir })));
    assert.equal(out.result, 0, out.stderr);
    return out.stdout;
  } finally {
    cleanup();
  }
}

test("pivot: rows num_bins x actor, columns critic, one grid cell per table cell, in every format", async () => {
  const md = await table({ rows: "num_bins,actor", cols: "critic" });
  const lines = md.split("\n");
  assert.equal(lines[0], "**bins: IQM [95% CI], rows num_bins x actor, columns critic**");
  assert.equal(lines[2], "| num_bins | actor | score: critic dep | score: critic ind | success: critic dep | success: critic ind | success (last ep.): critic dep | success (last ep.): critic ind |");
  // Numbers in their order (16 before 128); each value the IQM of its own cell. A run's final
  // score is its evaluation at 100 steps (step 0's, before training, does not count): the
  // cell's level (its bins, +0.3 for the ind critic, +0.05 for the ind actor), plus 0.01 a
  // seed and 0.02 for task b.
  const body = lines.slice(4, 10).map((l) => l.split(" | ").slice(0, 4).join(" | "));
  assert.deepEqual(body, [
    "| 16 | dep | 0.1150 [0.1100, 0.1200] | 0.4150 [0.4100, 0.4200]",
    "| 16 | ind | 0.1650 [0.1600, 0.1700] | 0.4650 [0.4600, 0.4700]",
    "| 32 | dep | 0.2150 [0.2100, 0.2200] | 0.5150 [0.5100, 0.5200]",
    "| 32 | ind | 0.2650 [0.2600, 0.2700] | 0.5650 [0.5600, 0.5700]",
    "| 128 | dep | 0.4150 [0.4100, 0.4200] | 0.7150 [0.7100, 0.7200]",
    "| 128 | ind | 0.4650 [0.4600, 0.4700] | 0.7650 [0.7600, 0.7700]",
  ]);

  const csv = (await table({ rows: "num_bins,actor", cols: "critic", format: "csv" })).trim().split("\n");
  assert.equal(csv[0].split(",").slice(0, 5).join(","), "num_bins,actor,score/critic=dep/iqm,score/critic=dep/iqm_lo,score/critic=dep/iqm_hi");
  assert.equal(csv.length, 7);
  assert.deepEqual(csv[1].split(",").slice(0, 3), ["16", "dep", "0.115"]);

  const json = JSON.parse(await table({ rows: "num_bins,actor", cols: "critic", format: "json" })) as
    { columns: { id: string; group: string | null }[]; rows: Record<string, unknown>[] };
  assert.deepEqual(json.columns.slice(0, 3).map((c) => [c.id, c.group]), [["num_bins", null], ["actor", null], ["score/critic=dep/iqm", "score"]]);
  assert.deepEqual([json.rows[5].num_bins, json.rows[5].actor, (json.rows[5]["score/critic=ind/iqm"] as { value: number }).value.toFixed(3)],
    ["128", "ind", "0.765"]);

  const latex = await table({ rows: "num_bins,actor", cols: "critic", format: "latex" });
  assert.match(latex, /\\multicolumn\{2\}\{c\}\{score\}/);
  assert.match(latex, /^128 & ind & /m);

  // --cols alone: the rows are every other varied axis.
  const colsOnly = (await table({ cols: "num_bins" })).split("\n");
  assert.equal(colsOnly[2].split(" | ").slice(0, 5).join(" | "), "| actor | critic | score: num_bins=16 | score: num_bins=32 | score: num_bins=128");
  assert.equal(colsOnly.filter((l) => /^\| (dep|ind) \| (dep|ind) \| /.test(l)).length, 4);
});

test("--vs names any cell: each row against the cell that differs from it only there", async () => {
  const md = (await table({ vs: "num_bins=16" })).split("\n");
  const header = md[2].split(" | ");
  const poi = header.findIndex((h) => h.startsWith("P(score > num_bins=16)"));
  assert.ok(poi > 0, md[2]);
  const row = (actor: string, critic: string, bins: string) =>
    md.find((l) => l.startsWith(`| ${actor} | ${critic} | ${bins} |`))!.replace(/ \|$/, "").split(" | ");
  assert.deepEqual(md.filter((l) => /^\| dep \| dep \| /.test(l)).map((l) => l.split(" | ")[2]), ["16", "32", "128"], "numbers in their order");
  assert.equal(row("dep", "dep", "16")[poi], "—", "a cell is not compared with itself");
  assert.match(row("dep", "dep", "128")[poi], /^1\.000 \[1\.000, 1\.000\]$/, "128 bins beat 16 on every task and seed");
  assert.ok(md.some((l) => l.includes("the baseline (the row's cell with num_bins=16)")));
  const both = (await table({ vs: "num_bins=16,critic=dep" })).split("\n");
  assert.match(both[2], /P\(score > num_bins=16 critic=dep\)/);
});

test("pivot and --vs refusals: one line each, naming what would be right", async () => {
  const { dir, cleanup } = tempDir("amago2-pivot-");
  try {
    buildStore(dir, [syntheticSweep(spec)]);
    const env = { AMAGO2_HOME: dir };
    const refuse = async (args: Record<string, string | boolean>, says: RegExp) => {
      await assert.rejects(runTable(parseTableOptions(["bins"], args as never, env)),
        (err: unknown) => err instanceof UserError && says.test(err.message) && !err.message.includes("\n"));
    };
    await refuse({ rows: "num_bins,actor,critic" }, /--cols: sweep 'bins' has no axis left for the columns/);
    await refuse({ rows: "num_bins", cols: "critic" }, /actor is in neither \(its varied axes: actor, critic, num_bins\)/);
    await refuse({ rows: "num_bins,actor", cols: "critic,actor" }, /name 'actor' twice/);
    await refuse({ rows: "bins", cols: "critic" }, /'bins' is not an axis of sweep 'bins' \(its axes: actor, critic, num_bins\)/);
    await refuse({ vs: "num_binz=16" }, /--vs num_binz: not an axis of sweep 'bins'/);
    await refuse({ vs: "num_bins=64" }, /--vs num_bins=64: sweep 'bins' has no such cell \(its cells: num_bins 16\/32\/128\)/);
    assert.throws(() => parseTableOptions([], { rows: "a", vs: "dep/dep" }), /--vs adds columns to the unpivoted table/);
    assert.throws(() => parseTableOptions([], { cols: "a", stat: "all" }), /give --stat iqm, mean or median/);
    assert.throws(() => parseTableOptions([], { cols: "A-B" }), /--cols must be a comma list of axis names/);
    assert.throws(() => parseTableOptions([], { vs: "num_bins" }), /--vs must be an actor\/critic cell such as dep\/dep or ind\/ind, or axis values/);
  } finally {
    cleanup();
  }
});
