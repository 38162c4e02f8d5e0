// The orchestrator: the one writer of the store while runs execute. It reconciles what a
// previous (possibly dead) orchestrator left behind, hands the remaining runs to this
// process's executor (run-here.ts), waits for runs another amago2 holds, and handles Ctrl-C.
import { setTimeout as delay } from "node:timers/promises";
import type { Store } from "../store/db.js";
import { ingestJournal } from "../store/ingest.js";
import { getRun, heldByAnother, markEnded, type Owner, type PlannedRun, type RunEnd, type RunRow } from "../store/runs.js";
import type { Logger } from "../ui/logger.js";
import { pidAlive, signalIfAlive, thisOwner } from "./owner.js";
import { runHere } from "./run-here.js";
import type { OrchestratorOptions, OrchestratorResult } from "./types.js";

/** How long a new orchestrator waits for an orphaned worker to checkpoint and exit. */
const ORPHAN_WAIT_S = 60;
/** A worker pid whose run has not written for this long may have been reused: never kill it. */
const ORPHAN_STALE_S = 600;
/** How often a process waiting for another one's runs looks at the store. */
const WAIT_POLL_MS = 2000;

/** The status a run's stored summary implies, after a journal re-ingest. */
function statusFromSummary(row: RunRow): RunEnd["status"] | null {
  if (!row.summary) return null;
  const status = (JSON.parse(row.summary) as { status?: string }).status;
  return status === "succeeded" ? "succeeded" : status === "failed" ? "failed" : null;
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
    const row = getRun(db, planned.key)!;
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
    // Settled in one IMMEDIATE transaction that reads the row again: another amago2 may
    // have claimed the run since the check above, and its live claim must be left to it, not
    // marked ended (which let this process claim it too, and both trained it at once).
    const claimedMeanwhile = db.transaction((): boolean => {
      const now = getRun(db, planned.key)!;
      if (heldByAnother(now, me, pidAlive)) return true;
      ingestJournal(db, now.key, now.run_dir);
      const settled = statusFromSummary(getRun(db, now.key)!);
      if (now.status === "running") markEnded(db, now.key, { status: settled ?? "interrupted" });
      else if (settled === "succeeded") markEnded(db, now.key, { status: "succeeded" });
      return false;
    }).immediate();
    if (claimedMeanwhile) busy.push(planned.key);
  }
  return busy;
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
      ? await runHere(opts, todo, { me, startedAt, busyElsewhere, stopped, onStop: (handler) => (onStopRequest = handler) })
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
