// runX() of the read and cancel commands on a temporary AMAGO2_HOME: the data they return
// or print as JSON, never coloured text.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { main } from "../src/cli.js";
import { loadSweepFile, resolveSweepArg } from "../src/plan/sweep-file.js";
import { expandGrid, makePlan } from "../src/plan/sweep.js";
import { openStore, runDirOf } from "../src/store/db.js";
import { ingestLines } from "../src/store/ingest.js";
import { getRun, markEnded, upsertSweep } from "../src/store/runs.js";
import type { CellSummary } from "../src/report/summary.js";
import { capture, fingerprint, tempDir, withHome } from "./helpers.js";

function seedHome(home: string) {
  const plan = makePlan(loadSweepFile(resolveSweepArg("gym-mini")), { scale: "tiny", seeds: [0, 1], name: "demo" });
  const runs = expandGrid(plan, (key) => runDirOf(home, key));
  const db = openStore(home);
  upsertSweep(db, { name: "demo", benchmark: plan.benchmark, scale: "tiny", source: plan.source, command: "amago2 sweep gym-mini" }, runs);
  // ind/ind seed 0 and 1 succeeded, their last evals' last episodes returning 10 and 30; dep/dep seed 0 is running.
  const byCell = (a: string, c: string, s: number) => runs.find((r) => r.actor === a && r.critic === c && r.seed === s)!;
  for (const [seed, ret] of [[0, 10], [1, 30]] as const) {
    const r = byCell("ind", "ind", seed);
    ingestLines(db, r.key, [
      JSON.stringify({ seq: 0, t: 1, type: "eval", step: 100, update: 1, split: "train", tasks: { A: { trials: 1, return: [1, 2], success: null, score: null } } }),
      JSON.stringify({ seq: 1, t: 2, type: "eval", step: 200, update: 2, split: "train", tasks: { A: { trials: 1, return: [0, ret], success: [0, 1], score: null }, B: { trials: 1, return: [0, ret], success: [0, 0], score: null } } }),
    ]);
    markEnded(db, r.key, { status: "succeeded", exitCode: 0 });
  }
  const running = byCell("dep", "dep", 0);
  db.prepare("UPDATE runs SET status = 'running', orchestrator_pid = ? WHERE key = ?").run(process.ppid, running.key);
  mkdirSync(running.runDir, { recursive: true });
  writeFileSync(path.join(running.runDir, "worker.log"), "collecting\nupdate 10\n");
  db.close();
  return { runs, byCell, running };
}

async function json(args: string[]): Promise<{ code: number; data: unknown }> {
  const { result, stdout } = await capture(() => main(["node", "amago2", ...args]));
  return { code: result, data: stdout ? JSON.parse(stdout) : undefined };
}

test("runs, status and status <sweep> report the store's data", async () => {
  const { dir: home, cleanup } = tempDir();
  try {
    const { runs, byCell } = seedHome(home);
    await withHome(home, async () => {
      const listed = await json(["runs", "--json"]);
      assert.equal(listed.code, 0);
      const rows = listed.data as { key: string; status: string }[];
      assert.deepEqual(rows.map((r) => r.key).sort(), runs.map((r) => r.key).sort());
      assert.equal(rows.find((r) => r.key === byCell("ind", "ind", 1).key)!.status, "succeeded");

      const all = await json(["status", "--json"]);
      assert.deepEqual(all.data, [{ sweep: "demo", benchmark: "gym-mini", scale: "tiny", counts: { planned: 5, running: 1, succeeded: 2 } }]);

      const one = (await json(["status", "demo", "--json"])).data as { cells: CellSummary[] };
      const indind = one.cells.find((c) => c.label === "ind/ind")!;
      assert.equal(indind.succeeded, 2);
      // The table's final rule: per task, the last episode's value averaged over the (up to 3)
      // final evals; A is [mean(2, 10), mean(2, 30)] = [6, 16] and B [10, 30], so the IQM
      // of {6, 10, 16, 30} is 13. Success: A [0.5, 0.5] and B [0, 0] averaged over the trial.
      const iqms = Object.fromEntries(indind.metrics.map((m) => [m.id, m.iqm]));
      assert.deepEqual(iqms, { success: 0.25, success_last: 0.5, return: 13 });
      assert.ok(one.cells.find((c) => c.label === "dep/dep")!.metrics.every((m) => m.iqm === null && m.counted === 0));
      // And `table` prints exactly these values.
      const table = (await json(["table", "demo", "--format", "json", "--reps", "100"])).data as { rows: Record<string, { value: number } | null>[] };
      const row = table.rows.find((r) => String(r.actor) === "ind" && String(r.critic) === "ind")!;
      assert.deepEqual([row["success/iqm"]?.value, row["success_last/iqm"]?.value, row["return/iqm"]?.value], [0.25, 0.5, 13]);
    });
  } finally {
    cleanup();
  }
});

test("read commands on an empty AMAGO2_HOME create nothing; unknown names are one-line errors", async () => {
  const { dir, cleanup } = tempDir();
  const home = path.join(dir, "fresh");
  try {
    await withHome(home, async () => {
      assert.deepEqual(await json(["runs", "--json"]), { code: 0, data: [] });
      assert.deepEqual(await json(["status", "--json"]), { code: 0, data: [] });
      assert.equal(existsSync(home), false);
    });
    seedHome(home);
    const before = fingerprint(home);
    await withHome(home, async () => {
      const cases: [string[], RegExp][] = [
        [["status", "nope"], /^amago2: no sweep 'nope' in .*fresh \(its sweeps: demo\)$/],
        [["logs", "zzz"], /^amago2: no run 'zzz'/],
        [["cancel", "zzz"], /^amago2: no sweep or run 'zzz' in .*fresh \(its sweeps: demo; run keys: `amago2 runs`\)$/],
        [["logs", "gym-mini-"], /matches 8 runs/],
      ];
      for (const [args, says] of cases) {
        const { result, stderr, stdout } = await capture(() => main(["node", "amago2", ...args]));
        assert.equal(result, 2, args.join(" "));
        assert.equal(stdout, "");
        assert.match(stderr.trimEnd(), says);
        assert.equal(stderr.trimEnd().split("\n").length, 1);
      }
    });
    assert.equal(fingerprint(home), before);
  } finally {
    cleanup();
  }
});

test("logs prints the worker log of a run found by key prefix", async () => {
  const { dir: home, cleanup } = tempDir();
  try {
    const { running } = seedHome(home);
    await withHome(home, async () => {
      const out = await capture(() => main(["node", "amago2", "logs", running.key.slice(0, -3)]));
      assert.deepEqual([out.result, out.stdout], [0, "collecting\nupdate 10\n"]);
    });
  } finally {
    cleanup();
  }
});

test("cancel: idle runs become cancelled, running ones are flagged for their orchestrator, succeeded stay", async () => {
  const { dir: home, cleanup } = tempDir();
  try {
    const { runs, byCell, running } = seedHome(home);
    await withHome(home, async () => {
      const res = (await json(["cancel", "demo", "--json"])).data as { cancelled: string[]; stopping: string[]; untouched: string[] };
      assert.equal(res.cancelled.length, 5);
      assert.deepEqual(res.stopping, [running.key]);
      assert.deepEqual(res.untouched.sort(), [byCell("ind", "ind", 0).key, byCell("ind", "ind", 1).key].sort());
    });
    const db = openStore(home);
    assert.equal(getRun(db, running.key)!.cancel_requested, 1);
    assert.equal(getRun(db, running.key)!.status, "running");
    assert.equal(runs.filter((r) => getRun(db, r.key)!.status === "cancelled").length, 5);
    db.close();
  } finally {
    cleanup();
  }
});
