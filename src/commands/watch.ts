// `amago2 watch [sweep]`: poll Slurm for a sweep's runs (or every Slurm run in the store),
// ingesting their journals with the progress display, until they have all ended.
import { amagoHome } from "../store/db.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";

export interface WatchOptions {
  sweep: string | null;
  json: boolean;
}

export function parseWatchOptions(sweep: string | undefined, raw: { json?: boolean }): WatchOptions {
  return { sweep: sweep ?? null, json: Boolean(raw.json) };
}

export async function runWatch(opts: WatchOptions): Promise<ExitCode> {
  const { watchSlurm } = await import("../exec/slurm-sweep.js");
  return watchSlurm(amagoHome(), opts.sweep, createLogger(opts));
}
