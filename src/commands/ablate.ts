// `amago2 ablate --actor ind --critic dep [--benchmark ml45]`: one cell of a benchmark's
// grid (all its seeds), recorded under the same sweep name `sweep <benchmark>` uses, so
// the cell is shared rather than duplicated.
import { loadSweepFile, resolveSweepArg } from "../plan/sweep-file.js";
import { makePlan } from "../plan/sweep.js";
import { parseObjective, parseRunOptions, type RawRunOptions } from "../plan/run-options.js";
import { UserError, type ExitCode } from "../ui/errors.js";
import { executePlan, type SweepOptions } from "./sweep.js";

export interface RawAblateOptions extends RawRunOptions {
  actor?: string;
  critic?: string;
  benchmark?: string;
}

export const DEFAULT_ABLATE_BENCHMARK = "ml45";

export function parseAblateOptions(raw: RawAblateOptions): SweepOptions {
  const actor = parseObjective("--actor", raw.actor);
  const critic = parseObjective("--critic", raw.critic);
  const file = loadSweepFile(resolveSweepArg(raw.benchmark ?? DEFAULT_ABLATE_BENCHMARK));
  const run = parseRunOptions(raw, file.execution);
  if (run.flags.actors !== undefined || run.flags.critics !== undefined) {
    throw new UserError("ablate runs one actor x critic cell: give it with --actor and --critic, not --axis actor/critic");
  }
  return { plan: makePlan(file, { ...run.flags, actors: [actor], critics: [critic] }), run };
}

export async function runAblate(opts: SweepOptions): Promise<ExitCode> {
  return executePlan(opts.plan, opts.run);
}
