// The orchestrator: the one writer of the store while runs execute. It reconciles what a
// previous (possibly dead) orchestrator left behind, hands the remaining cells to an
// executor, turns executor reports into store writes, retries crashes, and handles Ctrl-C.
import os from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import type { Store } from "../store/db.js";
import { parseEvent, type RunEvent } from "../store/events.js";
import { ingestJournal, ingestLines, restoreJournal } from "../store/ingest.js";
import {
  cancelRequested, claimRun, getRun, heldByAnother, markEnded, markWorkerStarted, renewClaims,
  type Owner, type PlannedRun, type RunEnd, type RunRow,
} from "../store/runs.js";
import { createProgress, type ProgressSnapshot, type RunProgressRow } from "../ui/progress.js";
import { isDiskFull } from "../ui/errors.js";
import type { Logger } from "../ui/logger.js";
import type { ExecutorHandlers, LocalExecution, RunOutcome, RunSpec } from "./types.js";

/** Starts the local executor on the runs (Slurm sweeps submit batch jobs instead: exec/slurm-sweep.ts). */
export type StartExecutor = (specs: RunSpec[], handlers: ExecutorHandlers) => LocalExecution;

export interface OrchestratorOptions {
  db: Store;
  runs: readonly PlannedRun[];
  startExecutor: StartExecutor;
  /** Extra attempts for a crashed run (a Python exception is not retried: it would repeat). */
  retries: number;
  command: string;
  log: Logger;
  /** Seconds a running run may go without an event before its worker is killed; default HUNG_AFTER_S. */
  hungAfterS?: number;
}

export interface OrchestratorResult {
  code: 0 | 1 | 130;
  /** Runs this process started (0 when everything had succeeded already). */
  started: number;
  /** Runs another live amago2 process was running; waited for, never run twice. */
  busyElsewhere: string[];
}

/** How long a new orchestrator waits for an orphaned worker to checkpoint and exit. */
const ORPHAN_WAIT_S = 60;
/** A worker pid whose run has not written for this long may have been reused: never kill it. */
const ORPHAN_STALE_S = 600;
const CANCEL_POLL_MS = 2000;
/** How often a process waiting for another one's runs looks at the store. */
const WAIT_POLL_MS = 2000;
/**
 * Python writes a heartbeat at least every 10 s while it collects, updates or evaluates; a
 * run silent for this long is hung (a deadlock, a stuck device) and its worker is killed,
 * which the executor reports as a crash, so --retries resumes it from its checkpoint.
 */
const HUNG_AFTER_S = 600;

export function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Signal a process (or with a negative id, a process group) that may have exited meanwhile. */
function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

function label(run: Pick<RunRow, "benchmark" | "actor" | "critic" | "seed">): string {
  return `${run.benchmark} actor=${run.actor} critic=${run.critic} seed=${run.seed}`;
}

/** The status a run's stored summary implies, after a journal re-ingest. */
function statusFromSummary(row: RunRow): RunEnd["status"] | null {
  if (!row.summary) return null;
  const status = (JSON.parse(row.summary) as { status?: string }).status;
  return status === "succeeded" ? "succeeded" : status === "failed" ? "failed" : null;
}

/** This process, as the owner of the runs it claims. */
export function thisOwner(): Owner {
  return { pid: process.pid, host: os.hostname() };
}

/**
 * Bring the store up to date for these runs before starting anything: re-ingest every
 * journal, and settle runs a dead orchestrator left `running` (waiting for their orphaned
 * worker, which stops on its own once its IPC parent is gone). Returns the runs another
 * live amago2 holds.
 */
async function reconcile(db: Store, runs: readonly PlannedRun[], me: Owner, log: Logger): Promise<string[]> {
  const busy: string[] = [];
  for (const planned of runs) {
    let row = getRun(db, planned.key)!;
    if (row.status === "succeeded") continue;
    if (heldByAnother(row, me, pidAlive)) {
      busy.push(row.key);
      continue;
    }
    if (row.status === "running") {
      if (pidAlive(row.worker_pid)) {
        log.info(`waiting for the orphaned worker of ${row.key} (pid ${row.worker_pid}) to checkpoint and exit`);
        for (let i = 0; i < ORPHAN_WAIT_S && pidAlive(row.worker_pid); i++) await delay(1000);
        const recent = Date.now() / 1000 - (row.heartbeat_at ?? 0) < ORPHAN_STALE_S;
        if (pidAlive(row.worker_pid) && recent) signalIfAlive(-row.worker_pid!, "SIGKILL");
      }
    }
    ingestJournal(db, row.key, row.run_dir);
    row = getRun(db, row.key)!;
    const settled = statusFromSummary(row);
    if (row.status === "running") markEnded(db, row.key, { status: settled ?? "interrupted" });
    else if (settled === "succeeded") markEnded(db, row.key, { status: "succeeded" });
  }
  return busy;
}

/** Live progress of one running run, from its events. */
interface Live {
  row: RunProgressRow;
  /** Date.now() of its latest event (or its start). */
  lastEventMs: number;
  /** When this attempt started and from which step (a resumed run starts mid-way). */
  startMs: number;
  startStep: number | null;
}

function endOf(outcome: RunOutcome, cancelled: boolean): RunEnd {
  switch (outcome.kind) {
    case "finished": {
      const summary = outcome.summary as { status?: string; error?: { type: string; message: string; traceback?: string } | null };
      if (summary.status === "succeeded") return { status: "succeeded", exitCode: 0 };
      if (summary.status === "stopped") return { status: cancelled ? "cancelled" : "interrupted" };
      return { status: "failed", error: summary.error ?? { type: "UnknownError", message: "train() reported failure without an error" } };
    }
    case "crashed":
      return { status: "crashed", exitCode: outcome.exitCode, signal: outcome.signal,
        error: { type: "WorkerCrashed", message: outcome.reason } };
    case "interrupted":
      return { status: cancelled ? "cancelled" : "interrupted" };
  }
}

export async function orchestrate(opts: OrchestratorOptions): Promise<OrchestratorResult> {
  const { db, log } = opts;
  const me = thisOwner();
  const startedAt = Date.now() / 1000;
  const busyElsewhere = new Set(await reconcile(db, opts.runs, me, log));
  const todo = opts.runs.filter((r) => getRun(db, r.key)!.status !== "succeeded" && !busyElsewhere.has(r.key));
  const finalCode = (): 0 | 1 => (opts.runs.every((r) => getRun(db, r.key)!.status === "succeeded") ? 0 : 1);
  // Ctrl-C (or SIGTERM): the first asks the running runs to checkpoint and stop and ends
  // any wait; the second kills them (runHere says how, while it runs).
  let signals = 0;
  let onStopRequest: ((signals: number) => void) | null = null;
  const onSignal = () => {
    signals++;
    onStopRequest?.(signals);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const stopped = () => signals > 0;
  try {
    const started = todo.length
      ? await runHere(opts, todo, me, startedAt, busyElsewhere, stopped, (handler) => (onStopRequest = handler))
      : 0;
    if (!stopped() && busyElsewhere.size > 0) await waitForOthers(db, [...busyElsewhere], me, log, stopped);
    return { code: stopped() ? 130 : finalCode(), started, busyElsewhere: [...busyElsewhere] };
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * The runs another amago2 holds: wait until each has ended (they are never run twice),
 * so that this command's table and exit code cover the whole sweep. A Ctrl-C ends the
 * wait and leaves them to their owner.
 */
async function waitForOthers(db: Store, keys: string[], me: Owner, log: Logger, stopped: () => boolean): Promise<void> {
  const owners = [...new Set(keys.map((k) => getRun(db, k)!).map((r) => (r.executor === "slurm" ? "Slurm" : `pid ${r.orchestrator_pid} on ${r.owner_host}`)))];
  log.info(`waiting for ${keys.length} run(s) that another amago2 is running (${owners.join(", ")}); Ctrl-C stops waiting and leaves them to it`);
  while (!stopped() && keys.some((k) => heldByAnother(getRun(db, k)!, me, pidAlive))) await delay(WAIT_POLL_MS);
}

/**
 * Run `todo` with this process's executor: each run is claimed right before its worker
 * starts (a run another amago2 claimed first is left to it), its journal and the store
 * made to agree, and every report of the executor written to the store. Returns how many
 * runs it started.
 */
async function runHere(opts: OrchestratorOptions, todo: PlannedRun[], me: Owner, startedAt: number,
  busyElsewhere: Set<string>, stopped: () => boolean, onStop: (handler: (signals: number) => void) => void): Promise<number> {
  const { db, log } = opts;
  if (stopped()) return 0; // interrupted while reconciling: nothing starts

  // The executor writes <runDir>/request.json with the device of the slot it picks.
  const specs = new Map<string, RunSpec>(
    todo.map((r) => [r.key, { key: r.key, runDir: r.runDir, request: r.request }]));

  const progress = createProgress({ json: log.json });
  const live = new Map<string, Live>();
  let queued = todo.length;
  let done = 0;
  let failed = 0;
  let started = 0;
  const invalidWarned = new Set<string>();
  /** Runs whose worker was killed for silence, and runs already sent a cancel SIGTERM. */
  const hung = new Set<string>();
  const stopSent = new Set<string>();
  const hungAfterS = opts.hungAfterS ?? HUNG_AFTER_S;

  const snapshot = (): ProgressSnapshot => ({
    done, failed, queued, running: live.size, active: [...live.values()].map((l) => l.row),
  });

  // Throughput and ETA come from wall-clock progress over the attempt, so updates and evals
  // count too (the env-only rate in the metrics would promise far too early an end).
  const track = (key: string, ev: RunEvent) => {
    const l = live.get(key);
    if (!l) return;
    l.row.step = ev.step;
    if (ev.type === "started") {
      l.row.totalSteps = ev.total_steps ?? l.row.totalSteps;
      l.startStep = ev.step;
      l.startMs = Date.now();
    } else if (l.startStep !== null && ev.step > l.startStep) {
      l.row.stepsPerSecond = (ev.step - l.startStep) / Math.max((Date.now() - l.startMs) / 1000, 1e-3);
    }
  };

  // A full disk fails the store's writes: every run is asked to checkpoint and stop (their
  // journals keep what the store cannot take), and the sweep ends with the one line that
  // says so. Any other error is a bug and surfaces as it is.
  let diskFull: unknown = null;
  const withStore = (write: () => void): void => {
    try {
      write();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      if (diskFull === null) {
        diskFull = err;
        progress.note("the disk is full: asking every run to checkpoint and stop");
        execution?.requestStop();
      }
    }
  };

  /** Claim a run for this process and make its journal and the store agree; false: leave it. */
  const claimHere = (key: string): boolean => {
    const claim = claimRun(db, key, me, opts.command, startedAt, pidAlive);
    if (!claim.claimed) {
      queued--;
      if (claim.why === "busy") busyElsewhere.add(key);
      if (claim.why === "succeeded") done++;
      const why = { busy: "another amago2 took it first", succeeded: "it has succeeded meanwhile", cancelled: "it was cancelled" }[claim.why];
      progress.note(`skipped  ${label(claim.row)}: ${why}`);
      progress.update(snapshot());
      return false;
    }
    // The journal is the record the worker continues: whatever the store holds beyond it
    // (a journal cut short by a crash or a full disk) is written back first, and the
    // journal's own events are in the store.
    ingestJournal(db, key, claim.row.run_dir);
    const restored = restoreJournal(db, key, claim.row.run_dir);
    if (restored > 0) log.warn(`${key}: the journal lacked the last ${restored} event(s) the store holds; restored them before resuming`);
    return true;
  };

  const handlers: ExecutorHandlers = {
    claim(key) {
      let claimed = false;
      withStore(() => (claimed = diskFull === null && claimHere(key)));
      return claimed;
    },
    onStart(key, info) {
      withStore(() => markWorkerStarted(db, key, info.pid, info.device));
      started++;
      const row = getRun(db, key)!;
      queued--;
      const now = Date.now();
      live.set(key, { row: { label: label(row), step: row.step, totalSteps: row.total_steps, stepsPerSecond: null },
        lastEventMs: now, startMs: now, startStep: null });
      progress.note(`started  ${label(row)} on ${info.device} (attempt ${row.attempts})`);
      progress.update(snapshot());
    },
    onEvent: (key, line) => withStore(() => {
      const l = live.get(key);
      if (l) l.lastEventMs = Date.now();
      const res = ingestLines(db, key, [line]);
      if (res.invalid.length && !invalidWarned.has(key)) {
        invalidWarned.add(key);
        log.warn(`${key}: ignored an invalid event (${res.invalid[0].reason})`);
      }
      if (res.inserted) {
        track(key, parseEvent(line));
        progress.update(snapshot());
      }
    }),
    onExit: (key, outcome) => withStore(() => {
      live.delete(key);
      // The journal is the record: whatever the IPC stream missed is taken from it now.
      const row = getRun(db, key)!;
      ingestJournal(db, key, row.run_dir);
      const end = endOf(outcome, row.cancel_requested === 1);
      if (hung.has(key) && end.status === "crashed") {
        end.error = { type: "RunHung", message: `no event for ${hungAfterS} s; the worker was killed` };
      }
      hung.delete(key);
      markEnded(db, key, end);
      const retry = end.status === "crashed" && !stopped() && row.attempts <= opts.retries;
      if (retry) {
        queued++;
        progress.note(`crashed  ${label(row)} (${outcome.kind === "crashed" ? outcome.reason : ""}); retrying from its checkpoint`);
        execution?.enqueue(specs.get(key)!);
      } else {
        if (end.status === "succeeded") done++;
        else if (end.status === "failed" || end.status === "crashed") failed++;
        const detail = end.error ? `: ${end.error.type}: ${end.error.message.split("\n")[0]}` : "";
        progress.note(`${end.status.padEnd(8)} ${label(row)}${detail}`);
      }
      progress.update(snapshot());
    }),
  };

  let execution: LocalExecution | null = null;
  const running = opts.startExecutor([...specs.values()], handlers);
  execution = running;
  if (diskFull !== null) running.requestStop();

  // First Ctrl-C (or SIGTERM): checkpoint and stop; queued runs never start. Second: kill.
  onStop((signals) => {
    if (signals === 1) {
      progress.note("stopping: running runs checkpoint first (Ctrl-C again to kill them)");
      running.requestStop();
    } else {
      progress.note("killing the running workers");
      running.kill();
    }
  });

  // Every CANCEL_POLL_MS: kill hung runs' workers; and `amago2 cancel` marks runs in the
  // store, a cancelled running run being stopped by a SIGTERM to its worker, which
  // checkpoints and exits like a Ctrl-C'd one.
  const watch = setInterval(() => withStore(() => {
    renewClaims(db, [...live.keys()], me);
    for (const [key, l] of live) {
      const pid = getRun(db, key)?.worker_pid;
      if (hung.has(key) || !pid || Date.now() - l.lastEventMs < hungAfterS * 1000) continue;
      hung.add(key);
      progress.note(`hung     ${l.row.label}: no event for ${hungAfterS} s, killing its worker`);
      signalIfAlive(-pid, "SIGKILL");
    }
    for (const key of cancelRequested(db, [...live.keys()])) {
      const pid = getRun(db, key)?.worker_pid;
      if (stopSent.has(key) || !pid || !pidAlive(pid)) continue;
      stopSent.add(key);
      signalIfAlive(pid, "SIGTERM");
    }
  }), CANCEL_POLL_MS);

  try {
    await running.idle;
  } finally {
    clearInterval(watch);
    progress.stop();
  }
  if (diskFull !== null) throw diskFull;
  return started;
}
