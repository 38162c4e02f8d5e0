// Which Python interpreter runs amago2, and one-shot JSON calls into it. Long training runs
// go through the pythonia bridge in a worker process (src/exec/worker.ts); the short
// queries here (describe, environment_report) run as a plain `python -c` subprocess, which
// has none of the bridge's failure modes and exits on its own.
import path from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT } from "../package.js";
import { UserError } from "../ui/errors.js";

/** The project virtualenv `amago2 setup` creates. */
export const PROJECT_VENV = path.join(PACKAGE_ROOT, ".venv");
export const PROJECT_PYTHON = path.join(PROJECT_VENV, "bin", "python");
/**
 * Procgen's own virtualenv (`amago2 setup --procgen`): procgen2 needs numpy<2 and the old
 * gym, which the project venv's packages cannot live with.
 */
export const PROCGEN_VENV = path.join(PACKAGE_ROOT, ".venv-procgen");
export const PROCGEN_PYTHON = path.join(PROCGEN_VENV, "bin", "python");
/** The built-in benchmarks whose runs default to the Procgen runtime. */
export const PROCGEN_BENCHMARKS: readonly string[] = ["procgen", "procgen-rescaled"];

const FIX_HINT = "run `amago2 setup`, or set AMAGO2_PYTHON=/path/to/python (one with `pip install -e python` done)";
const PROCGEN_FIX_HINT = "install it with `amago2 setup --procgen` (Procgen needs numpy<2 and the old gym, so it " +
  "gets a venv of its own), or set AMAGO2_PYTHON=/path/to/python (a Python 3.11 with `pip install -e 'python[procgen]'` done)";

export interface PythonChoice {
  /** --python */
  python?: string;
  /** The built-in benchmark the interpreter is for: Procgen's have their own default. */
  benchmark?: string;
}

function usesProcgenRuntime(opts: PythonChoice): boolean {
  return !opts.python && !process.env.AMAGO2_PYTHON && PROCGEN_BENCHMARKS.includes(opts.benchmark ?? "");
}

/**
 * The interpreter asked for (--python, then AMAGO2_PYTHON), else the Procgen runtime for a
 * Procgen benchmark and the project venv for everything else; unverified.
 */
export function chosenPython(opts: PythonChoice = {}): string {
  if (usesProcgenRuntime(opts)) return PROCGEN_PYTHON;
  return opts.python || process.env.AMAGO2_PYTHON || PROJECT_PYTHON;
}

/** Names where the interpreter came from, for error lines. */
function origin(opts: PythonChoice): string {
  if (opts.python) return "--python";
  if (process.env.AMAGO2_PYTHON) return "AMAGO2_PYTHON";
  if (usesProcgenRuntime(opts)) return `the Procgen runtime, which benchmark '${opts.benchmark}' runs in`;
  return "the project venv";
}

/**
 * The interpreter to use, verified to run and to import amago2, as an absolute path (a bare
 * name such as `python3` is looked up on PATH). Throws a UserError (one line, saying how to
 * fix it) when it is missing or lacks the package.
 */
export async function resolvePython(opts: PythonChoice = {}): Promise<string> {
  const python = chosenPython(opts);
  const from = origin(opts);
  const fix = usesProcgenRuntime(opts) ? PROCGEN_FIX_HINT : FIX_HINT;
  const probe = await execa(python, ["-c", "import sys, amago2; print(sys.executable)"], { reject: false, timeout: 60_000 });
  if (probe.code === "ENOENT" || probe.code === "EACCES") {
    throw new UserError(`no Python interpreter at ${python} (${from}); ${fix}`);
  }
  if (probe.failed) {
    const why = lastLine(String(probe.stderr)) || probe.shortMessage;
    throw new UserError(`${python} (${from}) cannot import amago2 (${why}); ${fix}`);
  }
  const executable = lastLine(String(probe.stdout));
  if (executable === "") throw new UserError(`${python} (${from}) is not a Python interpreter (it ran the probe and printed nothing); ${fix}`);
  return executable;
}

/** Whether `python` names an interpreter that runs (a path, or a name on PATH). */
export async function pythonRuns(python: string): Promise<boolean> {
  return !(await execa(python, ["-c", "pass"], { reject: false, timeout: 60_000 })).failed;
}

/** The versions a working Procgen runtime reports. */
export interface ProcgenVersions {
  python: string;
  torch: string;
  numpy: string;
  gym: string;
  procgen2: string;
}

export type ProcgenProbe =
  | { state: "ok"; versions: ProcgenVersions }
  | { state: "missing" }
  | { state: "broken"; error: string };

/** Whether `python` exists and runs amago2 and a Procgen game (amago2.bridge.procgen_report): its versions, or why not. */
export async function probeProcgen(python: string): Promise<ProcgenProbe> {
  const reply = await bridgeCall(python, "procgen_report", undefined, 120_000);
  if (reply.code === "ENOENT" || reply.code === "EACCES") return { state: "missing" };
  if (reply.failed) return { state: "broken", error: lastLine(reply.stderr) || reply.shortMessage };
  return { state: "ok", versions: JSON.parse(lastLine(reply.stdout)) as ProcgenVersions };
}

/**
 * Calls `amago2.bridge.<fn>()`, or `<fn>(json)` with `arg` as its JSON argument (passed in
 * argv, never spliced into code); each returns a JSON string (docs/INTERFACES.md section 1)
 * that is parsed here. The JSON is the last line of stdout, so a stray print in an imported
 * package cannot corrupt it.
 */
export async function callPythonJson(
  python: string,
  fn: "describe" | "environment_report" | "check_benchmarks" | "resolve_runs",
  arg?: unknown,
): Promise<unknown> {
  const result = await bridgeCall(python, fn, arg, 300_000);
  if (result.failed) throw new Error(`amago2.bridge.${fn}() failed in ${python}:\n${result.stderr}`);
  return JSON.parse(lastLine(result.stdout));
}

/** One call of an amago2.bridge function in a fresh `python`, its JSON argument in argv. */
async function bridgeCall(python: string, fn: string, arg: unknown, timeout: number) {
  const call = arg === undefined ? `b.${fn}()` : `b.${fn}(sys.argv[1])`;
  const code = `import sys, amago2.bridge as b\nsys.stdout.write("\\n" + ${call} + "\\n")`;
  const args = ["-c", code, ...(arg === undefined ? [] : [JSON.stringify(arg)])];
  const result = await execa(python, args, { reject: false, timeout });
  return { failed: result.failed, code: result.code, stdout: String(result.stdout), stderr: String(result.stderr),
    shortMessage: String(result.shortMessage) };
}

function lastLine(text: string): string {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return lines.length ? lines[lines.length - 1].trim() : "";
}
