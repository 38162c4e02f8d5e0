// The amago2 command line: commander wiring only. Each action lazy-imports its command
// module, turns commander's raw options into validated options (parseX) and runs it
// (runX). `main` is the one place that maps errors to exit codes; bin/amago2.js exits.
import { Command, CommanderError, Option } from "commander";
import type { ExitCode } from "./commands/exit-codes.js";
import { toolVersion } from "./package.js";
import { UserError, diskFullMessage, isDiskFull } from "./ui/errors.js";
import { printable } from "./ui/logger.js";
import { addExecutionOptions } from "./commands/run-options.js";

/** Runs a parsed command; tests replace it to capture the options instead. */
export type Dispatch = (command: string, options: unknown, run: () => Promise<ExitCode>) => Promise<ExitCode>;

const runNow: Dispatch = (_command, _options, run) => run();

function addRunOptions(cmd: Command): Command {
  return addExecutionOptions(cmd)
    .option("--seeds <n|list>", "number of seeds (3 = seeds 0,1,2) or a comma list of seeds")
    .addOption(new Option("--scale <scale>", "preset size: tiny | cpu | small | paper (default paper)"))
    .option("--steps <n>", "env steps per run (overrides the preset's total_steps)")
    .option("--name <name>", "sweep name in the store (default: benchmark, plus -<scale> unless paper)")
    .option("--parallel <n>", "concurrent runs on CPU (default 1)")
    .option("--gpus <auto|ids>", "GPUs to use: auto (default) or a list such as 0,1")
    .option("--runs-per-gpu <n>", "concurrent runs per GPU (default 1)")
    .option("--retries <n>", "extra attempts for a crashed run, resuming its checkpoint (default 1)")
    .option("--dry-run", "print the plan, the env steps still to do and their estimated run time; write nothing")
    .option("--json", "machine-readable output on stdout; no progress display")
    .option("--python <path>", "Python interpreter with the amago2 package (or AMAGO2_PYTHON)");
}

export function buildProgram(dispatch: Dispatch): Command {
  const program = new Command("amago2")
    .description("AMAGO-2 ablation sweeps: actor {dep, ind} x critic {dep, ind}, recorded in SQLite")
    .version(toolVersion())
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError(false);

  addRunOptions(program.command("sweep")
    .description("run the actor x critic x seed grid of a benchmark or a sweep file (re-running resumes)")
    .argument("<benchmark|sweep.yaml>", "a benchmark name (experiments/<name>.yaml) or a path to a sweep file")
    .option("--actors <list>", "actor objectives: dep, ind or dep,ind")
    .option("--critics <list>", "critic objectives: dep, ind or dep,ind"))
    .action(async (target: string, raw) => {
      const mod = await import("./commands/sweep.js");
      const opts = mod.parseSweepOptions(target, raw);
      await dispatch("sweep", opts, () => mod.runSweep(opts));
    });

  addRunOptions(program.command("ablate")
    .description("run one cell of a benchmark's grid (all its seeds)")
    .option("--actor <objective>", "actor objective: dep or ind")
    .option("--critic <objective>", "critic objective: dep or ind")
    .option("--benchmark <name|sweep.yaml>", "benchmark or sweep file (default ml45)"))
    .action(async (raw) => {
      const mod = await import("./commands/ablate.js");
      const opts = mod.parseAblateOptions(raw);
      await dispatch("ablate", opts, () => mod.runAblate(opts));
    });

  program.command("runs").description("list every run in the store").option("--json", "JSON output")
    .action(async (raw) => {
      const mod = await import("./commands/runs.js");
      const opts = mod.parseRunsOptions(raw);
      await dispatch("runs", opts, () => mod.runRuns(opts));
    });

  program.command("status").description("run counts of every sweep, or one sweep's runs and results")
    .argument("[sweep]", "sweep name").option("--json", "JSON output")
    .action(async (sweep: string | undefined, raw) => {
      const mod = await import("./commands/status.js");
      const opts = mod.parseStatusOptions(sweep, raw);
      await dispatch("status", opts, () => mod.runStatus(opts));
    });

  program.command("logs").description("print a run's worker log").argument("<run>", "run key or a unique prefix")
    .option("--follow", "keep printing until the run ends")
    .action(async (run: string, raw) => {
      const mod = await import("./commands/logs.js");
      const opts = mod.parseLogsOptions(run, raw);
      await dispatch("logs", opts, () => mod.runLogs(opts));
    });

  program.command("watch").description("follow a sweep's Slurm runs (or all of them) until they end")
    .argument("[sweep]", "sweep name").option("--json", "no progress display")
    .action(async (sweep: string | undefined, raw) => {
      const mod = await import("./commands/watch.js");
      const opts = mod.parseWatchOptions(sweep, raw);
      await dispatch("watch", opts, () => mod.runWatch(opts));
    });

  program.command("cancel").description("cancel a sweep's runs or one run (running ones checkpoint first)")
    .argument("<sweep|run>", "sweep name, run key or unique key prefix").option("--json", "JSON output")
    .action(async (target: string, raw) => {
      const mod = await import("./commands/cancel.js");
      const opts = mod.parseCancelOptions(target, raw);
      await dispatch("cancel", opts, () => mod.runCancel(opts));
    });

  program.command("benchmarks").description("list the benchmarks and whether their packages are installed")
    .option("--json", "JSON output").option("--python <path>", "Python interpreter with the amago2 package")
    .action(async (raw) => {
      const mod = await import("./commands/benchmarks.js");
      const opts = mod.parseBenchmarksOptions(raw);
      await dispatch("benchmarks", opts, () => mod.runBenchmarks(opts));
    });

  program.command("doctor").description("check python, torch, CUDA, benchmark packages, SQLite and Slurm")
    .option("--json", "JSON output").option("--python <path>", "Python interpreter with the amago2 package")
    .action(async (raw) => {
      const mod = await import("./commands/doctor.js");
      const opts = mod.parseDoctorOptions(raw);
      await dispatch("doctor", opts, () => mod.runDoctor(opts));
    });

  program.command("setup").description("create the project's Python runtime (.venv with the amago2 package)")
    .option("--force", "recreate it").option("--python <path>", "base interpreter for the venv")
    .option("--procgen", "create the separate Procgen runtime instead (.venv-procgen: numpy<2, old gym, procgen2)")
    .action(async (raw) => {
      const mod = await import("./commands/setup.js");
      const opts = mod.parseSetupOptions(raw);
      await dispatch("setup", opts, () => mod.runSetup(opts));
    });

  program.command("table").description("the actor x critic ablation table: IQM [95% bootstrap CI] per headline metric")
    .argument("[sweep...]", "sweep names, side by side (default: every sweep)")
    .option("--stat <stat>", "iqm (default), mean, median or all")
    .option("--per-task", "one row per task, one column per cell")
    .option("--vs <cell>", "add P(cell > baseline) against an actor/critic cell, e.g. dep/dep")
    .option("--at-steps <n>", "score runs at N env steps instead of their final evaluations")
    .option("--format <format>", "md (default), csv, latex or json")
    .option("--reps <n>", "bootstrap repetitions (default 50000; 2000 for --vs)")
    .option("--seed <n>", "bootstrap seed (default 0)")
    .action(async (sweeps: string[], raw) => {
      const mod = await import("./commands/table.js");
      const opts = mod.parseTableOptions(sweeps, raw);
      await dispatch("table", opts, () => mod.runTable(opts));
    });

  program.command("plot").description("learning curves (IQM with bootstrap bands) as SVG and PNG")
    .argument("[sweep...]", "sweep names")
    .option("--out <dir>", "directory for the SVG and PNG files")
    .option("--per-task", "also one small panel per task")
    .option("--reps <n>", "bootstrap repetitions per point (default 2000)")
    .option("--seed <n>", "bootstrap seed (default 0)")
    .action(async (sweeps: string[], raw) => {
      const mod = await import("./commands/plot.js");
      const opts = mod.parsePlotOptions(sweeps, raw);
      await dispatch("plot", opts, () => mod.runPlot(opts));
    });

  program.command("report").description("one self-contained HTML report of a sweep: plan, runs, tables, curves")
    .argument("[sweep]", "sweep name")
    .option("--out <file.html>", "where to write the report")
    .option("--reps <n>", "bootstrap repetitions (default 50000 for tables, 2000 for curves)")
    .option("--seed <n>", "bootstrap seed (default 0)")
    .action(async (sweep: string | undefined, raw) => {
      const mod = await import("./commands/report.js");
      const opts = mod.parseReportOptions(sweep, raw);
      await dispatch("report", opts, () => mod.runReport(opts));
    });

  return program;
}

/** Runs the CLI and returns the exit code; never exits the process itself. */
export async function main(argv: readonly string[], dispatch: Dispatch = runNow): Promise<number> {
  let code: ExitCode = 0;
  const program = buildProgram(async (command, options, run) => (code = await dispatch(command, options, run)));
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) return 0;
      // No command given: commander has printed the help already, nothing to add.
      if (err.code === "commander.help") return 2;
      const message = err.message.replace(/^error: /, "");
      process.stderr.write(`amago2: ${printable(message)} (see amago2 --help)\n`);
      return 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`amago2: ${printable(err.message)}\n`);
      return 2;
    }
    if (isDiskFull(err)) {
      process.stderr.write(`amago2: ${printable(diskFullMessage(err))}\n`);
      return 1;
    }
    process.stderr.write(`amago2: unexpected error\n${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
