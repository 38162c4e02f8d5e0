// The sweep's progress display on stderr: an ora spinner with one line per running run on a
// TTY; plain lines (state changes, and each running run every PLAIN_EVERY_S seconds) when
// stderr is not a TTY (or one without a width) or NO_COLOR is set; nothing under --json.
import ora, { type Ora } from "ora";
import { colorEnabled } from "./colors.js";
import { printable } from "./logger.js";

export interface RunProgressRow {
  label: string;
  step: number;
  totalSteps: number | null;
  stepsPerSecond: number | null;
}

export interface ProgressSnapshot {
  done: number;
  running: number;
  failed: number;
  queued: number;
  active: RunProgressRow[];
}

const PLAIN_EVERY_S = 30;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function describeRow(r: RunProgressRow): string {
  const of = r.totalSteps ? `/${r.totalSteps}` : "";
  const rate = r.stepsPerSecond ? `  ${r.stepsPerSecond.toFixed(0)} steps/s` : "";
  const eta = r.stepsPerSecond && r.totalSteps ? `  ETA ${formatDuration((r.totalSteps - r.step) / r.stepsPerSecond)}` : "";
  return `${r.label}  step ${r.step}${of}${rate}${eta}`;
}

export function headline(s: ProgressSnapshot): string {
  return `runs: ${s.done} done, ${s.running} running, ${s.failed} failed, ${s.queued} queued`;
}

export interface Progress {
  /** Redraw (TTY) or, in plain mode, print due per-run lines. */
  update(snapshot: ProgressSnapshot): void;
  /** A state change worth a line of its own (run started, finished, failed). */
  note(line: string): void;
  stop(): void;
}

export function createProgress(opts: { json: boolean }): Progress {
  if (opts.json) return { update() {}, note() {}, stop() {} };
  // A terminal that reports no width (columns 0) makes ora's redraw erase without end.
  if (!colorEnabled(process.stderr) || !(process.stderr.columns > 0)) {
    const lastPrinted = new Map<string, number>();
    return {
      update(snapshot) {
        const now = Date.now() / 1000;
        for (const row of snapshot.active) {
          if (row.step === 0) continue; // its "started" line said enough
          if (now - (lastPrinted.get(row.label) ?? 0) < PLAIN_EVERY_S) continue;
          lastPrinted.set(row.label, now);
          process.stderr.write(`${printable(describeRow(row))}\n`);
        }
      },
      note: (line) => process.stderr.write(`${printable(line)}\n`),
      stop() {},
    };
  }
  const spinner: Ora = ora({ stream: process.stderr, text: "starting" }).start();
  return {
    update(snapshot) {
      spinner.text = printable([headline(snapshot), ...snapshot.active.map((r) => `  ${describeRow(r)}`)].join("\n"));
    },
    note(line) {
      spinner.clear();
      process.stderr.write(`${printable(line)}\n`);
      spinner.render();
    },
    stop: () => spinner.stop(),
  };
}
