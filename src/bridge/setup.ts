// The Python runtimes amago2 trains with, installed from their locks (python/locks/, see
// src/bridge/runtime.ts): the project virtualenv (`<repo>/.venv`, `amago2 setup`), or an
// interpreter the user chose (--python, AMAGO2_PYTHON) that gets the same packages; and
// Procgen's own virtualenv (`<repo>/.venv-procgen`, `amago2 setup --procgen`), since
// procgen2 needs numpy<2 and the old gym. Each step shows on stderr through an ora spinner.
//
// Every locked version is installed exactly (pip --no-deps), so a runtime is the same on
// every machine. torch is installed only where there is none, at the locked version, with
// what it needs; a user's own torch (a CUDA build) is kept, and is checked again at the end.
// A runtime ends checked, not assumed: every locked version present, `pip check` clean for
// the locked packages, and every benchmark of the runtime building an environment.
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import ora, { type Ora } from "ora";
import { PACKAGE_ROOT } from "../package.js";
import { UserError } from "../ui/errors.js";
import {
  PROCGEN_BENCHMARKS, PROCGEN_PYTHON, PROCGEN_VENV, PROJECT_PYTHON, PROJECT_VENV, chosenPython, probeProcgen, pythonRuns,
  resolvePython, type ProcgenVersions,
} from "./python.js";
import {
  BUILD_TOOLS, MAIN_LOCK, PROCGEN_LOCK, benchmarkFix, checkBenchmarks, isComplete, lockConflicts, readLock, runtimeOf, runtimePins,
  runtimeState, hasOwnTorch, torchPin, torchTooOld, withoutLocalLabel, type Lock, type RuntimeState,
} from "./runtime.js";

/** python/pyproject.toml: requires-python. */
const MIN_PYTHON: [number, number] = [3, 11];
/** procgen2 0.10.7 publishes wheels for CPython 3.11 only. */
const PROCGEN_PYTHON_VERSION: [number, number] = [3, 11];

/** One runtime to install: where, from which lock, and how to make its venv. */
interface RuntimeSpec {
  python: string;
  lock: Lock;
  /** The venv setup may create and recreate; null for an interpreter the user chose. */
  venv: { dir: string; base: () => Promise<string> } | null;
  /** The command that installs this runtime, named in error lines. */
  setupCommand: string;
}

/**
 * Makes sure the interpreter amago2 will use holds its lock and runs every benchmark;
 * returns its path. A runtime that already does is left untouched unless `force`: then
 * every install step runs again, and the project venv (never an interpreter the user
 * chose) is first deleted and recreated.
 */
export async function ensurePythonRuntime(opts: { python?: string; force?: boolean } = {}): Promise<string> {
  const python = chosenPython(opts);
  const isProjectVenv = python === PROJECT_PYTHON;
  if (!isProjectVenv && !(await pythonRuns(python))) {
    throw new UserError(`no Python interpreter at ${python}; give an existing one, or leave out --python/AMAGO2_PYTHON to use the project venv`);
  }
  const spec: RuntimeSpec = {
    python,
    lock: readLock(MAIN_LOCK),
    venv: isProjectVenv
      ? {
        dir: PROJECT_VENV,
        base: () => basePython(["python3", "python"], atLeast(MIN_PYTHON),
          `no Python ${MIN_PYTHON.join(".")}+ with the venv module on PATH; install one (e.g. apt-get install python3 python3-venv), or set AMAGO2_PYTHON=/path/to/python`),
      }
      : null,
    setupCommand: runtimeOf(python).setup,
  };
  if (!isProjectVenv) {  // the user's own torch is kept: one too old is refused before anything changes
    const { torch } = await runtimeState(python, spec.lock);
    const tooOld = torch === null ? null : torchTooOld(torch);
    if (tooOld !== null) throw new UserError(`${python}: ${tooOld}`);
  }
  const spinner = ora({ stream: process.stderr, text: "checking the Python runtime" }).start();
  try {
    const state = await installRuntime(spec, Boolean(opts.force), spinner);
    spinner.text = "building one environment of every benchmark";
    const checks = (await checkBenchmarks(python, "all")).filter((c) => !PROCGEN_BENCHMARKS.includes(c.name));
    const failed = checks.filter((c) => c.state !== "ok");
    if (failed.length > 0) {
      throw new Error(failed.map((c) => {
        const fix = benchmarkFix(c, state, spec.lock, spec.setupCommand);
        return `benchmark '${c.name}' cannot run in ${python} (${c.error})${fix === null ? "" : `; ${fix}`}`;
      }).join("\n"));
    }
    spinner.succeed(`Python runtime ready: ${python} (torch ${state.torch}; ${spec.lock.packages.length} locked packages; ${checks.length} benchmarks build)`);
  } catch (err) {
    spinner.fail("Python runtime setup failed");
    throw err;
  }
  return resolvePython(opts);
}

/**
 * Makes sure the Procgen runtime (.venv-procgen) holds its lock and runs a Procgen game;
 * returns its versions. It never uses an interpreter the user chose: procgen's numpy<2
 * would downgrade theirs.
 */
export async function ensureProcgenRuntime(opts: { force?: boolean } = {}): Promise<ProcgenVersions> {
  const version = PROCGEN_PYTHON_VERSION.join(".");
  const spec: RuntimeSpec = {
    python: PROCGEN_PYTHON,
    lock: readLock(PROCGEN_LOCK),
    venv: {
      dir: PROCGEN_VENV,
      base: () => basePython([`python${version}`, "python3", "python"], exactly(PROCGEN_PYTHON_VERSION),
        `no Python ${version} with the venv module on PATH (procgen2 0.10.7 has wheels for ${version} only); install one (e.g. apt-get install python${version} python${version}-venv)`),
    },
    setupCommand: runtimeOf(PROCGEN_PYTHON).setup,
  };
  const spinner = ora({ stream: process.stderr, text: "checking the Procgen runtime" }).start();
  try {
    await installRuntime(spec, Boolean(opts.force), spinner);
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

/**
 * Brings `spec.python` to its lock, or leaves it as it is when it holds the lock already
 * (and `force` is not set); returns the state it ends in.
 */
async function installRuntime(spec: RuntimeSpec, force: boolean, spinner: Ora): Promise<RuntimeState> {
  const { python, lock } = spec;
  if (spec.venv && (force || !(await pythonRuns(python)))) await createVenv(spec.venv.dir, await spec.venv.base(), spinner);
  const before = await runtimeState(python, lock);
  if (!force && isComplete(before)) return before;

  const pip = ["-m", "pip", "install", "--disable-pip-version-check"];
  const pins = (names: string[]) => lock.packages.filter((p) => names.includes(p.name)).map((p) => `${p.name}==${p.version}`);
  const ownTorch = hasOwnTorch(before.torch, lock);
  // The locked pip first (the venv module's own may be years old), and setuptools, which
  // builds the package below without an isolated build environment of unlocked tools.
  // Beside a user's own torch, their pip and setuptools stay (BUILD_TOOLS).
  if (!ownTorch) await step(spinner, "installing the locked pip and setuptools", python, [...pip, "--no-deps", ...pins(BUILD_TOOLS)]);
  const torch = torchPin(lock);
  if (before.torch === null) {
    // torch with what it needs, every version the lock names held to it (-c); on Linux
    // x86_64 PyPI's torch is the CUDA build, whose nvidia-* packages torch pins itself.
    await step(spinner, `installing torch ${torch.version} (a large download on a machine without it)`, python,
      [...pip, "-c", lock.file, `torch==${torch.version}`]);
  }
  const packages = runtimePins(lock, before.torch);
  await step(spinner, `installing ${packages.length} locked packages (${path.relative(PACKAGE_ROOT, lock.file)})`, python,
    [...pip, "--no-deps", ...packages.map((p) => `${p.name}==${p.version}`)]);
  if (ownTorch) {
    const needed = (await execa(python, ["-c", SETUPTOOLS_NEEDED], { timeout: 60_000 })).stdout.trim();
    if (needed !== "") await step(spinner, `installing ${needed} (to build amago2, within torch's own bounds)`, python, [...pip, needed]);
  }
  await step(spinner, "installing the amago2 package (pip install -e python)", python,
    [...pip, "--no-deps", "--no-build-isolation", "-e", path.join(PACKAGE_ROOT, "python")]);

  spinner.text = "checking the runtime against its lock";
  const after = await runtimeState(python, lock);
  const expectedTorch = before.torch ?? torch.version;
  if (after.torch === null || withoutLocalLabel(after.torch) !== withoutLocalLabel(expectedTorch)) {
    throw new Error(`torch changed from ${expectedTorch} to ${after.torch ?? "nothing"} while installing amago2; ` +
      `reinstall torch==${expectedTorch} into ${python}`);
  }
  assertInstalled(spec, after);
  const conflicts = await lockConflicts(python, lock);
  if (conflicts.length > 0) {
    throw new Error(`the locked packages do not fit together in ${python} (pip check: ${conflicts.join("; ")}); ` +
      "regenerate the lock with `python3 scripts/lock-python.py`");
  }
  return after;
}

/**
 * Prints the setuptools requirement to install beside a user's own torch, or nothing when
 * the one there meets it: at least what python/pyproject.toml's [build-system] asks for,
 * within every bound torch's metadata sets (packaging is installed by then: it is locked).
 */
const SETUPTOOLS_NEEDED = `
import importlib.metadata as m
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
wanted = SpecifierSet(">=68")
for r in map(Requirement, m.requires("torch") or []):
    if r.name.lower() == "setuptools" and (r.marker is None or r.marker.evaluate({"extra": ""})):
        wanted &= r.specifier
try:
    have = m.version("setuptools")
except m.PackageNotFoundError:
    have = None
print("" if have is not None and wanted.contains(have, prereleases=True) else f"setuptools{wanted}")
`;

function assertInstalled(spec: RuntimeSpec, state: RuntimeState): void {
  if (state.differences.length > 0) {
    throw new Error(`after installing, ${spec.python} still differs from ${spec.lock.file}: ${state.differences.join(", ")}`);
  }
  if (!state.ownPackage) {
    throw new Error(`after installing, \`import amago2\` in ${spec.python} does not load ${path.join(PACKAGE_ROOT, "python")} ` +
      "(another amago2 earlier on its path?)");
  }
}

async function createVenv(venv: string, base: string, spinner: Ora): Promise<void> {
  if (existsSync(venv)) {
    spinner.text = `removing ${venv}`;
    rmSync(venv, { recursive: true, force: true });
  }
  await step(spinner, `creating ${venv} with ${base}`, base, ["-m", "venv", venv]);
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

async function step(spinner: Ora, text: string, command: string, args: string[]): Promise<void> {
  spinner.text = text;
  const result = await execa(command, args, { reject: false, all: true });
  if (result.failed) {
    const tail = String(result.all ?? "").split("\n").slice(-15).join("\n");
    throw new Error(`${text} failed (${result.shortMessage}):\n${tail}`);
  }
}
