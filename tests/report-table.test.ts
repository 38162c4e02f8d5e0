// Tables from a fixture DB built by the store's own ingest: the "final" rule, partial
// cells, --at-steps, --vs, several sweeps, per task, and all four formats.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openStoreReadOnly } from "../src/store/db.js";
import { collectSweeps } from "../src/report/collect.js";
import type { SweepRecord } from "../src/report/model.js";
import { renderTable } from "../src/report/render.js";
import { buildTable, type Estimate, type TableModel, type TableOptions } from "../src/report/table.js";
import { iqm } from "../src/report/stats.js";
import { aggregatePanel, profilePanel, taskQuantityPanels } from "../src/report/curves.js";
import { headlineMetrics } from "../src/report/model.js";
import { renderPanelsSvg } from "../src/report/svg.js";
import { tempDir } from "./helpers.js";
import { buildStore, syntheticSweep, type FixtureSweep, type SyntheticSpec } from "./report-fixture.js";

const LEVEL: Record<string, number> = { "dep/dep": 0.1, "dep/ind": 0.3, "ind/dep": 0.2, "ind/ind": 0.5 };
const TASKS = ["pick", "push", "reach"];
const STEPS = [500, 1000, 1500, 2000];

/**
 * Success grows linearly with steps; the last episode of a trial is 0.2 better. The
 * return is earned on the last episode only, so a trial mean would read a third of it.
 */
const metaWorldLike: SyntheticSpec = {
  name: "mw", benchmark: "ml45-mini", tasks: TASKS, seeds: 2, evalSteps: STEPS,
  value: (actor, critic, seed, step, task) => {
    const f = step / 2000;
    const level = LEVEL[`${actor}/${critic}`];
    return {
      success: [level * f, level * f, (level + 0.2) * f],
      return: [0, 0, 10 * level * f + seed + TASKS.indexOf(task)],
    };
  },
};

const options = (over: Partial<TableOptions> = {}): TableOptions =>
  ({ stat: "iqm", perTask: false, vs: null, point: { atSteps: null }, reps: 500, seed: 0, ...over });

function collect(sweeps: FixtureSweep[], names: string[] = []): SweepRecord[] {
  const { dir, cleanup } = tempDir("amago2-report-table-");
  try {
    buildStore(dir, sweeps);
    const db = openStoreReadOnly(dir);
    assert.ok(db);
    try {
      return collectSweeps(db, names);
    } finally {
      db.close();
    }
  } finally {
    cleanup();
  }
}

function asJson(table: TableModel): { columns: { id: string }[]; rows: Record<string, unknown>[]; notes: string[] } {
  return JSON.parse(renderTable(table, "json"));
}

function rowOf(table: TableModel, cell: string): Record<string, unknown> {
  const row = asJson(table).rows.find((r) => `${r.actor}/${r.critic}` === cell);
  assert.ok(row, `no row for ${cell}`);
  return row;
}

const est = (v: unknown): Estimate => v as Estimate;
const near = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test("final = mean of the last 3 evaluations per task; all three ML45 headline columns", () => {
  const table = buildTable(collect([syntheticSweep(metaWorldLike)]), options());
  assert.deepEqual(asJson(table).columns.map((c) => c.id),
    ["actor", "critic", "seeds", "success/iqm", "success_last/iqm", "return/iqm"]);
  const meanFactor = (1000 + 1500 + 2000) / 3 / 2000; // the last three of four evaluations
  for (const [cell, level] of Object.entries(LEVEL)) {
    const row = rowOf(table, cell);
    assert.equal(row.seeds, "2/2");
    near(est(row["success/iqm"]).value, ((3 * level + 0.2) / 3) * meanFactor);
    near(est(row["success_last/iqm"]).value, (level + 0.2) * meanFactor);
    // Returns: per (seed, task) the last episode's, averaged over the final evals; then IQM over all.
    const scores = [0, 1].map((seed) => TASKS.map((_, t) => 10 * level * meanFactor + seed + t));
    near(est(row["return/iqm"]).value, iqm(scores));
    const r = est(row["return/iqm"]);
    assert.ok((r.lo as number) <= r.value && r.value <= (r.hi as number));
  }
  assert.ok(table.notes.some((n) => n.includes("mean of its last 3 evaluations") && n.includes("only succeeded runs count")));
  assert.ok(table.notes.includes("return = return of the trial's last episode"));
  assert.ok(table.notes.some((n) => n.startsWith("a trial's return and score are its last inner episode's")));
});

const partialSpec: SyntheticSpec = {
  ...metaWorldLike,
  name: "mw-partial",
  status: (actor, critic, seed) => {
    if (actor === "ind" && critic === "ind" && seed === 1) return { status: "running", stopAt: 1000 };
    if (actor === "dep" && critic === "dep" && seed === 1) return { status: "failed" };
    return { status: "succeeded" };
  },
};

test("partial cells are marked, running runs reported, and never averaged as complete", () => {
  const table = buildTable(collect([syntheticSweep(partialSpec)]), options());
  const indInd = rowOf(table, "ind/ind");
  assert.equal(indInd.seeds, "1/2 (1 running)");
  assert.equal(est(indInd["success/iqm"]).partial, true);
  assert.equal(rowOf(table, "dep/dep").seeds, "1/2 (1 failed)");
  assert.equal(est(rowOf(table, "dep/ind")["success/iqm"]).partial, false);
  // Only the finished seed: return IQM over seed 0 alone.
  const meanFactor = 0.75;
  near(est(indInd["return/iqm"]).value, iqm([TASKS.map((_, t) => 5 * meanFactor + t)]));
  const md = renderTable(table, "md");
  assert.match(md, /\| ind \| ind \| 1\/2 \(1 running\) \| [0-9.]+ \[[0-9.]+, [0-9.]+\]† \|/);
  assert.ok(table.notes.some((n) => n.startsWith("† = partial cell")));
});

test("--at-steps N uses evaluations up to N and counts every run that reached N", () => {
  const table = buildTable(collect([syntheticSweep(partialSpec)]), options({ point: { atSteps: 1000 } }));
  const indInd = rowOf(table, "ind/ind");
  assert.equal(indInd.seeds, "2/2 (1 running)"); // the running run reached 1000 steps
  near(est(indInd["success_last/iqm"]).value, (0.5 + 0.2) * ((500 + 1000) / 2 / 2000));
  assert.ok(table.notes[0].includes("at 1000 env steps"));
});

test("--vs dep/dep adds P(X > baseline) with an interval; the baseline row has none", () => {
  const table = buildTable(collect([syntheticSweep(metaWorldLike)]), options({ vs: { actor: "dep", critic: "dep" } }));
  const id = "success/poi_vs_dep_dep";
  assert.equal(rowOf(table, "dep/dep")[id], null);
  // Every ind/ind success beats every dep/dep one on every task: P = 1 exactly.
  assert.deepEqual(est(rowOf(table, "ind/ind")[id]), { value: 1, lo: 1, hi: 1, partial: false });
  assert.ok(table.notes.some((n) => n.startsWith("P(a > dep/dep)")));
});

test("two sweeps side by side: one column group each, rows shared", () => {
  const gymLike: SyntheticSpec = {
    name: "gym", benchmark: "gym-mini", tasks: ["cartpole"], seeds: 1, evalSteps: [100, 200],
    value: (actor, critic, _seed, step) => ({ return: [step * LEVEL[`${actor}/${critic}`]], success: null }),
  };
  const sweeps = collect([syntheticSweep(metaWorldLike), syntheticSweep(gymLike)], ["mw", "gym"]);
  const table = buildTable(sweeps, options());
  const ids = asJson(table).columns.map((c) => c.id);
  assert.deepEqual(ids, ["actor", "critic", "mw/seeds", "mw/success/iqm", "mw/success_last/iqm", "mw/return/iqm",
    "gym/seeds", "gym/return/iqm"]);
  assert.equal(table.rows.length, 4);
  near(est(rowOf(table, "ind/ind")["gym/return/iqm"]).value, (100 * 0.5 + 200 * 0.5) / 2);
  assert.match(renderTable(table, "latex"), /\\multicolumn\{4\}\{c\}\{mw\} & \\multicolumn\{2\}\{c\}\{gym\}/);
});

test("with a normalised score (Atari) the score is the one headline column: raw returns do not aggregate", () => {
  const atariLike: SyntheticSpec = {
    name: "atari", benchmark: "atari", tasks: ["Pong", "Breakout"], seeds: 1, evalSteps: [100],
    value: (actor, critic, _seed, _step, task) => ({ return: [task === "Pong" ? 20 : 300], success: null, score: [LEVEL[`${actor}/${critic}`]] }),
  };
  const table = buildTable(collect([syntheticSweep(atariLike)]), options({ stat: "all" }));
  const ids = asJson(table).columns.map((c) => c.id);
  assert.deepEqual(ids.filter((id) => id.startsWith("score/")), ["score/iqm", "score/mean", "score/median", "score/mean_std", "score/gap"]);
  assert.ok(!ids.some((id) => id.startsWith("return/")));
  near(est(rowOf(table, "ind/ind")["score/gap"]).value, 0.5);
});

test("with a score and success (Procgen, BabyAI, user tasks with a return_range): score first, then success; no pooled return", () => {
  const procgenLike: SyntheticSpec = {
    name: "procgen", benchmark: "procgen", tasks: ["coinrun", "climber"], seeds: 1, evalSteps: [100],
    value: (actor, critic, _seed, _step, task) => ({
      return: [task === "coinrun" ? 10 : 3, task === "coinrun" ? 10 : 3], success: [1, 0], score: [0.4, LEVEL[`${actor}/${critic}`]],
    }),
  };
  const metrics = headlineMetrics(collect([syntheticSweep(procgenLike)])[0].runs).map((m) => m.id);
  assert.deepEqual(metrics, ["score", "success", "success_last"]);
});

test("each estimate keeps about four significant digits, so a task on a small scale never reads 0", () => {
  const estimate = (value: number, lo: number, hi: number): Estimate => ({ value, lo, hi });
  const table: TableModel = {
    title: "t", notes: [],
    columns: [{ id: "task", label: "task", group: null, kind: "text" }, { id: "v", label: "v", group: null, kind: "estimate" }],
    rows: [["big", estimate(1234.4, 1200.2, 1300.9)], ["mid", estimate(15.2, 14.341, 16.02)], ["small", estimate(0.3, 0.25, 0.35)],
      ["tiny", estimate(0.0045, 0.001, 0.01)], ["zero", estimate(0, 0, 0)]],
  };
  const md = renderTable(table, "md");
  for (const expected of ["| big | 1234 [1200, 1301] |", "| mid | 15.20 [14.34, 16.02] |", "| small | 0.3000 [0.2500, 0.3500] |",
    "| tiny | 0.00450 [0.00100, 0.01000] |", "| zero | 0.000 [0.000, 0.000] |"]) {
    assert.ok(md.includes(expected), `${expected} in\n${md}`);
  }
});

/** POPGym's trials: a practice episode that pays 0, then the one that counts (score = return). */
const popgymLike = (withScore: boolean): SyntheticSpec => ({
  name: withScore ? "pop" : "pop-raw", benchmark: "popgym-mini", tasks: ["RepeatPreviousEasy", "CountRecallEasy"], seeds: 2,
  evalSteps: [100, 200, 300, 400],
  value: (actor, critic, seed, step, task) => {
    const counted = LEVEL[`${actor}/${critic}`] * (step / 400) - 0.1 * seed - (task === "CountRecallEasy" ? 0.3 : 0);
    return { return: [0, counted], success: null, ...(withScore ? { score: [0, counted] } : {}) };
  },
});

test("POPGym-like trials: the headline is the counted last episode, never diluted by the practice one", () => {
  // The final mean over the last three of four evaluations scales each value by 0.75.
  const expected = (level: number) => [0, 1].map((seed) => [-0.3, 0].map((shift) => level * 0.75 - 0.1 * seed + shift));
  const scored = buildTable(collect([syntheticSweep(popgymLike(true))]), options({ stat: "all" }));
  assert.deepEqual(asJson(scored).columns.map((c) => c.id).filter((id) => id.includes("/")),
    ["score/iqm", "score/mean", "score/median", "score/mean_std", "score/gap"]);
  const raw = buildTable(collect([syntheticSweep(popgymLike(false))]), options());
  for (const [cell, level] of Object.entries(LEVEL)) {
    near(est(rowOf(scored, cell)["score/iqm"]).value, iqm(expected(level)));
    near(est(rowOf(scored, cell)["score/mean"]).value, level * 0.75 - 0.05 - 0.15);
    near(est(rowOf(raw, cell)["return/iqm"]).value, iqm(expected(level)));
  }
  assert.ok(scored.notes.some((n) => n.startsWith("score = normalised score of the trial's last episode")));
});

test("another swept setting becomes a row axis", () => {
  const spec: SyntheticSpec = { ...metaWorldLike, name: "mw-lr", seeds: 1, overrides: (actor) => ({ lr: actor === "dep" ? 0.001 : 0.0003 }) };
  const table = buildTable(collect([syntheticSweep(spec)]), options());
  const json = asJson(table);
  assert.equal(json.columns[2].id, "lr");
  assert.deepEqual(json.rows.map((r) => `${r.actor}/${r.critic} ${r.lr}`),
    ["dep/dep 0.001", "dep/ind 0.001", "ind/dep 0.0003", "ind/ind 0.0003"]);
});

test("--stat all adds mean, median, mean +- std (ddof stated) and the optimality gap", () => {
  const table = buildTable(collect([syntheticSweep(metaWorldLike)]), options({ stat: "all" }));
  const ids = asJson(table).columns.map((c) => c.id);
  for (const id of ["success/iqm", "success/mean", "success/median", "success/mean_std", "success/gap", "return/mean_std"]) {
    assert.ok(ids.includes(id), `missing ${id}`);
  }
  assert.ok(!ids.includes("return/gap"), "the optimality gap needs a normalised metric");
  assert.ok(table.notes.some((n) => n.includes("ddof = 1")));
  assert.equal(est(rowOf(table, "ind/ind")["success/mean_std"]).std, 0); // identical seeds
});

test("--per-task: one row per task, one column per cell and metric", () => {
  const table = buildTable(collect([syntheticSweep(metaWorldLike)]), options({ perTask: true }));
  const json = asJson(table);
  assert.deepEqual(json.rows.map((r) => r.task), TASKS);
  const reach = json.rows[2];
  near(est(reach["success_last/ind/ind/iqm"]).value, 0.7 * 0.75);
  assert.match(renderTable(table, "md"), /\| success: ind\/ind IQM \|/);
});

function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let field = "";
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(field); field = ""; } else if (ch === "\n") { row.push(field); rows.push(row); row = []; field = ""; } else field += ch;
  }
  return rows;
}

test("CSV parses back to exactly the numbers the JSON carries", () => {
  const table = buildTable(collect([syntheticSweep(partialSpec)]), options({ vs: { actor: "dep", critic: "dep" } }));
  const [header, ...rows] = parseCsv(renderTable(table, "csv"));
  const json = asJson(table);
  assert.equal(rows.length, json.rows.length);
  let compared = 0;
  json.rows.forEach((jrow, r) => {
    for (const [id, value] of Object.entries(jrow)) {
      if (value === null || typeof value !== "object") {
        assert.equal(rows[r][header.indexOf(id)], value === null ? "" : String(value));
        continue;
      }
      const e = value as Estimate;
      assert.equal(Number(rows[r][header.indexOf(id)]), e.value);
      assert.equal(Number(rows[r][header.indexOf(`${id}_lo`)]), e.lo);
      assert.equal(Number(rows[r][header.indexOf(`${id}_hi`)]), e.hi);
      compared++;
    }
  });
  assert.ok(compared >= 12);
});

test("LaTeX: balanced environments, booktabs rules, as many cells per row as columns", () => {
  const table = buildTable(collect([syntheticSweep(partialSpec)]), options({ stat: "all", vs: { actor: "dep", critic: "dep" } }));
  const tex = renderTable(table, "latex");
  for (const env of ["table", "tabular"]) {
    assert.equal((tex.match(new RegExp(`\\\\begin\\{${env}\\}`, "g")) ?? []).length, 1);
    assert.equal((tex.match(new RegExp(`\\\\end\\{${env}\\}`, "g")) ?? []).length, 1);
  }
  assert.ok(tex.indexOf("\\toprule") < tex.indexOf("\\midrule") && tex.indexOf("\\midrule") < tex.indexOf("\\bottomrule"));
  const body = tex.slice(tex.indexOf("\\midrule") + 8, tex.indexOf("\\bottomrule")).trim().split("\n");
  assert.equal(body.length, 4);
  for (const line of body) {
    assert.equal(line.split(/(?<!\\)&/).length, table.columns.length, line);
    assert.ok(line.endsWith("\\\\"));
  }
  // Braces balance once escaped ones are set aside; no raw special characters leak.
  const braces = tex.replace(/\\[{}]/g, "");
  assert.equal((braces.match(/\{/g) ?? []).length, (braces.match(/\}/g) ?? []).length);
  assert.doesNotMatch(tex.replace(/\\_/g, ""), /_/);
  assert.match(tex, /\$\^\\dagger\$/); // the partial mark survives as LaTeX
});

test("per-task measurements: a panel per cell, a line per task, the mean over seeds with their range", () => {
  const spec: SyntheticSpec = {
    ...metaWorldLike, name: "shares", seeds: 2, tasks: ["big/task", "small"],
    // Under dep critics the large-return task takes the gradient; the seed shifts it a little.
    taskMetrics: (_actor, critic, seed, _step, task) => {
      const big = critic === "dep" ? 0.9 + 0.02 * seed : 0.5;
      return { critic_grad_share: task === "big/task" ? big : 1 - big, value_scale: task === "big/task" ? 1000 : 1 };
    },
  };
  const sweep = collect([syntheticSweep(spec)])[0];
  const panels = taskQuantityPanels(sweep, "critic_grad_share");
  assert.deepEqual(panels.map((p) => p.title.split(":")[0]), ["dep/dep", "dep/ind", "ind/dep", "ind/ind"]);
  const depdep = panels[0];
  assert.deepEqual(depdep.curves.map((c) => c.label), ["big/task", "small"]);  // a '/' in a task name survives
  const point = depdep.curves[0].points[0];
  assert.deepEqual([point.step, point.runs], [STEPS[0], 2]);
  near(point.value, 0.91);
  near(point.lo, 0.9);
  near(point.hi, 0.92);
  near(panels[1].curves[0].points[0].value, 0.5);
  near(taskQuantityPanels(sweep, "value_scale")[0].curves[0].points[0].value, 3);  // drawn as log10
  assert.deepEqual(taskQuantityPanels(collect([syntheticSweep(metaWorldLike)])[0], "critic_grad_share"), []);
});

test("curves: one point per evaluation step; profile from 1 at tau = 0 down to 0 at tau = 1", () => {
  const [sweep] = collect([syntheticSweep(metaWorldLike)]);
  const [success] = headlineMetrics(sweep.runs);
  const panel = aggregatePanel(sweep, success, { reps: 200, seed: 0 });
  const indInd = panel.curves.find((c) => c.label === "ind/ind");
  assert.ok(indInd);
  assert.deepEqual(indInd.points.map((p) => p.step), STEPS);
  near(indInd.points[3].value, (0.5 + 0.2 / 3) * 1); // the last evaluation alone, not the final mean
  assert.deepEqual(indInd.points.map((p) => p.runs), [2, 2, 2, 2]);
  const profile = profilePanel(sweep, success, { atSteps: null }, { reps: 200, seed: 0 });
  for (const curve of profile.curves) {
    assert.equal(curve.points[0].step, 0);
    assert.equal(curve.points[0].value, 1);
    assert.equal(curve.points.at(-1)?.step, 1);
    assert.equal(curve.points.at(-1)?.value, 0);
  }
});

test("random play: a row pooling every run's step-0 measurement, a column per task, a level line in the curves", () => {
  // Random play's success: 0.01 a seed plus 0.1 for task "push"; every run measured it.
  const spec: SyntheticSpec = {
    ...metaWorldLike, name: "mw-random",
    randomPlay: (seed, task) => {
      const s = 0.01 * seed + (task === "push" ? 0.1 : 0);
      return { success: [s, s, s], return: [0, 0, s] };
    },
  };
  const [sweep] = collect([syntheticSweep(spec)]);
  const table = buildTable([sweep], options());
  const rows = asJson(table).rows;
  const random = rows.at(-1) as Record<string, unknown>;
  assert.equal(rows.length, 5);
  // One measurement per seed: the 4 runs of a seed drew the same random actions.
  assert.deepEqual([random.actor, random.critic, random.seeds], ["random play", "", "2 seeds"]);
  const scores = [0, 1].map((seed) => TASKS.map((t) => 0.01 * seed + (t === "push" ? 0.1 : 0)));
  near(est(random["success/iqm"]).value, iqm(scores));
  assert.equal(random["success/poi_vs_dep_dep"], undefined);
  assert.ok(asJson(table).notes.some((n) => n.startsWith("random play = uniform random actions")));
  // The cells' final scores are unchanged by it.
  near(est(rowOf(table, "ind/ind")["success_last/iqm"]).value, est(rowOf(buildTable(collect([syntheticSweep(metaWorldLike)]), options()), "ind/ind")["success_last/iqm"]).value);

  const perTask = asJson(buildTable([sweep], options({ perTask: true })));
  const push = perTask.rows.find((r) => r.task === "push") as Record<string, unknown>;
  near(est(push["success/random/iqm"]).value, 0.105);

  const [success] = headlineMetrics(sweep.runs);
  const panel = aggregatePanel(sweep, success, { reps: 200, seed: 0 });
  const line = panel.curves.at(-1);
  assert.equal(line?.label, "random play");
  assert.deepEqual(line?.points.map((p) => p.step), [STEPS[0], STEPS.at(-1)]);
  near(line?.points[0].value ?? NaN, iqm(scores));
  assert.match(renderPanelsSvg([panel]), /data-cell="random play"[^>]*stroke="#777777"[^>]*stroke-dasharray/);

  // A sweep whose runs predate random play has neither the row nor the line.
  const [old] = collect([syntheticSweep(metaWorldLike)]);
  assert.equal(asJson(buildTable([old], options())).rows.length, 4);
  assert.ok(aggregatePanel(old, success, { reps: 200, seed: 0 }).curves.every((c) => c.label !== "random play"));
});
