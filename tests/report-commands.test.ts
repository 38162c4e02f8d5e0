// `table`, `plot` and `report` as commands: options parsing, bad input (UserError, nothing
// written), and what each writes for a fixture DB in a temporary AMAGO2_HOME.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { main } from "../src/cli.js";
import { parsePlotOptions, runPlot, type PlotOptions } from "../src/commands/plot.js";
import { parseReportOptions, runReport, type ReportOptions } from "../src/commands/report.js";
import { parseTableOptions, runTable, type TableCommandOptions } from "../src/commands/table.js";
import { UserError } from "../src/ui/errors.js";
import { capture, fingerprint, tempDir } from "./helpers.js";
import { buildStore, syntheticSweep, type SyntheticSpec } from "./report-fixture.js";

const LEVEL: Record<string, number> = { "dep/dep": 0.1, "dep/ind": 0.3, "ind/dep": 0.2, "ind/ind": 0.5 };
const spec: SyntheticSpec = {
  name: "mw", benchmark: "ml45-mini", tasks: ["pick", "reach"], seeds: 2, evalSteps: [0, 400, 800],
  value: (actor, critic, seed, step) => {
    const s = LEVEL[`${actor}/${critic}`] * (step / 800) + seed * 0.01;
    return { success: [s, s + 0.1], return: [100 * s, 120 * s] };
  },
  status: (actor, critic, seed) => (actor === "ind" && critic === "ind" && seed === 1 ? { status: "running", stopAt: 400 } : { status: "succeeded" }),
};

function fixtureHome(): { home: string; env: NodeJS.ProcessEnv; cleanup: () => void } {
  const { dir, cleanup } = tempDir("amago2-report-cmd-");
  buildStore(dir, [syntheticSweep(spec)]);
  return { home: dir, env: { AMAGO2_HOME: dir }, cleanup };
}

const userError = (fn: () => unknown, pattern: RegExp): void =>
  assert.throws(fn, (err: unknown) => err instanceof UserError && pattern.test(err.message) && !err.message.includes("\n"));

/** What the CLI would run for argv, with the command itself replaced by a recorder. */
async function dispatched(argv: string[]): Promise<{ code: number; command?: string; options?: unknown; stderr: string }> {
  let seen: { command: string; options: unknown } | undefined;
  const { result, stderr } = await capture(() => main(["node", "amago2", ...argv], async (command, options) => {
    seen = { command, options };
    return 0;
  }));
  return { code: result, ...seen, stderr };
}

test("argv: table, plot and report reach their commands with validated options", async () => {
  const t = await dispatched(["table", "a", "b", "--stat", "all", "--vs", "ind/dep", "--at-steps", "100",
    "--format", "csv", "--reps", "500", "--seed", "3"]);
  assert.equal(t.command, "table");
  const topts = t.options as TableCommandOptions;
  assert.deepEqual([topts.sweeps, topts.format], [["a", "b"], "csv"]);
  assert.deepEqual(topts.table, { stat: "all", perTask: false, vs: { actor: "ind", critic: "dep" }, point: { atSteps: 100 }, reps: 500, seed: 3 });
  assert.equal(((await dispatched(["table", "--per-task"])).options as TableCommandOptions).table.perTask, true);
  assert.deepEqual((await dispatched(["table"])).options, parseTableOptions([], {}));
  const p = await dispatched(["plot", "a", "b", "--per-task", "--out", "figs"]);
  assert.equal(p.command, "plot");
  assert.deepEqual((p.options as PlotOptions).outDir, path.resolve("figs"));
  assert.deepEqual([(p.options as PlotOptions).sweeps, (p.options as PlotOptions).perTask], [["a", "b"], true]);
  const r = await dispatched(["report", "a", "--out", "r.html", "--seed", "4"]);
  assert.equal(r.command, "report");
  assert.deepEqual([(r.options as ReportOptions).outFile, (r.options as ReportOptions).seed], [path.resolve("r.html"), 4]);
});

test("argv: bad table, plot and report input exits 2 with one line and runs nothing", async () => {
  for (const argv of [["table", "--stat", "max"], ["table", "--format", "xml"], ["table", "--vs", "x"], ["plot", "a"],
    ["plot", "--out", "d"], ["plot", "a", "--out", "d", "--format", "pdf"], ["report", "a", "--out", "x.txt"],
    ["report", "a", "b", "--out", "r.html"], ["report", "a", "--out", "r.html", "--format", "md"],
    ["report", "a", "--out", "r.md", "--format", "tex"]]) {
    const { code, command, stderr } = await dispatched(argv);
    assert.equal(code, 2, argv.join(" "));
    assert.equal(command, undefined);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
  }
});

test("table options: defaults and every flag", () => {
  const env = { AMAGO2_HOME: "/tmp/h" };
  const d = parseTableOptions([], {}, env);
  assert.deepEqual(d, { home: "/tmp/h", sweeps: [], format: "md",
    table: { stat: "iqm", perTask: false, vs: null, point: { atSteps: null }, reps: null, seed: 0 } });
  const o = parseTableOptions(["a", "b"], { stat: "all", vs: "dep/dep", atSteps: "5000", format: "latex", reps: "2000", seed: "7" }, env);
  assert.deepEqual(o.table, { stat: "all", perTask: false, vs: { actor: "dep", critic: "dep" }, point: { atSteps: 5000 }, reps: 2000, seed: 7 });
  assert.deepEqual([o.sweeps, o.format], [["a", "b"], "latex"]);
});

test("table options: bad input is one clear line", () => {
  userError(() => parseTableOptions([], { stat: "max" }), /--stat must be one of iqm, mean, median, all, got 'max'/);
  userError(() => parseTableOptions([], { format: "xml" }), /--format must be one of md, csv, latex, json/);
  userError(() => parseTableOptions([], { vs: "dep" }), /--vs must be an actor\/critic cell such as dep\/dep/);
  userError(() => parseTableOptions([], { atSteps: "-3" }), /--at-steps must be an integer >= 1/);
  userError(() => parseTableOptions([], { vs: "dep/dep", perTask: true }), /--vs compares aggregates over tasks: use it without --per-task/);
  userError(() => parseTableOptions([], { reps: "10" }), /--reps must be an integer >= 100/);
  userError(() => parseTableOptions([], { seed: "x" }), /--seed must be an integer >= 0/);
  userError(() => parseTableOptions(["../etc"], {}), /is not a sweep name/);
  userError(() => parsePlotOptions([], { out: "d" }), /needs at least one sweep/);
  userError(() => parsePlotOptions(["mw"], {}), /needs --out DIR/);
  userError(() => parseReportOptions(undefined, { out: "r.html" }), /needs a sweep name/);
  userError(() => parseReportOptions("mw", { out: "r.txt" }), /--out must name an .html file/);
  userError(() => parsePlotOptions(["mw"], { out: "d", format: "svg,pdf" }), /--format must be svg, png or svg,png, got 'svg,pdf'/);
  userError(() => parsePlotOptions(["mw"], { out: "d", format: "svg,svg" }), /--format must be svg, png or svg,png, got 'svg,svg'/);
  userError(() => parseReportOptions("mw", { out: "r.html", format: "md" }), /--format md needs --out to name an .md file/);
  userError(() => parseReportOptions("mw", { out: "r.md", format: "pdf" }), /--format must be one of html, md, got 'pdf'/);
});

test("plot and report: an --out path that is the other kind of thing, or lies under a file, is one clear line", () => {
  const { dir, cleanup } = tempDir("amago2-report-out-");
  try {
    const file = path.join(dir, "a-file");
    writeFileSync(file, "x");
    mkdirSync(path.join(dir, "r.html"));
    writeFileSync(path.join(dir, "notes-figures"), "x");
    const env = { AMAGO2_HOME: dir };
    userError(() => parsePlotOptions(["mw"], { out: file }, env), /^--out .*a-file is a file, not a folder: move it away or choose another --out$/);
    userError(() => parsePlotOptions(["mw"], { out: path.join(file, "figs", "x") }, env), /^--out .*x: .*a-file is a file, so nothing can be written below it: choose another --out$/);
    userError(() => parseReportOptions("mw", { out: "r.html" }, env, dir), /^--out .*r\.html is a folder, not a file/);
    userError(() => parseReportOptions("mw", { out: path.join(file, "r.html") }, env), /a-file is a file, so nothing can be written below it/);
    userError(() => parseReportOptions("mw", { out: "notes.md", format: "md" }, env, dir), /^the report's figures folder .*notes-figures is a file, not a folder: move it away/);
    assert.equal(parsePlotOptions(["mw"], { out: path.join(dir, "new", "figs") }, env).outDir, path.join(dir, "new", "figs"));
    assert.deepEqual(readdirSync(dir).sort(), ["a-file", "notes-figures", "r.html"]);   // checking writes nothing
  } finally {
    cleanup();
  }
});

test("table: prints the ablation with the definition of final under it; CSV keeps prose on stderr", async () => {
  const { env, cleanup } = fixtureHome();
  try {
    const md = await capture(() => runTable(parseTableOptions(["mw"], { reps: "200" }, env)));
    assert.equal(md.result, 0);
    const lines = md.stdout.split("\n");
    assert.ok(lines.some((l) => /^\| ind \| ind \| 1\/2 \(1 running\) \| .+† \|/.test(l)), md.stdout);
    assert.ok(lines.some((l) => l.startsWith("- a run's final score on a task is the mean of its last 3 evaluations")));
    const csv = await capture(() => runTable(parseTableOptions(["mw"], { format: "csv", reps: "200" }, env)));
    assert.equal(csv.stdout.split("\n")[0].split(",")[0], "actor");
    assert.equal(csv.stdout.trim().split("\n").length, 5);
    assert.match(csv.stderr, /^# a run's final score/);
  } finally {
    cleanup();
  }
});

test("table: an unknown sweep and a missing baseline are user errors that write nothing; an empty store is not", async () => {
  const { home, env, cleanup } = fixtureHome();
  const empty = tempDir("amago2-report-empty-");
  try {
    const before = fingerprint(home);
    await assert.rejects(runTable(parseTableOptions(["nope"], {}, env)), /no sweep 'nope' in .* \(its sweeps: mw\)/);
    const onlyInd = syntheticSweep({ ...spec, name: "other" });
    onlyInd.runs = onlyInd.runs.filter((r) => r.actor === "ind");
    const two = tempDir("amago2-report-two-");
    buildStore(two.dir, [onlyInd]);
    await assert.rejects(runTable(parseTableOptions(["other"], { vs: "dep/dep" }, { AMAGO2_HOME: two.dir })),
      /--vs dep\/dep: sweep 'other' has no such cell \(its cells: ind\/dep, ind\/ind\)/);
    two.cleanup();
    // One rule for every read command: asked about everything, an empty store shows nothing
    // and exits 0; asked about a sweep it lacks, it is a user error.
    const nothing = await capture(() => runTable(parseTableOptions([], {}, { AMAGO2_HOME: empty.dir })));
    assert.equal(nothing.result, 0);
    assert.match(nothing.stderr, /^no sweeps yet in .*: nothing to tabulate\n$/);
    await assert.rejects(runTable(parseTableOptions(["mw"], {}, { AMAGO2_HOME: empty.dir })), /no sweep 'mw': nothing has run in/);
    assert.deepEqual(readdirSync(empty.dir), []);
    assert.equal(fingerprint(home), before);
  } finally {
    cleanup();
    empty.cleanup();
  }
});

test("plot: an SVG and a PNG per headline metric and a profile, one curve per cell; --per-task adds small multiples", async () => {
  const { env, cleanup, home } = fixtureHome();
  try {
    const out = path.join(home, "plots");
    const { result, stdout } = await capture(() => runPlot(parsePlotOptions(["mw"], { out, perTask: true, reps: "200" }, env)));
    assert.equal(result, 0);
    const names = readdirSync(out).sort();
    assert.deepEqual(names, ["mw-return-per-task.png", "mw-return-per-task.svg", "mw-return.png", "mw-return.svg",
      "mw-success-per-task.png", "mw-success-per-task.svg", "mw-success-profile.png", "mw-success-profile.svg",
      "mw-success.png", "mw-success.svg",
      "mw-success_last-per-task.png", "mw-success_last-per-task.svg", "mw-success_last.png", "mw-success_last.svg"]);
    assert.equal(stdout.trim().split("\n").length, 14);
    const svg = readFileSync(path.join(out, "mw-success.svg"), "utf8");
    const cells = [...svg.matchAll(/class="curve" data-cell="([^"]+)" points="([^"]+)"/g)];
    assert.deepEqual(cells.map((m) => m[1]), ["dep/dep", "dep/ind", "ind/dep", "ind/ind"]);
    assert.equal(cells[0][2].split(" ").length, 3); // three evaluation steps
    assert.equal((svg.match(/class="band"/g) ?? []).length, 4);
    const perTask = readFileSync(path.join(out, "mw-success-per-task.svg"), "utf8");
    assert.equal((perTask.match(/class="panel"/g) ?? []).length, 2);
    const profile = readFileSync(path.join(out, "mw-success-profile.svg"), "utf8");
    assert.equal((profile.match(/class="curve"/g) ?? []).length, 4);
    assert.match(profile, /threshold tau/);
    const png = readFileSync(path.join(out, "mw-success.png"));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(png.readUInt32BE(16) >= 800, "rendered at twice the SVG width");
  } finally {
    cleanup();
  }
});

test("report: one self-contained HTML file with plan, statuses, tables, curves and configs", async () => {
  const { env, cleanup, home } = fixtureHome();
  try {
    const file = path.join(home, "out", "report.html");
    const { result, stdout } = await capture(() => runReport(parseReportOptions("mw", { out: file, reps: "200" }, env)));
    assert.equal(result, 0);
    assert.equal(stdout.trim(), file);
    const html = readFileSync(file, "utf8");
    assert.doesNotMatch(html, /(src|href)\s*=|https?:\/\/|@import|url\(/, "nothing outside the file is referenced");
    assert.equal((html.match(/<tr class="run"/g) ?? []).length, 8);
    assert.match(html, /class="status status-running">running</);
    assert.match(html, /<caption>mw: IQM \[95% CI\]<\/caption>/);
    assert.match(html, /P\(success &#62; dep\/dep\)/);
    assert.ok((html.match(/<svg /g) ?? []).length >= 4);
    assert.match(html, /<pre class="versions">[^<]*&#34;torch&#34;: &#34;2\.13\.0&#34;/);
    assert.ok(existsSync(file));
  } finally {
    cleanup();
  }
});

test("plot --format png and report --format md: only the asked-for files, the page linking its figures", async () => {
  const { env, cleanup, home } = fixtureHome();
  try {
    const out = path.join(home, "pngs");
    await capture(() => runPlot(parsePlotOptions(["mw"], { out, format: "png", reps: "200" }, env)));
    const names = readdirSync(out);
    assert.ok(names.length > 0 && names.every((n) => n.endsWith(".png")), names.join(" "));
    assert.ok(names.includes("mw-success.png"));

    const file = path.join(home, "md", "report.md");
    const figures = path.join(home, "md", "report-figures");
    const { result, stdout } = await capture(() => runReport(parseReportOptions("mw", { out: file, format: "md", reps: "200" }, env)));
    assert.equal(result, 0);
    assert.equal(stdout.trim(), file);
    const md = readFileSync(file, "utf8");
    assert.match(md, /^# amago2 report: mw$/m);
    assert.match(md, /^\*\*mw: IQM \[95% CI\]\*\*$/m);
    assert.match(md, /P\(success > dep\/dep\)/);
    assert.equal(md.split("\n").filter((l) => /^\| (dep|ind) \| (dep|ind) \| \d \| (succeeded|running) \|/.test(l)).length, 8);
    const links = [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
    assert.ok(links.length >= 4);
    assert.deepEqual(links.map((l) => path.join(home, "md", l)).filter((f) => !existsSync(f)), [], "every linked figure exists");
    assert.deepEqual(readdirSync(figures).sort(), links.map((l) => path.basename(l)).sort(), "no figure is left unlinked");
  } finally {
    cleanup();
  }
});
