// The semantic colour map. Colour only on a TTY and never when NO_COLOR is set, so piped
// output and tests see plain text.
import { Chalk, type ChalkInstance } from "chalk";

export function colorEnabled(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== "dumb";
}

export interface Palette {
  ok: (s: string) => string;
  warn: (s: string) => string;
  error: (s: string) => string;
  dim: (s: string) => string;
  strong: (s: string) => string;
  key: (s: string) => string;
}

export function palette(enabled: boolean): Palette {
  const c: ChalkInstance = new Chalk({ level: enabled ? 1 : 0 });
  return { ok: c.green, warn: c.yellow, error: c.red, dim: c.dim, strong: c.bold, key: c.cyan };
}
