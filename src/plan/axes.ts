// Hyperparameter axes: any configuration key swept over a list of values, or several keys
// varied together, from a sweep file's `axes:` or the command line (--axis key=v1,v2 and
// --set key=value). actor and critic are axes too but have their own fields (plan/sweep.ts):
// they are the method's switches and name every run. Values are checked for their form here
// and against the configuration's schema (plan/describe.ts) before anything is recorded.
import { parse as parseYaml } from "yaml";
import { UserError } from "../ui/errors.js";

/** One swept setting: a key, or keys varied together, and the points it takes, in order. */
export interface Axis {
  keys: string[];
  /** One entry per point: the value of each key, in `keys` order. */
  points: unknown[][];
  /** Where it was given, for messages: "experiments/x.yaml: 'axes.num_bins'" or "--axis num_bins". */
  origin: string;
}

/** Keys that are not hyperparameters of a run's config: each has its own place. */
export const NOT_AXES: Record<string, string> = {
  seed: "seeds are set by 'seeds' (or --seeds)",
  seeds: "seeds are set by 'seeds' (or --seeds)",
  scale: "a scale sizes the whole sweep: run one sweep per scale (--scale)",
  steps: "sweep total_steps, the config key",
  benchmark: "run one sweep per benchmark",
  // The objectives name every run and its row in the tables, so they vary only as the
  // grid's own actor x critic factors, never pinned or grouped with other keys.
  actor: "actors are swept on their own, by axes.actor, --actors or --axis actor=dep,ind",
  critic: "critics are swept on their own, by axes.critic, --critics or --axis critic=dep,ind",
};
export const AXIS_EXAMPLE = "num_bins=16,32,64";
/** More runs than one sweep plans: beyond this a grid is a typo, not a plan. */
export const MAX_GRID_RUNS = 10_000;

/** A value a hyperparameter can take: a number, string, boolean or a list of numbers. */
export function checkValue(value: unknown, where: string): void {
  const ok = ["number", "string", "boolean"].includes(typeof value) ||
    (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "number"));
  if (!ok) throw new UserError(`${where} must be a number, string, boolean or list of numbers, got ${JSON.stringify(value)}`);
  if ([value].flat().some((x) => typeof x === "number" && !Number.isFinite(x))) {
    throw new UserError(`${where} must be a finite number, got ${String(value)}`);
  }
}

/** Refuse a key that is not a hyperparameter of a run's config (NOT_AXES) or not written as one. */
export function checkKeyName(key: string, where: string): void {
  if (key in NOT_AXES) throw new UserError(`${where}: '${key}' is not a hyperparameter to set or sweep: ${NOT_AXES[key]}`);
  if (!/^[a-z][a-z0-9_]*$/.test(key)) {
    throw new UserError(`${where}: '${key}' is not a hyperparameter name (lower-case letters, digits and '_')`);
  }
}

/** The keys an axis entry names: "num_bins", or "d_model,d_ff" for keys varied together. */
function axisKeys(name: string, where: string): string[] {
  const keys = name.split(",").map((k) => k.trim());
  for (const key of keys) checkKeyName(key, where);
  if (new Set(keys).size !== keys.length) throw new UserError(`${where} names a key twice`);
  return keys;
}

/**
 * An axis from its name and its list of values: [v1, v2, ...] for one key, [[a1, b1], [a2,
 * b2], ...] for keys varied together. Refused: an empty list, a point of the wrong length,
 * a value of the wrong form, a point given twice.
 */
export function makeAxis(name: string, values: unknown, origin: string): Axis {
  const keys = axisKeys(name, origin);
  const group = keys.length > 1;
  const shape = group ? `a list of [${keys.join(", ")}] lists, e.g. [[64, 128], [128, 256]]` : "a non-empty list of values, e.g. [16, 32, 64]";
  if (!Array.isArray(values) || values.length === 0) throw new UserError(`${origin} must be ${shape}, got ${JSON.stringify(values)}`);
  const points = values.map((v): unknown[] => {
    if (!group) return [v];
    if (!Array.isArray(v) || v.length !== keys.length) throw new UserError(`${origin} must be ${shape}, got ${JSON.stringify(v)} in it`);
    return v;
  });
  points.forEach((point) => point.forEach((v, i) => checkValue(v, `${origin}: ${keys[i]}`)));
  const seen = new Set<string>();
  for (const point of points) {
    const text = JSON.stringify(point);
    if (seen.has(text)) throw new UserError(`${origin} lists ${group ? `[${point.map((v) => JSON.stringify(v)).join(", ")}]` : JSON.stringify(point[0])} twice`);
    seen.add(text);
  }
  return { keys, points, origin };
}

/** A command-line value as YAML reads it: 16 is a number, true a boolean, [0.9,0.99] a list, adam a string. */
function flagValue(text: string, flag: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    throw new UserError(`${flag}: cannot read ${JSON.stringify(text)} as a value (a number, true/false, a word, or [1, 2] for a list)`);
  }
}

export function splitAssignment(text: string, flag: string, example: string): [string, string] {
  const at = text.indexOf("=");
  if (at <= 0 || at === text.length - 1) throw new UserError(`${flag} takes key=value, e.g. ${flag} ${example}; got ${JSON.stringify(text)}`);
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

/** `--set key=value` (repeatable): one override each; a key set twice is refused. */
export function parseSetFlags(texts: readonly string[]): Record<string, unknown> {
  const set: Record<string, unknown> = {};
  for (const text of texts) {
    const [key, raw] = splitAssignment(text, "--set", "lr=3e-4");
    const where = `--set ${key}`;
    checkKeyName(key, "--set");
    if (key in set) throw new UserError(`--set gives '${key}' twice`);
    const value = flagValue(raw, where);
    checkValue(value, where);
    set[key] = value;
  }
  return set;
}

/**
 * `--axis key=v1,v2` (repeatable), or `--axis d_model,d_ff=[64,128],[128,256]` for keys
 * varied together: the values are read as one YAML list, "[v1,v2]".
 */
export function parseAxisFlag(text: string): Axis {
  const [name, raw] = splitAssignment(text, "--axis", AXIS_EXAMPLE);
  const origin = `--axis ${name}`;
  const values = flagValue(`[${raw}]`, origin);
  return makeAxis(name, values, origin);
}

/** One point of an axis as the overrides it sets: {d_model: 64, d_ff: 128}. */
export function pointValues(axis: Axis, point: unknown[]): Record<string, unknown> {
  return Object.fromEntries(axis.keys.map((k, i) => [k, point[i]]));
}

/** Every combination of the axes' points, the first axis varying slowest: {key: value} each. */
export function axisProduct(axes: readonly Axis[]): Record<string, unknown>[] {
  let combos: Record<string, unknown>[] = [{}];
  for (const axis of axes) {
    combos = combos.flatMap((combo) => axis.points.map((point) => ({ ...combo, ...pointValues(axis, point) })));
  }
  return combos;
}

/** "num_bins=16 d_model=64": a combination as a person reads it. */
export function describeCombo(combo: Record<string, unknown>): string {
  return Object.entries(combo).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
}

/**
 * The axes and pinned values of a plan: flags win over the file. A flag axis replaces the
 * file's axis over the same keys; a --set key stops a file axis over that key alone from
 * varying (the whole axis goes) and replaces a file override. Refused, as contradictions:
 * a key in two axes, a --set and an --axis of one key, a flag axis or --set that splits a
 * file axis of keys varied together.
 */
export function mergeAxes(fileAxes: readonly Axis[], flagAxes: readonly Axis[], set: Record<string, unknown>): Axis[] {
  const seenFlagKeys = new Set<string>();
  for (const axis of flagAxes) {
    for (const key of axis.keys) {
      if (seenFlagKeys.has(key)) throw new UserError(`--axis varies '${key}' twice`);
      if (key in set) throw new UserError(`'${key}' is both set (--set) and swept (--axis): give one`);
      seenFlagKeys.add(key);
    }
  }
  const same = (a: Axis, b: Axis) => a.keys.length === b.keys.length && a.keys.every((k) => b.keys.includes(k));
  const merged: Axis[] = [];
  for (const axis of fileAxes) {
    const replacement = flagAxes.find((f) => same(f, axis));
    if (replacement) {
      merged.push(replacement);
      continue;
    }
    const split = axis.keys.find((k) => seenFlagKeys.has(k) || (k in set && axis.keys.length > 1));
    if (split !== undefined) {
      throw new UserError(`${axis.origin} varies ${axis.keys.join(", ")} together: a flag can replace the whole axis ` +
        `(--axis ${axis.keys.join(",")}=...), not '${split}' alone`);
    }
    if (axis.keys.some((k) => k in set)) continue; // --set pins it
    merged.push(axis);
  }
  merged.push(...flagAxes.filter((f) => !fileAxes.some((a) => same(a, f))));
  return merged;
}

/** Refuse a grid too large to be meant; `sizes` name each factor ("actor 2", "num_bins 4", "seeds 3"). */
export function checkGridSize(sizes: [string, number][]): number {
  const total = sizes.reduce((n, [, k]) => n * k, 1);
  if (total > MAX_GRID_RUNS) {
    throw new UserError(`the grid has ${total} runs (${sizes.map(([n, k]) => `${n} ${k}`).join(" x ")}); at most ${MAX_GRID_RUNS} a sweep`);
  }
  return total;
}
