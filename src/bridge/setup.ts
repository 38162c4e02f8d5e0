// The Python runtime amago2 trains with: the project virtualenv (`<repo>/.venv`) created on
// first use or by `amago2 setup`, or an interpreter the user chose (--python,
// AMAGO2_PYTHON) that gets the package installed into it. Each step shows on stderr
// through an ora spinner.
//
// torch is installed only when the interpreter has none, at the exact version the project
// is tested with (a user's own CUDA build is kept as is); afterwards its version is checked
// again, because `pip install -e python` must never have swapped it (an unpinned
// reinstall pulls a multi-GB build).
import { existsSync, rmSync } from "node:fs";
import { execa } from "execa";
import ora, { type Ora } from "ora";
import { PACKAGE_ROOT } from "../plan/package.js";
import { UserError } from "../ui/errors.js";
import { PROJECT_PYTHON, PROJECT_VENV, chosenPython, pythonRuns, resolvePython } from "./python.js";

export const TORCH_VERSION = "2.13.0";
/** Where CPU-only torch wheels live; PyPI's default wheel bundles CUDA libraries. */
const MIN_PYTHON: [number, number] = [3, 11];

/**
 * Makes sure the interpreter amago2 will use exists and has the package; returns its path.
 * A complete runtime is left alone unless `force`: then every install step runs again, and
 * the project venv (never an interpreter the user chose) is first deleted and recreated.
 */
export async function ensurePythonRuntime(opts: { python?: string; force?: boolean } = {}): Promise<string> {
  const python = chosenPython(opts);
  const isProjectVenv = python === PROJECT_PYTHON;
  if (!opts.force) {
    const complete = await execa(python, ["-c", "import amago2, torch"], { reject: false });
    if (!complete.failed) return resolvePython(opts);
  }
  if (!isProjectVenv && !(await pythonRuns(python))) {
    throw new UserError(`no Python interpreter at ${python}; give an existing one, or leave out --python/AMAGO2_PYTHON to use the project venv`);
  }

  const spinner = ora({ stream: process.stderr, text: "preparing the Python runtime" }).start();
  try {
    if (isProjectVenv && (opts.force || !existsSync(python))) await createVenv(spinner);
    const torchBefore = await torchVersion(python);
    if (torchBefore === null) await installTorch(python, spinner);
    const expected = torchBefore ?? TORCH_VERSION;
    await step(spinner, "installing the amago2 package (pip install -e python)", python,
      ["-m", "pip", "install", "--disable-pip-version-check", "-e", `${PACKAGE_ROOT}/python`]);
    spinner.text = "checking torch was left as it was";
    const torchAfter = await torchVersion(python);
    if (torchAfter === null || localVersionless(torchAfter) !== localVersionless(expected)) {
      throw new Error(`torch changed from ${expected} to ${torchAfter ?? "nothing"} while installing amago2; ` +
        `reinstall torch==${expected} into ${python}`);
    }
    spinner.succeed(`Python runtime ready: ${python} (torch ${torchAfter})`);
  } catch (err) {
    spinner.fail("Python runtime setup failed");
    throw err;
  }
  return resolvePython(opts);
}

async function createVenv(spinner: Ora): Promise<void> {
  if (existsSync(PROJECT_VENV)) {
    spinner.text = `removing ${PROJECT_VENV}`;
    rmSync(PROJECT_VENV, { recursive: true, force: true });
  }
  const base = await basePython();
  await step(spinner, `creating ${PROJECT_VENV} with ${base}`, base, ["-m", "venv", PROJECT_VENV]);
  await step(spinner, "upgrading pip", PROJECT_PYTHON, ["-m", "pip", "install", "--disable-pip-version-check", "--upgrade", "pip"]);
}

/** A system Python new enough for the package (python/pyproject.toml: requires-python). */
async function basePython(): Promise<string> {
  for (const candidate of ["python3", "python"]) {
    const probe = await execa(candidate, ["-c", "import sys, venv; print(sys.version_info[0], sys.version_info[1])"], { reject: false });
    if (probe.failed) continue;
    const [major, minor] = String(probe.stdout).trim().split(" ").map(Number);
    if (major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1])) return candidate;
  }
  throw new UserError(`no Python ${MIN_PYTHON.join(".")}+ with the venv module on PATH; install one (e.g. apt-get install python3 python3-venv), or set AMAGO2_PYTHON=/path/to/python`);
}

async function installTorch(python: string, spinner: Ora): Promise<void> {
  // Plain PyPI (or the machine's configured index): a pinned version, never a range, so a
  // later `pip install -e python` finds its torch requirement met and installs no other.
  await step(spinner, `installing torch ${TORCH_VERSION} (a large download on a machine without it)`, python,
    ["-m", "pip", "install", "--disable-pip-version-check", `torch==${TORCH_VERSION}`]);
}

/** The interpreter's torch version ("2.13.0+cpu"), or null when it has none. */
async function torchVersion(python: string): Promise<string | null> {
  const probe = await execa(python, ["-c", "import torch; print(torch.__version__)"], { reject: false });
  return probe.failed ? null : String(probe.stdout).trim().split("\n").pop()!;
}

/** "2.13.0+cpu" -> "2.13.0": the local label says which build, not which version. */
function localVersionless(version: string): string {
  return version.split("+")[0];
}

async function step(spinner: Ora, text: string, command: string, args: string[]): Promise<void> {
  spinner.text = text;
  const result = await execa(command, args, { reject: false, all: true });
  if (result.failed) {
    const tail = String(result.all ?? "").split("\n").slice(-15).join("\n");
    throw new Error(`${text} failed (${result.shortMessage}):\n${tail}`);
  }
}
