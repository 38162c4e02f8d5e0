// The dry run's cost model: seconds per env step of succeeded runs, from their journals,
// and the estimate of what a sweep still has to do.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ResolvedRun } from "../src/bridge/request.js";
import { collectDryRun, renderDryRun } from "../src/plan/dry-run.js";
import { asDescription } from "../src/plan/describe.js";
import type { SweepPlan } from "../src/plan/sweep.js";
import { measuredCellCosts } from "../src/store/costs.js";
import { openStoreReadOnly } from "../src/store/db.js";
import { buildStore, type FixtureRun } from "./report-fixture.js";
import { tempDir } from "./helpers.js";

/** A journal of attempts, each a list of [seconds, env steps] its events were written at. */
function journal(attempts: [number, number][][]): string[] {
  const lines: string[] = [];
  for (const events of attempts) {
    events.forEach(([t, step], i) => {
      const base = { seq: lines.length, t, step, update: step / 10 };
      lines.push(JSON.stringify(i === 0
        ? { ...base, type: "started", resumed: lines.length > 0, config: { train: { total_steps: 2000 } }, total_steps: 2000,
          versions: { python: "3.11.7", torch: "2.13.0" }, device: "cpu", pid: 4242 }
        : { ...base, type: "heartbeat" }));
    });
  }
  return lines;
}

function run(key: string, actor: "dep" | "ind", critic: "dep" | "ind", scale: "tiny" | "cpu", status: string,
  events: string[]): FixtureRun {
  return { key, benchmark: "gym-mini", actor, critic, seed: 0, scale, status, events,
    request: { run_dir: `/runs/${key}`, benchmark: "gym-mini", actor, critic, seed: 0, scale, device: "auto", overrides: {} } };
}

test("a cell's cost is the median over its succeeded runs of attempt time per env step", () => {
  const { dir, cleanup } = tempDir();
  try {
    buildStore(dir, [{
      sweep: { name: "s", benchmark: "gym-mini", scale: "cpu", source: "experiments/gym-mini.yaml", command: "amago2 sweep gym-mini" },
      runs: [
        // Crashed at 1000 steps after 100 s, resumed 400 s later, done 100 s after that:
        // 200 s of attempts for 2000 steps; the gap between the attempts is not counted.
        run("a", "dep", "dep", "cpu", "succeeded", journal([[[0, 0], [100, 1000]], [[500, 1000], [600, 2000]]])),
        run("b", "dep", "dep", "cpu", "succeeded", journal([[[0, 0], [300, 1000], [600, 2000]]])),
        run("c", "dep", "dep", "cpu", "failed", journal([[[0, 0], [5000, 1000]]])),
        run("d", "ind", "ind", "cpu", "succeeded", journal([[[0, 0], [800, 2000]]])),
        run("e", "ind", "ind", "tiny", "succeeded", journal([[[0, 0], [1, 2000]]])),
      ],
    }]);
    const db = openStoreReadOnly(dir)!;
    try {
      assert.deepEqual(measuredCellCosts(db, "gym-mini", "cpu"), [
        { actor: "dep", critic: "dep", settings: {}, runs: 2, secondsPerStep: (0.1 + 0.3) / 2 },
        { actor: "ind", critic: "ind", settings: {}, runs: 1, secondsPerStep: 0.4 },
      ]);
      assert.deepEqual(measuredCellCosts(db, "gym-mini", "small"), []);
    } finally {
      db.close();
    }
  } finally {
    cleanup();
  }
});

test("the dry run estimates only what is left: nothing for a succeeded run, the rest after a checkpoint; it names the settings a resume keeps", () => {
  const plan = { name: "s", benchmark: "gym-mini", scale: "cpu", source: "experiments/gym-mini.yaml",
    actors: ["dep", "ind"], critics: ["dep", "ind"], axes: [], seeds: [0] } as unknown as SweepPlan;
  const cell = (key: string, actor: "dep" | "ind", critic: "dep" | "ind") => ({ key, actor, critic, seed: 0 });
  const runs = [cell("done", "dep", "dep"), cell("half", "dep", "dep"), cell("new", "ind", "ind"), cell("unknown", "ind", "dep")];
  const resolved: ResolvedRun = { config: { agent: {}, train: { total_steps: 2000 } }, preset_keys: ["total_steps"], replaced_by_scale: {},
    kept_settings: {} };
  const desc = asDescription({ benchmarks: {}, hyperparameters: {} });
  const report = collectDryRun(plan, runs as never, desc, [resolved], null, {
    progress: new Map([["done", { status: "succeeded", step: 2000 }], ["half", { status: "interrupted", step: 500 }]]),
    costModel: [{ actor: "dep", critic: "dep", settings: {}, runs: 2, secondsPerStep: 0.2 },
      { actor: "ind", critic: "ind", settings: {}, runs: 1, secondsPerStep: 0.4 }],
  }, new Map([["done", { eval_trials_per_task: [3, 10] }], ["half", { eval_trials_per_task: [3, 10] }]]));
  assert.deepEqual(report.runs.map((r) => [r.key, r.stepsToDo, r.estimatedSeconds]), [
    ["done", 0, 0], ["half", 1500, 300], ["new", 2000, 800], ["unknown", 2000, null]]);
  assert.equal(report.stepsToDo, 5500);
  assert.equal(report.estimatedEnvSteps, 8000);
  // Only a run that will resume keeps anything: the succeeded one is not run again.
  assert.deepEqual(report.runs.map((r) => r.keptSettings), [{}, { eval_trials_per_task: [3, 10] }, {}, {}]);
  const lines = renderDryRun(report, "/store").split("\n").filter((l) => l.includes("started with"));
  assert.deepEqual(lines, ["1 run resumes with the settings it started with, not the above: eval_trials_per_task=3 (now 10) (half)"]);
});
