// `amago2 sweep <benchmark | path/to/sweep.yaml>`: the actor x critic x seed grid.
import { loadSweepFile, resolveSweepArg } from "../plan/sweep-file.js";
import { makePlan, type SweepPlan } from "../plan/sweep.js";
import type { ExitCode } from "./exit-codes.js";
import { executePlan } from "./execute.js";
import { parseObjectiveList, parseRunOptions, type RawRunOptions, type RunOptions } from "./run-options.js";

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
  if (raw.actors !== undefined) flags.actors = parseObjectiveList("--actors", raw.actors);
  if (raw.critics !== undefined) flags.critics = parseObjectiveList("--critics", raw.critics);
  return { plan: makePlan(file, flags), run };
}

export async function runSweep(opts: SweepOptions): Promise<ExitCode> {
  return executePlan(opts.plan, opts.run);
}
