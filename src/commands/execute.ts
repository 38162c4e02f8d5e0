// What `sweep` and `ablate` share once the plan is known: validate it against Python,
// print it (--dry-run) or record and run it, then print the result summary.
import type { ExitCode } from "./exit-codes.js";
import { asDescription, checkInstalled, checkOverrides, type Description } from "../plan/describe.js";
import { expandGrid, stepsPerRun, type SweepPlan } from "../plan/sweep.js";
import { amagoHome, openStore, preflightHome, runDirOf } from "../store/db.js";
import { upsertSweep, getRun, type PlannedRun } from "../store/runs.js";
import type { Logger } from "../ui/logger.js";
import { createLogger } from "../ui/logger.js";
import { detectGpus } from "./gpus.js";
import type { RunOptions } from "./run-options.js";
import { collectSweepSummary, renderCellSummaries, renderColumns } from "./summary.js";

export interface DryRunReport {
  sweep: string;
  benchmark: string;
  scale: string;
  source: string;
  runs: { key: string; actor: string; critic: string; seed: number }[];
  stepsPerRun: number;
  estimatedEnvSteps: number;
}

export function collectDryRun(plan: SweepPlan, runs: PlannedRun[], desc: Description): DryRunReport {
  const perRun = stepsPerRun(plan, desc);
  return {
    sweep: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source,
    runs: runs.map((r) => ({ key: r.key, actor: r.actor, critic: r.critic, seed: r.seed })),
    stepsPerRun: perRun,
    estimatedEnvSteps: perRun * runs.length,
  };
}

function renderDryRun(report: DryRunReport): string {
  const table = renderColumns(["key", "actor", "critic", "seed"],
    report.runs.map((r) => [r.key, r.actor, r.critic, String(r.seed)]));
  return [
    `sweep ${report.sweep}: ${report.benchmark} at scale ${report.scale} (${report.source})`,
    table,
    `${report.runs.length} runs x ${report.stepsPerRun.toLocaleString("en-US")} env steps = ${report.estimatedEnvSteps.toLocaleString("en-US")} estimated env steps`,
  ].join("\n");
}

/** The command line as the user typed it, for the record of every run. */
export function commandLine(argv: readonly string[] = process.argv): string {
  return ["amago2", ...argv.slice(2)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

export async function executePlan(plan: SweepPlan, opts: RunOptions, log: Logger = createLogger(opts)): Promise<ExitCode> {
  const home = amagoHome();
  if (!opts.dryRun) preflightHome(home);
  const { resolvePython, callPythonJson } = await import("../bridge/python.js");
  // A built-in benchmark picks its interpreter (Procgen's live in their own runtime); a
  // user-defined set is made of Gymnasium ids, which the project venv runs.
  const python = await resolvePython({ python: opts.python, ...(plan.benchmarkDef ? {} : { benchmark: plan.benchmark }) });
  const desc = asDescription(await callPythonJson(python, "describe"));
  if (!plan.benchmarkDef) checkInstalled(plan.benchmark, desc);
  checkOverrides(plan.overrides, desc, plan.source);
  const runs = expandGrid(plan, (key) => runDirOf(home, key));

  if (opts.dryRun) {
    const report = collectDryRun(plan, runs, desc);
    log.out(opts.json ? JSON.stringify(report, null, 2) : renderDryRun(report));
    return 0;
  }

  if (opts.execution.executor === "slurm") await (await import("../exec/slurm.js")).preflightSlurm(opts.execution.slurm);
  const db = openStore(home);
  try {
    const command = commandLine();
    upsertSweep(db, { name: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source, command }, runs);
    let result: { code: ExitCode; started: number; busyElsewhere: string[] };
    if (opts.execution.executor === "slurm") {
      log.info(`sweep ${plan.name}: ${runs.length} runs on Slurm; store ${home}`);
      const { orchestrateSlurm } = await import("../exec/slurm-sweep.js");
      const { code, submitted, inFlight } = await orchestrateSlurm({
        db, home, runs, slurm: opts.execution.slurm, python, retries: opts.retries, command,
        follow: opts.execution.follow, log,
      });
      result = { code, started: submitted, busyElsewhere: inFlight };
    } else {
      const gpus = opts.gpus === "auto" ? await detectGpus() : opts.gpus;
      log.info(`sweep ${plan.name}: ${runs.length} runs, ${gpus ? `GPUs ${gpus.join(",")} x ${opts.runsPerGpu}` : `${opts.parallel} CPU slot(s)`}; store ${home}`);
      const { orchestrate } = await import("../exec/orchestrator.js");
      const { startLocal } = await import("../exec/local.js");
      const executor = { parallel: opts.parallel, gpus, runsPerGpu: opts.runsPerGpu, python };
      result = await orchestrate({
        db, runs, retries: opts.retries, command, log,
        startExecutor: (specs, handlers) => startLocal(specs, executor, handlers),
      });
    }
    if (result.started === 0 && result.busyElsewhere.length === 0) log.info("every run of this sweep has succeeded already; nothing to start");
    const cells = collectSweepSummary(db, plan.name);
    if (opts.json) {
      const statuses = runs.map((r) => ({ key: r.key, actor: r.actor, critic: r.critic, seed: r.seed, status: getRun(db, r.key)!.status }));
      log.out(JSON.stringify({ sweep: plan.name, exitCode: result.code, started: result.started, runs: statuses, cells }, null, 2));
    } else if (cells.some((c) => c.succeeded > 0)) {
      // The ablation table, exactly as `amago2 table <sweep>` prints it.
      log.out("");
      const { parseTableOptions, runTable } = await import("./table.js");
      await runTable(parseTableOptions([plan.name], {}));
    } else {
      log.out(`\nsweep ${plan.name} (${plan.benchmark}, scale ${plan.scale}): no run has succeeded\n${renderCellSummaries(cells)}`);
    }
    return result.code;
  } finally {
    db.close();
  }
}
