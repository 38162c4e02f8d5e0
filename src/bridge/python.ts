// Which Python interpreter runs amago2, and one-shot JSON calls into it. Long training runs
// go through the pythonia bridge in a worker process (src/exec/worker.ts); the short
// queries here (describe, environment_report) run as a plain `python -c` subprocess, which
// has none of the bridge's failure modes and exits on its own.
import path from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT } from "../plan/package.js";
import { UserError } from "../ui/errors.js";

/** The project virtualenv `amago2 setup` creates. */
export const PROJECT_VENV = path.join(PACKAGE_ROOT, ".venv");
export const PROJECT_PYTHON = path.join(PROJECT_VENV, "bin", "python");

const FIX_HINT = "run `amago2 setup`, or set AMAGO2_PYTHON=/path/to/python (one with `pip install -e python` done)";

/** The interpreter asked for (--python, then AMAGO2_PYTHON), else the project venv; unverified. */
export function chosenPython(opts: { python?: string } = {}): string {
  return opts.python || process.env.AMAGO2_PYTHON || PROJECT_PYTHON;
}

/** Names where the interpreter came from, for error lines. */
function origin(opts: { python?: string }): string {
  if (opts.python) return "--python";
  if (process.env.AMAGO2_PYTHON) return "AMAGO2_PYTHON";
  return "the project venv";
}

/**
 * The interpreter to use, verified to run and to import amago2, as an absolute path (a bare
 * name such as `python3` is looked up on PATH). Throws a UserError (one line, saying how to
 * fix it) when it is missing or lacks the package.
 */
export async function resolvePython(opts: { python?: string } = {}): Promise<string> {
  const python = chosenPython(opts);
  const from = origin(opts);
  const probe = await execa(python, ["-c", "import sys, amago2; print(sys.executable)"], { reject: false, timeout: 60_000 });
  if (probe.code === "ENOENT" || probe.code === "EACCES") {
    throw new UserError(`no Python interpreter at ${python} (${from}); ${FIX_HINT}`);
  }
  if (probe.failed) {
    const why = lastLine(String(probe.stderr)) || probe.shortMessage;
    throw new UserError(`${python} (${from}) cannot import amago2 (${why}); ${FIX_HINT}`);
  }
  return lastLine(String(probe.stdout));
}

/** Whether `python` names an interpreter that runs (a path, or a name on PATH). */
export async function pythonRuns(python: string): Promise<boolean> {
  return !(await execa(python, ["-c", "pass"], { reject: false, timeout: 60_000 })).failed;
}

/**
 * Calls `amago2.bridge.<fn>()` (which returns a JSON string, docs/INTERFACES.md section 1)
 * and parses it. The JSON is the last line of stdout, so a stray print in an imported
 * package cannot corrupt it.
 */
export async function callPythonJson(
  python: string,
  fn: "describe" | "environment_report",
): Promise<unknown> {
  const code = `import sys, amago2.bridge as b\nsys.stdout.write("\\n" + b.${fn}() + "\\n")`;
  const result = await execa(python, ["-c", code], { reject: false, timeout: 300_000 });
  if (result.failed) {
    throw new Error(`amago2.bridge.${fn}() failed in ${python}:\n${String(result.stderr)}`);
  }
  return JSON.parse(lastLine(String(result.stdout)));
}

function lastLine(text: string): string {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return lines.length ? lines[lines.length - 1].trim() : "";
}
