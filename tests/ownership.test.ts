// One owner per run and nothing lost, through the real CLI, real workers and real Python
// training: two sweeps on one store, a journal cut short, a cancel during a live sweep.
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { spawn, spawnSync } from "node:child_process";
import { execa, type ResultPromise } from "execa";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { openStore } from "../src/store/db.js";
import { BIN, fingerprint, storeWithOneRun, tempDir } from "./helpers.js";
import { journalLines, processesMentioning, writeTinySweep, type Event } from "./exec-helpers.js";

/** A sweep file of `critics.length` CartPole runs (40 env steps and 2 updates per epoch). */
function writeSweep(dir: string, name: string, steps: number, critics: string[]): string {
  return writeTinySweep(dir, name, steps, { actor: ["ind"], critic: critics });
}

function cli(home: string, args: string[], env: Record<string, string> = {}): ResultPromise<{ reject: false }> {
  return execa(process.execPath, [BIN, ...args], { reject: false, env: { AMAGO2_HOME: home, NO_COLOR: "1", ...env } });
}

interface Row {
  key: string;
  status: string;
  attempts: number;
  run_dir: string;
}

function query<T>(home: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path.join(home, "amago2.db"), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const rows = (home: string) => query<Row>(home, "SELECT key, status, attempts, run_dir FROM runs ORDER BY key");

/** The runs of a store a CLI may still be creating: none until its database and tables exist. */
function rowsSoFar(home: string): Row[] {
  if (!existsSync(path.join(home, "amago2.db"))) return [];
  try {
    return rows(home);
  } catch (err) {
    if ((err as { code?: string }).code === "SQLITE_ERROR") return []; // the tables are not made yet
    throw err;
  }
}
const storedSeqs = (home: string, key: string) =>
  query<{ seq: number }>(home, "SELECT seq FROM events WHERE run_key = ? ORDER BY seq", key).map((r) => r.seq);
const events = (runDir: string) => journalLines(runDir).map((l) => JSON.parse(l) as Event);

/** Waits until a run of `home` is running and has written a checkpoint; returns it. */
async function runningWithCheckpoint(home: string): Promise<Row> {
  for (;;) {
    const running = rowsSoFar(home).find((r) => r.status === "running");
    if (running && events(running.run_dir).some((e) => e.type === "checkpoint")) return running;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The journal and the store hold the same events, numbered 0, 1, 2, ... once each. */
function assertJournalMatchesStore(home: string, row: Row): void {
  const seqs = events(row.run_dir).map((e) => e.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i), `${row.key}: the journal is numbered without gaps or repeats`);
  assert.deepEqual(storedSeqs(home, row.key), seqs, `${row.key}: the store holds exactly the journal's events`);
}

test("two sweeps started together on one fresh store share the runs: each trained once, both end with the table", async () => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    const file = writeSweep(dir, "shared", 200, ["dep", "ind"]);
    const [a, b] = await Promise.all([cli(home, ["sweep", file, "--parallel", "1"]), cli(home, ["sweep", file, "--parallel", "1"])]);
    for (const res of [a, b]) {
      assert.equal(res.exitCode, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /unexpected error/);
      assert.match(res.stdout, /\| actor \| critic \| seeds \|/);
    }
    for (const row of rows(home)) {
      assert.deepEqual([row.status, row.attempts], ["succeeded", 1], row.key);
      const starts = events(row.run_dir).filter((e) => e.type === "started");
      assert.equal(starts.length, 1, `${row.key} was trained once`);
      assertJournalMatchesStore(home, row);
    }
  } finally {
    cleanup();
  }
});

test("a journal cut short is given back the events the store holds before the run resumes: nothing is dropped", async () => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    const file = writeSweep(dir, "cut", 120, ["dep"]);
    // Python dies after 3 updates of the attempt (past the checkpoint at update 2).
    const crashed = await cli(home, ["sweep", file, "--retries", "0"], {
      AMAGO2_ENTRY: "amago2.testing:train_with_fault", AMAGO2_FAULT: JSON.stringify({ kind: "os_exit", after_updates: 3 }),
    });
    assert.equal(crashed.exitCode, 1, crashed.stderr);
    const [row] = rows(home);
    assert.equal(row.status, "crashed");
    const before = storedSeqs(home, row.key);
    const journal = path.join(row.run_dir, "events.jsonl");
    truncateSync(journal, Math.floor(statSync(journal).size / 2)); // a crash or a full disk cut it mid-line
    const text = readFileSync(journal, "utf8");
    const cutTo = text.slice(0, text.lastIndexOf("\n") + 1).split("\n").length - 1; // complete lines left

    const resumed = await cli(home, ["sweep", file]);
    assert.equal(resumed.exitCode, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`${row.key}: the journal lacked the last ${before.length - cutTo} event\\(s\\) the store holds; restored them`));
    const [after] = rows(home);
    assert.deepEqual([after.status, after.attempts], ["succeeded", 2]);
    assertJournalMatchesStore(home, after);
    const starts = events(after.run_dir).filter((e) => e.type === "started");
    assert.deepEqual(starts.map((e) => [e.seq === 0, e.resumed]), [[true, false], [false, true]]);
    assert.ok(starts[1].seq > before.at(-1)!, "the new attempt's events follow every event of the first");
  } finally {
    cleanup();
  }
});

test("cancel during a live sweep: the running run stops and is recorded cancelled, the queued one never starts", async () => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    const file = writeSweep(dir, "stopme", 4000, ["dep", "ind"]);
    const sweep = cli(home, ["sweep", file, "--parallel", "1"]);
    await runningWithCheckpoint(home); // the first run is well under way
    const cancel = await cli(home, ["cancel", "stopme"]);
    assert.equal(cancel.exitCode, 0, cancel.stderr);
    const done = await sweep;
    assert.equal(done.exitCode, 1, done.stderr);
    const [first, second] = rows(home).sort((x, y) => y.attempts - x.attempts);
    assert.deepEqual([first.status, first.attempts], ["cancelled", 1], "stopped after a checkpoint, not crashed or retried");
    assert.equal((events(first.run_dir).at(-1)!.summary as { status: string }).status, "stopped");
    assert.deepEqual([second.status, second.attempts], ["cancelled", 0], "the queued run never started");
  } finally {
    cleanup();
  }
});

test("Ctrl-C with the output piped to a reader that died with it (`sweep | tee log`): exit 130, runs interrupted", async () => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    const file = writeSweep(dir, "piped", 4000, ["dep"]);
    const sweep = spawn(process.execPath, [BIN, "sweep", file], { env: { ...process.env, AMAGO2_HOME: home, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => sweep.on("exit", (code) => resolve(code)));
    await runningWithCheckpoint(home);
    // The terminal's Ctrl-C reaches the whole pipeline: the reader (tee) dies, then amago2
    // is told to stop, and everything it writes from then on meets a closed pipe.
    sweep.stdout.destroy();
    sweep.stderr.destroy();
    sweep.kill("SIGINT");
    assert.equal(await exited, 130);
    const [row] = rows(home);
    assert.equal(row.status, "interrupted");
    assert.equal((events(row.run_dir).at(-1)!.summary as { status: string }).status, "stopped");
  } finally {
    cleanup();
  }
});

/** Make `file` unwritable even for root (the immutable attribute), or say why not. */
function makeImmutable(file: string, on: boolean): string | null {
  const res = spawnSync("chattr", [on ? "+i" : "-i", file], { encoding: "utf8" });
  return res.status === 0 ? null : `chattr is not available here (${(res.stderr || String(res.error)).trim()})`;
}

test("a read-only store: read commands work, write commands say so in one line, exit 2 and write nothing", async (t) => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    storeWithOneRun(home, "kept", "k");
    const file = path.join(home, "amago2.db");
    const why = makeImmutable(file, true);
    if (why) return t.skip(why);
    try {
      const stored = readFileSync(file);
      for (const read of [["status"], ["runs"], ["status", "kept"]]) {
        const res = await cli(home, read);
        assert.equal(res.exitCode, 0, `${read.join(" ")}: ${res.stderr}`);
      }
      assert.ok(readFileSync(file).equals(stored), "reading changed nothing");
      // (Reading a WAL store whose file is read-only leaves SQLite's empty -wal and -shm.)
      const before = fingerprint(home);
      for (const write of [["sweep", "gym-mini", "--scale", "tiny", "--seeds", "1"], ["cancel", "kept"]]) {
        const res = await cli(home, write);
        assert.equal(res.exitCode, 2, `${write.join(" ")}: ${res.stderr}`);
        assert.match(res.stderr, /^amago2: .*amago2\.db cannot be written \(attempt to write a readonly database\): make it and its directory writable/);
        assert.equal(res.stderr.trim().split("\n").length, 1, "one line");
      }
      assert.equal(fingerprint(home), before, "nothing written");
    } finally {
      makeImmutable(file, false);
    }
  } finally {
    cleanup();
  }
});

/** A tmpfs of `mib` MiB at `dir` (root only), or why not. */
function mountTmpfs(dir: string, mib: number): string | null {
  mkdirSync(dir, { recursive: true });
  const res = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${mib}m`, "tmpfs", dir], { encoding: "utf8" });
  return res.status === 0 ? null : `cannot mount a tmpfs here (${(res.stderr || String(res.error)).trim()})`;
}

test("a disk that fills up mid-sweep: one clear line, exit 1; once space is freed the sweep resumes and the journal and store agree", async (t) => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  const home = path.join(dir, "small-disk");
  const why = mountTmpfs(home, 64);
  if (why) {
    cleanup();
    return t.skip(why);
  }
  try {
    const file = writeSweep(dir, "full", 1200, ["dep"]);
    const sweep = cli(home, ["sweep", file, "--retries", "0"]);
    await runningWithCheckpoint(home);
    // Fill every free byte: the store, the journal and the checkpoints all meet ENOSPC.
    const filler = path.join(home, "filler");
    spawnSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=1M"], { encoding: "utf8" });
    const full = await sweep;
    assert.equal(full.exitCode, 1, full.stderr);
    const last = full.stderr.trim().split("\n").at(-1)!;
    assert.match(last, /^amago2: the disk is full \(.*\): free space, then run the same command again/);
    assert.doesNotMatch(full.stderr, /^\s+at /m, "no stack trace");

    rmSync(filler);
    const again = await cli(home, ["sweep", file]);
    assert.equal(again.exitCode, 0, again.stderr);
    const [row] = rows(home);
    assert.equal(row.status, "succeeded");
    assertJournalMatchesStore(home, row);
  } finally {
    spawnSync("umount", [home]);
    cleanup();
  }
});

test("a run left running by an amago2 that is gone shows as stale, with who and since when", async () => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    storeWithOneRun(home, "left", "k");
    const db = openStore(home);
    const dead = Number(spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" }).stdout.trim());
    db.prepare("UPDATE runs SET status = 'running', orchestrator_pid = ?, owner_host = ?, owner_seen_at = ? WHERE key = 'k'")
      .run(dead, os.hostname(), Date.UTC(2026, 10, 30, 12, 0, 0) / 1000);
    db.close();
    const listed = JSON.parse((await cli(home, ["runs", "--json"])).stdout) as { status: string; stale: string | null }[];
    assert.equal(listed[0].status, "running");
    assert.equal(listed[0].stale, `its amago2 (pid ${dead} on ${os.hostname()}) is gone, last seen 2026-11-30 12:00:00 UTC; the next sweep resumes it`);
    const status = await cli(home, ["status", "left"]);
    assert.match(status.stdout, /running \(stale\)/);
  } finally {
    cleanup();
  }
});

test("SIGKILL to the CLI or to a worker at random moments, round after round: in the end every journal and the store agree", async () => {
  const { dir, cleanup } = tempDir("amago2-owner-");
  try {
    const home = path.join(dir, "home");
    const file = writeSweep(dir, "crashy", 400, ["dep", "ind"]);
    let state = 20261201; // a fixed seed: the same moments every time the test runs
    const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 4; round++) {
      const sweep = cli(home, ["sweep", file, "--parallel", "2", "--retries", "0"]);
      // A moment measured in events, not in time: after some journal line of some run.
      const after = 1 + Math.floor(random() * 12);
      let target: Row | undefined;
      while (!target) {
        const live = rowsSoFar(home).filter((r) => r.status === "running");
        target = live.find((r) => existsSync(path.join(r.run_dir, "events.jsonl")) && journalLines(r.run_dir).length >= after);
        if (sweep.exitCode !== undefined && sweep.exitCode !== null) break;
        if (!target) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (target && random() < 0.5) {
        sweep.kill("SIGKILL");
      } else if (target) {
        const worker = processesMentioning(target.run_dir).find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker.js"));
        if (worker) process.kill(worker, "SIGKILL");
      }
      await sweep;
    }
    const last = await cli(home, ["sweep", file, "--parallel", "2"]);
    assert.equal(last.exitCode, 0, last.stderr);
    for (const row of rows(home)) {
      assert.equal(row.status, "succeeded", row.key);
      assertJournalMatchesStore(home, row);
    }
  } finally {
    cleanup();
  }
});
