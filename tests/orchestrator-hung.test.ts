// The orchestrator's watchdog against a real worker whose Python hangs: a run silent for
// longer than the limit has its worker and Python killed and is recorded as crashed with
// RunHung (which --retries then resumes like any crash).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { startLocal } from "../src/exec/local.js";
import { orchestrate } from "../src/exec/orchestrator.js";
import { loadSweepFile } from "../src/plan/sweep-file.js";
import { expandGrid, makePlan } from "../src/plan/sweep.js";
import { openStore, runDirOf } from "../src/store/db.js";
import { getRun, upsertSweep } from "../src/store/runs.js";
import { createLogger } from "../src/ui/logger.js";
import { TINY_BENCHMARK_DEF, TINY_OVERRIDES, waitUntilGone } from "./exec-helpers.js";
import { tempDir, VENV_PYTHON } from "./helpers.js";

// Above the 10 s within which a training Python always writes an event (a heartbeat at the
// least): at 3 s a loaded machine's first update tripped the watchdog before the planted
// hang. What is left to chance is a Python start (imports, env) slower than this.
const HUNG_AFTER_S = 12;

// The timeout: a watchdog that never fires fails the test instead of hanging the suite.
test("a run silent past the limit has its worker killed and is recorded crashed with RunHung", { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir("amago2-hung-");
  const saved = { AMAGO2_ENTRY: process.env.AMAGO2_ENTRY, AMAGO2_FAULT: process.env.AMAGO2_FAULT };
  try {
    const sweepFile = path.join(dir, "hung.yaml");
    writeFileSync(sweepFile, JSON.stringify({
      name: "hung", benchmark: { name: "cartpole-tiny", ...TINY_BENCHMARK_DEF }, axes: { actor: ["ind"], critic: ["dep"] },
      seeds: [0], scale: "tiny", steps: 80, overrides: TINY_OVERRIDES,
    }));
    const home = path.join(dir, "home");
    const plan = makePlan(loadSweepFile(sweepFile), {});
    const runs = expandGrid(plan, (key) => runDirOf(home, key));
    const db = openStore(home);
    upsertSweep(db, { name: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source, command: "test" }, runs);
    // The workers inherit this environment: Python goes silent (alive, no heartbeat) after
    // the first metrics event.
    process.env.AMAGO2_ENTRY = "amago2.testing:train_with_fault";
    process.env.AMAGO2_FAULT = JSON.stringify({ kind: "hang", after_updates: 1 });
    const pids: number[] = [];
    const result = await orchestrate({
      db, runs, retries: 0, command: "test", log: createLogger({ json: true }), hungAfterS: HUNG_AFTER_S,
      startExecutor: (specs, handlers) => startLocal(specs, { parallel: 1, gpus: null, runsPerGpu: 1, python: VENV_PYTHON }, {
        ...handlers,
        onStart(key, info) {
          pids.push(info.pid);
          handlers.onStart(key, info);
        },
        onEvent(key, line) {
          const event = JSON.parse(line) as { type: string; pid?: number };
          if (event.type === "started" && event.pid) pids.push(event.pid); // Python's own pid
          handlers.onEvent(key, line);
        },
      }),
    });
    const run = getRun(db, runs[0].key)!;
    const metrics = db.prepare("SELECT count(*) AS n FROM events WHERE run_key = ? AND type = 'metrics'").get(runs[0].key) as { n: number };
    db.close();
    assert.equal(result.code, 1);
    assert.deepEqual([run.status, run.attempts, run.error_type], ["crashed", 1, "RunHung"]);
    assert.match(run.error_message!, new RegExp(`no event for ${HUNG_AFTER_S} s`));
    assert.ok(metrics.n >= 1, "the run trained (and reported) before it went silent");
    assert.equal(pids.length, 2, "the worker's and Python's pids were both seen");
    for (const pid of pids) assert.ok(await waitUntilGone(pid), `process ${pid} outlived the kill`);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    cleanup();
  }
});
