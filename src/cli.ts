// The amago2 command line: commander wiring only. Each action lazy-imports its command
// module, turns commander's raw options into validated options (parseX) and runs it
// (runX). `main` is the one place that maps errors to exit codes; bin/amago2.js exits.
import { Command, CommanderError, Option } from "commander";
import { toolVersion } from "./package.js";
import { UserError, diskFullMessage, isDiskFull, type ExitCode } from "./ui/errors.js";
import { printable } from "./ui/logger.js";

/** Runs a parsed command; tests replace it to capture the options instead. */
export type Dispatch = (command: string, options: unknown, run: () => Promise<ExitCode>) => Promise<ExitCode>;

const runNow: Dispatch = (_command, _options, run) => run();

/** What cli.ts needs of a command module: turn commander's arguments into options, run them. */
interface CommandModule<O> {
  parse: (...args: never[]) => O;
  run: (opts: O) => Promise<ExitCode>;
}

/**
 * The action of one command: lazy-import its module, parse commander's arguments (the
 * declared arguments, then the raw options; commander appends the Command itself, which is
 * dropped) and dispatch the run.
 */
function command<O>(dispatch: Dispatch, name: string, load: () => Promise<CommandModule<O>>) {
  return async (...args: unknown[]): Promise<void> => {
    const mod = await load();
    const opts = (mod.parse as (...a: unknown[]) => O)(...args.slice(0, -1));
    await dispatch(name, opts, () => mod.run(opts));
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The executor flags of `sweep` and `ablate`. */
export function addExecutionOptions(cmd: Command): Command {
  return cmd
    .option("--executor <local|slurm>", "where runs execute: this machine (default) or a Slurm cluster")
    .option("--partition <name>", "Slurm partition")
    .option("--gpus-per-run <n>", "Slurm: GPUs per run, requested as --gres=gpu:N (default 0)")
    .option("--cpus-per-run <n>", "Slurm: CPUs per run (--cpus-per-task)")
    .option("--mem <size>", "Slurm: memory per run, e.g. 16G")
    .option("--time <limit>", "Slurm: time limit per job, e.g. 2-00:00:00; a run that hits it resumes on the next sweep")
    .option("--account <name>", "Slurm account to charge")
    .option("--max-concurrent <n>", "Slurm: submit one array job, at most N runs at once (%N)")
    .option("--sbatch-arg <arg>", "Slurm: any other sbatch option, e.g. --qos=high (repeatable)", collect)
    .option("--follow", "Slurm: keep polling, ingesting and resubmitting until every run has ended");
}

function addRunOptions(cmd: Command): Command {
  return addExecutionOptions(cmd)
    .option("--seeds <n|list>", "number of seeds (3 = seeds 0,1,2) or a comma list of seeds")
    .addOption(new Option("--scale <scale>", "preset size: tiny | cpu | small | paper (default paper)"))
    .option("--steps <n>", "env steps per run (overrides the preset's total_steps)")
    .option("--set <key=value>", "set a hyperparameter for every run, e.g. --set lr=3e-4 (repeatable; wins over the file)", collect)
    .option("--axis <key=v1,v2>", "sweep a hyperparameter, e.g. --axis num_bins=16,32,64, or keys together: " +
      "--axis d_model,d_ff=[64,128],[128,256] (repeatable; replaces the file's axis)", collect)
    .option("--name <name>", "sweep name in the store (default: benchmark, plus -<scale> unless paper)")
    .option("--parallel <n>", "concurrent runs on CPU (default 1)")
    .option("--gpus <auto|none|ids>", "GPUs to use: auto (default), none (CPU slots) or a list such as 0,1")
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
    .action(command(dispatch, "sweep", () => import("./commands/sweep.js")
      .then((mod) => ({ parse: mod.parseSweepOptions, run: mod.runSweep }))));

  addRunOptions(program.command("ablate")
    .description("run one cell of a benchmark's grid (all its seeds)")
    .option("--actor <objective>", "actor objective: dep or ind")
    .option("--critic <objective>", "critic objective: dep or ind")
    .option("--benchmark <name|sweep.yaml>", "benchmark or sweep file (default ml45)"))
    .action(command(dispatch, "ablate", () => import("./commands/ablate.js")
      .then((mod) => ({ parse: mod.parseAblateOptions, run: mod.runAblate }))));

  program.command("runs").description("list every run in the store").option("--json", "JSON output")
    .action(command(dispatch, "runs", () => import("./commands/runs.js")
      .then((mod) => ({ parse: mod.parseRunsOptions, run: mod.runRuns }))));

  program.command("status").description("run counts of every sweep, or one sweep's runs and results")
    .argument("[sweep]", "sweep name").option("--json", "JSON output")
    .action(command(dispatch, "status", () => import("./commands/status.js")
      .then((mod) => ({ parse: mod.parseStatusOptions, run: mod.runStatus }))));

  program.command("logs").description("print a run's worker log").argument("<run>", "run key or a unique prefix")
    .option("--follow", "keep printing until the run ends")
    .action(command(dispatch, "logs", () => import("./commands/logs.js")
      .then((mod) => ({ parse: mod.parseLogsOptions, run: mod.runLogs }))));

  program.command("watch").description("follow a sweep's Slurm runs (or all of them) until they end")
    .argument("[sweep]", "sweep name").option("--json", "no progress display")
    .action(command(dispatch, "watch", () => import("./commands/watch.js")
      .then((mod) => ({ parse: mod.parseWatchOptions, run: mod.runWatch }))));

  program.command("cancel").description("cancel a sweep's runs or one run (running ones checkpoint first)")
    .argument("<sweep|run>", "sweep name, run key or unique key prefix").option("--json", "JSON output")
    .action(command(dispatch, "cancel", () => import("./commands/cancel.js")
      .then((mod) => ({ parse: mod.parseCancelOptions, run: mod.runCancel }))));

  program.command("benchmarks").description("list the benchmarks and whether their packages are installed")
    .option("--json", "JSON output").option("--python <path>", "Python interpreter with the amago2 package")
    .action(command(dispatch, "benchmarks", () => import("./commands/benchmarks.js")
      .then((mod) => ({ parse: mod.parseBenchmarksOptions, run: mod.runBenchmarks }))));

  program.command("doctor").description("check python, torch, CUDA, benchmark packages, SQLite and Slurm")
    .option("--json", "JSON output").option("--python <path>", "Python interpreter with the amago2 package")
    .action(command(dispatch, "doctor", () => import("./commands/doctor.js")
      .then((mod) => ({ parse: mod.parseDoctorOptions, run: mod.runDoctor }))));

  program.command("setup").description("create the project's Python runtime (.venv with the amago2 package)")
    .option("--force", "recreate it").option("--python <path>", "base interpreter for the venv")
    .option("--procgen", "create the separate Procgen runtime instead (.venv-procgen: numpy<2, old gym, procgen2)")
    .action(command(dispatch, "setup", () => import("./commands/setup.js")
      .then((mod) => ({ parse: mod.parseSetupOptions, run: mod.runSetup }))));

  program.command("table").description("the actor x critic ablation table: IQM [95% bootstrap CI] per headline metric")
    .argument("[sweep...]", "sweep names, side by side (default: every sweep)")
    .option("--stat <stat>", "iqm (default), mean, median or all")
    .option("--per-task", "one row per task, one column per cell")
    .option("--vs <cell>", "add P(cell > baseline) against a cell: dep/dep, or axis values such as num_bins=128,critic=ind")
    .option("--rows <axes>", "pivot: the axes whose values are the rows, e.g. num_bins (default: every other varied axis)")
    .option("--cols <axes>", "pivot: the axes whose values are the columns, e.g. critic (default: every other varied axis)")
    .option("--at-steps <n>", "score runs at N env steps instead of their final evaluations")
    .option("--format <format>", "md (default), csv, latex or json")
    .option("--reps <n>", "bootstrap repetitions (default 50000; 2000 for --vs)")
    .option("--seed <n>", "bootstrap seed (default 0)")
    .action(command(dispatch, "table", () => import("./commands/table.js")
      .then((mod) => ({ parse: mod.parseTableOptions, run: mod.runTable }))));

  program.command("plot").description("learning curves (IQM with bootstrap bands) as SVG and PNG")
    .argument("[sweep...]", "sweep names")
    .option("--out <dir>", "directory for the SVG and PNG files")
    .option("--per-task", "also one small panel per task")
    .option("--format <list>", "svg, png or svg,png (default svg,png)")
    .option("--reps <n>", "bootstrap repetitions per point (default 2000)")
    .option("--seed <n>", "bootstrap seed (default 0)")
    .action(command(dispatch, "plot", () => import("./commands/plot.js")
      .then((mod) => ({ parse: mod.parsePlotOptions, run: mod.runPlot }))));

  program.command("report").description("one self-contained HTML report of a sweep: plan, runs, tables, curves")
    .argument("[sweep]", "sweep name")
    .option("--out <file>", "where to write the report: an .html file, or an .md file with --format md")
    .option("--format <format>", "html (default): one self-contained file; md: Markdown, its figures as PNGs in <name>-figures/")
    .option("--reps <n>", "bootstrap repetitions (default 50000 for tables, 2000 for curves)")
    .option("--seed <n>", "bootstrap seed (default 0)")
    .action(command(dispatch, "report", () => import("./commands/report.js")
      .then((mod) => ({ parse: mod.parseReportOptions, run: mod.runReport }))));

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
      const message = err.message.replace(/^error: /, "").replace(/\.$/, "");
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
