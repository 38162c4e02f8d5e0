// `amago2 doctor`: one line per prerequisite, each OK or what to do about it.
import Database from "better-sqlite3";
import { execa } from "execa";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { amagoHome, preflightHome } from "../store/db.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "./exit-codes.js";

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
  packages: Record<string, string | null>;
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

/**
 * Procgen's packages, which the Procgen line reports from the runtime that runs Procgen;
 * the main venv must not be told to install them (they need numpy<2).
 */
const PROCGEN_DISTS = ["procgen2", "gym"];

/** The runtime Procgen's benchmarks run in (by default .venv-procgen): OK with its versions, or how to install it. */
export async function procgenCheck(opts: { python?: string }): Promise<Check> {
  const { chosenPython, probeProcgen } = await import("../bridge/python.js");
  const python = chosenPython({ python: opts.python, benchmark: "procgen" });
  const probe = await probeProcgen(python);
  const install = "install it with `amago2 setup --procgen` (a venv of its own: numpy<2, old gym; only the procgen benchmarks need it)";
  if (probe.state === "ok") {
    const v = probe.versions;
    return { name: "procgen", level: "ok", detail: `${python}: Python ${v.python}, torch ${v.torch}, numpy ${v.numpy}, procgen2 ${v.procgen2}, gym ${v.gym}` };
  }
  if (probe.state === "missing") return { name: "procgen", level: "warn", detail: `not installed (no ${python}): ${install}` };
  return { name: "procgen", level: "warn", detail: `${python} cannot run Procgen (${probe.error}): ${install}` };
}

export async function collectChecks(opts: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split(".")[0]);
  checks.push(major >= 20
    ? { name: "node", level: "ok", detail: process.version }
    : { name: "node", level: "fail", detail: `${process.version}: install Node 20 or newer` });
  const { resolvePython, callPythonJson } = await import("../bridge/python.js");
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
    checks.push({ name: "torch", level: "ok", detail: report.torch });
    checks.push(report.cuda.available
      ? { name: "cuda", level: "ok", detail: `CUDA ${report.cuda.version}: ${report.cuda.devices.map((d, i) => `${i}: ${d}`).join(", ")}` }
      : { name: "cuda", level: "warn", detail: "no CUDA device: runs use the CPU (install a CUDA build of torch on a GPU machine)" });
    const packages = Object.entries(report.packages).filter(([dist]) => dist !== "torch" && !PROCGEN_DISTS.includes(dist));
    for (const [dist, version] of packages.sort(([a], [b]) => a.localeCompare(b))) {
      checks.push(version
        ? { name: dist, level: "ok", detail: version }
        : { name: dist, level: "warn", detail: `not installed: \`${python} -m pip install ${dist}\` (needed only by the benchmarks that use it)` });
    }
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
