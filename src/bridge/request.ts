// The run request: what crosses to Python for one run. The store records it, the planner
// builds it, the executors write it where the worker reads it.

/** The JSON object `amago2.bridge.train` takes (docs/INTERFACES.md section 1). */
export interface RunRequest {
  run_dir: string;
  benchmark: string;
  actor: "dep" | "ind";
  critic: "dep" | "ind";
  seed: number;
  scale: "tiny" | "cpu" | "small" | "paper";
  steps?: number;
  device: "auto" | "cpu" | "cuda";
  overrides: Record<string, unknown>;
  benchmark_def?: Record<string, unknown> | null;
}

/** What Python resolves a run request to (amago2.bridge.resolve_run). */
export interface ResolvedRun {
  config: { agent: Record<string, unknown>; train: Record<string, unknown> };
  /** The keys the benchmark's preset at the run's scale sets, in the preset's order. */
  preset_keys: string[];
  replaced_by_scale: Record<string, { preset: unknown; scale: unknown }>;
  /** What the run keeps from its first attempt if it resumes: {key: [kept, resolved now]}; {} for a fresh run. */
  kept_settings: Record<string, [unknown, unknown]>;
}
