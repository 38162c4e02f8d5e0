// What a Python runtime holds against its lock (python/locks/<runtime>.txt, written by
// `python3 scripts/lock-python.py`), and whether it can run a benchmark: one environment
// built, reset and stepped. `amago2 setup` installs to the lock and then checks; `doctor`
// reports both; `sweep` and `ablate` check their benchmark before anything is recorded.
import { readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { PACKAGE_ROOT } from "../package.js";
import { PROCGEN_PYTHON, PROJECT_PYTHON, callPythonJson } from "./python.js";

export const MAIN_LOCK = path.join(PACKAGE_ROOT, "python", "locks", "main.txt");
export const PROCGEN_LOCK = path.join(PACKAGE_ROOT, "python", "locks", "procgen.txt");
/** The line that starts a lock's torch section (scripts/lock-python.py writes it). */
const TORCH_SECTION = "# torch, and the packages only torch needs:";

export interface Pin {
  name: string;
  version: string;
}

export interface Lock {
  file: string;
  /** What every runtime of this kind gets, pip and setuptools included. */
  packages: Pin[];
  /** torch and what only torch needs: installed only into a Python without torch. */
  torch: Pin[];
}

/** PEP 503 names: "Jinja2", "typing_extensions" -> "jinja2", "typing-extensions". */
export function canonicalName(name: string): string {
  return name.replace(/[-_.]+/g, "-").toLowerCase();
}

export function readLock(file: string): Lock {
  const lock: Lock = { file, packages: [], torch: [] };
  let section = lock.packages;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    if (raw.startsWith(TORCH_SECTION)) section = lock.torch;
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const pin = /^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$/.exec(line);
    if (!pin) throw new Error(`${file}: '${line}' is not a name==version pin; regenerate it with python3 scripts/lock-python.py`);
    section.push({ name: canonicalName(pin[1]), version: pin[2] });
  }
  if (lock.torch.length === 0) throw new Error(`${file} has no torch section; regenerate it with python3 scripts/lock-python.py`);
  return lock;
}

export function torchPin(lock: Lock): Pin {
  return lock.torch.find((p) => p.name === "torch")!;
}

/** What an interpreter holds, read from package metadata (nothing is imported). */
export interface RuntimeState {
  torch: string | null;
  /** Whether `import amago2` loads this checkout's package. */
  ownPackage: boolean;
  /** Each locked pin the interpreter does not hold, e.g. "numpy 2.3.1 (locked 2.4.6)". */
  differences: string[];
}

const STATE_PROBE = [
  "import importlib.metadata as m, importlib.util, json, os, re, sys",
  "versions = {re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version for d in m.distributions()}",
  "spec = importlib.util.find_spec('amago2')",
  "origin = os.path.realpath(spec.origin) if spec and spec.origin else None",
  "sys.stdout.write('\\n' + json.dumps({'versions': versions, 'amago2': origin}) + '\\n')",
].join("\n");

/** "2.13.0+cpu" -> "2.13.0": the local label names the build, not the version. */
export function withoutLocalLabel(version: string): string {
  return version.split("+")[0];
}

/**
 * python/pyproject.toml's torch floor: the oldest torch the Python suite has run on.
 * The Python suite passes on 2.4.1 (CPU) but for one learning test's threshold at its one
 * seed (2.4's torch.multinomial draws other actions than 2.11's and 2.13's; other seeds
 * pass); 2.3 has no fused AdamW on the CPU. A user's own torch is kept as it is, so setup
 * and doctor check it.
 */
export const MIN_TORCH: [number, number] = [2, 4];

/** Why `version` (e.g. "2.3.1+cu121") is too old a torch for amago2, or null when it is not. */
export function torchTooOld(version: string): string | null {
  const [major, minor] = withoutLocalLabel(version).split(".").map((part) => Number.parseInt(part, 10));
  const [needMajor, needMinor] = MIN_TORCH;
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return null;
  return `torch ${version} is older than ${MIN_TORCH.join(".")}, the oldest amago2 runs on; ` +
    `upgrade it in that interpreter (your CUDA build: pip install "torch>=${MIN_TORCH.join(".")}" from its index) or choose another with --python`;
}

/**
 * The packaging tools a torch other than the locked one keeps as the interpreter has them:
 * such a torch bounds them itself (torch 2.11 asks for setuptools<82; the lock, made with
 * 2.13, holds 84), so the lock's pins could break the user's environment.
 */
export const BUILD_TOOLS = ["pip", "setuptools"];

/** Whether an interpreter's torch (its version, null for none) is a user's own, not the locked one. */
export function hasOwnTorch(torch: string | null, lock: Lock): boolean {
  return torch !== null && withoutLocalLabel(torch) !== torchPin(lock).version;
}

/** The lock's pins besides torch's section that an interpreter holding `torch` gets: all, but BUILD_TOOLS beside its own torch. */
export function runtimePins(lock: Lock, torch: string | null): Pin[] {
  return hasOwnTorch(torch, lock) ? lock.packages.filter((p) => !BUILD_TOOLS.includes(p.name)) : lock.packages;
}

export async function runtimeState(python: string, lock: Lock): Promise<RuntimeState> {
  const probe = await execa(python, ["-c", STATE_PROBE], { reject: false, timeout: 60_000 });
  if (probe.failed) throw new Error(`cannot read the packages of ${python}: ${String(probe.stderr).trim() || probe.shortMessage}`);
  const lines = String(probe.stdout).trim().split("\n");
  const found = JSON.parse(lines[lines.length - 1]) as { versions: Record<string, string>; amago2: string | null };
  const versions = new Map(Object.entries(found.versions));
  const torch = versions.get("torch") ?? null;
  // A torch already there is the user's choice and is kept, with what it brought (and, when
  // it is not the locked one, the build tools: BUILD_TOOLS).
  const expected = [...runtimePins(lock, torch), ...(torch === null ? lock.torch : [])];
  const differences = expected.flatMap((pin) => {
    const have = versions.get(pin.name);
    if (have === undefined) return [`${pin.name} missing (locked ${pin.version})`];
    return withoutLocalLabel(have) === pin.version ? [] : [`${pin.name} ${have} (locked ${pin.version})`];
  });
  const ownInit = realpathSync(path.join(PACKAGE_ROOT, "python", "amago2", "__init__.py"));
  return { torch, ownPackage: found.amago2 === ownInit, differences };
}

/** "3 differ from python/locks/main.txt (...): `amago2 setup` installs the locked versions", or null when none does. */
export function lockDrift(state: RuntimeState, lock: Lock, setup: string): string | null {
  if (state.differences.length === 0) return null;
  return `${state.differences.length} differ from ${path.relative(PACKAGE_ROOT, lock.file)} (${state.differences.join(", ")}): ` +
    `\`${setup}\` installs the locked versions`;
}

/** Locked, this checkout's package, and a torch: nothing for setup to install. */
export function isComplete(state: RuntimeState): boolean {
  return state.torch !== null && state.ownPackage && state.differences.length === 0;
}

/**
 * `pip check`'s complaints about the locked packages and amago2 (what the lock promised
 * fits together); complaints about the user's other packages are theirs to mind.
 */
export async function lockConflicts(python: string, lock: Lock): Promise<string[]> {
  const check = await execa(python, ["-m", "pip", "check", "--disable-pip-version-check"], { reject: false, timeout: 120_000 });
  const ours = new Set(["amago2", ...lock.packages.map((p) => p.name), ...lock.torch.map((p) => p.name)]);
  return String(check.stdout).split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && ours.has(canonicalName(l.split(" ")[0])));
}

/** The result of building and stepping one environment of a benchmark (docs/INTERFACES.md section 1). */
export interface BenchmarkCheck {
  name: string;
  state: "ok" | "missing" | "broken" | "invalid";
  error: string | null;
  task: string | null;
  seconds: number;
  packages: Record<string, string | null>;
}

/** The lock an interpreter is installed from, and the command that installs it. */
export function runtimeOf(python: string): { lockFile: string; setup: string } {
  if (python === PROCGEN_PYTHON) return { lockFile: PROCGEN_LOCK, setup: "amago2 setup --procgen" };
  return { lockFile: MAIN_LOCK, setup: python === PROJECT_PYTHON ? "amago2 setup" : `amago2 setup --python ${python}` };
}

export type BenchmarkRequest = { name: string; benchmark_def?: Record<string, unknown> };

export async function checkBenchmarks(python: string, asked: BenchmarkRequest[] | "all"): Promise<BenchmarkCheck[]> {
  return (await callPythonJson(python, "check_benchmarks", { benchmarks: asked })) as BenchmarkCheck[];
}

/**
 * Why `python` cannot run the benchmark, and what to do, in one line; null when it can
 * (one environment built and stepped). `sweep` and `ablate` ask before recording anything.
 */
export async function benchmarkProblem(python: string, asked: BenchmarkRequest): Promise<{ state: BenchmarkCheck["state"]; line: string } | null> {
  const [check] = await checkBenchmarks(python, [asked]);
  if (check.state === "ok") return null;
  const where = `benchmark '${asked.name}' cannot run in ${python}`;
  if (check.state === "invalid") return { state: check.state, line: `${where}: ${check.error}` };
  const { lockFile, setup } = runtimeOf(python);
  const lock = readLock(lockFile);
  const fix = benchmarkFix(check, await runtimeState(python, lock), lock, setup);
  return { state: check.state, line: fix === null ? `${where}: ${check.error}` : `${where} (${check.error}); ${fix}` };
}

/**
 * What to do about a benchmark that cannot run, or null when its error says it already (a
 * package no lock of this runtime holds, such as Procgen's outside its own runtime).
 * `setup` is the command that installs `lock`; `state` says whether the runtime matches it
 * already, in which case installing it again cannot help.
 */
export function benchmarkFix(check: BenchmarkCheck, state: RuntimeState, lock: Lock, setup: string): string | null {
  const error = check.error ?? "";
  if (/cannot open shared object file/.test(error)) {
    return "install the system library it names with the OS package manager (Debian: apt-get install libgl1 libglib2.0-0 for libGL and GLib)";
  }
  const locked = new Set([...lock.packages, ...lock.torch].map((p) => p.name));
  const missing = Object.entries(check.packages).filter(([, v]) => v === null).map(([d]) => canonicalName(d));
  if (missing.some((d) => !locked.has(d))) return null;
  if (!isComplete(state)) return `\`${setup}\` installs the locked packages`;
  if (/No module named/.test(error)) {
    return "this runtime matches its lock, so the lock lacks the module: add its package to python/pyproject.toml, " +
      `run \`python3 scripts/lock-python.py\`, then \`${setup}\``;
  }
  return `this runtime matches its lock; \`${setup} --force\` rebuilds it, and if the error stays, report it with \`amago2 doctor --json\``;
}
