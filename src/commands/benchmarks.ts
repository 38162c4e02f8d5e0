// `amago2 benchmarks`: what Python's describe() knows, and whether each set is installed.
import { asDescription, withBenchmarksFrom, type Description } from "../plan/describe.js";
import { builtinSweeps } from "../plan/sweep-file.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import { renderColumns } from "../ui/columns.js";

export interface BenchmarksOptions {
  json: boolean;
  python?: string;
}

export interface BenchmarkListing {
  name: string;
  tasks: number;
  evalTasks: number;
  k: number | null;
  horizon: number | null;
  packages: string[];
  installed: boolean;
  installHint: string | null;
  sweepFile: boolean;
}

export function parseBenchmarksOptions(raw: { json?: boolean; python?: string }): BenchmarksOptions {
  return { json: Boolean(raw.json), ...(raw.python !== undefined ? { python: raw.python } : {}) };
}

export function collectBenchmarks(desc: Description, sweeps: string[]): BenchmarkListing[] {
  return Object.entries(desc.benchmarks).sort(([a], [b]) => a.localeCompare(b)).map(([name, info]) => ({
    name, tasks: info.tasks.length, evalTasks: info.eval_tasks.length, k: info.k, horizon: info.horizon,
    packages: info.packages, installed: info.installed, installHint: info.install_hint, sweepFile: sweeps.includes(name),
  }));
}

/** The table, then one line per missing benchmark saying how to install it. */
export function renderBenchmarks(rows: BenchmarkListing[]): string {
  const table = renderColumns(["benchmark", "tasks", "eval", "k", "horizon", "packages", "installed"],
    rows.map((r) => [r.name, String(r.tasks), String(r.evalTasks), r.k === null ? "-" : String(r.k),
      r.horizon === null ? "own" : String(r.horizon), r.packages.join(",") || "-", r.installed ? "yes" : "no"]));
  const hints = rows.filter((r) => !r.installed).map((r) => `${r.name}: ${r.installHint ?? "install its packages"}`);
  return hints.length ? `${table}\n\n${hints.join("\n")}` : table;
}

export async function runBenchmarks(opts: BenchmarksOptions): Promise<ExitCode> {
  const log = createLogger(opts);
  const { resolvePython, callPythonJson, PROCGEN_BENCHMARKS } = await import("../bridge/python.js");
  const python = await resolvePython({ python: opts.python });
  let desc = asDescription(await callPythonJson(python, "describe"));
  // Procgen's benchmarks run in their own runtime, so that one says whether they are
  // installed; without it, the main interpreter's entry stands (not installed, and its
  // hint names `amago2 setup --procgen`). Both share one runtime, "procgen" stands for both.
  let procgenPython: string | null = null;
  try {
    procgenPython = await resolvePython({ python: opts.python, benchmark: "procgen" });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
  }
  if (procgenPython !== null && procgenPython !== python) {
    desc = withBenchmarksFrom(desc, asDescription(await callPythonJson(procgenPython, "describe")), PROCGEN_BENCHMARKS);
  }
  const rows = collectBenchmarks(desc, builtinSweeps());
  log.out(opts.json ? JSON.stringify(rows, null, 2) : renderBenchmarks(rows));
  return 0;
}
