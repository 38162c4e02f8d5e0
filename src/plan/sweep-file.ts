// Sweep files (experiments/*.yaml or the user's own): read, validate, normalise. Every
// mistake is a UserError naming the file and the key.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments, parseDocument } from "yaml";
import { UserError } from "../ui/errors.js";
import { EXPERIMENTS_DIR } from "../package.js";
import { checkKeyName, checkValue, makeAxis, type Axis } from "./axes.js";
import { parseFileExecution, type FileExecution } from "./execution-options.js";

export const OBJECTIVES = ["dep", "ind"] as const;
export type Objective = (typeof OBJECTIVES)[number];
export const SCALES = ["tiny", "cpu", "small", "paper"] as const;
export type Scale = (typeof SCALES)[number];

/** What a sweep file says; CLI flags may override any of it (see plan/sweep.ts). */
export interface SweepFile {
  file: string;
  benchmark: string;
  /** A user-defined benchmark (docs/INTERFACES.md section 1, `benchmark_def`); null for a built-in. */
  benchmarkDef: Record<string, unknown> | null;
  name?: string;
  scale?: Scale;
  seeds?: number[];
  actors?: Objective[];
  critics?: Objective[];
  steps?: number;
  overrides: Record<string, unknown>;
  /** Hyperparameter axes besides actor and critic, in the file's order. */
  axes: Axis[];
  /** The `executor:` and `slurm:` keys; CLI flags override them. */
  execution: FileExecution;
}

const TOP_KEYS = ["benchmark", "description", "name", "scale", "seeds", "axes", "steps", "overrides", "executor", "slurm"];
const BENCHMARK_DEF_KEYS = ["name", "tasks", "eval_tasks", "k", "horizon", "preset"];
const TASK_KEYS = ["env_id", "name", "reward_multiplier", "kwargs", "return_range"];

/** Names of the built-in sweeps: experiments/<name>.yaml. */
export function builtinSweeps(): string[] {
  return readdirSync(EXPERIMENTS_DIR).filter((f) => f.endsWith(".yaml")).map((f) => f.slice(0, -5)).sort();
}

/** `sweep <arg>`: a path when it looks like one, otherwise a built-in benchmark name. */
export function resolveSweepArg(arg: string): string {
  if (/\.ya?ml$/i.test(arg) || arg.includes("/") || arg.includes(path.sep)) return path.resolve(arg);
  const known = builtinSweeps();
  if (!known.includes(arg)) {
    throw new UserError(`unknown benchmark '${arg}' (known: ${known.join(", ")}; or give a path to a sweep .yaml file)`);
  }
  return path.join(EXPERIMENTS_DIR, `${arg}.yaml`);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(file: string, where: string, value: Record<string, unknown>, known: string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new UserError(`${file}: unknown key '${where}${key}' (known: ${known.join(", ")})`);
    }
  }
}

/** Seeds as a count N (0..N-1) or a list of distinct non-negative integers. */
/** What a sweep's name may be: it names files and is printed, so no paths or control characters. */
export function sweepName(value: unknown, where: string): string {
  if (typeof value !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(value)) {
    throw new UserError(`${where} must be letters, digits, '.', '-' or '_' (at most 100, starting with a letter or digit), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** More seeds than a sweep plans, and the largest seed numpy and torch take. */
export const MAX_SEEDS = 1000;
export const MAX_SEED = 2 ** 31 - 1;
/** More env steps than any run takes. */
export const MAX_STEPS = 1e12;

export function normaliseSeeds(value: unknown, where: string): number[] {
  if (typeof value === "number" && Number.isInteger(value) && value > MAX_SEEDS) {
    throw new UserError(`${where} asks for ${value} seeds; at most ${MAX_SEEDS}`);
  }
  if (typeof value === "number" && Number.isInteger(value) && value >= 1) {
    return Array.from({ length: value }, (_, i) => i);
  }
  if (Array.isArray(value) && value.some((s) => typeof s === "number" && Number.isInteger(s) && s > MAX_SEED)) {
    throw new UserError(`${where}: a seed must be at most ${MAX_SEED}, got ${JSON.stringify(value)}`);
  }
  if (Array.isArray(value) && value.length > MAX_SEEDS) throw new UserError(`${where} lists ${value.length} seeds; at most ${MAX_SEEDS}`);
  if (Array.isArray(value) && value.length > 0 && value.every((s) => typeof s === "number" && Number.isInteger(s) && s >= 0)) {
    const seeds = value as number[];
    if (new Set(seeds).size !== seeds.length) throw new UserError(`${where} lists a seed twice: ${seeds.join(",")}`);
    return seeds;
  }
  throw new UserError(`${where} must be a positive integer count or a list of non-negative integers, got ${JSON.stringify(value)}`);
}

export function normaliseObjectives(value: unknown, where: string): Objective[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((v): v is Objective => OBJECTIVES.includes(v as Objective))) {
    throw new UserError(`${where} must be dep, ind or both, got ${JSON.stringify(value)}`);
  }
  const twice = list.find((v, i) => list.indexOf(v) !== i);
  if (twice !== undefined) throw new UserError(`${where} lists ${twice} twice`);
  return list;
}

function positiveInt(value: unknown, where: string, max = MAX_STEPS): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
    throw new UserError(`${where} must be a positive integer of at most ${max.toExponential(0)}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function flatOverrides(file: string, where: string, value: unknown): Record<string, unknown> {
  if (!isMapping(value)) throw new UserError(`${file}: '${where}' must be a mapping of hyperparameter: value`);
  for (const [key, v] of Object.entries(value)) {
    checkKeyName(key, `${file}: '${where}'`);
    checkValue(v, `${file}: '${where}.${key}'`);
  }
  return value;
}

/**
 * `axes:`: actor and critic lists, and any hyperparameter with its list of values ("d_model,d_ff"
 * for keys varied together). A key swept twice, or both swept and set in `overrides`, is refused.
 */
function parseAxes(file: string, value: unknown, out: SweepFile): void {
  if (!isMapping(value)) throw new UserError(`${file}: 'axes' must be a mapping of actor, critic or a hyperparameter to its list of values`);
  const swept = new Set<string>();
  for (const [name, values] of Object.entries(value)) {
    if (name === "actor") out.actors = normaliseObjectives(values, `${file}: 'axes.actor'`);
    else if (name === "critic") out.critics = normaliseObjectives(values, `${file}: 'axes.critic'`);
    else {
      const axis = makeAxis(name, values, `${file}: 'axes.${name}'`);
      for (const key of axis.keys) {
        if (swept.has(key)) throw new UserError(`${file}: 'axes' varies '${key}' twice`);
        if (key in out.overrides) throw new UserError(`${file}: '${key}' is both in 'overrides' and swept in 'axes': give one`);
        swept.add(key);
      }
      out.axes.push(axis);
    }
  }
}

/** Tasks of a user-defined benchmark: gymnasium ids with a reward multiplier and kwargs. */
function taskList(file: string, where: string, value: unknown): Record<string, unknown>[] {
  if (!Array.isArray(value)) throw new UserError(`${file}: '${where}' must be a list of {env_id, reward_multiplier, kwargs}`);
  return value.map((task: unknown, i: number) => {
    const at = `${where}[${i}]`;
    if (!isMapping(task)) throw new UserError(`${file}: '${at}' must be a mapping with env_id`);
    checkKeys(file, `${at}.`, task, TASK_KEYS);
    if (typeof task.env_id !== "string" || task.env_id === "") throw new UserError(`${file}: '${at}.env_id' must be a gymnasium id`);
    if (task.name !== undefined && (typeof task.name !== "string" || task.name === "")) {
      throw new UserError(`${file}: '${at}.name' must be a non-empty string`);
    }
    const multiplier = task.reward_multiplier ?? 1.0;
    if (typeof multiplier !== "number" || !Number.isFinite(multiplier) || multiplier <= 0) {
      throw new UserError(`${file}: '${at}.reward_multiplier' must be a positive number`);
    }
    const kwargs = task.kwargs ?? {};
    if (!isMapping(kwargs)) throw new UserError(`${file}: '${at}.kwargs' must be a mapping`);
    const range = task.return_range;
    if (range !== undefined && !(Array.isArray(range) && range.length === 2 && range.every((v) => typeof v === "number" && Number.isFinite(v)) &&
      range[0] < range[1])) {
      throw new UserError(`${file}: '${at}.return_range' must be [lowest, highest] episode return, two numbers with lowest < highest (e.g. [0, 500])`);
    }
    return {
      env_id: task.env_id, ...(task.name !== undefined ? { name: task.name } : {}), reward_multiplier: multiplier, kwargs,
      ...(range !== undefined ? { return_range: range } : {}),
    };
  });
}

function benchmarkDef(file: string, value: Record<string, unknown>): { name: string; def: Record<string, unknown> } {
  checkKeys(file, "benchmark.", value, BENCHMARK_DEF_KEYS);
  if (typeof value.name !== "string" || !/^[a-z0-9][a-z0-9_-]*$/i.test(value.name)) {
    throw new UserError(`${file}: 'benchmark.name' must be a name of letters, digits, '-' or '_'`);
  }
  if (!Array.isArray(value.tasks) || value.tasks.length === 0) {
    throw new UserError(`${file}: 'benchmark.tasks' must be a non-empty list of {env_id, reward_multiplier, kwargs}`);
  }
  const tasks = taskList(file, "benchmark.tasks", value.tasks);
  const evalTasks = value.eval_tasks === undefined ? [] : taskList(file, "benchmark.eval_tasks", value.eval_tasks);
  const k = positiveInt(value.k ?? 1, `${file}: 'benchmark.k'`);
  const horizon = value.horizon === undefined || value.horizon === null ? null : positiveInt(value.horizon, `${file}: 'benchmark.horizon'`);
  const preset = flatOverrides(file, "benchmark.preset", value.preset ?? {});
  return { name: value.name, def: { tasks, ...(evalTasks.length ? { eval_tasks: evalTasks } : {}), k, horizon, preset } };
}

export function loadSweepFile(file: string): SweepFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UserError(`cannot read sweep file ${file} (${(err as NodeJS.ErrnoException).code ?? "error"}): give a readable .yaml path or a benchmark name`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`${file} is not UTF-8 text: save it as UTF-8`);
  }
  const documents = parseAllDocuments(text, { logLevel: "silent" });
  if (Array.isArray(documents) && documents.length > 1) {
    throw new UserError(`${file} holds ${documents.length} YAML documents (separated by '---'): a sweep file is one mapping`);
  }
  const parsed = parseDocument(text, { logLevel: "silent" });
  // The message's first line ends in ':' before a quote of the source, which stays out.
  if (parsed.errors.length > 0) throw new UserError(`${file} is not valid YAML: ${parsed.errors[0].message.split("\n")[0].replace(/:$/, "")}`);
  const tag = parsed.warnings.find((w) => w.code === "TAG_RESOLVE_FAILED");
  if (tag) throw new UserError(`${file}: ${tag.message.split("\n")[0]}; sweep files hold plain YAML (mappings, lists, strings, numbers)`);
  let doc: unknown;
  try {
    doc = parsed.toJS();
  } catch (err) {
    throw new UserError(`${file} is not valid YAML: ${String((err as Error).message).split("\n")[0]}`);
  }
  if (!isMapping(doc)) throw new UserError(`${file}: a sweep file must be a YAML mapping with at least 'benchmark'`);
  checkKeys(file, "", doc, TOP_KEYS);
  let benchmark: string;
  let def: Record<string, unknown> | null = null;
  if (typeof doc.benchmark === "string" && doc.benchmark !== "") {
    benchmark = doc.benchmark;
  } else if (isMapping(doc.benchmark)) {
    ({ name: benchmark, def } = benchmarkDef(file, doc.benchmark));
  } else {
    throw new UserError(`${file}: 'benchmark' must be a benchmark name or a mapping {name, tasks, k, horizon, preset}`);
  }
  if (doc.description !== undefined && typeof doc.description !== "string") {
    throw new UserError(`${file}: 'description' must be a string`);
  }
  const out: SweepFile = { file, benchmark, benchmarkDef: def, overrides: flatOverrides(file, "overrides", doc.overrides ?? {}),
    axes: [], execution: parseFileExecution(file, doc) };
  if (doc.name !== undefined) out.name = sweepName(doc.name, `${file}: 'name'`);
  if (doc.scale !== undefined) {
    if (!SCALES.includes(doc.scale as Scale)) throw new UserError(`${file}: 'scale' must be one of ${SCALES.join(", ")}, got ${JSON.stringify(doc.scale)}`);
    out.scale = doc.scale as Scale;
  }
  if (doc.seeds !== undefined) out.seeds = normaliseSeeds(doc.seeds, `${file}: 'seeds'`);
  if (doc.steps !== undefined) out.steps = positiveInt(doc.steps, `${file}: 'steps'`);
  if (doc.axes !== undefined) parseAxes(file, doc.axes, out);
  return out;
}
