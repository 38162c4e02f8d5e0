// The options `sweep` and `ablate` share: raw strings from commander in, validated values
// out. Every mistake is a UserError naming the flag and what would be right.
import { parseInteger, UserError } from "../ui/errors.js";
import { MAX_STEPS, normaliseObjectives, normaliseSeeds, SCALES, sweepName, type Objective, type Scale } from "./sweep-file.js";
import { AXIS_EXAMPLE, parseAxisFlag, parseSetFlags, splitAssignment } from "./axes.js";
import type { PlanFlags } from "./sweep.js";
import { resolveExecution, type Execution, type FileExecution, type RawExecutionFlags } from "./execution-options.js";

export interface RawRunOptions extends RawExecutionFlags {
  seeds?: string;
  scale?: string;
  steps?: string;
  name?: string;
  parallel?: string;
  gpus?: string;
  runsPerGpu?: string;
  retries?: string;
  dryRun?: boolean;
  json?: boolean;
  python?: string;
  /** --set key=value, repeatable. */
  set?: string[];
  /** --axis key=v1,v2, repeatable. */
  axis?: string[];
}

export interface RunOptions {
  flags: PlanFlags;
  parallel: number;
  /** "auto": CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists, else CPU slots; "none": CPU slots. */
  gpus: "auto" | "none" | string[];
  runsPerGpu: number;
  retries: number;
  dryRun: boolean;
  json: boolean;
  python?: string;
  execution: Execution;
}

/** Bounds on the counts the run options take: beyond them a number is a typo, not a plan. */
const MAX_SLOTS = 1024;
const MAX_RETRIES = 100;

/** `--seeds 3` is a count (seeds 0, 1, 2); `--seeds 0,4,7` is a list. */
export function parseSeeds(value: string): number[] {
  const text = value.trim();
  if (/^\d+$/.test(text) && Number(text) >= 1) return normaliseSeeds(Number(text), "--seeds");
  const parts = text.split(",").map((s) => s.trim());
  if (!text.includes(",") || !parts.every((s) => /^\d+$/.test(s))) {
    throw new UserError(`--seeds must be a positive count (e.g. 3) or a comma list of non-negative integers (e.g. 0,4,7), got '${value}'`);
  }
  return normaliseSeeds(parts.map(Number), "--seeds");
}

export function parseObjectiveList(flag: string, value: string): Objective[] {
  const parts = value.split(",").map((s) => s.trim());
  if (!parts.every((p) => p === "dep" || p === "ind")) {
    throw new UserError(`${flag} must be dep, ind or dep,ind, got '${value}'`);
  }
  return normaliseObjectives(parts, flag);
}

export function parseObjective(flag: string, value: string | undefined): Objective {
  if (value === undefined) throw new UserError(`ablate needs ${flag} dep or ${flag} ind: the cell to run`);
  if (value !== "dep" && value !== "ind") throw new UserError(`${flag} must be dep or ind, got '${value}'`);
  return value;
}

/** A GPU as CUDA_VISIBLE_DEVICES names one: an index, a GPU's UUID, or a MIG instance's. */
const GPU_ID = /^(\d+|GPU-[0-9A-Fa-f-]+|MIG-[\w/-]+)$/;

export function parseGpus(value: string): "auto" | "none" | string[] {
  if (value === "auto" || value === "none") return value;
  const ids = value.split(",").map((s) => s.trim());
  if (!ids.every((id) => GPU_ID.test(id)) || new Set(ids).size !== ids.length) {
    throw new UserError(`--gpus must be auto, none or a comma list of distinct GPU ids (e.g. 0,1, or GPU-<uuid>), got '${value}'`);
  }
  return ids;
}

/**
 * The slots flags that contradict each other or the executor: CPU slots next to named GPUs,
 * and any local slot on Slurm, where each run is a job (--gpus-per-run). `--gpus auto`
 * (the default) takes --parallel and --runs-per-gpu together: which applies depends on
 * the GPUs it finds.
 */
function checkSlotFlags(raw: RawRunOptions, execution: Execution): void {
  if (execution.executor === "slurm") {
    const given = ([["--parallel", raw.parallel], ["--gpus", raw.gpus], ["--runs-per-gpu", raw.runsPerGpu]] as const)
      .filter(([, value]) => value !== undefined).map(([flag]) => flag);
    if (given.length) {
      throw new UserError(`${given.join(" and ")} ${given.length > 1 ? "set" : "sets"} local slots; on Slurm each run is a job: leave ${given.length > 1 ? "them" : "it"} out (--gpus-per-run gives each job GPUs)`);
    }
  }
  if (raw.parallel !== undefined && raw.gpus !== undefined && raw.gpus !== "auto" && raw.gpus !== "none") {
    throw new UserError(`--parallel sets CPU slots and --gpus ${raw.gpus} puts the runs on GPUs: give one (--runs-per-gpu sets the runs per GPU)`);
  }
}

export function parseRunOptions(raw: RawRunOptions, fileExecution?: FileExecution): RunOptions {
  const flags: PlanFlags = {};
  if (raw.seeds !== undefined) flags.seeds = parseSeeds(raw.seeds);
  if (raw.scale !== undefined) {
    if (!SCALES.includes(raw.scale as Scale)) throw new UserError(`--scale must be one of ${SCALES.join(", ")}, got '${raw.scale}'`);
    flags.scale = raw.scale as Scale;
  }
  if (raw.steps !== undefined) flags.steps = parseInteger("--steps", raw.steps, 1, MAX_STEPS);
  if (raw.name !== undefined) flags.name = sweepName(raw.name, "--name");
  if (raw.set !== undefined) flags.set = parseSetFlags(raw.set);
  for (const text of raw.axis ?? []) {
    // --axis actor=dep,ind is --actors dep,ind: the method's switches keep their own fields.
    const [name, values] = splitAssignment(text, "--axis", AXIS_EXAMPLE);
    if (name === "actor" || name === "critic") {
      const field = name === "actor" ? "actors" : "critics";
      if (flags[field] !== undefined) throw new UserError(`--axis ${name} is given twice`);
      flags[field] = parseObjectiveList(`--axis ${name}`, values);
    } else {
      flags.axes = [...(flags.axes ?? []), parseAxisFlag(text)];
    }
  }
  const execution = resolveExecution(raw, fileExecution);
  checkSlotFlags(raw, execution);
  return {
    flags,
    parallel: raw.parallel === undefined ? 1 : parseInteger("--parallel", raw.parallel, 1, MAX_SLOTS),
    gpus: raw.gpus === undefined ? "auto" : parseGpus(raw.gpus),
    runsPerGpu: raw.runsPerGpu === undefined ? 1 : parseInteger("--runs-per-gpu", raw.runsPerGpu, 1, MAX_SLOTS),
    retries: raw.retries === undefined ? 1 : parseInteger("--retries", raw.retries, 0, MAX_RETRIES),
    dryRun: Boolean(raw.dryRun),
    json: Boolean(raw.json),
    execution,
    ...(raw.python !== undefined ? { python: raw.python } : {}),
  };
}
