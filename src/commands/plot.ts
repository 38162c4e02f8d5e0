// `amago2 plot <sweep...> --out DIR`: learning curves (IQM over runs x tasks with bootstrap
// bands, one line per cell) per headline metric and the headline metric's performance
// profile of final scores, as SVG and PNG (--format picks either); --per-task adds small
// multiples, one panel per task.
// The learner's per-task measurements (each task's share of the gradient, value scale,
// filter pass rate) come as one figure each, a panel per cell, a line per task.

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { amagoHome } from "../store/db.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import {
  aggregatePanel, DEFAULT_CURVE_REPS, perTaskPanels, profilePanel, TASK_QUANTITIES, taskQuantityPanels, type CurveOptions,
} from "../report/curves.js";
import { headlineMetrics, type SweepRecord } from "../report/model.js";
import { checkOutputPath, parseBootstrap, parseSweepNames, readSweeps, type BootstrapFlags } from "../report/options.js";
import { svgToPng } from "../report/png.js";
import { renderPanelsSvg } from "../report/svg.js";

export interface RawPlotOptions extends BootstrapFlags {
  perTask?: boolean;
  out?: string;
  format?: string;
}

export const FIGURE_FORMATS = ["svg", "png"] as const;
export type FigureFormat = (typeof FIGURE_FORMATS)[number];

export interface PlotOptions {
  home: string;
  sweeps: string[];
  perTask: boolean;
  outDir: string;
  /** The files written per figure, in this order. */
  formats: FigureFormat[];
  curves: CurveOptions;
}

/** Small multiples per row. */
const PER_TASK_COLUMNS = 4;
/** Panels per row of the per-task measurements: one panel per cell, the 2x2 as a square. */
const CELL_COLUMNS = 2;

export function parsePlotOptions(sweeps: readonly string[], raw: RawPlotOptions,
  env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): PlotOptions {
  if (sweeps.length === 0) throw new UserError("plot needs at least one sweep name (see `amago2 runs`)");
  if (raw.out === undefined || raw.out.trim() === "") {
    throw new UserError("plot needs --out DIR: the directory to write the SVG and PNG files to");
  }
  const formats = (raw.format ?? "svg,png").split(",").map((f) => f.trim());
  const bad = formats.find((f) => !FIGURE_FORMATS.includes(f as FigureFormat));
  if (bad !== undefined || new Set(formats).size !== formats.length) {
    throw new UserError(`--format must be svg, png or svg,png, got '${raw.format}'`);
  }
  const { reps, seed } = parseBootstrap(raw);
  const outDir = path.resolve(cwd, raw.out);
  checkOutputPath(outDir, "folder");
  return {
    home: amagoHome(env),
    sweeps: parseSweepNames(sweeps),
    perTask: Boolean(raw.perTask),
    outDir,
    formats: FIGURE_FORMATS.filter((f) => formats.includes(f)),
    curves: { reps: reps ?? DEFAULT_CURVE_REPS, seed },
  };
}

/** A metric id ("test/success_last") as a file-name part ("test-success_last"). */
function fileStem(sweep: string, metricId: string, suffix: string): string {
  return `${sweep}-${metricId.replace(/\//g, "-")}${suffix}`;
}

/** Every figure of the sweeps: [file stem, svg markup]. */
export function plotFigures(sweeps: SweepRecord[], perTask: boolean, curves: CurveOptions): [string, string][] {
  const figures: [string, string][] = [];
  for (const sweep of sweeps) {
    const metrics = headlineMetrics(sweep.runs);
    for (const metric of metrics) {
      figures.push([fileStem(sweep.name, metric.id, ""), renderPanelsSvg([aggregatePanel(sweep, metric, curves)])]);
      if (perTask) {
        figures.push([fileStem(sweep.name, metric.id, "-per-task"),
          renderPanelsSvg(perTaskPanels(sweep, metric, curves), PER_TASK_COLUMNS)]);
      }
    }
    if (metrics.length) {
      const profile = profilePanel(sweep, metrics[0], { atSteps: null }, curves);
      if (profile.curves.length) figures.push([fileStem(sweep.name, metrics[0].id, "-profile"), renderPanelsSvg([profile])]);
    }
    for (const quantity of Object.keys(TASK_QUANTITIES)) {
      const panels = taskQuantityPanels(sweep, quantity);
      if (panels.length) figures.push([fileStem(sweep.name, `task-${quantity}`, ""), renderPanelsSvg(panels, CELL_COLUMNS)]);
    }
  }
  return figures;
}

export async function runPlot(opts: PlotOptions): Promise<ExitCode> {
  const log = createLogger();
  const sweeps = readSweeps(opts.home, opts.sweeps);
  const figures = plotFigures(sweeps, opts.perTask, opts.curves);
  if (figures.length === 0) {
    log.info(`no evaluations recorded yet for ${opts.sweeps.join(", ")}: nothing to plot`);
    return 0;
  }
  mkdirSync(opts.outDir, { recursive: true });
  for (const [stem, svg] of figures) {
    for (const format of opts.formats) {
      const file = path.join(opts.outDir, `${stem}.${format}`);
      writeFileSync(file, format === "svg" ? svg : svgToPng(svg));
      log.out(file);
    }
  }
  return 0;
}
