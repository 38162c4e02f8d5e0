// `amago2 doctor`: one line per prerequisite, each OK or what to do about it.
import Database from "better-sqlite3";
import { execa } from "execa";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { PACKAGE_ROOT } from "../package.js";
import { amagoHome, preflightHome } from "../store/db.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";

export interface DoctorOptions {
  json: boolean;
  python?: string;
}

/** ok: fine; warn: optional and missing (e.g. no GPU); fail: amago2 cannot run until fixed. */
export interface Check {
  name: string;
  level: "ok" | "warn" | "fail";
  detail: string;
}

interface EnvironmentReport {
  python: string;
  torch: string;
  cuda: { available: boolean; version: string | null; devices: string[] };
}

export function parseDoctorOptions(raw: { json?: boolean; python?: string }): DoctorOptions {
  return { json: Boolean(raw.json), ...(raw.python !== undefined ? { python: raw.python } : {}) };
}

function sqliteCheck(home: string): Check {
  const require = createRequire(import.meta.url);
  const pkg = JSON.parse(readFileSync(require.resolve("better-sqlite3/package.json"), "utf8")) as { version: string };
  const mem = new Database(":memory:");
  const version = (mem.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  mem.close();
  try {
    preflightHome(home);
  } catch (err) {
    if (err instanceof UserError) return { name: "sqlite", level: "fail", detail: err.message };
    throw err;
  }
  return { name: "sqlite", level: "ok", detail: `SQLite ${version} (better-sqlite3 ${pkg.version}); store ${home}` };
}

async function slurmCheck(): Promise<Check> {
  const sinfo = await execa("sinfo", ["--version"], { reject: false, timeout: 10_000 });
  if (sinfo.failed) return { name: "slurm", level: "ok", detail: "not installed (only needed for --executor slurm)" };
  return { name: "slurm", level: "ok", detail: String(sinfo.stdout).trim() };
}

/** The runtime Procgen's benchmarks run in (by default .venv-procgen): OK with its versions, or how to install it. */
export async function procgenCheck(opts: { python?: string }): Promise<Check> {
  const { PROCGEN_PYTHON, chosenPython, probeProcgen } = await import("../bridge/python.js");
  const python = chosenPython({ python: opts.python, benchmark: "procgen" });
  const probe = await probeProcgen(python);
  const install = "install it with `amago2 setup --procgen` (a venv of its own: numpy<2, old gym; only the procgen benchmarks need it)";
  if (probe.state === "ok") {
    const v = probe.versions;
    const versions = `${python}: Python ${v.python}, torch ${v.torch}, numpy ${v.numpy}, procgen2 ${v.procgen2}, gym ${v.gym}`;
    // Only the project's own Procgen runtime is installed from procgen.txt.
    if (python !== PROCGEN_PYTHON) return { name: "procgen", level: "ok", detail: versions };
    const { lockDrift, readLock, runtimeOf, runtimeState } = await import("../bridge/runtime.js");
    const { lockFile, setup } = runtimeOf(python);
    const lock = readLock(lockFile);
    const drift = lockDrift(await runtimeState(python, lock), lock, setup);
    return drift === null
      ? { name: "procgen", level: "ok", detail: `${versions}; every package at its version in ${path.relative(PACKAGE_ROOT, lockFile)}` }
      : { name: "procgen", level: "warn", detail: `${versions}; ${drift}` };
  }
  if (probe.state === "missing") return { name: "procgen", level: "warn", detail: `not installed (no ${python}): ${install}` };
  return { name: "procgen", level: "warn", detail: `${python} cannot run Procgen (${probe.error}): ${install}` };
}

/**
 * The runtime against its lock, then every benchmark of it (Procgen's run elsewhere): one
 * environment built and stepped, or what to do.
 */
async function runtimeChecks(python: string): Promise<Check[]> {
  const { BUILD_TOOLS, benchmarkFix, checkBenchmarks, hasOwnTorch, lockDrift, readLock, runtimeOf, runtimePins, runtimeState } =
    await import("../bridge/runtime.js");
  const { PROCGEN_BENCHMARKS } = await import("../bridge/python.js");
  const { lockFile, setup } = runtimeOf(python);
  const lock = readLock(lockFile);
  const state = await runtimeState(python, lock);
  const where = path.relative(PACKAGE_ROOT, lock.file);
  const own = hasOwnTorch(state.torch, lock);
  const torch = state.torch === null ? ""
    : own ? `; torch ${state.torch}, this interpreter's own, with its own ${BUILD_TOOLS.join(" and ")}` : `; torch ${state.torch}, the locked version`;
  const drift = lockDrift(state, lock, setup);
  const checks: Check[] = [drift === null
    ? { name: "packages", level: "ok", detail: `the ${runtimePins(lock, state.torch).length} packages of ${where} at their locked versions${torch}` }
    : { name: "packages", level: "warn", detail: drift }];
  for (const check of await checkBenchmarks(python, "all")) {
    if (PROCGEN_BENCHMARKS.includes(check.name)) continue;
    const versions = Object.entries(check.packages).map(([d, v]) => `${d} ${v ?? "missing"}`).join(", ");
    if (check.state === "ok") {
      checks.push({ name: check.name, level: "ok", detail: `${versions}: built and stepped ${check.task} (${check.seconds.toFixed(1)} s)` });
    } else {
      const fix = benchmarkFix(check, state, lock, setup);
      checks.push({ name: check.name, level: check.state === "missing" ? "warn" : "fail", detail: `${check.error} (${versions})${fix === null ? "" : `; fix: ${fix}`}` });
    }
  }
  return checks;
}

export async function collectChecks(opts: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split(".")[0]);
  checks.push(major >= 20
    ? { name: "node", level: "ok", detail: process.version }
    : { name: "node", level: "fail", detail: `${process.version}: install Node 20 or newer` });
  const { callPythonJson, resolvePython } = await import("../bridge/python.js");
  const { torchTooOld } = await import("../bridge/runtime.js");
  let python: string | null = null;
  try {
    python = await resolvePython({ python: opts.python });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    checks.push({ name: "python", level: "fail", detail: err.message });
  }
  if (python) {
    const report = (await callPythonJson(python, "environment_report")) as EnvironmentReport;
    checks.push({ name: "python", level: "ok", detail: `${report.python} at ${python}` });
    const tooOld = torchTooOld(report.torch);
    checks.push(tooOld === null ? { name: "torch", level: "ok", detail: report.torch } : { name: "torch", level: "fail", detail: tooOld });
    checks.push(report.cuda.available
      ? { name: "cuda", level: "ok", detail: `CUDA ${report.cuda.version}: ${report.cuda.devices.map((d, i) => `${i}: ${d}`).join(", ")}` }
      : { name: "cuda", level: "warn", detail: report.cuda.version === null
        ? "a CPU build of torch: runs use the CPU (on a GPU machine, install a CUDA build of torch)"
        : `torch is built for CUDA ${report.cuda.version} but sees no usable GPU (none visible, or a driver older than that CUDA): ` +
          "runs use the CPU where no GPU is listed, and sweep refuses GPU slots (--gpus none runs on the CPU)" });
    checks.push(...(await runtimeChecks(python)));
  }
  checks.push(await procgenCheck(opts));
  checks.push(sqliteCheck(amagoHome()));
  checks.push(await slurmCheck());
  return checks;
}

export function renderChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `${c.level === "ok" ? "OK  " : c.level === "warn" ? "WARN" : "FAIL"}  ${c.name.padEnd(width)}  ${c.detail}`).join("\n");
}

export async function runDoctor(opts: DoctorOptions): Promise<ExitCode> {
  const log = createLogger(opts);
  const checks = await collectChecks(opts);
  log.out(opts.json ? JSON.stringify(checks, null, 2) : renderChecks(checks));
  return checks.some((c) => c.level === "fail") ? 1 : 0;
}
