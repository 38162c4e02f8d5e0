// The runs a sweep starts in this process: each claimed right before its worker starts (a
// run another amago2 claimed first is left to it), its journal and the store made to agree,
// every report of the executor written to the store, crashes retried, hung workers killed
// and `amago2 cancel` carried out. The orchestrator (orchestrator.ts) decides what is left.
import type { Store } from "../store/db.js";
import { keptSettingsNote, parseEvent, type RunEvent } from "../store/events.js";
import { ingestJournal, ingestLines, restoreJournal } from "../store/ingest.js";
import {
  cancelRequested, claimRun, getRun, markEnded, markWorkerStarted, renewClaims,
  type Owner, type PlannedRun, type RunEnd, type RunRow,
} from "../store/runs.js";
import { isDiskFull } from "../ui/errors.js";
import type { Logger } from "../ui/logger.js";
import { createProgress, type Progress, type ProgressSnapshot, type RunProgressRow } from "../ui/progress.js";
import { pidAlive, signalIfAlive } from "./owner.js";
import type { ExecutorHandlers, LocalExecution, OrchestratorOptions, RunOutcome, RunSpec } from "./types.js";

const CANCEL_POLL_MS = 2000;
/**
 * Python writes a heartbeat at least every 10 s while it collects, updates or evaluates; a
 * run silent for this long is hung (a deadlock, a stuck device) and its worker is killed,
 * which the executor reports as a crash, so --retries resumes it from its checkpoint.
 */
const HUNG_AFTER_S = 600;

export function label(run: Pick<RunRow, "benchmark" | "actor" | "critic" | "seed">): string {
  return `${run.benchmark} actor=${run.actor} critic=${run.critic} seed=${run.seed}`;
}

/** What this process asks of its caller while runs execute here. */
export interface HereContext {
  me: Owner;
  /** When the sweep started: a run cancelled since then is not claimed again. */
  startedAt: number;
  /** Runs another amago2 holds; a run found taken when its turn comes is added. */
  busyElsewhere: Set<string>;
  stopped: () => boolean;
  /** Installs what a Ctrl-C (the 1st, the 2nd, ...) does while the runs execute. */
  onStop: (handler: (signals: number) => void) => void;
}

/**
 * Run `todo` with this process's executor until nothing is queued or running. Returns how
 * many runs it started. Rethrows a full disk once every run has stopped.
 */
export async function runHere(opts: OrchestratorOptions, todo: PlannedRun[], ctx: HereContext): Promise<number> {
  if (ctx.stopped()) return 0; // interrupted while reconciling: nothing starts
  // The executor writes <runDir>/request.json with the device of the slot it picks.
  const specs = todo.map((r): RunSpec => ({ key: r.key, runDir: r.runDir, request: r.request }));
  const here = new RunsHere(opts, ctx, specs);
  const running = opts.startExecutor(specs, here.handlers);
  here.attach(running);

  // First Ctrl-C (or SIGTERM): checkpoint and stop; queued runs never start. Second: kill.
  ctx.onStop((signals) => {
    if (signals === 1) {
      here.progress.note("stopping: running runs checkpoint first (Ctrl-C again to kill them)");
      running.requestStop();
    } else {
      here.progress.note("killing the running workers");
      running.kill();
    }
  });
  const watch = setInterval(() => here.checkLive(), CANCEL_POLL_MS);
  try {
    await running.idle;
  } finally {
    clearInterval(watch);
    here.progress.stop();
  }
  here.throwIfDiskFull();
  return here.started;
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

/** The executor's reports for this process's runs, turned into store writes and progress. */
class RunsHere {
  readonly progress: Progress;
  started = 0;
  private readonly db: Store;
  private readonly log: Logger;
  private readonly specs: Map<string, RunSpec>;
  private readonly live = new Map<string, Live>();
  private queued: number;
  private done = 0;
  private failed = 0;
  private readonly invalidWarned = new Set<string>();
  /** Runs whose worker was killed for silence, and runs already sent a cancel SIGTERM. */
  private readonly hung = new Set<string>();
  private readonly stopSent = new Set<string>();
  private readonly hungAfterS: number;
  private execution: LocalExecution | null = null;
  private diskFull: unknown = null;

  constructor(private readonly opts: OrchestratorOptions, private readonly ctx: HereContext, specs: RunSpec[]) {
    this.db = opts.db;
    this.log = opts.log;
    this.specs = new Map(specs.map((s) => [s.key, s]));
    this.queued = specs.length;
    this.hungAfterS = opts.hungAfterS ?? HUNG_AFTER_S;
    this.progress = createProgress({ json: opts.log.json });
  }

  readonly handlers: ExecutorHandlers = {
    claim: (key) => {
      let claimed = false;
      this.withStore(() => (claimed = this.diskFull === null && this.claim(key)));
      return claimed;
    },
    onStart: (key, info) => this.onStart(key, info),
    onEvent: (key, line) => this.withStore(() => this.onEvent(key, line)),
    onExit: (key, outcome) => this.withStore(() => this.onExit(key, outcome)),
  };

  /** The executor the handlers serve: retries go to it, and a full disk stops it. */
  attach(execution: LocalExecution): void {
    this.execution = execution;
    if (this.diskFull !== null) execution.requestStop();
  }

  throwIfDiskFull(): void {
    if (this.diskFull !== null) throw this.diskFull;
  }

  /**
   * Every CANCEL_POLL_MS: renew this process's claims, kill hung runs' workers, and stop
   * runs that `amago2 cancel` marked in the store by a SIGTERM to their worker, which
   * checkpoints and exits like a Ctrl-C'd one.
   */
  checkLive(): void {
    this.withStore(() => {
      renewClaims(this.db, [...this.live.keys()], this.ctx.me);
      for (const [key, l] of this.live) {
        const pid = getRun(this.db, key)?.worker_pid;
        if (this.hung.has(key) || !pid || Date.now() - l.lastEventMs < this.hungAfterS * 1000) continue;
        this.hung.add(key);
        this.progress.note(`hung     ${l.row.label}: no event for ${this.hungAfterS} s, killing its worker`);
        signalIfAlive(-pid, "SIGKILL");
      }
      for (const key of cancelRequested(this.db, [...this.live.keys()])) {
        const pid = getRun(this.db, key)?.worker_pid;
        if (this.stopSent.has(key) || !pid || !pidAlive(pid)) continue;
        this.stopSent.add(key);
        signalIfAlive(pid, "SIGTERM");
      }
    });
  }

  private snapshot(): ProgressSnapshot {
    return { done: this.done, failed: this.failed, queued: this.queued, running: this.live.size,
      active: [...this.live.values()].map((l) => l.row) };
  }

  /**
   * A full disk fails the store's writes: every run is asked to checkpoint and stop (their
   * journals keep what the store cannot take), and the sweep ends with the one line that
   * says so. Any other error is a bug and surfaces as it is.
   */
  private withStore(write: () => void): void {
    try {
      write();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      if (this.diskFull === null) {
        this.diskFull = err;
        this.progress.note("the disk is full: asking every run to checkpoint and stop");
        this.execution?.requestStop();
      }
    }
  }

  /** Claim a run for this process and make its journal and the store agree; false: leave it. */
  private claim(key: string): boolean {
    const claim = claimRun(this.db, key, this.ctx.me, this.opts.command, this.ctx.startedAt, pidAlive);
    if (!claim.claimed) {
      this.queued--;
      if (claim.why === "busy") this.ctx.busyElsewhere.add(key);
      if (claim.why === "succeeded") this.done++;
      const why = { busy: "another amago2 took it first", succeeded: "it has succeeded meanwhile", cancelled: "it was cancelled" }[claim.why];
      this.progress.note(`skipped  ${label(claim.row)}: ${why}`);
      this.progress.update(this.snapshot());
      return false;
    }
    // The journal is the record the worker continues: whatever the store holds beyond it
    // (a journal cut short by a crash or a full disk) is written back first, and the
    // journal's own events are in the store.
    ingestJournal(this.db, key, claim.row.run_dir);
    const restored = restoreJournal(this.db, key, claim.row.run_dir);
    if (restored > 0) this.log.warn(`${key}: the journal lacked the last ${restored} event(s) the store holds; restored them before resuming`);
    return true;
  }

  private onStart(key: string, info: { pid: number; device: string }): void {
    this.withStore(() => markWorkerStarted(this.db, key, info.pid, info.device));
    this.started++;
    const row = getRun(this.db, key)!;
    this.queued--;
    const now = Date.now();
    this.live.set(key, { row: { label: label(row), step: row.step, totalSteps: row.total_steps, stepsPerSecond: null },
      lastEventMs: now, startMs: now, startStep: null });
    this.progress.note(`started  ${label(row)} on ${info.device} (attempt ${row.attempts})`);
    this.progress.update(this.snapshot());
  }

  private onEvent(key: string, line: string): void {
    const l = this.live.get(key);
    if (l) l.lastEventMs = Date.now();
    const res = ingestLines(this.db, key, [line]);
    if (res.invalid.length && !this.invalidWarned.has(key)) {
      this.invalidWarned.add(key);
      this.log.warn(`${key}: ignored an invalid event (${res.invalid[0].reason})`);
    }
    if (res.inserted) {
      this.track(key, parseEvent(line));
      this.progress.update(this.snapshot());
    }
  }

  /**
   * Throughput and ETA come from wall-clock progress over the attempt, so updates and evals
   * count too (the env-only rate in the metrics would promise far too early an end).
   */
  private track(key: string, ev: RunEvent): void {
    const l = this.live.get(key);
    if (!l) return;
    l.row.step = ev.step;
    if (ev.type === "started") {
      const kept = keptSettingsNote(l.row.label, ev.kept_settings);
      if (kept) this.progress.note(kept);
      l.row.totalSteps = ev.total_steps ?? l.row.totalSteps;
      l.startStep = ev.step;
      l.startMs = Date.now();
    } else if (l.startStep !== null && ev.step > l.startStep) {
      l.row.stepsPerSecond = (ev.step - l.startStep) / Math.max((Date.now() - l.startMs) / 1000, 1e-3);
    }
  }

  private onExit(key: string, outcome: RunOutcome): void {
    this.live.delete(key);
    // The journal is the record: whatever the IPC stream missed is taken from it now.
    const row = getRun(this.db, key)!;
    ingestJournal(this.db, key, row.run_dir);
    const end = endOf(outcome, row.cancel_requested === 1);
    if (this.hung.has(key) && end.status === "crashed") {
      end.error = { type: "RunHung", message: `no event for ${this.hungAfterS} s; the worker was killed` };
    }
    this.hung.delete(key);
    markEnded(this.db, key, end);
    const retry = end.status === "crashed" && !this.ctx.stopped() && row.attempts <= this.opts.retries;
    if (retry) {
      this.queued++;
      this.progress.note(`crashed  ${label(row)} (${outcome.kind === "crashed" ? outcome.reason : ""}); retrying from its checkpoint`);
      this.execution?.enqueue(this.specs.get(key)!);
    } else {
      if (end.status === "succeeded") this.done++;
      else if (end.status === "failed" || end.status === "crashed") this.failed++;
      const detail = end.error ? `: ${end.error.type}: ${end.error.message.split("\n")[0]}` : "";
      this.progress.note(`${end.status.padEnd(8)} ${label(row)}${detail}`);
    }
    this.progress.update(this.snapshot());
  }
}
