// Reads and writes of sweeps and runs. Every write is one synchronous statement or
// transaction; nothing here awaits.
import path from "node:path";
import type { RunRequest } from "../bridge/request.js";
import { UserError } from "../ui/errors.js";
import { runDirOf, type Store } from "./db.js";

export const RUN_STATUSES = ["planned", "queued", "running", "succeeded", "failed", "crashed", "cancelled", "interrupted"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** What names one cell of a grid: its key and the coordinates the key was made from. */
export interface RunCell {
  key: string;
  benchmark: string;
  actor: "dep" | "ind";
  critic: "dep" | "ind";
  seed: number;
  scale: string;
}

export interface RunRow extends RunCell {
  status: RunStatus;
  attempts: number;
  run_dir: string;
  request: string;
  config: string | null;
  command: string;
  versions: string | null;
  device: string | null;
  executor: string;
  slurm_job_id: string | null;
  orchestrator_pid: number | null;
  worker_pid: number | null;
  step: number;
  updates: number;
  total_steps: number | null;
  exit_code: number | null;
  signal: string | null;
  error_type: string | null;
  error_message: string | null;
  error_traceback: string | null;
  summary: string | null;
  cancel_requested: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  heartbeat_at: number | null;
  owner_host: string | null;
  owner_seen_at: number | null;
}

/** What every view of a run (`runs`, `status`, the reports) shows of its row, camel-cased. */
export interface RunOverview extends RunCell {
  status: RunStatus;
  step: number;
  totalSteps: number | null;
  attempts: number;
  device: string | null;
}

export function overviewOf(r: RunRow): RunOverview {
  return {
    key: r.key, benchmark: r.benchmark, actor: r.actor, critic: r.critic, seed: r.seed, scale: r.scale,
    status: r.status, step: r.step, totalSteps: r.total_steps, attempts: r.attempts, device: r.device,
  };
}

export interface SweepRow {
  name: string;
  benchmark: string;
  scale: string;
  source: string;
  command: string;
  created_at: number;
  updated_at: number;
  /** JSON list of the hyperparameter keys its grid varies besides actor and critic; null before axes were recorded. */
  axes: string | null;
}

export interface PlannedRun extends RunCell {
  runDir: string;
  request: RunRequest;
}

const now = () => Date.now() / 1000;

/** Record a sweep and its cells; cells that exist already (same key) are linked, not copied. */
export function upsertSweep(
  db: Store,
  sweep: { name: string; benchmark: string; scale: string; source: string; command: string; axes?: readonly string[] },
  runs: readonly PlannedRun[],
): void {
  const t = now();
  const insertSweep = db.prepare(`INSERT INTO sweeps (name, benchmark, scale, source, command, created_at, updated_at, axes)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET command = excluded.command, updated_at = excluded.updated_at, axes = excluded.axes`);
  const insertRun = db.prepare(`INSERT INTO runs (key, benchmark, actor, critic, seed, scale, run_dir, request,
    command, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`);
  const link = db.prepare("INSERT INTO sweep_runs (sweep, run_key) VALUES (?, ?) ON CONFLICT DO NOTHING");
  db.transaction(() => {
    checkSweepName(db, sweep.name, sweep.benchmark);
    insertSweep.run(sweep.name, sweep.benchmark, sweep.scale, sweep.source, sweep.command, t, t, JSON.stringify(sweep.axes ?? []));
    for (const r of runs) {
      insertRun.run(r.key, r.benchmark, r.actor, r.critic, r.seed, r.scale, r.runDir, JSON.stringify(r.request),
        sweep.command, t);
      link.run(sweep.name, r.key);
    }
  })();
}

/**
 * A row as read: its run directory is where this store keeps it, `<home>/runs/<key>`,
 * whatever path was recorded (a store copied or moved elsewhere reads its own runs, not
 * the original's).
 */
function located(db: Store, row: RunRow): RunRow {
  return { ...row, run_dir: runDirOf(path.dirname(db.name), row.key) };
}

/**
 * A sweep holds one benchmark's runs: its tables compare cells of one benchmark. A name a
 * sweep of another benchmark holds is refused (a UserError), before anything is recorded.
 */
export function checkSweepName(db: Store, name: string, benchmark: string): void {
  const held = getSweep(db, name)?.benchmark;
  if (held !== undefined && held !== benchmark) {
    throw new UserError(`sweep '${name}' in ${path.dirname(db.name)} holds ${held} runs, not ${benchmark}: give this sweep another name (--name, or 'name:' in a sweep file)`);
  }
}

export function getRun(db: Store, key: string): RunRow | undefined {
  const row = db.prepare("SELECT * FROM runs WHERE key = ?").get(key) as RunRow | undefined;
  return row && located(db, row);
}

export function getSweep(db: Store, name: string): SweepRow | undefined {
  return db.prepare("SELECT * FROM sweeps WHERE name = ?").get(name) as SweepRow | undefined;
}

/** A sweep by name; an unknown name is a UserError listing the store's sweeps (every command says it alike). */
export function requireSweep(db: Store, name: string): SweepRow {
  const sweep = getSweep(db, name);
  if (sweep) return sweep;
  const known = listSweeps(db).map((s) => s.name);
  throw new UserError(`no sweep '${name}' in ${path.dirname(db.name)} (its sweeps: ${known.join(", ") || "none yet"})`);
}

export function listSweeps(db: Store): SweepRow[] {
  return db.prepare("SELECT * FROM sweeps ORDER BY created_at, name").all() as SweepRow[];
}

export function runsOfSweep(db: Store, sweep: string): RunRow[] {
  return (db.prepare(`SELECT runs.* FROM runs JOIN sweep_runs ON sweep_runs.run_key = runs.key
    WHERE sweep_runs.sweep = ? ORDER BY runs.benchmark, runs.actor, runs.critic, runs.seed, runs.key`)
    .all(sweep) as RunRow[]).map((r) => located(db, r));
}

export function listRuns(db: Store): RunRow[] {
  return (db.prepare("SELECT * FROM runs ORDER BY created_at, benchmark, actor, critic, seed, key").all() as RunRow[])
    .map((r) => located(db, r));
}

/** A run by its full key or a unique prefix of it. */
export function findRuns(db: Store, keyOrPrefix: string): RunRow[] {
  const exact = getRun(db, keyOrPrefix);
  if (exact) return [exact];
  return (db.prepare("SELECT * FROM runs WHERE substr(key, 1, ?) = ? ORDER BY key")
    .all(keyOrPrefix.length, keyOrPrefix) as RunRow[]).map((r) => located(db, r));
}

/** A `<run>` argument: a full run key or a unique prefix of one; else one line saying what matched. */
export function resolveRun(db: Store, arg: string): RunRow {
  const matches = findRuns(db, arg);
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new UserError(`no run '${arg}' (see \`amago2 runs\` for the keys)`);
  const shown = matches.slice(0, 5).map((r) => r.key).join(", ");
  throw new UserError(`'${arg}' matches ${matches.length} runs (${shown}${matches.length > 5 ? ", ..." : ""}): give more of the key`);
}

/** The amago2 process that owns runs: its pid and host. */
export interface Owner {
  pid: number;
  host: string;
}

/**
 * An owner silent for this long is taken to be gone even when its pid seems alive (the pid
 * may have been reused, or the owner is on another host sharing the store); a live owner
 * renews its claims every few seconds (renewClaims).
 */
export const OWNER_STALE_S = 120;

/**
 * Whether the process that claimed `row` is provably gone: silent for longer than
 * OWNER_STALE_S, or a dead pid on this host. A claim from before owners were recorded
 * (no owner_seen_at) was made on this host and is judged by its pid alone.
 */
export function ownerGone(row: RunRow, me: Owner, pidAlive: (pid: number | null) => boolean, at = now()): boolean {
  if (row.owner_seen_at === null) return !pidAlive(row.orchestrator_pid);
  if (at - row.owner_seen_at > OWNER_STALE_S) return true;
  return row.owner_host === me.host && !pidAlive(row.orchestrator_pid);
}

/**
 * Whether someone other than `me` holds the run now: a Slurm job of its own, or another
 * amago2 that claimed it and is not provably gone.
 */
export function heldByAnother(row: RunRow, me: Owner, pidAlive: (pid: number | null) => boolean): boolean {
  if (row.status !== "running" && row.status !== "queued") return false;
  if (row.executor === "slurm" && row.slurm_job_id !== null) return true;
  const mine = row.orchestrator_pid === me.pid && row.owner_host === me.host;
  return !mine && !ownerGone(row, me, pidAlive);
}

export type Claim =
  | { claimed: true; row: RunRow }
  | { claimed: false; why: "succeeded" | "cancelled" | "busy"; row: RunRow };

/**
 * Claim a run for one attempt, atomically (one IMMEDIATE transaction: a second amago2
 * claiming at the same moment waits and then sees this claim). Refused when the run has
 * succeeded, when it was cancelled after `since` (while the caller's sweep was running),
 * or when another owner holds it and is not provably gone. A claimed run is `running`
 * under `me`, its attempt counted and the previous attempt's outcome cleared.
 */
export function claimRun(db: Store, key: string, me: Owner, command: string, since: number,
  pidAlive: (pid: number | null) => boolean): Claim {
  return db.transaction((): Claim => {
    const row = getRun(db, key)!;
    if (row.status === "succeeded") return { claimed: false, why: "succeeded", row };
    if (row.status === "cancelled" && (row.finished_at ?? 0) >= since) return { claimed: false, why: "cancelled", row };
    if (heldByAnother(row, me, pidAlive)) return { claimed: false, why: "busy", row };
    const t = now();
    db.prepare(`UPDATE runs SET status = 'running', attempts = attempts + 1, orchestrator_pid = ?, owner_host = ?,
      owner_seen_at = ?, command = ?, worker_pid = NULL, exit_code = NULL, signal = NULL, error_type = NULL,
      error_message = NULL, error_traceback = NULL, summary = NULL, finished_at = NULL, cancel_requested = 0,
      heartbeat_at = ? WHERE key = ?`).run(me.pid, me.host, t, command, t, key);
    return { claimed: true, row: getRun(db, key)! };
  }).immediate();
}

/**
 * Claim runs for submission to Slurm, atomically (as claimRun does for local runs): a run
 * held elsewhere (a job of its own, or another live amago2 claiming or running it) is left
 * out. A claimed run is `queued` under `me` with no job yet, until markSubmittedToSlurm
 * records its job, or releaseSlurmClaims gives it back when sbatch refused. Returns the
 * claimed rows, as they were before the claim.
 */
export function claimForSlurm(db: Store, rows: readonly RunRow[], me: Owner, pidAlive: (pid: number | null) => boolean): RunRow[] {
  return db.transaction((): RunRow[] => {
    const claimed: RunRow[] = [];
    for (const before of rows) {
      const row = getRun(db, before.key)!;
      if (row.status === "succeeded" || heldByAnother(row, me, pidAlive)) continue;
      db.prepare(`UPDATE runs SET status = 'queued', executor = 'slurm', slurm_job_id = NULL, orchestrator_pid = ?,
        owner_host = ?, owner_seen_at = ? WHERE key = ?`).run(me.pid, me.host, now(), row.key);
      claimed.push(row);
    }
    return claimed;
  }).immediate();
}

/** sbatch refused: the claimed runs go back to the state they had. */
export function releaseSlurmClaims(db: Store, rows: readonly RunRow[]): void {
  db.transaction(() => {
    for (const row of rows) {
      db.prepare(`UPDATE runs SET status = ?, executor = ?, slurm_job_id = ?, orchestrator_pid = ?, owner_host = ?,
        owner_seen_at = ? WHERE key = ?`).run(row.status, row.executor, row.slurm_job_id, row.orchestrator_pid, row.owner_host,
        row.owner_seen_at, row.key);
    }
  })();
}

/** A new attempt was handed to Slurm: the previous attempt's outcome fields are cleared. */
export function markSubmittedToSlurm(db: Store, key: string, jobId: string, command: string): void {
  db.prepare(`UPDATE runs SET status = 'queued', executor = 'slurm', slurm_job_id = ?, attempts = attempts + 1,
    command = ?, orchestrator_pid = NULL, owner_host = NULL, owner_seen_at = NULL, worker_pid = NULL, device = NULL,
    exit_code = NULL, signal = NULL, error_type = NULL, error_message = NULL, error_traceback = NULL, summary = NULL,
    finished_at = NULL, cancel_requested = 0 WHERE key = ?`).run(jobId, command, key);
}

/** Slurm started the run's job. */
export function markSlurmJobRunning(db: Store, key: string): void {
  db.prepare("UPDATE runs SET status = 'running', started_at = COALESCE(started_at, ?) WHERE key = ?").run(now(), key);
}

/** The owner is alive: renew its claims on these runs. */
export function renewClaims(db: Store, keys: readonly string[], me: Owner): void {
  if (keys.length === 0) return;
  db.prepare(`UPDATE runs SET owner_seen_at = ? WHERE orchestrator_pid = ? AND owner_host = ?
    AND key IN (${keys.map(() => "?").join(",")})`).run(now(), me.pid, me.host, ...keys);
}

export function markWorkerStarted(db: Store, key: string, pid: number, device: string): void {
  db.prepare("UPDATE runs SET worker_pid = ?, device = ?, heartbeat_at = ? WHERE key = ?").run(pid, device, now(), key);
}

export interface RunEnd {
  status: Exclude<RunStatus, "planned" | "running">;
  exitCode?: number | null;
  signal?: string | null;
  /** Set only when the executor knows more than Python's error event said. */
  error?: { type: string; message: string; traceback?: string | null };
}

export function markEnded(db: Store, key: string, end: RunEnd): void {
  db.prepare(`UPDATE runs SET status = ?, exit_code = ?, signal = ?, finished_at = ?,
    error_type = COALESCE(?, error_type), error_message = COALESCE(?, error_message),
    error_traceback = COALESCE(?, error_traceback) WHERE key = ?`)
    .run(end.status, end.exitCode ?? null, end.signal ?? null, now(), end.error?.type ?? null,
      end.error?.message ?? null, end.error?.traceback ?? null, key);
}

/** Ask a run to stop; its orchestrator sees the flag and stops the worker. */
export function requestCancel(db: Store, key: string): void {
  db.prepare("UPDATE runs SET cancel_requested = 1 WHERE key = ?").run(key);
}

export function cancelRequested(db: Store, keys: readonly string[]): string[] {
  if (keys.length === 0) return [];
  const rows = db.prepare(`SELECT key FROM runs WHERE cancel_requested = 1 AND key IN (${keys.map(() => "?").join(",")})`)
    .all(...keys) as { key: string }[];
  return rows.map((r) => r.key);
}
