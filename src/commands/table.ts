// `amago2 table [sweep...]`: the ablation table (cells x headline metrics, with bootstrap
// intervals), or tasks x cells with --per-task, in Markdown, CSV, LaTeX or JSON.

import { amagoHome } from "../store/db.js";
import { parseInteger, UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import { cellsOf, type SweepRecord } from "../report/model.js";
import { parseBootstrap, parseSweepNames, readSweeps, type BootstrapFlags } from "../report/options.js";
import { renderTable, TABLE_FORMATS, type TableFormat } from "../report/render.js";
import { buildTable, STAT_NAMES, type StatName, type TableOptions } from "../report/table.js";

export interface RawTableOptions extends BootstrapFlags {
  stat?: string;
  perTask?: boolean;
  vs?: string;
  atSteps?: string;
  format?: string;
}

export interface TableCommandOptions {
  home: string;
  sweeps: string[];
  format: TableFormat;
  table: TableOptions;
}

export function parseTableOptions(sweeps: readonly string[], raw: RawTableOptions,
  env: NodeJS.ProcessEnv = process.env): TableCommandOptions {
  const stat = raw.stat ?? "iqm";
  if (!STAT_NAMES.includes(stat as StatName)) {
    throw new UserError(`--stat must be one of ${STAT_NAMES.join(", ")}, got '${stat}'`);
  }
  const format = raw.format ?? "md";
  if (!TABLE_FORMATS.includes(format as TableFormat)) {
    throw new UserError(`--format must be one of ${TABLE_FORMATS.join(", ")}, got '${format}'`);
  }
  let vs: TableOptions["vs"] = null;
  if (raw.vs !== undefined) {
    const match = /^(dep|ind)\/(dep|ind)$/.exec(raw.vs.trim());
    if (!match) throw new UserError(`--vs must be an actor/critic cell such as dep/dep or ind/ind, got '${raw.vs}'`);
    vs = { actor: match[1], critic: match[2] };
    if (raw.perTask) throw new UserError("--vs compares aggregates over tasks: use it without --per-task");
  }
  return {
    home: amagoHome(env),
    sweeps: parseSweepNames(sweeps),
    format: format as TableFormat,
    table: {
      stat: stat as StatName,
      perTask: Boolean(raw.perTask),
      vs,
      point: { atSteps: raw.atSteps === undefined ? null : parseInteger("--at-steps", raw.atSteps, 1) },
      ...parseBootstrap(raw),
    },
  };
}

/** --vs must name a cell that exists: a missing baseline would silently drop the column. */
function checkBaseline(sweeps: SweepRecord[], vs: TableOptions["vs"]): void {
  if (vs === null) return;
  for (const sweep of sweeps) {
    const cells = cellsOf(sweep);
    if (!cells.some((c) => c.actor === vs.actor && c.critic === vs.critic)) {
      throw new UserError(`--vs ${vs.actor}/${vs.critic}: sweep '${sweep.name}' has no such cell (its cells: ${
        [...new Set(cells.map((c) => `${c.actor}/${c.critic}`))].join(", ")})`);
    }
  }
}

export async function runTable(opts: TableCommandOptions): Promise<ExitCode> {
  const log = createLogger();
  const sweeps = readSweeps(opts.home, opts.sweeps);
  if (sweeps.length === 0) {
    log.info(`no sweeps yet in ${opts.home}: nothing to tabulate`);
    return 0;
  }
  checkBaseline(sweeps, opts.table.vs);
  const table = buildTable(sweeps, opts.table);
  log.out(renderTable(table, opts.format));
  // CSV has no place for prose: the definitions go to stderr so stdout stays parseable.
  if (opts.format === "csv") for (const note of table.notes) log.info(`# ${note}`);
  return 0;
}
