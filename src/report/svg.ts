// Draws learning-curve panels as standalone SVG (no scripts, no external fonts or links),
// so the same markup goes into a file, a PNG rasteriser and the HTML report.

import type { Panel } from "./curves.js";
import { RANDOM_PLAY } from "./model.js";
import { escapeHtml } from "./render.js";

/** Okabe-Ito colours: distinguishable with the common colour-vision deficiencies. */
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];
/** Random play is the floor, not a cell: grey and dashed, outside the palette. */
const RANDOM_PLAY_COLOUR = "#777777";
/** DejaVu Sans is what Debian ships by default; the PNG rasteriser finds it there. */
const FONT = "DejaVu Sans, Arial, Helvetica, sans-serif";

const PANEL_W = 420;
const PANEL_H = 280;
const MARGIN = { left: 58, right: 14, top: 28, bottom: 44 };

/** Round tick positions (1, 2 or 5 times a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** 1500 -> "1.5k", 2000000 -> "2M": env-step counts on an axis. */
export function shortNumber(v: number): string {
  const abs = Math.abs(v);
  const trim = (x: number): string => String(Number(x.toPrecision(3)));
  if (abs >= 1e9) return `${trim(v / 1e9)}G`;
  if (abs >= 1e6) return `${trim(v / 1e6)}M`;
  if (abs >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeHtml(s)}</text>`;
}

/** One panel's markup, drawn in a PANEL_W x PANEL_H box at the origin. */
function panelBody(panel: Panel, colours: Map<string, string>): string {
  const points = panel.curves.flatMap((c) => c.points);
  const out: string[] = [text(PANEL_W / 2, 18, panel.title, 'text-anchor="middle" font-size="13" font-weight="bold"')];
  const plotW = PANEL_W - MARGIN.left - MARGIN.right;
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  if (points.length === 0) {
    out.push(text(PANEL_W / 2, PANEL_H / 2, "no evaluations yet", 'text-anchor="middle" font-size="12" fill="#666"'));
    return out.join("\n");
  }
  const finite = (xs: number[]): number[] => xs.filter(Number.isFinite);
  const steps = points.map((p) => p.step);
  const ys = finite(points.flatMap((p) => [p.lo, p.hi, p.value]));
  const x0 = Math.min(...steps);
  const x1 = Math.max(...steps) > x0 ? Math.max(...steps) : x0 + 1;
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const sx = (v: number): number => MARGIN.left + ((v - x0) / (x1 - x0)) * plotW;
  const sy = (v: number): number => MARGIN.top + plotH - ((v - y0) / (y1 - y0)) * plotH;

  for (const t of niceTicks(x0, x1)) {
    out.push(`<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#666"/>`);
    out.push(text(sx(t), MARGIN.top + plotH + 16, shortNumber(t), 'text-anchor="middle" font-size="11"'));
  }
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(text(MARGIN.left - 5, sy(t) + 4, shortNumber(t), 'text-anchor="end" font-size="11"'));
  }
  out.push(text(MARGIN.left + plotW / 2, PANEL_H - 8, panel.xLabel, 'text-anchor="middle" font-size="11"'));
  out.push(text(14, MARGIN.top + plotH / 2, panel.yLabel,
    `text-anchor="middle" font-size="11" transform="rotate(-90 14 ${(MARGIN.top + plotH / 2).toFixed(1)})"`));

  for (const curve of panel.curves) {
    const colour = colours.get(curve.label) ?? "#000";
    const pts = curve.points.filter((p) => Number.isFinite(p.value));
    if (pts.length === 0) continue;
    const band = [...pts.map((p) => `${sx(p.step).toFixed(1)},${sy(p.hi).toFixed(1)}`),
      ...[...pts].reverse().map((p) => `${sx(p.step).toFixed(1)},${sy(p.lo).toFixed(1)}`)].join(" ");
    out.push(`<polygon class="band" points="${band}" fill="${colour}" fill-opacity="0.18" stroke="none"/>`);
    const line = pts.map((p) => `${sx(p.step).toFixed(1)},${sy(p.value).toFixed(1)}`).join(" ");
    out.push(`<polyline class="curve" data-cell="${escapeHtml(curve.label)}" points="${line}" fill="none" stroke="${colour}" stroke-width="2"${curve.label === RANDOM_PLAY ? ' stroke-dasharray="6 4"' : ""}/>`);
    for (const p of pts) out.push(`<circle cx="${sx(p.step).toFixed(1)}" cy="${sy(p.value).toFixed(1)}" r="2.5" fill="${colour}"><title>${escapeHtml(`${curve.label} @ ${shortNumber(p.step)}: ${p.value.toPrecision(4)} [${p.lo.toPrecision(4)}, ${p.hi.toPrecision(4)}], ${p.runs} runs`)}</title></circle>`);
  }
  return out.join("\n");
}

/**
 * Panels on a grid of `columns`, with one legend for all: the colour of a cell is the
 * same in every panel. Returns a complete `<svg>` element.
 */
export function renderPanelsSvg(panels: Panel[], columns = 1): string {
  const labels = [...new Set(panels.flatMap((p) => p.curves.map((c) => c.label)))];
  const cells = labels.filter((l) => l !== RANDOM_PLAY);
  const colours = new Map(cells.map((l, i) => [l, PALETTE[i % PALETTE.length]]));
  colours.set(RANDOM_PLAY, RANDOM_PLAY_COLOUR);
  const cols = Math.max(1, Math.min(columns, panels.length));
  const rows = Math.max(1, Math.ceil(panels.length / cols));
  const width = cols * PANEL_W;
  // Legend entries flow left to right and wrap; label widths are estimated from length.
  const legend: string[] = [];
  let lx = 10;
  let ly = 0;
  for (const label of labels) {
    const w = 30 + label.length * 7.5;
    if (lx > 10 && lx + w > width) { lx = 10; ly += 20; }
    legend.push(`<rect x="${lx}" y="${ly + 7}" width="14" height="10" fill="${colours.get(label)}"/>` +
      text(lx + 19, ly + 16, label, 'font-size="12"'));
    lx += w;
  }
  const legendH = ly + 24;
  const height = rows * PANEL_H + legendH;
  const body = panels.map((panel, i) => {
    const x = (i % cols) * PANEL_W;
    const y = legendH + Math.floor(i / cols) * PANEL_H;
    return `<g class="panel" transform="translate(${x} ${y})">\n${panelBody(panel, colours)}\n</g>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<g class="legend">${legend.join("")}</g>`,
    ...body,
    "</svg>",
  ].join("\n");
}
