// The process machinery seen from the command line: Ctrl-C during a sweep, a retry after a
// crash. Real CLI process, real workers, real Python training on a tiny CartPole sweep.
import assert from "node:assert/strict";
import { execa, type ResultPromise } from "execa";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { BIN, storeRows, tempDir } from "./helpers.js";
import { journalLines, processesMentioning, waitUntilGone, writeTinySweep, type Event } from "./exec-helpers.js";

/** A one-run sweep file: 40 env steps and 2 updates per epoch, a checkpoint every 2 updates. */
function writeSweep(dir: string, name: string, steps: number): string {
  return writeTinySweep(dir, name, steps, { actor: ["ind"], critic: ["dep"] });
}

function sweep(home: string, file: string, env: Record<string, string> = {}): ResultPromise<{ reject: false }> {
  return execa(process.execPath, [BIN, "sweep", file, "--parallel", "1"], {
    reject: false,
    env: { AMAGO2_HOME: home, NO_COLOR: "1", ...env },
  });
}

interface RunRow {
  key: string;
  status: string;
  attempts: number;
  run_dir: string;
}

function runRows(home: string): RunRow[] {
  return storeRows<RunRow>(home, "SELECT key, status, attempts, run_dir FROM runs");
}

function storedEventSeqs(home: string, key: string): number[] {
  return storeRows<{ seq: number }>(home, "SELECT seq FROM events WHERE run_key = ? ORDER BY seq", key).map((r) => r.seq);
}

const parse = (lines: string[]) => lines.map((l) => JSON.parse(l) as Event);

/** Waits until some run's journal under `home` has an event `accept` likes. */
async function waitForEvent(home: string, accept: (e: Event) => boolean, withinMs = 120_000): Promise<string> {
  const runsDir = path.join(home, "runs");
  const deadline = Date.now() + withinMs;
  for (;;) {
    const dirs = (() => {
      try {
        return readdirSync(runsDir).map((d) => path.join(runsDir, d));
      } catch {
        return [];
      }
    })();
    const hit = dirs.find((d) => parse(journalLines(d)).some(accept));
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error("no such event in time");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test("Ctrl-C stops a sweep with exit 130, runs interrupted, no orphans; the next sweep resumes them", async () => {
  const { dir, cleanup } = tempDir("amago2-cli-exec-");
  try {
    const home = path.join(dir, "home");
    // 50 epochs: long enough that the stop, which travels CLI -> worker -> Python's next
    // event, always lands first (with 3 epochs a fast machine finished the run before it);
    // the resumed attempt then runs the rest in seconds.
    const file = writeSweep(dir, "ctrlc", 2000);
    const cli = sweep(home, file);
    const runDir = await waitForEvent(home, (e) => e.type === "checkpoint");
    cli.kill("SIGINT");
    const first = await cli;
    assert.equal(first.exitCode, 130, first.stderr);
    const [row] = runRows(home);
    assert.equal(row.status, "interrupted");
    const firstAttempt = parse(journalLines(runDir));
    assert.equal((firstAttempt.at(-1)!.summary as { status: string }).status, "stopped");
    const pythonPid = firstAttempt.find((e) => e.type === "started")!.pid!;
    assert.ok(await waitUntilGone(pythonPid), `python ${pythonPid} outlived the sweep`);
    assert.deepEqual(processesMentioning(runDir), [], "no worker left running");

    const second = await sweep(home, file);
    assert.equal(second.exitCode, 0, second.stderr);
    assert.equal(runRows(home)[0].status, "succeeded");
    const all = parse(journalLines(runDir));
    const resumed = all.slice(firstAttempt.length);
    assert.equal(resumed[0].type, "started");
    assert.equal(resumed[0].resumed, true);
    assert.ok(resumed[0].update > 0, "the second attempt starts from the checkpoint's update count");
    assert.deepEqual(storedEventSeqs(home, row.key), all.map((_, i) => i), "every event stored exactly once");
  } finally {
    cleanup();
  }
});

test("a run whose Python dies is retried and resumes from its checkpoint", async () => {
  const { dir, cleanup } = tempDir("amago2-cli-exec-");
  try {
    const home = path.join(dir, "home");
    const file = writeSweep(dir, "retry", 80); // 2 epochs, 4 updates
    // Python exits after 3 updates of an attempt: past the checkpoint at update 2, and more
    // than the 2 updates the resumed attempt needs to finish.
    const result = await sweep(home, file, {
      AMAGO2_ENTRY: "amago2.testing:train_with_fault",
      AMAGO2_FAULT: JSON.stringify({ kind: "os_exit", after_updates: 3 }),
    });
    assert.equal(result.exitCode, 0, result.stderr);
    const [row] = runRows(home);
    assert.equal(row.status, "succeeded");
    assert.equal(row.attempts, 2);
    const starts = parse(journalLines(row.run_dir)).filter((e) => e.type === "started");
    assert.deepEqual(starts.map((e) => [e.resumed, e.update]), [[false, 0], [true, 2]]);
  } finally {
    cleanup();
  }
});
