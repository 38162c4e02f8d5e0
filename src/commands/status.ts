// `amago2 status [sweep]`: every sweep's run counts, or one sweep's runs and cell summary.
import { amagoHome, openStoreReadOnly } from "../store/db.js";
import { listSweeps, requireSweep, runsOfSweep, RUN_STATUSES } from "../store/runs.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import { renderRuns, toListing, type RunListing } from "./runs.js";
import { renderColumns } from "../ui/columns.js";
import { sweptSettings } from "../report/collect.js";
import { collectSweepSummary, renderCellSummaries, type CellSummary } from "../report/summary.js";

export interface StatusOptions {
  sweep?: string;
  json: boolean;
}

export interface SweepCounts {
  sweep: string;
  benchmark: string;
  scale: string;
  counts: Record<string, number>;
}

export interface SweepDetail {
  sweep: string;
  benchmark: string;
  scale: string;
  runs: RunListing[];
  cells: CellSummary[];
}

export function parseStatusOptions(sweep: string | undefined, raw: { json?: boolean }): StatusOptions {
  return { ...(sweep !== undefined ? { sweep } : {}), json: Boolean(raw.json) };
}

export function collectStatus(home: string, sweep?: string): SweepCounts[] | SweepDetail {
  const db = openStoreReadOnly(home);
  if (!db) {
    if (sweep !== undefined) throw new UserError(`no sweep '${sweep}': nothing has run in ${home} yet`);
    return [];
  }
  try {
    if (sweep !== undefined) {
      const row = requireSweep(db, sweep);
      const runs = runsOfSweep(db, sweep);
      const settings = sweptSettings(db, [row]);
      return { sweep, benchmark: row.benchmark, scale: row.scale, runs: runs.map((r) => toListing(r, settings.get(r.key))),
        cells: collectSweepSummary(db, sweep) };
    }
    return listSweeps(db).map((s) => {
      const counts: Record<string, number> = {};
      for (const r of runsOfSweep(db, s.name)) counts[r.status] = (counts[r.status] ?? 0) + 1;
      return { sweep: s.name, benchmark: s.benchmark, scale: s.scale, counts };
    });
  } finally {
    db.close();
  }
}

export function renderStatus(data: SweepCounts[] | SweepDetail): string {
  if (Array.isArray(data)) {
    const statuses = RUN_STATUSES.filter((st) => data.some((d) => d.counts[st]));
    return renderColumns(["sweep", "benchmark", "scale", ...statuses],
      data.map((d) => [d.sweep, d.benchmark, d.scale, ...statuses.map((st) => String(d.counts[st] ?? 0))]));
  }
  return [`sweep ${data.sweep} (${data.benchmark}, scale ${data.scale})`, renderRuns(data.runs), "", renderCellSummaries(data.cells)].join("\n");
}

export async function runStatus(opts: StatusOptions): Promise<ExitCode> {
  const log = createLogger(opts);
  const home = amagoHome();
  await (await import("../exec/slurm-sweep.js")).refreshSlurmStore(home, log);
  const data = collectStatus(home, opts.sweep);
  if (opts.json) log.out(JSON.stringify(data, null, 2));
  else if (Array.isArray(data) && data.length === 0) log.info(`no sweeps yet in ${home}`);
  else log.out(renderStatus(data));
  return 0;
}
