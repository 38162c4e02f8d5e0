// The Slurm side of a sweep, with the local executor's semantics: one job per cell (or an
// array job per submission), the job id stored with the run, a cell never submitted while
// its job is queued or running, ended cells resubmitted (resuming their checkpoint) up to
// --retries, events ingested from the journals on the shared filesystem. This process is
// the only SQLite writer; compute nodes only write their run directories.
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { PACKAGE_ROOT } from "../package.js";
import { dbPath, openStore, openStoreReadOnly, type Store } from "../store/db.js";
import { keptSettingsNote } from "../store/events.js";
import { ingestJournal, ingestLines, type IngestResult } from "../store/ingest.js";
import {
  claimForSlurm, getRun, heldByAnother, listRuns, markEnded, markSlurmJobRunning, markSubmittedToSlurm, releaseSlurmClaims,
  requestCancel, requireSweep, runsOfSweep, type PlannedRun, type RunEnd, type RunRow,
} from "../store/runs.js";
import { UserError } from "../ui/errors.js";
import type { Logger } from "../ui/logger.js";
import { createProgress, type ProgressSnapshot } from "../ui/progress.js";
import { pidAlive, thisOwner } from "./owner.js";
import { writeRequest } from "./worker-protocol.js";
import type { RunRequest } from "../bridge/request.js";
import {
  activeJobsByName, cancelJobs, pollJobs, renderJobScript, submitJob,
  type JobStatus,
} from "./slurm.js";
import type { SlurmOptions } from "../plan/execution-options.js";

/** How often --follow asks the scheduler. */
const POLL_INTERVAL_MS = 2000;

export interface SlurmSweepOptions {
  db: Store;
  /** AMAGO2_HOME: job scripts and their manifests go to <home>/slurm/. */
  home: string;
  runs: readonly PlannedRun[];
  slurm: SlurmOptions;
  python: string;
  /** Submissions a cell may have beyond its first. */
  retries: number;
  command: string;
  /** Keep polling (and resubmitting) until every cell has ended, like the local executor. */
  follow: boolean;
  log: Logger;
}

export interface SlurmSweepResult {
  code: 0 | 1 | 130;
  /** Cells submitted by this call (resubmissions included). */
  submitted: number;
  /** Cells whose earlier job was still queued or running, left alone. */
  inFlight: string[];
}

/**
 * Written beside each job script: the cell each task runs, so that a job whose id never
 * reached the store can still be matched to its cells.
 */
interface Manifest {
  keys: string[];
  runDirs: string[];
}

function isActive(row: RunRow): boolean {
  return row.executor === "slurm" && row.slurm_job_id !== null && (row.status === "queued" || row.status === "running");
}

/** A job of its own, or claimed by another live amago2 that has not submitted it yet: a
 * sweep following the same cells waits for it rather than counting it as ended. */
function inFlight(row: RunRow): boolean {
  return isActive(row) || heldByAnother(row, thisOwner(), pidAlive);
}

/** Whether the run's claim became a job (its id is recorded). */
function isRecorded(db: Store, row: RunRow): boolean {
  return getRun(db, row.key)!.slurm_job_id !== null;
}

function label(row: RunRow): string {
  return `${row.benchmark} actor=${row.actor} critic=${row.critic} seed=${row.seed}`;
}

/** The run's end once its job has ended: the journal's summary first, Slurm's state otherwise. */
export function endOfJob(row: RunRow, job: JobStatus): RunEnd {
  const exitCode = job.exitCode ? Number(job.exitCode.split(":")[0]) : null;
  const summary = row.summary ? (JSON.parse(row.summary) as { status?: string; error?: RunEnd["error"] | null }) : null;
  if (summary?.status === "succeeded") return { status: "succeeded", exitCode: 0 };
  if (summary?.status === "failed") {
    return { status: "failed", exitCode, error: summary.error ?? { type: "UnknownError", message: "train() reported failure without an error" } };
  }
  // Stopped with a checkpoint: by `amago2 cancel`, or by Slurm (a preemption's SIGTERM).
  if (summary?.status === "stopped") return { status: row.cancel_requested === 1 ? "cancelled" : "interrupted", exitCode };
  // scancel by someone else: their decision stands until the next `sweep`.
  if (job.state === "CANCELLED") return { status: "cancelled", exitCode };
  const why = [job.exitCode && `exit ${job.exitCode}`, job.reason && `reason ${job.reason}`].filter(Boolean).join(", ");
  const message = `Slurm job ${job.id} ended ${job.state}${why ? ` (${why})` : ""} before train() returned; see ${row.run_dir}/slurm-*.out`;
  return { status: job.state === "PREEMPTED" ? "interrupted" : "crashed", exitCode, error: { type: `Slurm${job.state}`, message } };
}

export interface Transition {
  row: RunRow;
  /** The run's status now. */
  status: RunRow["status"];
  job: JobStatus;
}

/** What one refresh found: the runs whose status changed, and the attempts that started. */
export interface Refresh {
  transitions: Transition[];
  started: { row: RunRow; event: IngestResult["started"][number] }[];
}

/**
 * Where each journal was read up to, so that following a sweep reads only what was
 * appended since the last poll (a key not in it is read from the start).
 */
export type JournalOffsets = Map<string, number>;

/**
 * Ingests a run's journal: all of it, or with offsets only the complete lines appended
 * since. Returns the "started" events it recorded.
 */
function ingestNewEvents(db: Store, row: RunRow, offsets: JournalOffsets | null): IngestResult["started"] {
  if (offsets === null) return ingestJournal(db, row.key, row.run_dir).started;
  const file = path.join(row.run_dir, "events.jsonl");
  if (!existsSync(file)) return [];
  const fd = openSync(file, "r");
  try {
    const start = offsets.get(row.key) ?? 0;
    const size = fstatSync(fd).size;
    if (size <= start) return [];
    const chunk = Buffer.alloc(size - start);
    readSync(fd, chunk, 0, chunk.length, start);
    // A torn last line is left for the next poll, when its writer has finished it.
    const complete = chunk.lastIndexOf(0x0a) + 1;
    const { started } = ingestLines(db, row.key, chunk.subarray(0, complete).toString("utf8").split("\n"));
    offsets.set(row.key, start + complete);
    return started;
  } finally {
    closeSync(fd);
  }
}

/**
 * Poll the scheduler for these runs' jobs, ingest their journals and record what changed.
 * The scheduler is asked before the journals are read, so a job seen ended has written
 * all it ever will.
 */
export async function refreshSlurmRuns(db: Store, rows: readonly RunRow[], offsets: JournalOffsets | null = null): Promise<Refresh> {
  const active = rows.filter(isActive);
  const jobs = await pollJobs(active.map((r) => r.slurm_job_id!));
  const transitions: Transition[] = [];
  const started: Refresh["started"] = [];
  // A one-shot refresh (status, sweep) also catches up runs that ended earlier, e.g. the
  // events a cancelled job wrote while it checkpointed.
  const unsettled = rows.filter((r) => r.executor === "slurm" && r.status !== "succeeded");
  for (const row of offsets === null ? unsettled : active) {
    for (const event of ingestNewEvents(db, row, offsets)) started.push({ row, event });
  }
  for (const before of active) {
    const job = jobs.get(before.slurm_job_id!)!;
    const row = getRun(db, before.key)!;
    if (job.phase === "running" && row.status !== "running") markSlurmJobRunning(db, row.key);
    else if (job.phase === "ended") markEnded(db, row.key, endOfJob(row, job));
    const status = getRun(db, row.key)!.status;
    if (status !== before.status) transitions.push({ row, status, job });
  }
  return { transitions, started };
}

/** Whether an ended run goes back to Slurm on this pass. */
function wantsSubmission(row: RunRow, retries: number, onlyResubmittable: boolean): boolean {
  if (row.status === "succeeded" || isActive(row)) return false;
  if (row.attempts > retries) return false;
  if (!onlyResubmittable) return true;
  // While following, only what happened to the job is retried (crash, time limit, node
  // failure, preemption); a Python exception would repeat, a cancel would be undone.
  return row.status === "crashed" || row.status === "interrupted";
}

/**
 * Jobs submitted by an amago2 that died before recording their ids (sbatch returned, the
 * store write never happened): found by name through their manifests and recorded now,
 * so those cells are not submitted a second time.
 */
async function adoptUnrecordedJobs(db: Store, home: string, keys: Set<string>, command: string): Promise<void> {
  const me = thisOwner();
  for (const job of await activeJobsByName()) {
    const manifestFile = path.join(home, "slurm", `${job.name}.json`);
    if (!job.name.startsWith("amago2-") || !existsSync(manifestFile)) continue;
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as Manifest;
    const task = job.id.includes("_") ? Number(job.id.split("_")[1]) : 0;
    const key = manifest.keys[task];
    if (key === undefined || !keys.has(key)) continue;
    // Read and marked in one IMMEDIATE transaction: a live amago2 that holds the claim is
    // between its sbatch and its own record of the job, and recording the job here too
    // would count the one submission as two attempts.
    db.transaction(() => {
      const row = getRun(db, key);
      if (!row || isActive(row) || heldByAnother(row, me, pidAlive)) return;
      markSubmittedToSlurm(db, key, job.id, command);
      if (job.phase === "running") markSlurmJobRunning(db, key);
    }).immediate();
  }
}

async function submit(opts: SlurmSweepOptions, wanted: RunRow[]): Promise<number> {
  const { db, home, slurm } = opts;
  // Claimed first: a second amago2 submitting the same sweep at the same moment gets the
  // cells this one did not take, never a second job for the same cell.
  const rows = claimForSlurm(db, wanted, thisOwner(), pidAlive);
  if (rows.length === 0) return 0;
  const device: RunRequest["device"] = slurm.gpusPerRun > 0 ? "auto" : "cpu";
  for (const row of rows) writeRequest(row.run_dir, { ...(JSON.parse(row.request) as RunRequest), device });
  const scriptDir = path.join(home, "slurm");
  mkdirSync(scriptDir, { recursive: true });
  const groups = slurm.maxConcurrent === null ? rows.map((r) => [r]) : [rows];
  for (const group of groups) {
    const manifest: Manifest = { keys: group.map((r) => r.key), runDirs: group.map((r) => r.run_dir) };
    // Named after the run directories, so two stores sharing a cluster never share a name.
    const name = `amago2-${createHash("sha256").update(manifest.runDirs.join("\n")).digest("hex").slice(0, 12)}`;
    writeFileSync(path.join(scriptDir, `${name}.json`), JSON.stringify(manifest, null, 2) + "\n");
    const scriptPath = path.join(scriptDir, `${name}.sh`);
    // Relative to the script's directory, where sbatch runs and the job starts: #SBATCH
    // lines are not a shell's, so an absolute path with a space or a quote could not be said.
    const schedulerLog = slurm.maxConcurrent === null ? `${name}-%j.out` : `${name}-%A_%a.out`;
    writeFileSync(scriptPath, renderJobScript({
      name, runDirs: manifest.runDirs, packageRoot: PACKAGE_ROOT, node: process.execPath, python: opts.python, schedulerLog,
    }, slurm), { mode: 0o755 });
    let jobIds: string[];
    try {
      jobIds = await submitJob(scriptPath, group.length, slurm);
    } catch (err) {
      releaseSlurmClaims(db, rows.filter((r) => !isRecorded(db, r)));
      throw err;
    }
    // Recorded at once, in one transaction: from here on the cells count as queued.
    db.transaction(() => group.forEach((row, i) => markSubmittedToSlurm(db, row.key, jobIds[i], opts.command)))();
    group.forEach((row, i) => opts.log.info(`submitted ${label(row)} as Slurm job ${jobIds[i]} (attempt ${row.attempts + 1})`));
  }
  return rows.length;
}

function snapshot(db: Store, keys: readonly string[], willRetry: (row: RunRow) => boolean): ProgressSnapshot & { settled: boolean } {
  const rows = keys.map((k) => getRun(db, k)!);
  const running = rows.filter((r) => r.status === "running");
  const retrying = rows.filter(willRetry);
  return {
    done: rows.filter((r) => r.status === "succeeded").length,
    running: running.length,
    queued: rows.filter((r) => r.status === "queued").length + retrying.length,
    failed: rows.filter((r) => ["failed", "crashed", "cancelled", "interrupted"].includes(r.status) && !retrying.includes(r)).length,
    active: running.map((r) => ({ label: label(r), step: r.step, totalSteps: r.total_steps, stepsPerSecond: null })),
    settled: rows.every((r) => !inFlight(r)) && retrying.length === 0,
  };
}

/**
 * Poll until every run has ended. With `resubmit`, runs whose job crashed, timed out or was
 * preempted go back to Slurm (up to `retries` extra attempts) and are followed too.
 */
export async function followSlurmRuns(
  db: Store, keys: readonly string[], log: Logger, resubmit: ((rows: RunRow[]) => Promise<void>) | null, retries: number,
): Promise<{ interrupted: boolean }> {
  const willRetry = (row: RunRow) => resubmit !== null && wantsSubmission(row, retries, true);
  const progress = createProgress({ json: log.json });
  const offsets: JournalOffsets = new Map();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    progress.note("stopped following; the jobs keep running on the cluster (`amago2 cancel` stops them)");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    for (;;) {
      const { transitions, started } = await refreshSlurmRuns(db, keys.map((k) => getRun(db, k)!), offsets);
      for (const { row, event } of started) {
        const kept = keptSettingsNote(label(row), event.kept_settings);
        if (kept) progress.note(kept);
      }
      for (const t of transitions) {
        const detail = t.job.phase === "ended" ? ` (Slurm ${t.job.state})` : "";
        progress.note(`${t.status.padEnd(9)} ${label(t.row)}${detail}`);
      }
      if (resubmit) await resubmit(keys.map((k) => getRun(db, k)!).filter(willRetry));
      const now = snapshot(db, keys, willRetry);
      progress.update(now);
      if (now.settled || interrupted) break;
      await delay(POLL_INTERVAL_MS);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    progress.stop();
  }
  return { interrupted };
}

/** `amago2 sweep --executor slurm`: reconcile, submit what needs running, optionally follow. */
export async function orchestrateSlurm(opts: SlurmSweepOptions): Promise<SlurmSweepResult> {
  const { db, log } = opts;
  const keys = opts.runs.map((r) => r.key);
  await refreshSlurmRuns(db, keys.map((k) => getRun(db, k)!));
  // Cells that never reached Slurm, or ran locally, may still have a journal that says they
  // finished; settle those instead of running them again.
  for (const key of keys) {
    const row = getRun(db, key)!;
    if (row.status === "succeeded" || isActive(row)) continue;
    ingestJournal(db, key, row.run_dir);
    const summary = getRun(db, key)!.summary;
    if (summary && (JSON.parse(summary) as { status?: string }).status === "succeeded") markEnded(db, key, { status: "succeeded", exitCode: 0 });
  }
  await adoptUnrecordedJobs(db, opts.home, new Set(keys), opts.command);

  const rows = keys.map((k) => getRun(db, k)!);
  const elsewhere = rows.filter(inFlight).map((r) => r.key);
  if (elsewhere.length > 0) log.info(`${elsewhere.length} run(s) already queued or running on Slurm; not submitted again`);
  for (const row of rows.filter((r) => r.status !== "succeeded" && !isActive(r) && r.attempts > opts.retries)) {
    log.warn(`${label(row)} is ${row.status} after ${row.attempts} attempts; not resubmitted (raise --retries to try again)`);
  }
  let submitted = await submit(opts, rows.filter((r) => wantsSubmission(r, opts.retries, false)));

  if (opts.follow) {
    const resubmit = async (ended: RunRow[]) => {
      submitted += await submit(opts, ended);
    };
    const { interrupted } = await followSlurmRuns(db, keys, log, resubmit, opts.retries);
    if (interrupted) return { code: 130, submitted, inFlight: elsewhere };
  }
  const final = keys.map((k) => getRun(db, k)!);
  const broken = final.some((r) => r.status !== "succeeded" && !inFlight(r) && !wantsSubmission(r, opts.retries, true));
  return { code: broken ? 1 : 0, submitted, inFlight: elsewhere };
}

/**
 * `amago2 cancel` for runs on Slurm: scancel their jobs and mark them cancelled. A job
 * that gets to checkpoint before Slurm kills it still writes its journal; the next
 * refresh ingests that.
 */
export async function cancelSlurmRuns(db: Store, rows: readonly RunRow[]): Promise<string[]> {
  const active = rows.filter(isActive);
  await cancelJobs(active.map((r) => r.slurm_job_id!));
  db.transaction(() => {
    for (const row of active) {
      requestCancel(db, row.key);
      markEnded(db, row.key, { status: "cancelled" });
    }
  })();
  return active.map((r) => r.key);
}

/** The store's runs that Slurm may still change: on Slurm and not succeeded. */
function unsettledSlurmRuns(db: Store, sweep: string | null): RunRow[] {
  const rows = sweep === null ? listRuns(db) : runsOfSweep(db, sweep);
  return rows.filter((r) => r.executor === "slurm" && r.slurm_job_id !== null && r.status !== "succeeded");
}

/**
 * `amago2 status`: poll Slurm for the store's queued and running jobs and ingest their
 * journals, so the listing that follows is current. Without a reachable Slurm the last
 * known state is shown, with a warning.
 */
export async function refreshSlurmStore(home: string, log: Logger): Promise<void> {
  // Looked up read-only first: a store without Slurm runs is never opened for writing.
  const reader = openStoreReadOnly(home);
  if (!reader) return;
  try {
    if (unsettledSlurmRuns(reader, null).length === 0) return;
  } finally {
    reader.close();
  }
  const db = openStore(home);
  try {
    const rows = unsettledSlurmRuns(db, null);
    if (rows.length === 0) return;
    await refreshSlurmRuns(db, rows);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    log.warn(`${err.message}; showing the last recorded state`);
  } finally {
    db.close();
  }
}

/** `amago2 watch [sweep]`: follow the store's Slurm runs (of one sweep) until they end. */
export async function watchSlurm(home: string, sweep: string | null, log: Logger): Promise<0 | 1 | 130> {
  if (!existsSync(dbPath(home))) throw new UserError(`nothing to watch: no store in ${home} yet`);
  const db = openStore(home);
  try {
    if (sweep !== null) requireSweep(db, sweep);
    const keys = unsettledSlurmRuns(db, sweep).map((r) => r.key);
    if (keys.length === 0) {
      log.info("no Slurm runs to watch");
      return 0;
    }
    const { interrupted } = await followSlurmRuns(db, keys, log, null, 0);
    if (interrupted) return 130;
    return keys.every((k) => getRun(db, k)!.status === "succeeded") ? 0 : 1;
  } finally {
    db.close();
  }
}
