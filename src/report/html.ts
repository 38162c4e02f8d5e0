// The self-contained HTML report of one sweep: plan, run statuses, tables and curves, and
// each run's config and versions behind a <details>. Everything is inline (CSS, SVG), with
// no script and no link to anything outside the file, so it opens offline anywhere.

import type { Panel } from "./curves.js";
import type { RunRecord, SweepRecord } from "./model.js";
import { escapeHtml, renderTableHtml } from "./render.js";
import { planRows, runCells, runHeader } from "./sections.js";
import { renderPanelsSvg } from "./svg.js";
import type { TableModel } from "./table.js";

export interface ReportContent {
  sweep: SweepRecord;
  /** Tables shown open, in order (the headline ablation first). */
  tables: TableModel[];
  /** Tables behind a <details> (per task). */
  moreTables: TableModel[];
  /** Figures: one list of panels each, drawn as one SVG. */
  figures: { title: string; panels: Panel[]; columns: number; open: boolean }[];
  generatedAt: Date;
  toolVersion: string;
}

const STYLE = `
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #444; } th.group { text-align: center; border-bottom: 1px solid #999; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3rem; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ci { color: #666; font-size: 0.85em; }
ul.notes { font-size: 0.8rem; color: #555; }
dl.plan { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dl.plan dt { font-weight: bold; } dl.plan dd { margin: 0; font-family: monospace; }
.status { font-weight: bold; } .status-succeeded { color: #1a7f37; } .status-running { color: #0969da; }
.status-failed, .status-crashed { color: #cf222e; } .status-planned, .status-cancelled, .status-interrupted { color: #8a6d00; }
details { margin: 0.3rem 0; } summary { cursor: pointer; }
pre { background: #f6f8fa; padding: 0.5rem; overflow-x: auto; font-size: 0.8rem; }
.scroll { overflow-x: auto; }
figure { display: inline-block; vertical-align: top; margin: 0.5rem 1rem 0.5rem 0; } svg { max-width: 100%; height: auto; }
`;

function json(value: unknown): string {
  return escapeHtml(JSON.stringify(value, null, 2) ?? "null");
}

function planSection(sweep: SweepRecord): string {
  return `<h2 id="plan">Plan</h2>\n<dl class="plan">${planRows(sweep).map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join("")}</dl>`;
}

/** A run's cells, the status and counts styled, then its key with config and versions behind a <details>. */
function runRow(run: RunRecord, axes: string[]): string {
  const header = ["actor", "critic", ...axes, "seed"];
  const cells = runCells(run, axes).map((v, i) => {
    if (i < header.length) return `<td>${escapeHtml(v)}</td>`;
    if (i === header.length) return `<td class="status status-${escapeHtml(v)}">${escapeHtml(v)}</td>`;
    return i <= header.length + 2 ? `<td class="num">${escapeHtml(v)}</td>` : `<td>${escapeHtml(v)}</td>`;
  }).join("");
  const details = `<details><summary>config and versions</summary>
<p>command: <code>${escapeHtml(run.command)}</code></p>
<p>versions</p><pre class="versions">${json(run.versions)}</pre>
<p>resolved config</p><pre class="config">${json(run.config)}</pre>
<p>request</p><pre>${json(run.request)}</pre></details>`;
  return `<tr class="run" data-key="${escapeHtml(run.key)}">${cells}<td><code>${escapeHtml(run.key)}</code>${details}</td></tr>`;
}

function runsSection(sweep: SweepRecord): string {
  const head = [...runHeader(sweep), "run"].map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  return `<h2 id="runs">Runs</h2>\n<div class="scroll"><table class="runs"><thead><tr>${head}</tr></thead><tbody>\n` +
    `${sweep.runs.map((r) => runRow(r, sweep.axes)).join("\n")}\n</tbody></table></div>`;
}

/** Inline SVG needs no namespace declaration inside HTML; dropping it leaves no URL in the file. */
function inlineSvg(panels: Panel[], columns: number): string {
  return renderPanelsSvg(panels, columns).replace(' xmlns="http://www.w3.org/2000/svg"', "");
}

export function renderReportHtml(content: ReportContent): string {
  const { sweep } = content;
  const figures = content.figures.map((f) => {
    const body = `<figure class="curves">${inlineSvg(f.panels, f.columns)}<figcaption>${escapeHtml(f.title)}</figcaption></figure>`;
    return f.open ? body : `<details><summary>${escapeHtml(f.title)}</summary>${body}</details>`;
  });
  const more = content.moreTables.map((t) =>
    `<details><summary>${escapeHtml(t.title)}</summary><div class="scroll">${renderTableHtml(t)}</div></details>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>amago2 report: ${escapeHtml(sweep.name)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>amago2 report: ${escapeHtml(sweep.name)}</h1>
<p>Generated ${escapeHtml(content.generatedAt.toISOString())} by amago2 ${escapeHtml(content.toolVersion)}.</p>
${planSection(sweep)}
<h2 id="results">Results</h2>
${content.tables.map((t) => `<div class="scroll">${renderTableHtml(t)}</div>`).join("\n")}
${more.join("\n")}
<h2 id="curves">Learning curves</h2>
${figures.length ? figures.join("\n") : "<p>No evaluations recorded yet.</p>"}
${runsSection(sweep)}
</body>
</html>
`;
}
