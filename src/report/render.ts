// Prints a table model as Markdown, CSV, LaTeX (booktabs), JSON or an HTML fragment.
// CSV and JSON carry full-precision numbers so they parse back to exactly what was
// computed; Markdown, LaTeX and HTML round each column to a precision fitting its size.

import { PARTIAL_MARK, type Column, type Estimate, type TableModel, type TableValue } from "./table.js";

export type TableFormat = "md" | "csv" | "latex" | "json";
export const TABLE_FORMATS: readonly TableFormat[] = ["md", "csv", "latex", "json"];

function isEstimate(v: TableValue): v is Estimate {
  return v !== null && typeof v === "object";
}

/**
 * Decimals that keep about four significant digits for an estimate's largest magnitude (its
 * value and interval): 1234 [1200, 1300], 15.20 [14.34, 16.02], 0.1234, 0.004500. Each
 * estimate is sized on its own, since one column may hold tasks on scales 1000x apart.
 */
function decimalsFor(v: Estimate): number {
  let largest = 0;
  for (const x of [v.value, v.lo, v.hi, v.std]) if (x !== undefined && Number.isFinite(x)) largest = Math.max(largest, Math.abs(x));
  if (largest === 0 || largest >= 1000) return largest === 0 ? 3 : 0;
  return Math.min(8, Math.max(0, 3 - Math.floor(Math.log10(largest))));
}

function fixed(x: number, decimals: number): string {
  return Number.isFinite(x) ? x.toFixed(decimals) : String(x).toLowerCase();
}

interface EstimateText {
  value: string;
  spread: string;
  mark: string;
}

function estimateText(v: Estimate): EstimateText {
  const decimals = decimalsFor(v);
  let spread = "";
  if (v.lo !== undefined && v.hi !== undefined) spread = `[${fixed(v.lo, decimals)}, ${fixed(v.hi, decimals)}]`;
  else if (v.std !== undefined) spread = `± ${fixed(v.std, decimals)}`;
  return { value: fixed(v.value, decimals), spread, mark: v.partial ? PARTIAL_MARK : "" };
}

function plainText(v: TableValue): string {
  if (v === null) return "—";
  if (!isEstimate(v)) return v;
  const t = estimateText(v);
  return `${t.value}${t.spread ? ` ${t.spread}` : ""}${t.mark}`;
}

function headerLabel(c: Column): string {
  return c.group ? `${c.group}: ${c.label}` : c.label;
}

// ---------------------------------------------------------------- Markdown

function renderMarkdown(table: TableModel): string {
  const cell = (s: string): string => s.replace(/\|/g, "\\|");
  const lines = [
    `**${table.title}**`,
    "",
    `| ${table.columns.map((c) => cell(headerLabel(c))).join(" | ")} |`,
    `|${table.columns.map((c) => (c.kind === "estimate" ? " ---: " : " --- ")).join("|")}|`,
    ...table.rows.map((row) => `| ${row.map((v) => cell(plainText(v))).join(" | ")} |`),
    "",
    ...table.notes.map((n) => `- ${n}`),
  ];
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------- CSV

function csvField(s: string): string {
  return /[",\n\r]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Estimate columns become value, _lo and _hi (or _std) columns of plain numbers. */
function renderCsv(table: TableModel): string {
  const layout = table.columns.map((c, i) => {
    if (c.kind !== "estimate") return { id: c.id, parts: ["text"] as const };
    const withStd = table.rows.some((r) => isEstimate(r[i]) && (r[i] as Estimate).std !== undefined);
    return { id: c.id, parts: withStd ? (["value", "std"] as const) : (["value", "lo", "hi"] as const) };
  });
  const header = layout.flatMap((l) => l.parts.map((p) => (p === "text" || p === "value" ? l.id : `${l.id}_${p}`)));
  const lines = [header.map(csvField).join(",")];
  for (const row of table.rows) {
    const fields = layout.flatMap((l, i) => {
      const v = row[i];
      return l.parts.map((p) => {
        if (p === "text") return v === null ? "" : String(v);
        if (!isEstimate(v)) return "";
        const x = v[p];
        return x === undefined ? "" : String(x);
      });
    });
    lines.push(fields.map(csvField).join(","));
  }
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------- LaTeX

const LATEX_ESCAPES: Record<string, string> = {
  "\\": "\\textbackslash{}", "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
  "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}",
  "±": "$\\pm$", "—": "---", "†": "$^\\dagger$", "<": "$<$", ">": "$>$",
};

function latexEscape(s: string): string {
  return s.replace(/[\\&%$#_{}~^±—†<>]/g, (ch) => LATEX_ESCAPES[ch]);
}

/** Runs of adjacent columns sharing a group: [group, first index, count]. */
function groupSpans(columns: Column[]): [string | null, number, number][] {
  const spans: [string | null, number, number][] = [];
  columns.forEach((c, i) => {
    const last = spans[spans.length - 1];
    if (last && last[0] === c.group) last[2] += 1;
    else spans.push([c.group, i, 1]);
  });
  return spans;
}

function renderLatex(table: TableModel): string {
  const spec = table.columns.map((c) => (c.kind === "estimate" ? "c" : "l")).join("");
  const cell = (v: TableValue): string => {
    if (!isEstimate(v)) return latexEscape(plainText(v));
    const t = estimateText(v);
    const spread = t.spread ? ` {\\scriptsize ${latexEscape(t.spread)}}` : "";
    return `${t.value}${spread}${latexEscape(t.mark)}`;
  };
  const lines = [
    "% amago2 table; needs \\usepackage{booktabs} in the preamble.",
    "\\begin{table}[t]",
    "\\centering",
    `\\caption{${latexEscape(table.title)}}`,
    `\\begin{tabular}{${spec}}`,
    "\\toprule",
  ];
  const spans = groupSpans(table.columns);
  if (spans.some(([g]) => g !== null)) {
    lines.push(`${spans.map(([g, , n]) => (g === null ? Array(n).fill("").join(" & ") : `\\multicolumn{${n}}{c}{${latexEscape(g)}}`)).join(" & ")} \\\\`);
    lines.push(spans.filter(([g]) => g !== null).map(([, start, n]) => `\\cmidrule(lr){${start + 1}-${start + n}}`).join(" "));
  }
  lines.push(`${table.columns.map((c) => latexEscape(c.label)).join(" & ")} \\\\`, "\\midrule");
  for (const row of table.rows) lines.push(`${row.map(cell).join(" & ")} \\\\`);
  lines.push("\\bottomrule", "\\end{tabular}");
  lines.push(`\\par\\smallskip{\\footnotesize ${table.notes.map((n) => `${latexEscape(n)}.`).join(" ")}\\par}`);
  lines.push("\\end{table}");
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------- JSON

function renderJson(table: TableModel): string {
  const rows = table.rows.map((row) => Object.fromEntries(table.columns.map((c, i) => [c.id, row[i]])));
  return `${JSON.stringify({ title: table.title, columns: table.columns, rows, notes: table.notes }, null, 2)}\n`;
}

export function renderTable(table: TableModel, format: TableFormat): string {
  switch (format) {
    case "md": return renderMarkdown(table);
    case "csv": return renderCsv(table);
    case "latex": return renderLatex(table);
    case "json": return renderJson(table);
  }
}

// ---------------------------------------------------------------- HTML (for the report)

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A `<table>` fragment with spanning group headers and the notes under it. */
export function renderTableHtml(table: TableModel): string {
  const spans = groupSpans(table.columns);
  const groupRow = spans.some(([g]) => g !== null)
    ? `<tr>${spans.map(([g, , n]) => `<th colspan="${n}" class="group">${escapeHtml(g ?? "")}</th>`).join("")}</tr>`
    : "";
  const head = `<tr>${table.columns.map((c) => `<th>${escapeHtml(c.label)}</th>`).join("")}</tr>`;
  const body = table.rows.map((row) => `<tr>${row.map((v) => {
    if (!isEstimate(v)) return `<td>${escapeHtml(plainText(v))}</td>`;
    const t = estimateText(v);
    return `<td class="num">${t.value}${t.spread ? ` <span class="ci">${escapeHtml(t.spread)}</span>` : ""}${t.mark}</td>`;
  }).join("")}</tr>`).join("\n");
  return [
    `<table class="results"><caption>${escapeHtml(table.title)}</caption>`,
    `<thead>${groupRow}${head}</thead>`,
    `<tbody>\n${body}\n</tbody></table>`,
    `<ul class="notes">${table.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>`,
  ].join("\n");
}
