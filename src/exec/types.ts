// The contract between the orchestrator (commands/sweep, store) and the executors
// (local, slurm). Executors start workers and report what they emit; only the
// orchestrator writes SQLite.

/** The JSON object `amago2.bridge.train` takes (docs/INTERFACES.md section 1). */
export interface RunRequest {
  run_dir: string;
  benchmark: string;
  actor: "dep" | "ind";
  critic: "dep" | "ind";
  seed: number;
  scale: "tiny" | "small" | "paper";
  steps?: number;
  device: "auto" | "cpu" | "cuda";
  overrides: Record<string, unknown>;
  benchmark_def?: Record<string, unknown> | null;
}

/** One cell of a sweep, ready to run. `runDir/request.json` holds `request`. */
export interface RunSpec {
  key: string;
  runDir: string;
  request: RunRequest;
}

/** How a worker ended, as the executor saw it. */
export type RunOutcome =
  | { kind: "finished"; summary: Record<string, unknown> } // train() returned (status inside)
  | { kind: "crashed"; reason: string; exitCode: number | null; signal: string | null }
  | { kind: "interrupted" }; // stopped by the user (Ctrl-C / cancel), checkpoint written

export interface ExecutorHandlers {
  /** A worker started for `key` (pid of the worker process, the slot's device). */
  onStart(key: string, info: { pid: number; device: string }): void;
  /** Raw event JSON line from the run's journal; return true to ask the run to stop. */
  onEvent(key: string, eventJson: string): boolean;
  onExit(key: string, outcome: RunOutcome): void;
}
