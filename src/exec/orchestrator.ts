// The orchestrator: the one writer of the store while runs execute. It reconciles what a
// previous (possibly dead) orchestrator left behind, hands the remaining cells to an
// executor, turns executor reports into store writes, retries crashes, and handles Ctrl-C.
import { setTimeout as delay } from "node:timers/promises";
import type { Store } from "../store/db.js";
import { parseEvent, type RunEvent } from "../store/events.js";
import { ingestJournal, ingestLines } from "../store/ingest.js";
import {
  cancelRequested, getRun, markAttemptStarting, markEnded, markWorkerStarted, requestCancel,
  type PlannedRun, type RunEnd, type RunRow,
} from "../store/runs.js";
import { createProgress, type ProgressSnapshot, type RunProgressRow } from "../ui/progress.js";
import type { Logger } from "../ui/logger.js";
import type { ExecutorHandlers, LocalExecution, RunOutcome, RunSpec } from "./types.js";

/** Starts an executor; the local one today, `--executor slurm` plugs in here. */
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
  /** Runs handed to the executor (0 when everything had succeeded already). */
  started: number;
  /** Runs that another live amago2 process is running; left alone. */
  busyElsewhere: string[];
}

/** How long a new orchestrator waits for an orphaned worker to checkpoint and exit. */
const ORPHAN_WAIT_S = 60;
/** A worker pid whose run has not written for this long may have been reused: never kill it. */
const ORPHAN_STALE_S = 600;
const CANCEL_POLL_MS = 2000;
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

/**
 * Bring the store up to date for these runs before starting anything: re-ingest every
 * journal, and settle runs a dead orchestrator left `running` (waiting for their orphaned
 * worker, which stops on its own once its IPC parent is gone).
 */
async function reconcile(db: Store, runs: readonly PlannedRun[], log: Logger): Promise<string[]> {
  const busy: string[] = [];
  for (const planned of runs) {
    let row = getRun(db, planned.key)!;
    if (row.status === "succeeded") continue;
    // A Slurm job holds this cell (queued or running): running it here too would duplicate it.
    if (row.executor === "slurm" && (row.status === "queued" || row.status === "running")) {
      busy.push(row.key);
      continue;
    }
    if (row.status === "running") {
      if (row.orchestrator_pid !== process.pid && pidAlive(row.orchestrator_pid)) {
        busy.push(row.key);
        continue;
      }
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
  const busyElsewhere = await reconcile(db, opts.runs, log);
  for (const key of busyElsewhere) log.warn(`${key} is running under another amago2 process; left alone`);
  const todo = opts.runs.filter((r) => getRun(db, r.key)!.status !== "succeeded" && !busyElsewhere.includes(r.key));
  const finalCode = (): 0 | 1 => (opts.runs.every((r) => getRun(db, r.key)!.status === "succeeded") ? 0 : 1);
  if (todo.length === 0) return { code: finalCode(), started: 0, busyElsewhere };

  // The executor writes <runDir>/request.json with the device of the slot it picks.
  const specs = new Map<string, RunSpec>(
    todo.map((r) => [r.key, { key: r.key, runDir: r.runDir, request: r.request }]));

  const startedAt = Date.now() / 1000;
  const progress = createProgress({ json: log.json });
  const live = new Map<string, Live>();
  let queued = todo.length;
  let done = 0;
  let failed = 0;
  let stopping = false;
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
      const train = (ev.config as { train?: { total_steps?: number } }).train;
      l.row.totalSteps = train?.total_steps ?? l.row.totalSteps;
      l.startStep = ev.step;
      l.startMs = Date.now();
    } else if (l.startStep !== null && ev.step > l.startStep) {
      l.row.stepsPerSecond = (ev.step - l.startStep) / Math.max((Date.now() - l.startMs) / 1000, 1e-3);
    }
  };

  const handlers: ExecutorHandlers = {
    onStart(key, info) {
      // `amago2 cancel` marks a run it finds idle cancelled at once, even one queued here:
      // such a run is flagged again so the cancel poll stops the worker just started.
      const before = getRun(db, key)!;
      const cancelledWhileQueued = before.status === "cancelled" && (before.finished_at ?? 0) >= startedAt;
      markAttemptStarting(db, key, process.pid, opts.command);
      markWorkerStarted(db, key, info.pid, info.device);
      if (cancelledWhileQueued) requestCancel(db, key);
      const row = getRun(db, key)!;
      queued--;
      const now = Date.now();
      live.set(key, { row: { label: label(row), step: row.step, totalSteps: row.total_steps, stepsPerSecond: null },
        lastEventMs: now, startMs: now, startStep: null });
      progress.note(`started  ${label(row)} on ${info.device} (attempt ${row.attempts})`);
      progress.update(snapshot());
    },
    onEvent(key, line) {
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
    },
    onExit(key, outcome) {
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
      const retry = end.status === "crashed" && !stopping && row.attempts <= opts.retries;
      if (retry) {
        queued++;
        progress.note(`crashed  ${label(row)} (${outcome.kind === "crashed" ? outcome.reason : ""}); retrying from its checkpoint`);
        execution.enqueue(specs.get(key)!);
      } else {
        if (end.status === "succeeded") done++;
        else if (end.status === "failed" || end.status === "crashed") failed++;
        const detail = end.error ? `: ${end.error.type}: ${end.error.message.split("\n")[0]}` : "";
        progress.note(`${end.status.padEnd(8)} ${label(row)}${detail}`);
      }
      progress.update(snapshot());
    },
  };

  const execution = opts.startExecutor([...specs.values()], handlers);

  // First Ctrl-C (or SIGTERM): checkpoint and stop; queued runs never start. Second: kill.
  let signals = 0;
  const onSignal = () => {
    signals++;
    stopping = true;
    if (signals === 1) {
      progress.note("stopping: running runs checkpoint first (Ctrl-C again to kill them)");
      execution.requestStop();
    } else {
      progress.note("killing the running workers");
      execution.kill();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // Every CANCEL_POLL_MS: kill hung runs' workers; and `amago2 cancel` marks runs in the
  // store, a cancelled running run being stopped by a SIGTERM to its worker, which
  // checkpoints and exits like a Ctrl-C'd one.
  const watch = setInterval(() => {
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
  }, CANCEL_POLL_MS);

  try {
    await execution.idle;
  } finally {
    clearInterval(watch);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    progress.stop();
  }
  return { code: stopping ? 130 : finalCode(), started: todo.length, busyElsewhere };
}
