// Numbered, append-only schema migrations. A shipped migration is never edited: change the
// schema by appending a new one. Each runs in its own transaction and is recorded in
// `_migrations`; `meta.schema_version` is the number of migrations applied.
import type Database from "better-sqlite3";

export interface Migration {
  name: string;
  /** SQL to run, or a function for a change that reads the schema it changes. */
  up: string | ((db: Database.Database) => void);
  /**
   * Rebuilds tables that others reference: foreign-key enforcement is off while it runs
   * (it cannot be switched inside a transaction, and with it on, dropping the old table
   * would cascade into every row that refers to it), and the keys are checked before commit.
   */
  rebuildsReferencedTables?: boolean;
}

/**
 * Rebuild `table` with `edit` applied to its CREATE statement (SQLite cannot alter a CHECK
 * constraint in place): create the edited copy, move the rows over, drop the old one, give
 * the copy its name, and recreate the table's indexes. The column order is unchanged.
 */
function rebuildTable(db: Database.Database, table: string, edit: (sql: string) => string): void {
  const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) as { sql: string }).sql;
  const indexes = (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL")
    .all(table) as { sql: string }[]).map((r) => r.sql);
  const edited = edit(sql);
  if (edited === sql) throw new Error(`migration: the edit changed nothing in table ${table}`);
  db.exec(edited.replace(`CREATE TABLE ${table} (`, `CREATE TABLE ${table}_rebuilt (`));
  db.exec(`INSERT INTO ${table}_rebuilt SELECT * FROM ${table}`);
  db.exec(`DROP TABLE ${table}`);
  db.exec(`ALTER TABLE ${table}_rebuilt RENAME TO ${table}`);
  for (const index of indexes) db.exec(index);
}

const RUN_STATUSES = "'planned', 'queued', 'running', 'succeeded', 'failed', 'crashed', 'cancelled', 'interrupted'";
const EVENT_TYPES = "'started', 'metrics', 'eval', 'checkpoint', 'heartbeat', 'finished', 'error'";

export const MIGRATIONS: readonly Migration[] = [
  {
    name: "m001_init",
    up: `
-- One row: which tool made this file and at which schema version. A DB written by a newer
-- amago2 (higher schema_version) is refused rather than guessed at.
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  app TEXT NOT NULL CHECK (app = 'amago2'),
  schema_version INTEGER NOT NULL,
  tool_version TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);

-- A named group of runs (\`amago2 sweep\`, \`amago2 ablate\`). Runs are shared between
-- sweeps that plan the same cell, hence the sweep_runs link table.
CREATE TABLE sweeps (
  name TEXT PRIMARY KEY,
  benchmark TEXT NOT NULL,
  scale TEXT NOT NULL CHECK (scale IN ('tiny', 'small', 'paper')),
  source TEXT NOT NULL,            -- the sweep file it was planned from
  command TEXT NOT NULL,           -- the latest command line that ran it
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL
);

-- One cell of the grid: benchmark x actor x critic x seed (x overrides). \`key\` is a hash of
-- the canonical request and seed, so planning the same cell twice finds the same row.
CREATE TABLE runs (
  key TEXT PRIMARY KEY,
  benchmark TEXT NOT NULL,
  actor TEXT NOT NULL CHECK (actor IN ('dep', 'ind')),
  critic TEXT NOT NULL CHECK (critic IN ('dep', 'ind')),
  seed INTEGER NOT NULL CHECK (seed >= 0),
  scale TEXT NOT NULL CHECK (scale IN ('tiny', 'small', 'paper')),
  status TEXT NOT NULL DEFAULT 'planned' CHECK (status IN (${RUN_STATUSES})),
  attempts INTEGER NOT NULL DEFAULT 0,   -- worker starts, retries and resumes included
  run_dir TEXT NOT NULL,
  request TEXT NOT NULL,           -- JSON sent to amago2.bridge.train (docs/INTERFACES.md 1)
  config TEXT,                     -- resolved config JSON, from the 'started' event
  command TEXT NOT NULL,           -- the command line of the latest attempt
  versions TEXT,                   -- JSON: node + what Python reported (python, torch, cuda, packages)
  device TEXT,                     -- 'cpu', 'cuda:0', ...
  executor TEXT NOT NULL DEFAULT 'local' CHECK (executor IN ('local', 'slurm')),
  slurm_job_id TEXT,               -- set by the Slurm executor; NULL for local runs
  orchestrator_pid INTEGER,        -- the amago2 process driving the run; a dead pid means resume
  worker_pid INTEGER,
  step INTEGER NOT NULL DEFAULT 0,     -- env steps so far (latest event)
  updates INTEGER NOT NULL DEFAULT 0,  -- gradient updates so far (latest event)
  total_steps INTEGER,             -- from the resolved config, for progress and ETA
  exit_code INTEGER,
  signal TEXT,
  error_type TEXT,
  error_message TEXT,
  error_traceback TEXT,
  summary TEXT,                    -- JSON: what train() returned, from the 'finished' event
  cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
  created_at REAL NOT NULL,
  started_at REAL,
  finished_at REAL,
  heartbeat_at REAL                -- time of the latest event of any type
);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE sweep_runs (
  sweep TEXT NOT NULL REFERENCES sweeps (name) ON DELETE CASCADE,
  run_key TEXT NOT NULL REFERENCES runs (key) ON DELETE CASCADE,
  PRIMARY KEY (sweep, run_key)
);
CREATE INDEX sweep_runs_by_run ON sweep_runs (run_key);

-- Every journal line, verbatim. (run_key, seq) is unique so ingesting the IPC stream and
-- then re-reading events.jsonl stores each event exactly once.
CREATE TABLE events (
  run_key TEXT NOT NULL REFERENCES runs (key) ON DELETE CASCADE,
  seq INTEGER NOT NULL CHECK (seq >= 0),
  t REAL NOT NULL,
  type TEXT NOT NULL CHECK (type IN (${EVENT_TYPES})),
  step INTEGER NOT NULL,
  updates INTEGER NOT NULL,
  body TEXT NOT NULL,
  UNIQUE (run_key, seq)
);

-- One row per scalar of a 'metrics' event. Non-finite values are kept explicitly: value is
-- NULL and nonfinite says which ('nan', 'inf', '-inf'), so a diverged loss stays visible.
CREATE TABLE metrics (
  run_key TEXT NOT NULL REFERENCES runs (key) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  step INTEGER NOT NULL,
  updates INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL,
  nonfinite TEXT CHECK (nonfinite IN ('nan', 'inf', '-inf')),
  CHECK ((value IS NULL) <> (nonfinite IS NULL)),
  UNIQUE (run_key, seq, name)
);
CREATE INDEX metrics_by_name ON metrics (run_key, name, step);

-- One row per (eval event, split, task, inner episode of the trial). success and score are
-- NULL where the benchmark has none. return_nonfinite as in metrics.
CREATE TABLE evals (
  run_key TEXT NOT NULL REFERENCES runs (key) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  step INTEGER NOT NULL,
  split TEXT NOT NULL CHECK (split IN ('train', 'test')),
  task TEXT NOT NULL,
  episode INTEGER NOT NULL CHECK (episode >= 0),
  trials INTEGER NOT NULL,
  return REAL,
  return_nonfinite TEXT CHECK (return_nonfinite IN ('nan', 'inf', '-inf')),
  success REAL,
  score REAL,
  UNIQUE (run_key, seq, split, task, episode)
);
CREATE INDEX evals_by_run ON evals (run_key, split, step);
`,
  },
  {
    // The `cpu` scale (python/amago2/presets.py): sweeps and runs may record it.
    name: "m002_cpu_scale",
    rebuildsReferencedTables: true,
    up: (db) => {
      const widen = (sql: string) => sql.replace("CHECK (scale IN ('tiny', 'small', 'paper'))",
        "CHECK (scale IN ('tiny', 'cpu', 'small', 'paper'))");
      rebuildTable(db, "sweeps", widen);
      rebuildTable(db, "runs", widen);
    },
  },
  {
    // One owner per run: the amago2 process that claimed it (orchestrator_pid) and its host,
    // and when that owner last showed it was alive. A claim is taken over only when its
    // owner is provably gone: a dead pid on this host, or silence for longer than a limit.
    name: "m003_run_owner",
    up: `
ALTER TABLE runs ADD COLUMN owner_host TEXT;     -- os.hostname() of the claiming process
ALTER TABLE runs ADD COLUMN owner_seen_at REAL;  -- the owner's latest sign of life (unix s)
`,
  },
  {
    // Hyperparameter axes (src/plan/axes.ts): the keys a sweep's grid varies besides actor and
    // critic, in the order it nests them, so that tables show them in that order.
    name: "m004_sweep_axes",
    up: `
ALTER TABLE sweeps ADD COLUMN axes TEXT;  -- JSON list of keys, as last planned; NULL: planned before axes
`,
  },
  {
    name: "m005_random_play",
    up: `
-- Whose actions an evaluation took: 'agent', the policy being trained, or 'random', uniform
-- random play over the union action space, measured at step 0 of a fresh run as the floor
-- the run's scores are read against. Runs started before this column have no random play.
ALTER TABLE evals ADD COLUMN policy TEXT NOT NULL DEFAULT 'agent' CHECK (policy IN ('agent', 'random'));
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Apply every migration the DB lacks, each in its own transaction (`migrations`: tests build older stores). */
export function migrate(db: Database.Database, toolVersion: string, migrations: readonly Migration[] = MIGRATIONS): void {
  if (isCurrent(db, toolVersion, migrations)) return; // writes nothing: a read-only store opens too
  db.exec(`CREATE TABLE IF NOT EXISTS _migrations (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at REAL NOT NULL)`);
  const isApplied = db.prepare("SELECT 1 FROM _migrations WHERE name = ?");
  const now = Date.now() / 1000;
  const writeMeta = (schemaVersion: number) => db.prepare(
    `INSERT INTO meta (id, app, schema_version, tool_version, created_at, updated_at)
     VALUES (1, 'amago2', ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET schema_version = excluded.schema_version,
       tool_version = excluded.tool_version, updated_at = excluded.updated_at
     WHERE meta.schema_version <> excluded.schema_version OR meta.tool_version <> excluded.tool_version`,
  ).run(schemaVersion, toolVersion, now, now);
  migrations.forEach((migration, index) => {
    if (isApplied.get(migration.name)) return;
    if (migration.rebuildsReferencedTables) db.pragma("foreign_keys = OFF");
    try {
      // IMMEDIATE takes the write lock first, so a second amago2 opening the same fresh
      // store waits here and then finds the migration applied, instead of applying it twice.
      db.transaction(() => {
        if (isApplied.get(migration.name)) return;
        if (typeof migration.up === "string") db.exec(migration.up);
        else migration.up(db);
        if (migration.rebuildsReferencedTables && (db.pragma("foreign_key_check") as unknown[]).length > 0) {
          throw new Error(`migration ${migration.name} would leave rows that refer to nothing`);
        }
        db.prepare("INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)").run(
          index + 1, migration.name, now);
        // In the same transaction: another amago2 opening the store between two commits
        // must never see the meta table without its row (it would refuse the store).
        writeMeta(index + 1);
      }).immediate();
    } finally {
      if (migration.rebuildsReferencedTables) db.pragma("foreign_keys = ON");
    }
  });
  writeMeta(migrations.length);
}

/** Every migration applied and the meta row up to date, read without writing. */
function isCurrent(db: Database.Database, toolVersion: string, migrations: readonly Migration[]): boolean {
  const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
  if (!tables.has("_migrations") || !tables.has("meta")) return false;
  const applied = new Set((db.prepare("SELECT name FROM _migrations").all() as { name: string }[]).map((r) => r.name));
  const meta = db.prepare("SELECT schema_version, tool_version FROM meta WHERE id = 1").get() as
    { schema_version: number; tool_version: string } | undefined;
  return migrations.every((m) => applied.has(m.name)) && meta?.schema_version === migrations.length && meta.tool_version === toolVersion;
}
