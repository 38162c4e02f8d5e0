// Migrations, the meta checks, event validation and idempotent ingest.
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { appendFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { dbPath, openStore, openStoreReadOnly, preflightHome } from "../src/store/db.js";
import { parseEvent, parseJsonLine } from "../src/store/events.js";
import { ingestJournal, ingestLines } from "../src/store/ingest.js";
import { MIGRATIONS, SCHEMA_VERSION, migrate } from "../src/store/migrations.js";
import { renderSchemaDoc } from "../src/store/schema-doc.js";
import { getRun, markWorkerStarted, upsertSweep, type PlannedRun } from "../src/store/runs.js";
import { UserError } from "../src/ui/errors.js";
import { REPO_ROOT, fingerprint, storeWithOneRun, tempDir } from "./helpers.js";

function columns(db: Database.Database, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
}

test("a blank DB migrates to exactly these tables and columns", () => {
  const { dir, cleanup } = tempDir();
  try {
    const db = openStore(dir);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(tables, ["_migrations", "evals", "events", "meta", "metrics", "runs", "sweep_runs", "sweeps"]);
    assert.deepEqual(columns(db, "runs"), [
      "key", "benchmark", "actor", "critic", "seed", "scale", "status", "attempts", "run_dir", "request", "config",
      "command", "versions", "device", "executor", "slurm_job_id", "orchestrator_pid", "worker_pid", "step", "updates",
      "total_steps", "exit_code", "signal", "error_type", "error_message", "error_traceback", "summary",
      "cancel_requested", "created_at", "started_at", "finished_at", "heartbeat_at", "owner_host", "owner_seen_at"]);
    assert.deepEqual(columns(db, "events"), ["run_key", "seq", "t", "type", "step", "updates", "body"]);
    assert.deepEqual(columns(db, "metrics"), ["run_key", "seq", "step", "updates", "name", "value", "nonfinite"]);
    assert.deepEqual(columns(db, "evals"), ["run_key", "seq", "step", "split", "task", "episode", "trials", "return", "return_nonfinite", "success", "score", "policy"]);
    assert.deepEqual(columns(db, "sweeps"), ["name", "benchmark", "scale", "source", "command", "created_at", "updated_at", "axes"]);
    assert.deepEqual(columns(db, "sweep_runs"), ["sweep", "run_key"]);
    assert.equal(db.pragma("journal_mode", { simple: true }), "wal");
    assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
    const meta = db.prepare("SELECT app, schema_version FROM meta").get();
    assert.deepEqual(meta, { app: "amago2", schema_version: SCHEMA_VERSION });
    const insert = db.prepare("INSERT INTO runs (key, benchmark, actor, critic, seed, scale, status, run_dir, request, command, created_at) VALUES (?,'b','dep','dep',0,'tiny',?,'d','{}','c',0)");
    assert.throws(() => insert.run("k0", "exploded"), /CHECK constraint failed/);
    insert.run("k1", "planned");
    assert.throws(() => db.prepare("UPDATE runs SET status = 'exploded' WHERE key = 'k1'").run(), /CHECK constraint failed/);
    assert.equal((db.prepare("SELECT status FROM runs WHERE key = 'k1'").get() as { status: string }).status, "planned");
    db.close();
    // Re-opening applies nothing twice.
    const again = openStore(dir);
    assert.equal((again.prepare("SELECT COUNT(*) AS n FROM _migrations").get() as { n: number }).n, SCHEMA_VERSION);
    again.close();
  } finally {
    cleanup();
  }
});

test("a version 1 store (before the cpu scale) upgrades with every row and reference kept", () => {
  const { dir, cleanup } = tempDir();
  try {
    const v1 = new Database(dbPath(dir));
    v1.pragma("foreign_keys = ON");
    migrate(v1, "0.1.0", MIGRATIONS.slice(0, 1));
    v1.exec(`INSERT INTO sweeps VALUES ('s', 'gym-mini', 'tiny', 'f.yaml', 'amago2 sweep', 1, 1);
      INSERT INTO runs (key, benchmark, actor, critic, seed, scale, status, run_dir, request, command, created_at)
        VALUES ('k', 'gym-mini', 'ind', 'ind', 0, 'tiny', 'succeeded', '/d', '{}', 'amago2 sweep', 1);
      INSERT INTO sweep_runs VALUES ('s', 'k');
      INSERT INTO events VALUES ('k', 0, 1.0, 'heartbeat', 0, 0, '{}');
      INSERT INTO metrics VALUES ('k', 1, 10, 1, 'losses/critic', 0.5, NULL);`);
    assert.throws(() => v1.exec("UPDATE runs SET scale = 'cpu'"), /CHECK constraint failed/);
    v1.close();

    const db = openStore(dir);
    assert.equal((db.prepare("SELECT schema_version FROM meta").get() as { schema_version: number }).schema_version, SCHEMA_VERSION);
    for (const [table, n] of [["sweeps", 1], ["runs", 1], ["sweep_runs", 1], ["events", 1], ["metrics", 1]] as const) {
      assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n, n, table);
    }
    assert.equal((getRun(db, "k") as { status: string }).status, "succeeded");
    db.exec("UPDATE runs SET scale = 'cpu'; UPDATE sweeps SET scale = 'cpu'");
    assert.throws(() => db.exec("UPDATE runs SET scale = 'huge'"), /CHECK constraint failed/);
    assert.ok(db.prepare("SELECT name FROM sqlite_master WHERE name = 'runs_by_status'").get(), "the index came back");
    assert.equal(db.pragma("foreign_keys", { simple: true }), 1);
    db.exec("DELETE FROM runs WHERE key = 'k'");  // the references still cascade
    assert.equal((db.prepare("SELECT COUNT(*) AS n FROM metrics").get() as { n: number }).n, 0);
    assert.equal((db.prepare("SELECT COUNT(*) AS n FROM sweep_runs").get() as { n: number }).n, 0);
    db.close();
  } finally {
    cleanup();
  }
});

test("docs/SCHEMA.md is generated from the current migrations (run `node scripts/schema-doc.mjs`)", () => {
  assert.equal(readFileSync(path.join(REPO_ROOT, "docs", "SCHEMA.md"), "utf8"), renderSchemaDoc());
});

function expectUserErrorUnchanged(home: string, says: RegExp): void {
  const before = fingerprint(home);
  for (const open of [() => openStore(home), () => openStoreReadOnly(home), () => preflightHome(home)]) {
    assert.throws(open, (err: unknown) => err instanceof UserError && says.test(err.message) && !err.message.includes("\n"));
  }
  assert.equal(fingerprint(home), before, "the files must be left as they were");
}

test("a file that is not SQLite, a foreign SQLite DB and a newer amago2 DB are user errors, untouched", () => {
  const { dir, cleanup } = tempDir();
  try {
    const notSqlite = path.join(dir, "a");
    mkdirSync(notSqlite);
    writeFileSync(dbPath(notSqlite), "these are not the bytes of a database, but long enough to look like a header....\n".repeat(20));
    expectUserErrorUnchanged(notSqlite, /amago2\.db is not an amago2 database/);

    const foreign = path.join(dir, "b");
    mkdirSync(foreign);
    const other = new Database(dbPath(foreign));
    other.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
    other.close();
    expectUserErrorUnchanged(foreign, /is not an amago2 database \(no amago2 meta row\)/);

    const newer = path.join(dir, "c");
    openStore(newer).close();
    const raw = new Database(dbPath(newer));
    raw.prepare("UPDATE meta SET schema_version = ?").run(SCHEMA_VERSION + 5);
    raw.close();
    expectUserErrorUnchanged(newer, /written by a newer amago2 \(schema \d+, this one reads up to \d+\): upgrade amago2/);
  } finally {
    cleanup();
  }
});

const KEY = "gym-mini-ind-ind-s0-0123456789";

function seedRun(home: string) {
  const db = openStore(home);
  const run: PlannedRun = { key: KEY, benchmark: "gym-mini", actor: "ind", critic: "ind", seed: 0, scale: "tiny",
    runDir: path.join(home, "runs", KEY),
    request: { run_dir: path.join(home, "runs", KEY), benchmark: "gym-mini", actor: "ind", critic: "ind", seed: 0, scale: "tiny", device: "auto", overrides: {} } };
  upsertSweep(db, { name: "s", benchmark: "gym-mini", scale: "tiny", source: "f.yaml", command: "amago2 sweep gym-mini" }, [run]);
  return { db, run };
}

const LINES = [
  JSON.stringify({ seq: 0, t: 1.5, type: "started", step: 0, update: 0, resumed: false, pid: 123, device: "cpu",
    config: { train: { total_steps: 3000 } }, total_steps: 3000, versions: { python: "3.11.7", torch: "2.13.0+cpu" } }),
  '{"seq": 1, "t": 2.0, "type": "metrics", "step": 100, "update": 10, "metrics": {"losses/critic": 0.5, "losses/actor": NaN, "q/mean": -Infinity}}',
  JSON.stringify({ seq: 2, t: 3.0, type: "eval", step: 200, update: 20, split: "train",
    tasks: { "CartPole-v1": { trials: 2, return: [10, 20], success: null, score: null }, "Acrobot-v1": { trials: 2, return: [-500, -400], success: [0, 1], score: null } } }),
  JSON.stringify({ seq: 3, t: 4.0, type: "heartbeat", step: 250, update: 25 }),
  JSON.stringify({ seq: 4, t: 5.0, type: "finished", step: 300, update: 30, summary: { status: "succeeded", steps: 300, updates: 30, wall_s: 4, error: null } }),
];

function counts(db: Database.Database) {
  const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  return { events: n("SELECT COUNT(*) AS n FROM events"), metrics: n("SELECT COUNT(*) AS n FROM metrics"), evals: n("SELECT COUNT(*) AS n FROM evals") };
}

test("ingest: IPC lines then the journal store every event exactly once, with derived rows", () => {
  const { dir, cleanup } = tempDir();
  try {
    const { db, run } = seedRun(dir);
    const first = ingestLines(db, KEY, LINES.slice(0, 3));
    assert.deepEqual([first.inserted, first.duplicates, first.invalid.length], [3, 0, 0]);
    assert.deepEqual(first.started.map((e) => [e.seq, e.pid]), [[0, 123]]); // newly recorded starts only
    mkdirSync(run.runDir, { recursive: true });
    // The journal has everything plus a torn last line (the writer was killed mid-write).
    writeFileSync(path.join(run.runDir, "events.jsonl"), LINES.join("\n") + "\n");
    appendFileSync(path.join(run.runDir, "events.jsonl"), '{"seq": 5, "t": 6.0, "ty');
    const replay = ingestJournal(db, KEY, run.runDir);
    assert.deepEqual([replay.inserted, replay.duplicates, replay.invalid.length, replay.started.length], [2, 3, 0, 0]);
    const again = ingestJournal(db, KEY, run.runDir);
    assert.deepEqual([again.inserted, again.duplicates], [0, 5]);
    assert.deepEqual(counts(db), { events: 5, metrics: 3, evals: 4 });
    const metrics = db.prepare("SELECT name, value, nonfinite FROM metrics ORDER BY name").all();
    assert.deepEqual(metrics, [
      { name: "losses/actor", value: null, nonfinite: "nan" },
      { name: "losses/critic", value: 0.5, nonfinite: null },
      { name: "q/mean", value: null, nonfinite: "-inf" },
    ]);
    const acrobot = db.prepare("SELECT episode, return, success FROM evals WHERE task = 'Acrobot-v1' ORDER BY episode").all();
    assert.deepEqual(acrobot, [{ episode: 0, return: -500, success: 0 }, { episode: 1, return: -400, success: 1 }]);
    const row = getRun(db, KEY)!;
    assert.deepEqual([row.step, row.updates, row.total_steps, row.device, row.heartbeat_at], [300, 30, 3000, "cpu", 5.0]);
    assert.deepEqual(JSON.parse(row.versions!), { node: process.version, python: "3.11.7", torch: "2.13.0+cpu" });
    assert.equal(JSON.parse(row.summary!).status, "succeeded");
    db.close();
  } finally {
    cleanup();
  }
});

test("invalid events are reported, never stored", () => {
  const { dir, cleanup } = tempDir();
  try {
    const { db } = seedRun(dir);
    const bad = [
      "not json",
      JSON.stringify({ seq: -1, t: 0, type: "heartbeat", step: 0, update: 0 }),
      JSON.stringify({ seq: 0, t: 0, type: "party", step: 0, update: 0 }),
      JSON.stringify({ seq: 0, t: 0, type: "metrics", step: 0, update: 0, metrics: { a: "high" } }),
      JSON.stringify({ seq: 0, t: 0, type: "eval", step: 0, update: 0, split: "valid", tasks: {} }),
      JSON.stringify({ seq: 0, t: 0, type: "error", step: 0, update: 0, error_type: "ValueError", message: "m" }),
    ];
    const res = ingestLines(db, KEY, bad);
    assert.equal(res.invalid.length, bad.length);
    assert.match(res.invalid[2].reason, /unknown event type "party"/);
    assert.match(res.invalid[5].reason, /'traceback' must be a string/);
    assert.deepEqual(counts(db), { events: 0, metrics: 0, evals: 0 });
    db.close();
  } finally {
    cleanup();
  }
});

test("Python's non-finite JSON tokens are read, strings containing them are left alone", () => {
  assert.deepEqual(parseJsonLine('{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN is -Infinity"}'),
    { a: "NaN", b: ["Infinity", "-Infinity"], c: "NaN is -Infinity" });
  const ev = parseEvent('{"seq": 0, "t": 1, "type": "error", "step": 0, "update": 0, "error_type": "E", "message": "x", "traceback": "T"}');
  assert.equal(ev.type, "error");
});

test("a started event's kept settings are read as [kept, resolved now] pairs; journals without them keep none", () => {
  const started = (extra: Record<string, unknown>) => parseEvent(JSON.stringify({ seq: 0, t: 1, type: "started", step: 0, update: 0,
    resumed: true, config: {}, versions: {}, device: "cpu", pid: 7, total_steps: 10, ...extra }));
  const kept = (ev: ReturnType<typeof parseEvent>) => (ev.type === "started" ? ev.kept_settings : undefined);
  assert.deepEqual(kept(started({})), {});
  assert.deepEqual(kept(started({ kept_settings: { eval_trials_per_task: [3, 10] } })), { eval_trials_per_task: [3, 10] });
  assert.throws(() => started({ kept_settings: { lr: 0.1 } }), /'kept_settings.lr' must be \[kept, resolved now\]/);
});

test("a store copied elsewhere reads its own run directories, not the original's", () => {
  const { dir, cleanup } = tempDir();
  try {
    const original = path.join(dir, "a");
    storeWithOneRun(original, "s", "k");
    const copy = path.join(dir, "b");
    cpSync(original, copy, { recursive: true });
    const moved = openStoreReadOnly(copy)!;
    assert.equal(getRun(moved, "k")!.run_dir, path.join(copy, "runs", "k"));
    moved.close();
  } finally {
    cleanup();
  }
});

test("a sweep's name holds one benchmark: recording another benchmark's runs under it is refused and writes nothing", () => {
  const { dir, cleanup } = tempDir();
  try {
    storeWithOneRun(dir, "shared-name", "k-gym");
    const before = fingerprint(dir);
    const runDir = path.join(dir, "runs", "k-pop");
    const request = { run_dir: runDir, benchmark: "popgym-mini", actor: "dep" as const, critic: "dep" as const, seed: 0,
      scale: "tiny" as const, device: "auto" as const, overrides: {} };
    const db = openStore(dir);
    try {
      assert.throws(() => upsertSweep(db, { name: "shared-name", benchmark: "popgym-mini", scale: "tiny", source: "p.yaml", command: "c" },
        [{ key: "k-pop", benchmark: "popgym-mini", actor: "dep", critic: "dep", seed: 0, scale: "tiny", runDir, request }]),
      (err) => err instanceof UserError && /sweep 'shared-name' in .* holds gym-mini runs, not popgym-mini/.test(err.message));
      assert.equal(getRun(db, "k-pop"), undefined);
    } finally {
      db.close();
    }
    assert.deepEqual(fingerprint(dir), before);
  } finally {
    cleanup();
  }
});

test("a GPU slot's label is kept over the worker's cuda:0 (it sees its one GPU as 0); a worker's own device is taken otherwise", () => {
  const { dir, cleanup } = tempDir();
  try {
    const { db } = seedRun(dir);
    const started = (seq: number, device: string) => JSON.stringify({ seq, t: seq, type: "started", step: 0, update: 0,
      resumed: seq > 0, pid: 5, device, config: {}, total_steps: 3000, versions: {} });
    markWorkerStarted(db, KEY, 5, "cuda:3");
    ingestLines(db, KEY, [started(0, "cuda:0")]);
    assert.equal(getRun(db, KEY)!.device, "cuda:3");
    markWorkerStarted(db, KEY, 6, "cpu");                              // resumed on a CPU slot
    ingestLines(db, KEY, [started(1, "cpu")]);
    assert.equal(getRun(db, KEY)!.device, "cpu");
    ingestLines(db, KEY, [started(2, "cuda:0")]);                      // a Slurm job's worker: no slot label
    assert.equal(getRun(db, KEY)!.device, "cuda:0");
    db.close();
  } finally {
    cleanup();
  }
});
