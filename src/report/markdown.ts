// The Markdown report of one sweep: the same plan, tables, figures and runs as the HTML
// report, for a repository's README or a paper's supplement. Figures are PNG files the
// caller writes beside the page; the page links them by relative path.

import { renderTable } from "./render.js";
import type { ReportContent } from "./html.js";
import { planRows, runCells, runHeader } from "./sections.js";

const cell = (s: string): string => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

function mdTable(header: string[], rows: string[][]): string {
  return [`| ${header.map(cell).join(" | ")} |`, `|${header.map(() => " --- ").join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)].join("\n");
}

/** `figureFiles[i]` is the relative path of figure i's PNG. */
export function renderReportMarkdown(content: ReportContent, figureFiles: string[]): string {
  const { sweep } = content;
  const figures = content.figures.map((f, i) => `![${f.title}](${figureFiles[i]})\n\n*${f.title}*`);
  return [
    `# amago2 report: ${sweep.name}`,
    "",
    `Generated ${content.generatedAt.toISOString()} by amago2 ${content.toolVersion}.`,
    "",
    "## Plan",
    "",
    ...planRows(sweep).map(([k, v]) => `- **${k}**: ${k === "command" ? `\`${v}\`` : v}`),
    "",
    "## Results",
    "",
    ...[...content.tables, ...content.moreTables].map((t) => renderTable(t, "md")),
    "## Learning curves",
    "",
    ...(figures.length ? figures.flatMap((f) => [f, ""]) : ["No evaluations recorded yet.", ""]),
    "## Runs",
    "",
    mdTable([...runHeader(sweep), "run"], sweep.runs.map((r) => [...runCells(r, sweep.axes), `\`${r.key}\``])),
    "",
    "Each run's resolved config, command line and versions are in the HTML report (`amago2 report --format html`).",
    "",
  ].join("\n");
}
