// The HTML report in a real headless Chromium (Debian's `chromium`), offline: the tables
// and the curves must lay out with a real size, and a screenshot is kept as an artifact.
// Skipped, with the install line, where chromium is absent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseReportOptions, runReport } from "../src/commands/report.js";
import { capture, REPO_ROOT, tempDir } from "./helpers.js";
import { buildStore, syntheticSweep, type SyntheticSpec } from "./report-fixture.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const ARTIFACTS = path.join(REPO_ROOT, "test-artifacts");

const spec: SyntheticSpec = {
  name: "mw", benchmark: "ml45-mini", tasks: ["pick", "push", "reach"], seeds: 3, evalSteps: [0, 500, 1000, 1500],
  value: (actor, critic, seed, step, task) => {
    const level = { dep: 0.1, ind: 0.25 }[actor as "dep" | "ind"] + { dep: 0.05, ind: 0.2 }[critic as "dep" | "ind"];
    const s = Math.min(1, level * (step / 1500) + 0.02 * seed + 0.01 * task.length);
    return { success: [s, s, Math.min(1, s + 0.1)], return: [200 * s, 210 * s, 250 * s] };
  },
};

/** Measures what the browser laid out and writes it into the DOM for --dump-dom to carry out. */
const PROBE = `<script>
window.addEventListener("load", () => {
  const boxes = (sel) => [...document.querySelectorAll(sel)].map((el) => el.getBoundingClientRect());
  const result = {
    tables: boxes("table.results").map((r) => [r.width, r.height]),
    rows: document.querySelectorAll("table.results tbody tr").length,
    curves: [...document.querySelectorAll("figure.curves polyline.curve")].map((p) => p.getBBox().width),
    svgs: boxes("figure.curves svg").filter((r) => r.width > 0).length,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>`;

function chromium(args: string[], profile: string): string {
  const res = spawnSync(CHROMIUM as string, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    `--user-data-dir=${profile}`, ...args,
  ], { encoding: "utf8", timeout: 90_000 });
  assert.equal(res.status, 0, `chromium failed: ${res.error ?? ""}\n${res.stderr}`);
  return res.stdout;
}

test("the report renders its tables and curves in headless Chromium", { skip: CHROMIUM ? false : "chromium is not installed (apt-get install -y chromium)" }, async () => {
  const { dir, cleanup } = tempDir("amago2-report-browser-");
  try {
    buildStore(dir, [syntheticSweep(spec)]);
    const report = path.join(dir, "report.html");
    const { result } = await capture(() => runReport(parseReportOptions("mw", { out: report, reps: "300" }, { AMAGO2_HOME: dir })));
    assert.equal(result, 0);
    const probed = path.join(dir, "probed.html");
    writeFileSync(probed, readFileSync(report, "utf8").replace("</body>", `${PROBE}</body>`));

    const dom = chromium(["--dump-dom", `file://${probed}`], path.join(dir, "profile-dom"));
    const match = /<pre id="probe">([^<]+)<\/pre>/.exec(dom);
    assert.ok(match, "the probe did not run");
    const laidOut = JSON.parse(match[1]) as { tables: [number, number][]; rows: number; curves: number[]; svgs: number };
    assert.ok(laidOut.tables.length >= 2, "the ablation tables are on the page");
    for (const [w, h] of laidOut.tables) assert.ok(w > 200 && h > 60, `table laid out at ${w} x ${h}`);
    assert.ok(laidOut.rows >= 8, "four cells per table");
    assert.ok(laidOut.svgs >= 3, "one open figure per headline metric");
    assert.ok(laidOut.curves.length >= 12 && laidOut.curves.every((w) => w > 100), `curves ${laidOut.curves}`);

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = path.join(ARTIFACTS, "report.png");
    chromium([`--screenshot=${shot}`, "--window-size=1280,2400", `file://${report}`], path.join(dir, "profile-shot"));
    const png = readFileSync(shot);
    assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
    assert.equal(png.readUInt32BE(16), 1280);
  } finally {
    cleanup();
  }
});
