// Shared by the CLI tests: temporary AMAGO2_HOME, captured output, DB fingerprints.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import Database from "better-sqlite3";
import { openStore } from "../src/store/db.js";
import { upsertSweep } from "../src/store/runs.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(REPO_ROOT, "bin", "amago2.js");
export const VENV_PYTHON = path.join(REPO_ROOT, ".venv", "bin", "python");

export function tempDir(prefix = "amago2-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Run fn with AMAGO2_HOME set to `home`, restoring the previous value afterwards. */
export async function withHome<T>(home: string, fn: () => Promise<T> | T): Promise<T> {
  const previous = process.env.AMAGO2_HOME;
  process.env.AMAGO2_HOME = home;
  try {
    return await fn();
  } finally {
    if (previous === undefined) delete process.env.AMAGO2_HOME;
    else process.env.AMAGO2_HOME = previous;
  }
}

/**
 * Capture the text fn writes to stdout and stderr. Binary chunks pass through: under
 * `node --test` they are the runner's own reports on this process's stdout.
 */
export async function capture<T>(fn: () => Promise<T>): Promise<{ result: T; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const intercept = (sink: string[], original: typeof process.stdout.write) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) =>
      typeof chunk === "string" ? (sink.push(chunk), true) : (original as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof process.stdout.write;
  process.stdout.write = intercept(out, origOut);
  process.stderr.write = intercept(err, origErr);
  try {
    const result = await fn();
    return { result, stdout: out.join(""), stderr: err.join("") };
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
}

/** A fingerprint of everything under a directory (names, sizes, content hashes), or of a file. */
export function fingerprint(dir: string): string {
  if (!existsSync(dir)) return "absent";
  const hash = createHash("sha256");
  if (!statSync(dir).isDirectory()) return hash.update(readFileSync(dir)).digest("hex");
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = statSync(p);
      hash.update(`${path.relative(dir, p)}:${st.isDirectory() ? "dir" : st.size}\n`);
      if (st.isDirectory()) walk(p);
      else hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest("hex");
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start the real CLI (bin/amago2.js) as its own process. */
export function startCli(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c) => (stdout += c));
  child.stderr!.on("data", (c) => (stderr += c));
  const done = new Promise<CliResult>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return startCli(args, env).done;
}

/**
 * For a file whose tests are about the default choice of interpreter: hide a developer's
 * own AMAGO2_PYTHON while they run, and put it back after.
 */
export function withoutUserPython(): void {
  let saved: string | undefined;
  before(() => {
    saved = process.env.AMAGO2_PYTHON;
    delete process.env.AMAGO2_PYTHON;
  });
  after(() => {
    if (saved !== undefined) process.env.AMAGO2_PYTHON = saved;
  });
}

/** A store in `home` with one sweep of one planned run (gym-mini, ind/ind, seed 0), for tests of the store alone. */
export function storeWithOneRun(home: string, sweep: string, key: string): void {
  const runDir = path.join(home, "runs", key);
  const request = { run_dir: runDir, benchmark: "gym-mini", actor: "ind" as const, critic: "ind" as const, seed: 0,
    scale: "tiny" as const, device: "auto" as const, overrides: {} };
  const db = openStore(home);
  try {
    upsertSweep(db, { name: sweep, benchmark: "gym-mini", scale: "tiny", source: "f.yaml", command: "amago2 sweep" },
      [{ key, benchmark: "gym-mini", actor: "ind", critic: "ind", seed: 0, scale: "tiny", runDir, request }]);
  } finally {
    db.close();
  }
}

/** The rows of a query on the store under `home`, read through a read-only connection. */
export function storeRows<T>(home: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path.join(home, "amago2.db"), { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}
