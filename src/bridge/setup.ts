// The Python runtime amago2 trains with: the project virtualenv (`<repo>/.venv`) created on
// first use or by `amago2 setup`, or an interpreter the user chose (--python,
// AMAGO2_PYTHON) that gets the package installed into it. Each step shows on stderr
// through an ora spinner. Procgen gets a second virtualenv (`<repo>/.venv-procgen`,
// `amago2 setup --procgen`): procgen2 needs numpy<2 and the old gym.
//
// torch is installed only when the interpreter has none, at the exact version the project
// is tested with (a user's own CUDA build is kept as is); afterwards its version is checked
// again, because `pip install -e python` must never have swapped it (an unpinned
// reinstall pulls a multi-GB build).
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import ora, { type Ora } from "ora";
import { PACKAGE_ROOT } from "../plan/package.js";
import { UserError } from "../ui/errors.js";
import {
  PROCGEN_PYTHON, PROCGEN_VENV, PROJECT_PYTHON, PROJECT_VENV, chosenPython, probeProcgen, pythonRuns, resolvePython,
  type ProcgenVersions,
} from "./python.js";

export const TORCH_VERSION = "2.13.0";
/** python/pyproject.toml: requires-python. */
const MIN_PYTHON: [number, number] = [3, 11];
/** procgen2 0.10.7 publishes wheels for CPython 3.11 only. */
const PROCGEN_PYTHON_VERSION: [number, number] = [3, 11];

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
    if (isProjectVenv && (opts.force || !existsSync(python))) {
      await createVenv(PROJECT_VENV, await basePython(["python3", "python"], atLeast(MIN_PYTHON),
        `no Python ${MIN_PYTHON.join(".")}+ with the venv module on PATH; install one (e.g. apt-get install python3 python3-venv), or set AMAGO2_PYTHON=/path/to/python`), spinner);
    }
    const expected = await ensureTorch(python, spinner);
    await step(spinner, "installing the amago2 package (pip install -e python)", python,
      ["-m", "pip", "install", "--disable-pip-version-check", "-e", `${PACKAGE_ROOT}/python`]);
    const torchAfter = await checkTorchKept(python, expected, spinner);
    spinner.succeed(`Python runtime ready: ${python} (torch ${torchAfter})`);
  } catch (err) {
    spinner.fail("Python runtime setup failed");
    throw err;
  }
  return resolvePython(opts);
}

/**
 * Makes sure the Procgen runtime (.venv-procgen) runs amago2 and a Procgen game; returns
 * its versions. A working one is left alone unless `force`, which recreates it. It never
 * uses an interpreter the user chose: procgen's numpy<2 would downgrade theirs.
 */
export async function ensureProcgenRuntime(opts: { force?: boolean } = {}): Promise<ProcgenVersions> {
  if (!opts.force) {
    const probe = await probeProcgen(PROCGEN_PYTHON);
    if (probe.state === "ok") return probe.versions;
  }
  const spinner = ora({ stream: process.stderr, text: "preparing the Procgen runtime" }).start();
  try {
    if (opts.force || !existsSync(PROCGEN_PYTHON)) {
      const version = PROCGEN_PYTHON_VERSION.join(".");
      await createVenv(PROCGEN_VENV, await basePython([`python${version}`, "python3", "python"], exactly(PROCGEN_PYTHON_VERSION),
        `no Python ${version} with the venv module on PATH (procgen2 0.10.7 has wheels for ${version} only); install one (e.g. apt-get install python${version} python${version}-venv)`), spinner);
    }
    const expected = await ensureTorch(PROCGEN_PYTHON, spinner);
    // The procgen extra pins procgen2, gym and numpy<2 next to amago2's own dependencies,
    // so one resolver run picks versions that all fit together.
    await step(spinner, "installing procgen2, gym, numpy<2 and the amago2 package (pip install -e 'python[procgen]')", PROCGEN_PYTHON,
      ["-m", "pip", "install", "--disable-pip-version-check", "-e", `${PACKAGE_ROOT}/python[procgen]`]);
    await checkTorchKept(PROCGEN_PYTHON, expected, spinner);
    spinner.text = "starting a Procgen game";
    const probe = await probeProcgen(PROCGEN_PYTHON);
    if (probe.state !== "ok") {
      const why = probe.state === "broken" ? probe.error : "no such interpreter";
      // The prebuilt game library links these system libraries (ldd of procgen's libenv.so).
      const hint = /cannot open shared object/.test(why) ? "; install the system's libGL and GLib (e.g. apt-get install libgl1 libglib2.0-0)" : "";
      throw new Error(`${PROCGEN_PYTHON} cannot start a Procgen game (${why})${hint}`);
    }
    const v = probe.versions;
    spinner.succeed(`Procgen runtime ready: ${PROCGEN_PYTHON} (torch ${v.torch}, numpy ${v.numpy}, procgen2 ${v.procgen2}, gym ${v.gym})`);
    return v;
  } catch (err) {
    spinner.fail("Procgen runtime setup failed");
    throw err;
  }
}

async function createVenv(venv: string, base: string, spinner: Ora): Promise<void> {
  if (existsSync(venv)) {
    spinner.text = `removing ${venv}`;
    rmSync(venv, { recursive: true, force: true });
  }
  const python = path.join(venv, "bin", "python");
  await step(spinner, `creating ${venv} with ${base}`, base, ["-m", "venv", venv]);
  await step(spinner, "upgrading pip", python, ["-m", "pip", "install", "--disable-pip-version-check", "--upgrade", "pip"]);
}

const atLeast = ([major, minor]: [number, number]) => (ma: number, mi: number) => ma > major || (ma === major && mi >= minor);
const exactly = ([major, minor]: [number, number]) => (ma: number, mi: number) => ma === major && mi === minor;

/** The first of `candidates` on PATH whose version `fits` and that has the venv module. */
async function basePython(candidates: string[], fits: (major: number, minor: number) => boolean, missing: string): Promise<string> {
  for (const candidate of candidates) {
    const probe = await execa(candidate, ["-c", "import sys, venv; print(sys.version_info[0], sys.version_info[1])"], { reject: false });
    if (probe.failed) continue;
    const [major, minor] = String(probe.stdout).trim().split(" ").map(Number);
    if (fits(major, minor)) return candidate;
  }
  throw new UserError(missing);
}

/** Installs the pinned torch when `python` has none; returns the version it must keep. */
async function ensureTorch(python: string, spinner: Ora): Promise<string> {
  const before = await torchVersion(python);
  if (before === null) await installTorch(python, spinner);
  return before ?? TORCH_VERSION;
}

/** Fails when installing the package swapped torch; returns the version found. */
async function checkTorchKept(python: string, expected: string, spinner: Ora): Promise<string> {
  spinner.text = "checking torch was left as it was";
  const after = await torchVersion(python);
  if (after === null || localVersionless(after) !== localVersionless(expected)) {
    throw new Error(`torch changed from ${expected} to ${after ?? "nothing"} while installing amago2; ` +
      `reinstall torch==${expected} into ${python}`);
  }
  return after;
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
