// `amago2 sweep <benchmark | path/to/sweep.yaml>`: the actor x critic x seed grid; and
// what `sweep` and `ablate` share once the plan is known: validate it against Python,
// print it (--dry-run) or record and run it, then print the result summary.
import { existsSync } from "node:fs";
import type { ResolvedRun } from "../bridge/request.js";
import { detectGpus } from "../exec/gpus.js";
import { asDescription, checkPlanSettings } from "../plan/describe.js";
import { collectDryRun, readHistory, renderDryRun, replacedByScaleLine } from "../plan/dry-run.js";
import { parseObjectiveList, parseRunOptions, type RawRunOptions, type RunOptions } from "../plan/run-options.js";
import { loadSweepFile, resolveSweepArg } from "../plan/sweep-file.js";
import { comboOf, expandGrid, makePlan, settingsOrigin, type SweepPlan } from "../plan/sweep.js";
import { collectSweepSummary, renderCellSummaries } from "../report/summary.js";
import { amagoHome, openStore, openStoreReadOnly, preflightHome, runDirOf } from "../store/db.js";
import { checkSweepName, getRun, upsertSweep } from "../store/runs.js";
import { UserError, type ExitCode } from "../ui/errors.js";
import { createLogger, type Logger } from "../ui/logger.js";

export interface RawSweepOptions extends RawRunOptions {
  actors?: string;
  critics?: string;
}

export interface SweepOptions {
  plan: SweepPlan;
  run: RunOptions;
}

export function parseSweepOptions(target: string, raw: RawSweepOptions): SweepOptions {
  const file = loadSweepFile(resolveSweepArg(target));
  const run = parseRunOptions(raw, file.execution);
  const flags = { ...run.flags };
  for (const [flag, field, value] of [["--actors", "actors", raw.actors], ["--critics", "critics", raw.critics]] as const) {
    if (value === undefined) continue;
    if (flags[field] !== undefined) throw new UserError(`${flag} and --axis ${field.slice(0, -1)} say the same: give one`);
    flags[field] = parseObjectiveList(flag, value);
  }
  return { plan: makePlan(file, flags), run };
}

export async function runSweep(opts: SweepOptions): Promise<ExitCode> {
  return executePlan(opts.plan, opts.run);
}

/**
 * The GPUs of the local slots (null: CPU slots): those `auto` finds, or the ones named,
 * which must be GPUs this process may use.
 */
async function slotGpus(asked: RunOptions["gpus"]): Promise<string[] | null> {
  if (asked === "none") return null;
  const found = await detectGpus();
  if (asked === "auto") return found;
  const missing = asked.filter((id) => !found?.includes(id));
  if (missing.length === 0) return asked;
  const here = found ? `the GPUs here are ${found.join(",")}` : "this process sees no GPU (CUDA_VISIBLE_DEVICES, nvidia-smi)";
  throw new UserError(`--gpus ${asked.join(",")}: no GPU ${missing.join(",")} here; ${here}: give some of them, or --gpus auto`);
}

/**
 * GPU slots need a torch that can use them: a CPU build, or a CUDA build the driver is too
 * old for, would fail every run at its start.
 */
async function checkTorchUsesCuda(python: string, gpus: readonly string[], found: boolean): Promise<void> {
  const { callPythonJson } = await import("../bridge/python.js");
  const report = (await callPythonJson(python, "environment_report")) as { torch: string; cuda: { available: boolean; version: string | null } };
  if (report.cuda.available) return;
  const build = report.cuda.version === null ? "a CPU build" : `built for CUDA ${report.cuda.version}, which this machine's driver may be too old for`;
  throw new UserError(`GPU slots on ${gpus.join(",")} (${found ? "found by --gpus auto" : "--gpus"}), but torch ${report.torch} in ${python} ` +
    `cannot use CUDA (${build}): install a CUDA build of torch that this driver runs, or run on the CPU with --gpus none`);
}

/** The command line as the user typed it, for the record of every run. */
export function commandLine(argv: readonly string[] = process.argv): string {
  return ["amago2", ...argv.slice(2)].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

export async function executePlan(plan: SweepPlan, opts: RunOptions, log: Logger = createLogger(opts)): Promise<ExitCode> {
  const home = amagoHome();
  if (!opts.dryRun) preflightHome(home);
  const store = openStoreReadOnly(home);
  try {
    if (store) checkSweepName(store, plan.name, plan.benchmark);
  } finally {
    store?.close();
  }
  const gpus = opts.execution.executor === "local" ? await slotGpus(opts.gpus) : null;
  const { resolvePython, callPythonJson } = await import("../bridge/python.js");
  // A built-in benchmark picks its interpreter (Procgen's live in their own runtime); a
  // user-defined set is made of Gymnasium ids, which the project venv runs.
  const choice = { python: opts.python, ...(plan.benchmarkDef ? {} : { benchmark: plan.benchmark }) };
  let python: string;
  let notInstalled: string | null = null;
  try {
    python = await resolvePython(choice);
  } catch (err) {
    // A dry run still prints the plan of a benchmark whose runtime is missing (its presets
    // are known to every interpreter), and says what to install.
    if (!(opts.dryRun && err instanceof UserError && choice.benchmark !== undefined)) throw err;
    python = await resolvePython({ python: opts.python });
    notInstalled = err.message;
  }
  const desc = asDescription(await callPythonJson(python, "describe"));
  checkPlanSettings(plan, desc);
  if (gpus) await checkTorchUsesCuda(python, gpus, opts.gpus === "auto");
  // One environment of the benchmark, built and stepped in the interpreter the runs will
  // use: a broken runtime is one line here, not a failed run per cell. A dry run still
  // prints the plan of a benchmark it cannot run yet, and says why.
  if (notInstalled === null) {
    const { benchmarkProblem } = await import("../bridge/runtime.js");
    const problem = await benchmarkProblem(python, { name: plan.benchmark, ...(plan.benchmarkDef ? { benchmark_def: plan.benchmarkDef } : {}) });
    if (problem !== null && !(opts.dryRun && problem.state !== "invalid")) throw new UserError(problem.line);
    notInstalled = problem?.line ?? null;
  }
  const runs = expandGrid(plan, (key) => runDirOf(home, key));
  // The cells of one combination of the hyperparameter axes resolve to the same settings
  // but for actor, critic and seed: Python resolving one run of each combination checks
  // every cell, and says exactly what will run.
  const firsts = runs.filter((r) => r.actor === plan.actors[0] && r.critic === plan.critics[0] && r.seed === plan.seeds[0]);
  const answers = (await callPythonJson(python, "resolve_runs", firsts.map((r) => r.request))) as
    (ResolvedRun | { error: string; keys: string[] })[];
  answers.forEach((answer, i) => {
    if ("error" in answer) throw new UserError(`${settingsOrigin(plan, answer.keys, comboOf(plan, firsts[i]))}: ${answer.error}`);
  });
  const resolved = answers[0] as ResolvedRun;

  if (opts.dryRun) {
    // A run that has started before may resume with the settings it started with: Python
    // reads each one's directory, as its resume will.
    const begun = runs.filter((r) => existsSync(r.runDir));
    const begunAnswers = begun.length ? (await callPythonJson(python, "resolve_runs", begun.map((r) => r.request))) as ResolvedRun[] : [];
    const kept = new Map(begun.map((r, i) => [r.key, begunAnswers[i].kept_settings]));
    const report = collectDryRun(plan, runs, desc, answers as ResolvedRun[], notInstalled, readHistory(home, plan, runs), kept);
    log.out(opts.json ? JSON.stringify(report, null, 2) : renderDryRun(report, home));
    return 0;
  }

  const replaced = replacedByScaleLine(plan.scale, resolved.replaced_by_scale);
  if (replaced !== null) log.info(replaced);
  if (opts.execution.executor === "slurm") await (await import("../exec/slurm.js")).preflightSlurm(opts.execution.slurm);
  const db = openStore(home);
  try {
    const command = commandLine();
    upsertSweep(db, { name: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source, command,
      axes: plan.axes.flatMap((a) => a.keys) }, runs);
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
