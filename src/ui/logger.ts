// A tiny logger: messages go to stderr, data to stdout; --json silences the messages so
// stdout carries exactly one JSON document.
import { colorEnabled, palette, type Palette } from "./colors.js";

export interface Logger {
  readonly json: boolean;
  readonly color: Palette;
  info(msg: string): void;
  success(msg: string): void;
  warn(msg: string): void;
  /** Data for stdout (tables, JSON). */
  out(text: string): void;
}

export function createLogger(opts: { json?: boolean } = {}): Logger {
  const json = Boolean(opts.json);
  const color = palette(colorEnabled(process.stderr));
  const err = (line: string) => {
    if (!json) process.stderr.write(`${line}\n`);
  };
  return {
    json,
    color,
    info: (msg) => err(msg),
    success: (msg) => err(color.ok(msg)),
    warn: (msg) => err(color.warn(`warning: ${msg}`)),
    out: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  };
}
