// Which executor a sweep runs on and the Slurm options, from the command line and from a
// sweep file's `executor:` and `slurm:` keys (flags win over the file). Every mistake is a
// UserError naming the flag or key.
import { parseInteger, UserError } from "../ui/errors.js";

/** The executor options of `sweep --executor slurm` and of a sweep file's `slurm:` block. */
export interface SlurmOptions {
  partition: string | null;
  /** GPUs each run gets, requested as --gres=gpu:N; 0 asks for none. */
  gpusPerRun: number;
  cpusPerRun: number | null;
  /** Memory per job as sbatch takes it: 4G, 16000M. */
  mem: string | null;
  /** Wall-clock limit per job as sbatch takes it: minutes, HH:MM:SS, D-HH:MM. */
  time: string | null;
  account: string | null;
  /** One array job per submission throttled to N running tasks (%N); null: a job per cell. */
  maxConcurrent: number | null;
  /** Anything else, passed to sbatch as given (e.g. --qos=high). */
  sbatchArgs: string[];
}

export const DEFAULT_SLURM_OPTIONS: SlurmOptions = {
  partition: null,
  gpusPerRun: 0,
  cpusPerRun: null,
  mem: null,
  time: null,
  account: null,
  maxConcurrent: null,
  sbatchArgs: [],
};

const TIME_FORMAT = /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2})$/;
const MEM_FORMAT = /^\d+[KMGT]?$/;

/**
 * Checks options that came from the user; a bad one is a UserError naming it as a flag
 * (`--mem`) or, given a sweep file, as that file's key (`sweep.yaml: 'slurm.mem'`).
 */
export function validateSlurmOptions(o: SlurmOptions, file: string | null = null): SlurmOptions {
  const bad = (name: string, got: unknown, want: string): never => {
    const where = file === null ? `--${name}` : `${file}: 'slurm.${name.replaceAll("-", "_")}'`;
    throw new UserError(`${where} must be ${want}, got ${JSON.stringify(got)}`);
  };
  if (!Number.isInteger(o.gpusPerRun) || o.gpusPerRun < 0) bad("gpus-per-run", o.gpusPerRun, "an integer >= 0");
  if (o.cpusPerRun !== null && (!Number.isInteger(o.cpusPerRun) || o.cpusPerRun < 1)) {
    bad("cpus-per-run", o.cpusPerRun, "an integer >= 1");
  }
  if (o.maxConcurrent !== null && (!Number.isInteger(o.maxConcurrent) || o.maxConcurrent < 1)) {
    bad("max-concurrent", o.maxConcurrent, "an integer >= 1");
  }
  if (o.mem !== null && !MEM_FORMAT.test(o.mem)) bad("mem", o.mem, "a size such as 16G or 16000M");
  if (o.time !== null && !TIME_FORMAT.test(o.time)) bad("time", o.time, "minutes, HH:MM:SS or D-HH:MM");
  for (const [name, value] of [["partition", o.partition], ["account", o.account]] as const) {
    if (value !== null && !/^[\w.-]+$/.test(value)) bad(name, value, "a plain name");
  }
  for (const arg of o.sbatchArgs) {
    const flag = file === null ? "sbatch-arg" : "sbatch-args";
    if (!arg.startsWith("-") || /[\n\r]/.test(arg)) bad(flag, arg, "one sbatch option such as --qos=high");
    // amago2 finds its jobs again by their name and reads their output and array layout:
    // an option that changes those would defeat the recovery of a lost submission.
    if (RESERVED_SBATCH.some((r) => arg === r || arg.startsWith(`${r}=`) || (r.length === 2 && arg.startsWith(r)))) {
      bad(flag, arg, `an option amago2 does not set itself (it sets ${RESERVED_SBATCH.join(", ")})`);
    }
  }
  return o;
}

/** The sbatch options amago2 sets on every job. */
const RESERVED_SBATCH = ["--job-name", "-J", "--output", "-o", "--error", "-e", "--array", "-a", "--requeue", "--no-requeue",
  "--parsable", "--wrap"];

export const EXECUTORS = ["local", "slurm"] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

/** What a sweep file says about execution; absent keys are left to the flags and defaults. */
export interface FileExecution {
  executor?: ExecutorName;
  slurm: Partial<SlurmOptions>;
}

export interface Execution {
  executor: ExecutorName;
  slurm: SlurmOptions;
  /** Slurm: keep polling until every run has ended (the local executor always does). */
  follow: boolean;
}

export interface RawExecutionFlags {
  executor?: string;
  partition?: string;
  gpusPerRun?: string;
  cpusPerRun?: string;
  mem?: string;
  time?: string;
  account?: string;
  maxConcurrent?: string;
  sbatchArg?: string[];
  follow?: boolean;
}

function executorName(where: string, value: unknown): ExecutorName {
  if (!EXECUTORS.includes(value as ExecutorName)) throw new UserError(`${where} must be local or slurm, got ${JSON.stringify(value)}`);
  return value as ExecutorName;
}

const FILE_SLURM_KEYS = ["partition", "gpus_per_run", "cpus_per_run", "mem", "time", "account", "max_concurrent", "sbatch_args"];

/** A sweep file's `executor:` and `slurm:` keys (doc is the parsed YAML mapping). */
export function parseFileExecution(file: string, doc: Record<string, unknown>): FileExecution {
  const out: FileExecution = { slurm: {} };
  if (doc.executor !== undefined) out.executor = executorName(`${file}: 'executor'`, doc.executor);
  if (doc.slurm === undefined) return out;
  const block = doc.slurm;
  if (typeof block !== "object" || block === null || Array.isArray(block)) {
    throw new UserError(`${file}: 'slurm' must be a mapping with keys ${FILE_SLURM_KEYS.join(", ")}`);
  }
  const s = block as Record<string, unknown>;
  for (const key of Object.keys(s)) {
    if (!FILE_SLURM_KEYS.includes(key)) throw new UserError(`${file}: unknown key 'slurm.${key}' (known: ${FILE_SLURM_KEYS.join(", ")})`);
  }
  const text = (key: string): string => {
    if (typeof s[key] !== "string" && typeof s[key] !== "number") throw new UserError(`${file}: 'slurm.${key}' must be a string`);
    return String(s[key]);
  };
  if (s.partition !== undefined) out.slurm.partition = text("partition");
  if (s.mem !== undefined) out.slurm.mem = text("mem");
  if (s.time !== undefined) out.slurm.time = text("time");
  if (s.account !== undefined) out.slurm.account = text("account");
  if (s.gpus_per_run !== undefined) out.slurm.gpusPerRun = parseInteger(`${file}: 'slurm.gpus_per_run'`, s.gpus_per_run, 0);
  if (s.cpus_per_run !== undefined) out.slurm.cpusPerRun = parseInteger(`${file}: 'slurm.cpus_per_run'`, s.cpus_per_run, 1);
  if (s.max_concurrent !== undefined) out.slurm.maxConcurrent = parseInteger(`${file}: 'slurm.max_concurrent'`, s.max_concurrent, 1);
  if (s.sbatch_args !== undefined) {
    if (!Array.isArray(s.sbatch_args) || !s.sbatch_args.every((a) => typeof a === "string")) {
      throw new UserError(`${file}: 'slurm.sbatch_args' must be a list of sbatch options such as --qos=high`);
    }
    out.slurm.sbatchArgs = s.sbatch_args as string[];
  }
  validateSlurmOptions({ ...DEFAULT_SLURM_OPTIONS, ...out.slurm }, file);
  return out;
}

/** The execution settings: flags over the sweep file over the defaults. */
export function resolveExecution(raw: RawExecutionFlags, file: FileExecution = { slurm: {} }): Execution {
  const flags: Partial<SlurmOptions> = {};
  if (raw.partition !== undefined) flags.partition = raw.partition;
  if (raw.gpusPerRun !== undefined) flags.gpusPerRun = parseInteger("--gpus-per-run", raw.gpusPerRun, 0);
  if (raw.cpusPerRun !== undefined) flags.cpusPerRun = parseInteger("--cpus-per-run", raw.cpusPerRun, 1);
  if (raw.mem !== undefined) flags.mem = raw.mem;
  if (raw.time !== undefined) flags.time = raw.time;
  if (raw.account !== undefined) flags.account = raw.account;
  if (raw.maxConcurrent !== undefined) flags.maxConcurrent = parseInteger("--max-concurrent", raw.maxConcurrent, 1);
  if (raw.sbatchArg !== undefined) flags.sbatchArgs = raw.sbatchArg;
  const executor = raw.executor !== undefined ? executorName("--executor", raw.executor) : file.executor ?? "local";
  const slurmFlagGiven = Object.keys(flags).length > 0 || raw.follow;
  if (executor !== "slurm" && slurmFlagGiven) {
    throw new UserError("--partition, --gpus-per-run, --cpus-per-run, --mem, --time, --account, --max-concurrent, --sbatch-arg and --follow need --executor slurm");
  }
  const slurm = validateSlurmOptions({ ...DEFAULT_SLURM_OPTIONS, ...file.slurm, ...flags });
  return { executor, slurm, follow: Boolean(raw.follow) };
}
