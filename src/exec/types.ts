// The contract between the orchestrator (commands/sweep + store, the only SQLite writer)
// and the executors (local, slurm), which start per-run workers and report what they see.
import type { RunRequest } from "../bridge/request.js";
import type { Store } from "../store/db.js";
import type { PlannedRun } from "../store/runs.js";
import type { Logger } from "../ui/logger.js";

/** One cell of a sweep, ready to run. The worker reads `<runDir>/request.json`. */
export interface RunSpec {
  key: string;
  runDir: string;
  request: RunRequest;
}

/** How a worker ended, as the executor saw it. */
export type RunOutcome =
  | { kind: "finished"; summary: Record<string, unknown> } // train() returned; status inside
  | { kind: "crashed"; reason: string; exitCode: number | null; signal: string | null }
  | { kind: "interrupted" }; // stopped on request (Ctrl-C / cancel) after checkpointing

export interface ExecutorHandlers {
  /**
   * Right before a worker would start for `key`: whether to start it. False (the run was
   * taken by another amago2, finished or cancelled meanwhile) drops it; onExit never comes.
   */
  claim(key: string): boolean;
  /** A worker started for `key`: its pid and the device it was given ("cpu", "cuda:1"). */
  onStart(key: string, info: { pid: number; device: string }): void;
  /** One raw event line of the run's journal (events.jsonl), in order. */
  onEvent(key: string, eventJson: string): void;
  /** The worker is gone; exactly once per started run. */
  onExit(key: string, outcome: RunOutcome): void;
}

/** A running local executor. Slots come from --parallel or the GPUs. */
export interface LocalExecution {
  /** Queue another run (e.g. a retry); it starts when a slot frees. */
  enqueue(spec: RunSpec): void;
  /** Ask every running worker to checkpoint and stop; queued runs never start. */
  requestStop(): void;
  /** SIGKILL every worker's process group (second Ctrl-C). */
  kill(): void;
  /** Resolves when nothing is queued or running any more. */
  readonly idle: Promise<void>;
}

export interface LocalExecutorOptions {
  parallel: number;
  /** CUDA device ids to hand out (CUDA_VISIBLE_DEVICES per worker); null = CPU slots. */
  gpus: string[] | null;
  runsPerGpu: number;
  /** The Python interpreter that has the amago2 package. */
  python: string;
}

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
