// The event schema of docs/INTERFACES.md section 2, validated strictly: this is the one
// place where lines written by Python become typed values.

export const EVENT_TYPES = ["started", "metrics", "eval", "checkpoint", "heartbeat", "finished", "error"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A float as Python's json writes it: a number, or NaN / Infinity / -Infinity. */
export type Scalar = number | "nan" | "inf" | "-inf";

/** Whose actions an evaluation took: the trained agent's, or uniform random ones (the floor). */
export type EvalPolicy = "agent" | "random";

export interface EvalTask {
  trials: number;
  return: Scalar[];
  success: number[] | null;
  score: number[] | null;
}

interface Common {
  seq: number;
  t: number;
  step: number;
  update: number;
}

export type RunEvent = Common &
  (
    | { type: "started"; resumed: boolean; config: Record<string, unknown>; versions: Record<string, unknown>; device: string; pid: number;
        /** Env steps the run trains for; null in journals written before the event carried it. */
        total_steps: number | null;
        /** Settings a resumed run kept from its first attempt where amago2 now resolves
         * others: {key: [kept, resolved now]}; empty in journals written before. */
        kept_settings: Record<string, [unknown, unknown]> }
    | { type: "metrics"; metrics: Record<string, Scalar> }
    | { type: "eval"; split: "train" | "test"; policy: EvalPolicy; tasks: Record<string, EvalTask> }
    | { type: "checkpoint"; path: string }
    | { type: "heartbeat" }
    | { type: "finished"; summary: Record<string, unknown> & { status: string } }
    | { type: "error"; error_type: string; message: string; traceback: string }
  );

export class EventFormatError extends Error {}

const NON_FINITE_TOKENS: Record<string, Scalar> = { NaN: "nan", Infinity: "inf", "-Infinity": "-inf" };

/**
 * JSON.parse, also accepting the bare NaN / Infinity / -Infinity tokens that Python's json
 * module writes by default; they become the strings "NaN", "Infinity", "-Infinity".
 */
export function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    let out = "";
    let inString = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (inString) {
        out += ch;
        if (ch === "\\") out += line[++i] ?? "";
        else if (ch === '"') inString = false;
        continue;
      }
      if (ch === '"') inString = true;
      const token = Object.keys(NON_FINITE_TOKENS).find((tok) => line.startsWith(tok, i));
      if (token && !(token === "Infinity" && line[i - 1] === "-")) {
        out += JSON.stringify(token);
        i += token.length - 1;
        continue;
      }
      out += ch;
    }
    return JSON.parse(out);
  }
}

/** The line a sweep prints when a run resumes with settings that differ from today's; null if none. */
export function keptSettingsNote(label: string, kept: Record<string, [unknown, unknown]>): string | null {
  const settings = describeKeptSettings(kept);
  return settings ? `resumed  ${label} with the settings it started with: ${settings}` : null;
}

/** "eval_trials_per_task=3 (now 10), lr=0.001 (now 0.0005)": the settings a resumed run keeps. */
export function describeKeptSettings(kept: Record<string, [unknown, unknown]>): string {
  return Object.entries(kept).map(([k, [was, now]]) => `${k}=${JSON.stringify(was)} (now ${JSON.stringify(now)})`).join(", ");
}

function keptSettings(raw: unknown): Record<string, [unknown, unknown]> {
  if (!isObject(raw)) fail("'kept_settings' must be an object");
  for (const [key, pair] of Object.entries(raw)) {
    if (!Array.isArray(pair) || pair.length !== 2) fail(`'kept_settings.${key}' must be [kept, resolved now]`);
  }
  return raw as Record<string, [unknown, unknown]>;
}

function fail(what: string): never {
  throw new EventFormatError(what);
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function int(o: Record<string, unknown>, key: string, min = 0): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) fail(`'${key}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}
function str(o: Record<string, unknown>, key: string): string {
  if (typeof o[key] !== "string") fail(`'${key}' must be a string`);
  return o[key] as string;
}
function obj(o: Record<string, unknown>, key: string): Record<string, unknown> {
  if (!isObject(o[key])) fail(`'${key}' must be an object`);
  return o[key] as Record<string, unknown>;
}
function scalar(v: unknown, what: string): Scalar {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v in NON_FINITE_TOKENS) return NON_FINITE_TOKENS[v];
  return fail(`${what} must be a number, got ${JSON.stringify(v)}`);
}
function numberList(v: unknown, what: string, nullable: boolean): number[] | null {
  if (v === null && nullable) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number")) fail(`${what} must be a list of numbers`);
  return v as number[];
}

/** Parse and validate one journal line; EventFormatError says what is wrong. */
export function parseEvent(line: string): RunEvent {
  let raw: unknown;
  try {
    raw = parseJsonLine(line);
  } catch {
    fail(`not JSON: ${line.slice(0, 80)}`);
  }
  if (!isObject(raw)) fail("an event must be a JSON object");
  const common: Common = { seq: int(raw, "seq"), t: 0, step: int(raw, "step"), update: int(raw, "update") };
  if (typeof raw.t !== "number") fail("'t' must be a number");
  common.t = raw.t;
  const type = raw.type as EventType;
  switch (type) {
    case "started":
      if (typeof raw.resumed !== "boolean") fail("'resumed' must be a boolean");
      return { ...common, type, resumed: raw.resumed, config: obj(raw, "config"), versions: obj(raw, "versions"),
        device: str(raw, "device"), pid: int(raw, "pid", 1),
        total_steps: raw.total_steps === undefined ? null : int(raw, "total_steps", 1),
        kept_settings: keptSettings(raw.kept_settings ?? {}) };
    case "metrics": {
      const metrics: Record<string, Scalar> = {};
      for (const [name, value] of Object.entries(obj(raw, "metrics"))) metrics[name] = scalar(value, `metric '${name}'`);
      return { ...common, type, metrics };
    }
    case "eval": {
      if (raw.split !== "train" && raw.split !== "test") fail("'split' must be 'train' or 'test'");
      const policy = raw.policy ?? "agent";
      if (policy !== "agent" && policy !== "random") fail("'policy' must be 'agent' or 'random'");
      const tasks: Record<string, EvalTask> = {};
      for (const [task, entry] of Object.entries(obj(raw, "tasks"))) {
        if (!isObject(entry)) fail(`eval task '${task}' must be an object`);
        const returns = entry.return;
        if (!Array.isArray(returns)) fail(`eval task '${task}': 'return' must be a list`);
        tasks[task] = {
          trials: int(entry, "trials"),
          return: returns.map((r, i) => scalar(r, `eval '${task}' return[${i}]`)),
          success: numberList(entry.success ?? null, `eval '${task}' success`, true),
          score: numberList(entry.score ?? null, `eval '${task}' score`, true),
        };
      }
      return { ...common, type, split: raw.split, policy, tasks };
    }
    case "checkpoint":
      return { ...common, type, path: str(raw, "path") };
    case "heartbeat":
      return { ...common, type };
    case "finished": {
      const summary = obj(raw, "summary");
      str(summary, "status");
      return { ...common, type, summary: summary as Record<string, unknown> & { status: string } };
    }
    case "error":
      return { ...common, type, error_type: str(raw, "error_type"), message: str(raw, "message"),
        traceback: str(raw, "traceback") };
    default:
      return fail(`unknown event type ${JSON.stringify(raw.type)} (known: ${EVENT_TYPES.join(", ")})`);
  }
}
