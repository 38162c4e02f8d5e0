// `amago2 report <sweep> --out report.html`: one self-contained HTML file with the sweep's
// plan, run statuses, the ablation tables and the learning curves.

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { toolVersion } from "../package.js";
import { amagoHome } from "../store/db.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import {
  aggregatePanel, DEFAULT_CURVE_REPS, perTaskPanels, profilePanel, TASK_QUANTITIES, taskQuantityPanels,
} from "../report/curves.js";
import { renderReportHtml } from "../report/html.js";
import { cellsOf, headlineMetrics } from "../report/model.js";
import { parseBootstrap, parseSweepNames, readSweeps, type BootstrapFlags } from "../report/options.js";
import { aggregateTable, perTaskTable, type TableOptions } from "../report/table.js";

export interface RawReportOptions extends BootstrapFlags {
  out?: string;
}

export interface ReportOptions {
  home: string;
  sweep: string;
  outFile: string;
  reps: number | null;
  seed: number;
}

/** The baseline the report compares every cell against: the paper's AMAGO-1-style cell. */
const BASELINE = { actor: "dep", critic: "dep" };
const PER_TASK_COLUMNS = 4;

export function parseReportOptions(sweep: string | undefined, raw: RawReportOptions,
  env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ReportOptions {
  if (sweep === undefined) throw new UserError("report needs a sweep name (see `amago2 runs`)");
  if (raw.out === undefined || raw.out.trim() === "") {
    throw new UserError("report needs --out FILE.html: where to write the report");
  }
  if (!raw.out.endsWith(".html")) throw new UserError(`--out must name an .html file, got '${raw.out}'`);
  const [name] = parseSweepNames([sweep]);
  return { home: amagoHome(env), sweep: name, outFile: path.resolve(cwd, raw.out), ...parseBootstrap(raw) };
}

export async function runReport(opts: ReportOptions): Promise<ExitCode> {
  const [sweep] = readSweeps(opts.home, [opts.sweep]);
  const hasBaseline = cellsOf(sweep).some((c) => c.actor === BASELINE.actor && c.critic === BASELINE.critic);
  const tableOpts: TableOptions = {
    stat: "iqm", perTask: false, vs: hasBaseline ? BASELINE : null, point: { atSteps: null }, reps: opts.reps, seed: opts.seed,
  };
  const curves = { reps: opts.reps ?? DEFAULT_CURVE_REPS, seed: opts.seed };
  const metrics = headlineMetrics(sweep.runs);
  const figures = metrics.map((metric) => ({
    title: `${metric.short}: IQM over runs x tasks, 95% bootstrap band`,
    panels: [aggregatePanel(sweep, metric, curves)], columns: 1, open: true,
  }));
  // The profile and per-task panels of the headline metric only: more would swamp the page.
  if (metrics.length) {
    figures.push({ title: `${metrics[0].short}: performance profile of final scores, 95% bootstrap band`,
      panels: [profilePanel(sweep, metrics[0], { atSteps: null }, curves)], columns: 1, open: true });
    figures.push({ title: `${metrics[0].short} per task: mean over runs, 95% bootstrap band`,
      panels: perTaskPanels(sweep, metrics[0], curves), columns: PER_TASK_COLUMNS, open: false });
  }
  // The paper's argument, as the learner measured it: which tasks the gradient serves.
  for (const [quantity, shown] of Object.entries(TASK_QUANTITIES)) {
    const panels = taskQuantityPanels(sweep, quantity);
    if (panels.length) {
      figures.push({ title: `${shown.title}, as the learner measured it: mean over runs, band from their minimum to maximum`,
        panels, columns: 2, open: quantity === "critic_grad_share" });
    }
  }
  const html = renderReportHtml({
    sweep,
    tables: [aggregateTable([sweep], tableOpts), aggregateTable([sweep], { ...tableOpts, stat: "all", vs: null })],
    moreTables: [perTaskTable([sweep], { ...tableOpts, perTask: true, vs: null })],
    figures,
    generatedAt: new Date(),
    toolVersion: toolVersion(),
  });
  mkdirSync(path.dirname(opts.outFile), { recursive: true });
  writeFileSync(opts.outFile, html);
  createLogger().out(opts.outFile);
  return 0;
}
