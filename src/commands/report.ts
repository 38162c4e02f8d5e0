// `amago2 report <sweep> --out report.html`: one self-contained HTML file with the sweep's
// plan, run statuses, the ablation tables and the learning curves; `--format md --out
// report.md`: the same as Markdown, its figures as PNG files in report-figures/ beside it.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { toolVersion } from "../package.js";
import { amagoHome } from "../store/db.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import {
  aggregatePanel, DEFAULT_CURVE_REPS, perTaskPanels, profilePanel, TASK_QUANTITIES, taskQuantityPanels,
} from "../report/curves.js";
import { renderReportHtml, type ReportContent } from "../report/html.js";
import { renderReportMarkdown } from "../report/markdown.js";
import { cellsOf, headlineMetrics } from "../report/model.js";
import { checkOutputPath, parseBootstrap, parseSweepNames, readSweeps, type BootstrapFlags } from "../report/options.js";
import { svgToPng } from "../report/png.js";
import { renderPanelsSvg } from "../report/svg.js";
import { aggregateTable, perTaskTable, type TableOptions } from "../report/table.js";

export interface RawReportOptions extends BootstrapFlags {
  out?: string;
  format?: string;
}

export const REPORT_FORMATS = ["html", "md"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportOptions {
  home: string;
  sweep: string;
  outFile: string;
  format: ReportFormat;
  reps: number | null;
  seed: number;
}

/** The baseline the report compares every cell against: the paper's AMAGO-1-style cell. */
const BASELINE = { actor: "dep", critic: "dep" };
const PER_TASK_COLUMNS = 4;
const FIGURE_FILE = /^\d{2}\.png$/;

export function parseReportOptions(sweep: string | undefined, raw: RawReportOptions,
  env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ReportOptions {
  if (sweep === undefined) throw new UserError("report needs a sweep name (see `amago2 runs`)");
  if (raw.out === undefined || raw.out.trim() === "") {
    throw new UserError("report needs --out FILE.html: where to write the report");
  }
  const format = raw.format ?? "html";
  if (!REPORT_FORMATS.includes(format as ReportFormat)) {
    throw new UserError(`--format must be one of ${REPORT_FORMATS.join(", ")}, got '${format}'`);
  }
  if (format === "html" && !raw.out.endsWith(".html")) {
    throw new UserError(`--out must name an .html file, or an .md file with --format md, got '${raw.out}'`);
  }
  if (format === "md" && !raw.out.endsWith(".md")) throw new UserError(`--format md needs --out to name an .md file, got '${raw.out}'`);
  const [name] = parseSweepNames([sweep]);
  const outFile = path.resolve(cwd, raw.out);
  checkOutputPath(outFile, "file");
  if (format === "md") checkOutputPath(figuresFolder(outFile), "folder", `the report's figures folder ${figuresFolder(outFile)}`);
  return { home: amagoHome(env), sweep: name, outFile, format: format as ReportFormat, ...parseBootstrap(raw) };
}

/** A Markdown report's figures: NN.png in a folder beside it, named after it. */
function figuresFolder(outFile: string): string {
  return path.join(path.dirname(outFile), `${path.basename(outFile, ".md")}-figures`);
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
  const content: ReportContent = {
    sweep,
    tables: [aggregateTable([sweep], tableOpts), aggregateTable([sweep], { ...tableOpts, stat: "all", vs: null })],
    moreTables: [perTaskTable([sweep], { ...tableOpts, perTask: true, vs: null })],
    figures,
    generatedAt: new Date(),
    toolVersion: toolVersion(),
  };
  const log = createLogger();
  mkdirSync(path.dirname(opts.outFile), { recursive: true });
  if (opts.format === "html") {
    writeFileSync(opts.outFile, renderReportHtml(content));
  } else {
    // The figures are NN.png in a folder named after the page. An earlier report's figures
    // go first, so none lingers; any other file there is left alone.
    const dir = figuresFolder(opts.outFile);
    const folder = path.basename(dir);
    mkdirSync(dir, { recursive: true });
    for (const old of readdirSync(dir)) if (FIGURE_FILE.test(old)) rmSync(path.join(dir, old));
    const files = content.figures.map((f, i) => {
      const file = `${String(i + 1).padStart(2, "0")}.png`;
      writeFileSync(path.join(dir, file), svgToPng(renderPanelsSvg(f.panels, f.columns)));
      return `${folder}/${file}`;
    });
    writeFileSync(opts.outFile, renderReportMarkdown(content, files));
  }
  log.out(opts.outFile);
  return 0;
}
