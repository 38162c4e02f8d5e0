// The orchestrator's store logic against a scripted executor that honours the executor
// contract (src/exec/types.ts): retries, failures, resume after a dead orchestrator, and
// the journal filling whatever the IPC stream missed. The real executor is covered by the
// end-to-end tests.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import os from "node:os";
import { appendFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { orchestrate } from "../src/exec/orchestrator.js";
import type { ExecutorHandlers, LocalExecution, RunOutcome, RunSpec } from "../src/exec/types.js";
import { loadSweepFile, resolveSweepArg } from "../src/plan/sweep-file.js";
import { expandGrid, makePlan } from "../src/plan/sweep.js";
import { openStore, runDirOf, type Store } from "../src/store/db.js";
import { getRun, markEnded, upsertSweep, type PlannedRun } from "../src/store/runs.js";
import { createLogger } from "../src/ui/logger.js";
import { tempDir } from "./helpers.js";

const line = (seq: number, type: string, extra: object = {}) =>
  JSON.stringify({ seq, t: 100 + seq, type, step: seq * 10, update: seq, ...extra });
const finished = (seq: number, status: string, error: object | null = null) =>
  line(seq, "finished", { summary: { status, steps: seq * 10, updates: seq, wall_s: 1, error } });

/** One scripted attempt: journal lines written, how many of them reach onEvent, then the outcome. */
interface Attempt {
  lines: string[];
  delivered: number;
  outcome: RunOutcome;
}

function scriptedExecutor(script: Map<string, Attempt[]>, startedKeys: string[]) {
  return (specs: RunSpec[], handlers: ExecutorHandlers): LocalExecution => {
    const queue = [...specs];
    let resolveIdle!: () => void;
    const idle = new Promise<void>((r) => (resolveIdle = r));
    const pump = () => {
      const spec = queue.shift();
      if (!spec) return resolveIdle();
      if (!handlers.claim(spec.key)) return setImmediate(pump);
      const attempt = script.get(spec.key)!.shift()!;
      startedKeys.push(spec.key);
      handlers.onStart(spec.key, { pid: 999_999, device: "cpu" });
      mkdirSync(spec.runDir, { recursive: true });
      for (const [i, l] of attempt.lines.entries()) {
        appendFileSync(path.join(spec.runDir, "events.jsonl"), `${l}\n`);
        if (i < attempt.delivered) handlers.onEvent(spec.key, l);
      }
      handlers.onExit(spec.key, attempt.outcome);
      setImmediate(pump);
    };
    setImmediate(pump);
    return { enqueue: (s) => queue.push(s), requestStop() {}, kill() {}, idle };
  };
}

function setup(seeds = "gym-mini"): { home: string; db: Store; runs: PlannedRun[]; cleanup: () => void } {
  const { dir: home, cleanup } = tempDir();
  const plan = makePlan(loadSweepFile(resolveSweepArg(seeds)), { scale: "tiny", actors: ["ind"], critics: ["dep", "ind"] });
  const runs = expandGrid(plan, (key) => runDirOf(home, key));
  const db = openStore(home);
  upsertSweep(db, { name: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source, command: "test" }, runs);
  return { home, db, runs, cleanup: () => (db.close(), cleanup()) };
}

const log = createLogger({ json: true });
const eventCount = (db: Store, key: string) =>
  (db.prepare("SELECT COUNT(*) AS n FROM events WHERE run_key = ?").get(key) as { n: number }).n;

test("a crash is retried and resumes; a Python exception fails without retry; the journal fills IPC gaps", async () => {
  const { db, runs, cleanup } = setup();
  try {
    const [crashy, broken] = runs;
    const started: string[] = [];
    const script = new Map<string, Attempt[]>([
      [crashy.key, [
        { lines: [line(0, "started", { resumed: false, config: {}, versions: {}, device: "cpu", pid: 5 }), line(1, "heartbeat")], delivered: 1,
          outcome: { kind: "crashed", reason: "python exited with code 1", exitCode: 12, signal: null } },
        { lines: [line(2, "started", { resumed: true, config: {}, versions: {}, device: "cpu", pid: 6 }), finished(3, "succeeded")], delivered: 2,
          outcome: { kind: "finished", summary: { status: "succeeded" } } },
      ]],
      [broken.key, [
        { lines: [line(0, "error", { error_type: "ValueError", message: "bad shape", traceback: "Traceback...\nValueError: bad shape" })], delivered: 0,
          outcome: { kind: "finished", summary: { status: "failed", error: { type: "ValueError", message: "bad shape", traceback: "Traceback...\nValueError: bad shape" } } } },
      ]],
    ]);
    const result = await orchestrate({ db, runs, retries: 1, command: "amago2 sweep gym-mini", log, startExecutor: scriptedExecutor(script, started) });
    assert.equal(result.code, 1);
    assert.deepEqual(started, [crashy.key, broken.key, crashy.key]);
    const a = getRun(db, crashy.key)!;
    assert.deepEqual([a.status, a.attempts, eventCount(db, crashy.key), a.orchestrator_pid], ["succeeded", 2, 4, process.pid]);
    const b = getRun(db, broken.key)!;
    assert.deepEqual([b.status, b.attempts, b.error_type, eventCount(db, broken.key)], ["failed", 1, "ValueError", 1]);
    assert.match(b.error_traceback!, /ValueError: bad shape/);
  } finally {
    cleanup();
  }
});

test("runs left running by a dead orchestrator are settled from their journal or resumed", async () => {
  const { db, runs, cleanup } = setup();
  try {
    const deadPid = spawnSync(process.execPath, ["-e", "console.log(process.pid)"]).stdout.toString().trim();
    const [finishedRun, midway] = runs;
    for (const r of runs) {
      db.prepare("UPDATE runs SET status = 'running', attempts = 1, orchestrator_pid = ? WHERE key = ?").run(Number(deadPid), r.key);
      mkdirSync(r.runDir, { recursive: true });
    }
    // The first run finished but its orchestrator died before recording it; the second was mid-run.
    appendFileSync(path.join(finishedRun.runDir, "events.jsonl"), `${line(0, "heartbeat")}\n${finished(1, "succeeded")}\n`);
    appendFileSync(path.join(midway.runDir, "events.jsonl"), `${line(0, "heartbeat")}\n`);
    const started: string[] = [];
    const script = new Map<string, Attempt[]>([[midway.key, [
      { lines: [finished(1, "succeeded")], delivered: 1, outcome: { kind: "finished", summary: { status: "succeeded" } } },
    ]]]);
    const result = await orchestrate({ db, runs, retries: 0, command: "c", log, startExecutor: scriptedExecutor(script, started) });
    assert.equal(result.code, 0);
    assert.deepEqual(started, [midway.key]);
    assert.deepEqual([getRun(db, finishedRun.key)!.status, eventCount(db, finishedRun.key)], ["succeeded", 2]);
    assert.deepEqual([getRun(db, midway.key)!.status, getRun(db, midway.key)!.attempts, eventCount(db, midway.key)], ["succeeded", 2, 2]);

    const again = await orchestrate({ db, runs, retries: 0, command: "c", log, startExecutor: () => assert.fail("nothing to start") });
    assert.deepEqual([again.code, again.started], [0, 0]);
  } finally {
    cleanup();
  }
});

test("a run another live amago2 holds is never started here: this one waits for it to end", async () => {
  const { db, runs, cleanup } = setup();
  try {
    // process.ppid is alive and is not this process: it stands for another amago2, on this
    // host, that renewed its claim a moment ago.
    db.prepare("UPDATE runs SET status = 'running', orchestrator_pid = ?, owner_host = ?, owner_seen_at = ? WHERE key = ?")
      .run(process.ppid, os.hostname(), Date.now() / 1000, runs[0].key);
    const started: string[] = [];
    const script = new Map<string, Attempt[]>([[runs[1].key, [
      { lines: [finished(0, "succeeded")], delivered: 1, outcome: { kind: "finished", summary: { status: "succeeded" } } }]]]);
    let endedElsewhere = false;
    const executor = scriptedExecutor(script, started);
    const result = await orchestrate({
      db, runs, retries: 0, command: "c", log,
      startExecutor: (specs, handlers) => executor(specs, {
        ...handlers,
        onExit(key, outcome) {
          handlers.onExit(key, outcome);
          // The other amago2 finishes its run while this one waits for it.
          setTimeout(() => {
            endedElsewhere = true;
            markEnded(db, runs[0].key, { status: "succeeded" });
          }, 300);
        },
      }),
    });
    assert.ok(endedElsewhere, "returned only once the other run had ended");
    assert.deepEqual(result.busyElsewhere, [runs[0].key]);
    assert.deepEqual(started, [runs[1].key]);
    assert.equal(getRun(db, runs[0].key)!.attempts, 0, "never attempted here");
    assert.equal(result.code, 0, "both runs have succeeded");
  } finally {
    cleanup();
  }
});

test("a run cancelled while queued here is stopped when it starts and recorded cancelled", async () => {
  const { db, runs, cleanup } = setup();
  try {
    const [first, second] = runs;
    const started: string[] = [];
    const script = new Map<string, Attempt[]>([
      [first.key, [{ lines: [finished(0, "succeeded")], delivered: 1, outcome: { kind: "finished", summary: { status: "succeeded" } } }]],
      [second.key, [{ lines: [finished(0, "stopped")], delivered: 1, outcome: { kind: "interrupted" } }]],
    ]);
    const scripted = scriptedExecutor(script, started);
    const result = await orchestrate({
      db, runs, retries: 0, command: "c", log,
      startExecutor: (specs, handlers) => scripted(specs, {
        ...handlers,
        onStart(key, info) {
          // `amago2 cancel <sweep>` arrives while the first run runs and the second is queued.
          if (key === first.key) markEnded(db, second.key, { status: "cancelled" });
          handlers.onStart(key, info);
        },
      }),
    });
    assert.deepEqual(started, [first.key], "a run cancelled while queued never starts");
    assert.deepEqual([getRun(db, first.key)!.status, getRun(db, second.key)!.status], ["succeeded", "cancelled"]);
    assert.equal(result.code, 1);
  } finally {
    cleanup();
  }
});
