// `amago2 table [sweep...]`: the ablation table (cells x headline metrics, with bootstrap
// intervals), or tasks x cells with --per-task, in Markdown, CSV, LaTeX or JSON.

import { amagoHome } from "../store/db.js";
import { parseInteger, UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import { axisValue, cellAxes, cellsOf, type SweepRecord } from "../report/model.js";
import { parseBootstrap, parseSweepNames, readSweeps, type BootstrapFlags } from "../report/options.js";
import { renderTable, TABLE_FORMATS, type TableFormat } from "../report/render.js";
import { buildTable, describeSpec, isActorCritic, STAT_NAMES, type CellSpec, type StatName, type TableOptions } from "../report/table.js";

export interface RawTableOptions extends BootstrapFlags {
  stat?: string;
  perTask?: boolean;
  vs?: string;
  atSteps?: string;
  format?: string;
  rows?: string;
  cols?: string;
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
  const vs = raw.vs === undefined ? null : parseCellSpec(raw.vs);
  if (vs !== null && raw.perTask) throw new UserError("--vs compares aggregates over tasks: use it without --per-task");
  const pivot = {
    ...(raw.rows !== undefined ? { rows: parseAxisList("--rows", raw.rows) } : {}),
    ...(raw.cols !== undefined ? { cols: parseAxisList("--cols", raw.cols) } : {}),
  };
  if (Object.keys(pivot).length > 0) {
    if (raw.perTask) throw new UserError("--rows/--cols pivot the aggregate table: use them without --per-task");
    if (vs !== null) throw new UserError("--vs adds columns to the unpivoted table: use it without --rows/--cols");
    if (stat === "all") throw new UserError("--rows/--cols show one statistic: give --stat iqm, mean or median");
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
      ...pivot,
      ...parseBootstrap(raw),
    },
  };
}

const AXIS_NAME = /^[a-z][a-z0-9_]*$/;

/** `--rows num_bins,critic`: axis names, comma-separated. */
function parseAxisList(flag: string, value: string): string[] {
  const names = value.split(",").map((s) => s.trim());
  if (!names.every((n) => AXIS_NAME.test(n))) throw new UserError(`${flag} must be a comma list of axis names such as num_bins,critic, got '${value}'`);
  return names;
}

/**
 * `--vs dep/dep` (the actor/critic cell) or `--vs num_bins=128,critic=ind`: the axis values
 * the baseline has; every other axis is the row's own.
 */
function parseCellSpec(value: string): CellSpec {
  const text = value.trim();
  const pair = /^(dep|ind)\/(dep|ind)$/.exec(text);
  if (pair) return { actor: pair[1], critic: pair[2] };
  const spec: CellSpec = {};
  for (const part of text.split(",")) {
    const [axis, v, ...extra] = part.split("=").map((s) => s.trim());
    if (!AXIS_NAME.test(axis ?? "") || !v || extra.length || axis in spec) {
      throw new UserError(`--vs must be an actor/critic cell such as dep/dep or ind/ind, or axis values such as num_bins=128,critic=ind, got '${value}'`);
    }
    spec[axis] = v;
  }
  return spec;
}

/** --vs must name a cell that exists: a missing baseline would silently drop the column. */
function checkBaseline(sweeps: SweepRecord[], vs: TableOptions["vs"]): void {
  if (vs === null) return;
  for (const sweep of sweeps) {
    const axes = cellAxes(sweep);
    const unknown = Object.keys(vs).find((a) => !axes.includes(a));
    if (unknown !== undefined) throw new UserError(`--vs ${unknown}: not an axis of sweep '${sweep.name}' (its axes: ${axes.join(", ")})`);
    const cells = cellsOf(sweep);
    if (!cells.some((c) => Object.entries(vs).every(([a, v]) => axisValue(c, a) === v))) {
      const values = Object.keys(vs).map((a) => `${a} ${[...new Set(cells.map((c) => axisValue(c, a)))].join("/")}`);
      throw new UserError(`--vs ${describeSpec(vs)}: sweep '${sweep.name}' has no such cell (its cells: ${
        isActorCritic(vs) ? [...new Set(cells.map((c) => `${c.actor}/${c.critic}`))].join(", ") : values.join("; ")})`);
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
