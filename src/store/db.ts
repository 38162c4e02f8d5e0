// The one connection factory. Every SQLite handle amago2 opens comes from here, with WAL,
// foreign keys and a busy timeout, after checking that the file really is an amago2 DB.
import Database from "better-sqlite3";
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { UserError } from "../ui/errors.js";
import { toolVersion } from "../package.js";
import { SCHEMA_VERSION, migrate } from "./migrations.js";

/** How long a connection waits for another one's lock before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

export type Store = Database.Database;

/** AMAGO2_HOME (default ./amago2-runs), absolute. Holds amago2.db and runs/<key>/. */
export function amagoHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.AMAGO2_HOME || "amago2-runs");
}

export function dbPath(home: string): string {
  return path.join(home, "amago2.db");
}

export function runDirOf(home: string, key: string): string {
  return path.join(home, "runs", key);
}

/** The path itself if it exists, else the nearest of its parents that does (the root at worst). */
export function nearestExisting(file: string): string {
  let dir = file;
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** Create AMAGO2_HOME if needed and check it is writable; a user error otherwise. */
export function ensureWritableHome(home: string): void {
  try {
    mkdirSync(path.join(home, "runs"), { recursive: true });
    accessSync(home, constants.W_OK);
    accessSync(path.join(home, "runs"), constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new UserError(
      `AMAGO2_HOME ${home} is not writable (${code}): set AMAGO2_HOME to a directory you can write`);
  }
}

/**
 * The checks openStore makes, without writing anything: run before slow work (the Python
 * probe) so that a bad AMAGO2_HOME fails fast and leaves no trace.
 */
export function preflightHome(home: string): void {
  const dir = nearestExisting(home);
  if (!statSync(dir).isDirectory()) {
    throw new UserError(`AMAGO2_HOME ${home} ${dir === home ? "is" : `lies below ${dir}, which is`} a file, not a folder: set AMAGO2_HOME to a folder for the runs`);
  }
  try {
    accessSync(dir, constants.W_OK);
    if (existsSync(home)) accessSync(home, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new UserError(`AMAGO2_HOME ${home} is not writable (${code}): set AMAGO2_HOME to a directory you can write`);
  }
  openStoreReadOnly(home)?.close();
}

/** Check an existing file before anything writes to it. */
function checkIsAmagoDb(db: Store, file: string): void {
  let tables: string[];
  try {
    tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
      .map((r) => r.name);
  } catch (err) {
    throw new UserError(
      `${file} is not an amago2 database (${(err as Error).message}): move it away or set AMAGO2_HOME to another directory`);
  }
  // A blank SQLite file (or one whose first migration never committed): migrations fill it.
  if (tables.every((t) => t === "_migrations")) return;
  const meta = tables.includes("meta")
    ? (db.prepare("SELECT app, schema_version FROM meta WHERE id = 1").get() as
        { app: string; schema_version: number } | undefined)
    : undefined;
  if (!meta || meta.app !== "amago2") {
    throw new UserError(
      `${file} is not an amago2 database (no amago2 meta row): move it away or set AMAGO2_HOME to another directory`);
  }
  if (meta.schema_version > SCHEMA_VERSION) {
    throw new UserError(
      `${file} was written by a newer amago2 (schema ${meta.schema_version}, this one reads up to ${SCHEMA_VERSION}): upgrade amago2 or set AMAGO2_HOME to another directory`);
  }
}

function configure(db: Store): void {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma("foreign_keys = ON");
}

/**
 * Open the DB for writing: creates AMAGO2_HOME and the file if needed and applies any
 * pending migrations. The orchestrator is the only long-lived writer.
 */
export function openStore(home: string): Store {
  preflightHome(home); // refuse a bad home or DB before creating anything in it
  ensureWritableHome(home);
  const file = dbPath(home);
  let db: Store | null = null;
  try {
    db = new Database(file);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    checkIsAmagoDb(db, file);
    // SQLite opens a file it may not write read-only without a word: find out now, with a
    // write that is rolled back, before the command records anything.
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get()) probeWritable(db);
    enableWal(db);
    configure(db);
    migrate(db, toolVersion());
  } catch (err) {
    db?.close();
    throw storeFault(err, file);
  }
  return db;
}


/**
 * Switch the store to WAL. The change needs the database to itself, and it failed at once
 * with SQLITE_BUSY (the busy timeout did not cover it) when a second amago2 opened the same
 * fresh store at that moment: it is retried for as long as the busy timeout allows.
 */
function enableWal(db: Store): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      if (db.pragma("journal_mode", { simple: true }) !== "wal") db.pragma("journal_mode = WAL");
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "SQLITE_BUSY" || Date.now() > deadline) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // a synchronous 20 ms pause
    }
  }
}

/** Fails with SQLite's own error when the store cannot be written: one write, rolled back. */
function probeWritable(db: Store): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    db.prepare("UPDATE meta SET updated_at = updated_at").run();
  } finally {
    db.exec("ROLLBACK");
  }
}

/** A store that cannot be written, as the one line to show; other errors as they are. */
function storeFault(err: unknown, file: string): unknown {
  const code = (err as { code?: string }).code ?? "";
  if (/^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code)) {
    return new UserError(`${file} cannot be written (${(err as Error).message}): make it and its directory writable, ` +
      "or set AMAGO2_HOME to another directory; read commands (status, runs, table, plot, report) still work");
  }
  return err;
}

/**
 * Open an existing DB for reading; null when there is none yet (nothing has run). The
 * connection is read-write at the file level but query_only: a read-only SQLite handle on
 * a WAL database leaves -wal/-shm files behind, and reading must leave no trace.
 */
export function openStoreReadOnly(home: string): Store | null {
  if (existsSync(home) && !statSync(home).isDirectory()) {
    throw new UserError(`AMAGO2_HOME ${home} is a file, not a folder: set AMAGO2_HOME to the folder of your runs`);
  }
  const file = dbPath(home);
  if (!existsSync(file)) return null;
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma("query_only = ON");
    configure(db);
    checkIsAmagoDb(db, file);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
