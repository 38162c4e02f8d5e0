// End to end through the real CLI, the real executor, the pythonia bridge and real PyTorch
// training at tiny scale on two real Gymnasium tasks (tests/fixtures/gym-pair.yaml): a 2x2
// sweep, its idempotent re-run, and an orchestrator killed while its run writes events.
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { test } from "node:test";
import { pidAlive } from "../src/exec/owner.js";
import { REPO_ROOT, runCli, startCli, tempDir } from "./helpers.js";

// Two epochs of the tiny preset (4 actors x 100 steps each): gradient updates, an eval and
// a checkpoint, small enough for the whole suite's time budget.
const STEPS = "800";
const SWEEP_FILE = path.join(REPO_ROOT, "tests", "fixtures", "gym-pair.yaml");

function journalLines(runDir: string): string[] {
  return readFileSync(path.join(runDir, "events.jsonl"), "utf8").split("\n").filter((l) => l.trim() !== "");
}

function openDb(home: string): Database.Database {
  return new Database(path.join(home, "amago2.db"), { readonly: true });
}

test("a 2x2 tiny sweep succeeds with metrics and evals recorded; running it again starts nothing", async () => {
  const { dir: home, cleanup } = tempDir();
  try {
    const args = ["sweep", SWEEP_FILE, "--steps", STEPS, "--parallel", "2", "--retries", "0", "--json"];
    const first = await runCli(args, { AMAGO2_HOME: home });
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as { started: number; runs: { key: string; status: string }[]; cells: unknown[] };
    assert.equal(report.started, 4);
    assert.deepEqual(report.runs.map((r) => r.status), ["succeeded", "succeeded", "succeeded", "succeeded"]);
    assert.equal(report.cells.length, 4);

    const db = openDb(home);
    const runs = db.prepare("SELECT * FROM runs ORDER BY key").all() as Record<string, unknown>[];
    assert.equal(runs.length, 4);
    assert.deepEqual(new Set(runs.map((r) => `${r.actor}/${r.critic}`)), new Set(["dep/dep", "dep/ind", "ind/dep", "ind/ind"]));
    for (const run of runs) {
      const key = run.key as string;
      assert.equal(run.status, "succeeded");
      assert.equal(run.attempts, 1);
      assert.equal(run.step, Number(STEPS));
      assert.ok((run.updates as number) > 0, "gradient updates happened");
      assert.equal(run.command, `amago2 ${args.join(" ")}`);
      const versions = JSON.parse(run.versions as string);
      assert.deepEqual([versions.node, typeof versions.torch, typeof versions.python], [process.version, "string", "string"]);
      assert.equal(JSON.parse(run.config as string).train.total_steps, Number(STEPS));
      const n = (sql: string) => (db.prepare(sql).get(key) as { n: number }).n;
      assert.ok(n("SELECT COUNT(*) AS n FROM metrics WHERE run_key = ? AND name = 'losses/critic'") > 0);
      assert.ok(n("SELECT COUNT(*) AS n FROM evals WHERE run_key = ?") > 0);
      assert.equal(n("SELECT COUNT(*) AS n FROM events WHERE run_key = ?"), journalLines(run.run_dir as string).length);
    }
    db.close();

    const again = await runCli(args, { AMAGO2_HOME: home });
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { started: number }).started, 0);
    const db2 = openDb(home);
    assert.deepEqual(db2.prepare("SELECT DISTINCT attempts FROM runs").all(), [{ attempts: 1 }]);
    db2.close();
  } finally {
    cleanup();
  }
});

/**
 * The worker pid of the (only) run once the store holds `minEvents` of its events: polls
 * the store, which the orchestrator writes, so the run is known to be mid-way.
 */
async function workerWritingEvents(home: string, minEvents: number): Promise<number> {
  for (let polls = 0; ; polls++) {
    assert.ok(polls < 600, "the run never started writing events");
    await delay(200);
    try {
      const db = openDb(home);
      const row = db.prepare("SELECT worker_pid, (SELECT COUNT(*) FROM events) AS n FROM runs").get() as { worker_pid: number; n: number } | undefined;
      db.close();
      if (row && row.n >= minEvents) return row.worker_pid;
    } catch (e) {
      // Until the orchestrator has created and migrated the store there is nothing to read;
      // any other database error fails the test here rather than as a timeout.
      if ((e as { code?: string }).code !== "SQLITE_CANTOPEN" && !/no such table/.test(String(e))) throw e;
    }
  }
}

test("SIGKILL of the orchestrator mid-run, then re-running: the run resumes and every event is stored exactly once", async () => {
  const { dir: home, cleanup } = tempDir();
  try {
    // Four epochs: the kill lands in the first, so the orphaned worker stops (at its next
    // event) well before the end and the re-run has a real resume to do.
    const args = ["ablate", "--actor", "ind", "--critic", "dep", "--benchmark", SWEEP_FILE, "--steps", "1600", "--retries", "0"];
    const { child, done } = startCli(args, { AMAGO2_HOME: home });
    const worker = await workerWritingEvents(home, 3);
    child.kill("SIGKILL");
    const killed = await done;
    assert.equal(killed.signal, "SIGKILL");

    const rerun = await runCli(args, { AMAGO2_HOME: home });
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.equal(pidAlive(worker), false, "the orphaned worker is gone");

    const db = openDb(home);
    const run = db.prepare("SELECT key, status, attempts, run_dir FROM runs").get() as { key: string; status: string; attempts: number; run_dir: string };
    assert.equal(run.status, "succeeded");
    assert.equal(run.attempts, 2);
    const lines = journalLines(run.run_dir);
    const seqs = (db.prepare("SELECT seq FROM events WHERE run_key = ? ORDER BY seq").all(run.key) as { seq: number }[]).map((r) => r.seq);
    assert.deepEqual(seqs, lines.map((_, i) => i), "every journal event exactly once, seq 0..n-1");
    const started = db.prepare("SELECT body FROM events WHERE run_key = ? AND type = 'started' ORDER BY seq").all(run.key) as { body: string }[];
    assert.deepEqual(started.map((s) => JSON.parse(s.body).resumed), [false, true]);
    db.close();
  } finally {
    cleanup();
  }
});

test("amago2 cancel stops a running run: it checkpoints, is recorded cancelled, and its worker exits", async () => {
  const { dir: home, cleanup } = tempDir();
  try {
    // Long enough that it cannot finish before the cancel lands (the orchestrator polls
    // every 2 s, Python stops at its next event, at most a 10 s heartbeat away); the cancel
    // ends it early, so the length costs nothing.
    const args = ["ablate", "--actor", "dep", "--critic", "ind", "--benchmark", SWEEP_FILE, "--steps", "8000", "--name", "to-cancel"];
    const { done } = startCli(args, { AMAGO2_HOME: home });
    const worker = await workerWritingEvents(home, 2);
    const cancel = await runCli(["cancel", "to-cancel", "--json"], { AMAGO2_HOME: home });
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal((JSON.parse(cancel.stdout) as { stopping: string[] }).stopping.length, 1);
    const sweep = await done;
    assert.equal(sweep.code, 1, "a cancelled run is not a success");
    assert.equal(pidAlive(worker), false);
    const db = openDb(home);
    const run = db.prepare("SELECT status, key FROM runs").get() as { status: string; key: string };
    assert.equal(run.status, "cancelled");
    const last = db.prepare("SELECT body FROM events WHERE run_key = ? AND type = 'finished'").get(run.key) as { body: string };
    assert.equal(JSON.parse(last.body).summary.status, "stopped", "it stopped at a safe point, checkpoint first");
    db.close();
  } finally {
    cleanup();
  }
});
