// A tiny logger: messages go to stderr, data to stdout; --json silences the messages so
// stdout carries exactly one JSON document.
import { colorEnabled, palette } from "./colors.js";

export interface Logger {
  readonly json: boolean;
  info(msg: string): void;
  success(msg: string): void;
  warn(msg: string): void;
  /** Data for stdout (tables, JSON). */
  out(text: string): void;
}

/**
 * Text as it may reach a terminal: control characters other than newline and tab (an
 * escape sequence in a sweep name, a task name or an error from an older store) are shown
 * as U+FFFD instead of being obeyed.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\ufffd");
}

export function createLogger(opts: { json?: boolean } = {}): Logger {
  const json = Boolean(opts.json);
  const color = palette(colorEnabled(process.stderr));
  const err = (line: string) => {
    if (!json) process.stderr.write(`${line}\n`);
  };
  return {
    json,
    info: (msg) => err(printable(msg)),
    success: (msg) => err(color.ok(printable(msg))),
    warn: (msg) => err(color.warn(`warning: ${printable(msg)}`)),
    out: (text) => process.stdout.write(printable(text.endsWith("\n") ? text : `${text}\n`)),
  };
}
