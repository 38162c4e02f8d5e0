// Regenerates docs/RESULTS.md and docs/results/ from amago2's own output for the shipped
// reproduction sweep (experiments/reproduction/cartpole-frozenlake.yaml): its tables (`amago2 table`), figures
// (`amago2 plot`), report (`amago2 report`) and the learner's per-task measurements, read
// from the store. Every number in the page comes from those; nothing is typed by hand.
//
//   node scripts/results.mjs --run        # run (or resume) the sweep, then write the page
//   node scripts/results.mjs              # write the page from the runs already stored
//
// AMAGO2_HOME chooses the store, as for every command (default ./amago2-runs).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { parse as parseYaml } from "yaml";
import { RANDOM_PLAY } from "../dist/src/report/model.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SWEEP_FILE = path.join(root, "experiments", "reproduction", "cartpole-frozenlake.yaml");
const OUT_DIR = path.join(root, "docs", "results");
const PAGE = path.join(root, "docs", "RESULTS.md");
const BASELINE = "dep/dep";

const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== "--run");
if (unknown.length) {
  process.stderr.write(`results.mjs: unknown argument ${unknown[0]}; usage: node scripts/results.mjs [--run]\n`);
  process.exit(2);
}
const home = path.resolve(process.env.AMAGO2_HOME ?? path.join(process.cwd(), "amago2-runs"));
const env = { ...process.env, AMAGO2_HOME: home, NO_COLOR: "1" };

function amago2(...argv) {
  return execFileSync(process.execPath, [path.join(root, "bin", "amago2.js"), ...argv], { env, encoding: "utf8", maxBuffer: 64 << 20 });
}

const spec = parseYaml(readFileSync(SWEEP_FILE, "utf8"));
const sweep = spec.name;
if (args.includes("--run")) {
  execFileSync(process.execPath, [path.join(root, "bin", "amago2.js"), "sweep", SWEEP_FILE, "--parallel", "2"], { env, stdio: "inherit" });
}

// ---------------------------------------------------------------- what the tool prints
const table = JSON.parse(amago2("table", sweep, "--vs", BASELINE, "--format", "json"));
const tableMd = amago2("table", sweep, "--vs", BASELINE);
const perTaskMd = amago2("table", sweep, "--per-task");
const plan = JSON.parse(amago2("sweep", SWEEP_FILE, "--dry-run", "--json"));
rmSync(OUT_DIR, { recursive: true, force: true });
amago2("plot", sweep, "--per-task", "--format", "png", "--out", OUT_DIR);
amago2("report", sweep, "--out", path.join(OUT_DIR, "report.html"));

// ---------------------------------------------------------------- what the store holds
const db = new Database(path.join(home, "amago2.db"), { readonly: true });
const runs = db.prepare(`SELECT r.key, r.actor, r.critic, r.seed, r.status, r.started_at, r.finished_at, r.versions
  FROM runs r JOIN sweep_runs s ON s.run_key = r.key WHERE s.sweep = ? ORDER BY r.actor, r.critic, r.seed`).all(sweep);
/** Each run's wall time: from its first event to its last, over all its attempts. */
const spans = db.prepare("SELECT run_key, MIN(t) AS first, MAX(t) AS last FROM events WHERE run_key IN (SELECT run_key FROM sweep_runs WHERE sweep = ?) GROUP BY run_key").all(sweep);
/** Per task and cell, the mean of the later half of the runs' per-task measurements. */
function lateMean(quantity) {
  const rows = db.prepare(`SELECT r.actor || '/' || r.critic AS cell, m.run_key, m.step, m.name, m.value FROM metrics m
    JOIN runs r ON r.key = m.run_key JOIN sweep_runs s ON s.run_key = r.key
    WHERE s.sweep = ? AND m.name LIKE 'task/%/' || ? AND m.value IS NOT NULL`).all(sweep, quantity);
  const lastStep = new Map();
  for (const r of rows) lastStep.set(r.run_key, Math.max(lastStep.get(r.run_key) ?? 0, r.step));
  const sums = new Map();
  for (const r of rows) {
    if (r.step < lastStep.get(r.run_key) / 2) continue;
    const task = r.name.slice("task/".length, r.name.lastIndexOf("/"));
    const key = `${r.cell}\u0000${task}`;
    const [s, n] = sums.get(key) ?? [0, 0];
    sums.set(key, [s + r.value, n + 1]);
  }
  const out = new Map();
  for (const [key, [s, n]] of sums) {
    const [cell, task] = key.split("\u0000");
    if (!out.has(cell)) out.set(cell, new Map());
    out.get(cell).set(task, s / n);
  }
  return out;
}
const gradShare = lateMean("critic_grad_share");
const actorShare = lateMean("actor_grad_share");
const stepShare = lateMean("step_share");
const valueScale = lateMean("value_scale");
db.close();

// ---------------------------------------------------------------- the page
const pct = (x) => `${(100 * x).toFixed(0)}%`;
const num = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3));
const headline = table.columns.find((c) => c.kind === "estimate");
const poiColumn = table.columns.find((c) => c.id.includes("poi_vs"));
const rowOf = (cell) => table.rows.find((r) => `${r.actor}/${r.critic}` === cell);
const estimate = (cell, id) => rowOf(cell)?.[id];
const interval = (e) => `${num(e.value)} [${num(e.lo)}, ${num(e.hi)}]`;

const facts = [];
const base = estimate(BASELINE, headline.id);
const ours = estimate("ind/ind", headline.id);
if (base && ours) {
  const overlap = ours.lo <= base.hi && base.lo <= ours.hi;
  facts.push(`ind/ind's ${headline.label} is ${interval(ours)} against dep/dep's ${interval(base)}: ` +
    `${ours.value > base.value ? "higher" : ours.value < base.value ? "lower" : "the same"}, ` +
    `and the 95% intervals ${overlap ? "overlap, so this run does not separate the two" : "do not overlap"}.`);
}
for (const cell of ["ind/ind", "ind/dep", "dep/ind"]) {
  const poi = poiColumn && estimate(cell, poiColumn.id);
  if (poi) facts.push(`P(${cell} > dep/dep) = ${interval(poi)}.`);
}
const floorRow = table.rows.find((r) => r.actor === RANDOM_PLAY);
const cellRows = table.rows.filter((r) => r !== floorRow);
const floor = floorRow?.[headline.id];
if (floor) {
  const above = cellRows.filter((r) => r[headline.id] && r[headline.id].lo > floor.hi).map((r) => `${r.actor}/${r.critic}`);
  facts.push(`Random play's ${headline.label} is ${interval(floor)}; cells whose 95% interval lies wholly above it: ` +
    `${above.length ? above.join(", ") : "none"}.`);
}
const ranked = cellRows.map((r) => [`${r.actor}/${r.critic}`, r[headline.id]?.value]).filter(([, v]) => v !== undefined)
  .sort((a, b) => b[1] - a[1]);
if (ranked.length) facts.push(`Cells by ${headline.label}, best first: ${ranked.map(([c, v]) => `${c} ${num(v)}`).join(", ")}.`);
for (const cell of [BASELINE, "ind/ind"]) {
  const shares = gradShare.get(cell);
  if (!shares) continue;
  const [task, share] = [...shares.entries()].sort((a, b) => b[1] - a[1])[0];
  const steps = stepShare.get(cell)?.get(task);
  const actor = actorShare.get(cell)?.get(task);
  facts.push(`Under ${cell}, over the later half of training, ${task} took ${pct(share)} of the critic's gradient` +
    `${actor === undefined ? "" : ` and ${pct(actor)} of the actor's`}${steps === undefined ? "" : `, holding ${pct(steps)} of the batches' steps`}.`);
}
const scales = valueScale.get(BASELINE);
if (scales && scales.size > 1) {
  const sorted = [...scales.entries()].sort((a, b) => b[1] - a[1]);
  facts.push(`The value scale (mean |Q|, dep/dep) spans ${num(sorted.at(-1)[1])} (${sorted.at(-1)[0]}) to ${num(sorted[0][1])} (${sorted[0][0]}).`);
}

const walls = spans.map((s) => s.last - s.first).sort((a, b) => a - b);
const versions = JSON.parse(runs.find((r) => r.versions)?.versions ?? "{}");
const statuses = Object.entries(runs.reduce((m, r) => ({ ...m, [r.status]: (m[r.status] ?? 0) + 1 }), {}))
  .map(([s, n]) => `${n} ${s}`).join(", ");
const first = Math.min(...spans.map((s) => s.first));
const last = Math.max(...spans.map((s) => s.last));
const minutes = (s) => `${(s / 60).toFixed(1)} min`;
const tasks = spec.benchmark.tasks.map((t) => `| ${t.name ?? t.env_id} | \`${t.env_id}\` | ${t.return_range ? `[${t.return_range.join(", ")}]` : "none"} |`);
const widths = spec.benchmark.tasks.filter((t) => t.return_range).map((t) => t.return_range[1] - t.return_range[0]);
const spread = widths.length > 1 ? Math.max(...widths) / Math.min(...widths) : 1;
const figure = (file, caption) => readdirSync(OUT_DIR).includes(file) ? [`![${caption}](results/${file})`, "", `*${caption}*`, ""] : [];
const hp = plan.hyperparameters;

const page = [
  `# Results: the AMAGO-2 ablation on tasks whose returns lie ${Math.round(spread)}x apart, on a CPU`,
  "",
  "This page is written by `node scripts/results.mjs` from amago2's own output (its `table`,",
  "`plot` and `report` commands and the runs' records in the store); `node scripts/results.mjs",
  "--run` runs the sweep first. Every number below is as measured. The sweep:",
  `\`${path.relative(root, SWEEP_FILE)}\` (sweep \`${sweep}\`): ${spec.description ?? ""}`.trim(),
  "",
  "| task | env id | return range (score 0 to 1) |",
  "|---|---|---|",
  ...tasks,
  "",
  `Trials of k = ${spec.benchmark.k} episodes; ${plan.runs.length} runs (actor x critic x ${spec.seeds} seeds) at scale ` +
  `\`${plan.scale}\`: ${plan.stepsPerRun.toLocaleString("en-US")} env steps each, d_model ${hp.d_model}, ${hp.n_layers} layers, ` +
  `context ${hp.max_seq_len}, ${hp.parallel_actors} actors, ${hp.updates_per_epoch} updates per ${hp.parallel_actors * hp.steps_per_epoch} env steps, ` +
  `lr ${hp.lr}, batch ${hp.batch_size}; an evaluation every ${hp.eval_every_epochs * hp.parallel_actors * hp.steps_per_epoch} env steps, ` +
  `${hp.eval_trials_per_task} trials a task.`,
  "",
  `Runs: ${statuses}. Wall time ${minutes(last - first)} for the sweep at \`--parallel 2\`; per run median ${minutes(walls[Math.floor(walls.length / 2)] ?? 0)}, ` +
  `longest ${minutes(walls.at(-1) ?? 0)}. Machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? "unknown CPU"}; ` +
  `Python ${versions.python ?? "?"}, torch ${versions.torch ?? "?"}, gymnasium ${versions.gymnasium ?? "?"}, node ${versions.node ?? "?"}.`,
  "",
  "## The ablation table",
  "",
  tableMd.trim(),
  "",
  "## What it shows",
  "",
  ...facts.map((f) => `- ${f}`),
  "",
  "## Per task",
  "",
  perTaskMd.trim(),
  "",
  "## Curves",
  "",
  ...figure(`${sweep}-score.png`, "score: IQM over runs x tasks with a 95% bootstrap band, per cell"),
  ...figure(`${sweep}-score-profile.png`, "performance profile of the final scores"),
  ...figure(`${sweep}-score-per-task.png`, "score per task: mean over runs"),
  "## Where the gradient goes (the paper's argument, measured)",
  "",
  "Each task's share of the critic's and the actor's gradient at the encoder output, per cell",
  "(python/amago2/task_metrics.py), next to its share of the batches' steps; and each task's",
  "value scale. The paper's argument predicts that under scale-dependent objectives the task",
  "with the largest returns takes the gradient and that under scale-independent ones the",
  "tasks share it; a task whose targets are already fitted takes little under either. The",
  "facts above say what this sweep measured.",
  "",
  ...figure(`${sweep}-task-critic_grad_share.png`, "each task's share of the critic's gradient"),
  ...figure(`${sweep}-task-actor_grad_share.png`, "each task's share of the actor's gradient"),
  ...figure(`${sweep}-task-step_share.png`, "each task's share of the batches' steps"),
  ...figure(`${sweep}-task-value_scale.png`, "the value scale per task (log10 mean |Q|)"),
  ...figure(`${sweep}-task-filter_pass.png`, "the Ind actor's filter pass rate per task"),
  "The full report, with every run's configuration and status: [results/report.html](results/report.html).",
  "",
];
mkdirSync(path.dirname(PAGE), { recursive: true });
writeFileSync(PAGE, page.join("\n"));
process.stdout.write(`${PAGE}\n`);
