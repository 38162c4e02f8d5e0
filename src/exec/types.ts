// The contract between the orchestrator (commands/sweep + store, the only SQLite writer)
// and the executors (local, slurm), which start per-run workers and report what they see.
import type { RunRequest } from "../bridge/request.js";

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
