/**
 * A mistake in what the user asked for (bad flag, unknown benchmark, unreadable
 * sweep file, missing interpreter...). The entry point turns it into exactly one
 * line on stderr and exit code 2; nothing else about the error is shown.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

/**
 * A whole number from a flag or a sweep file (digits, or a number YAML already parsed)
 * in [min, max]; anything else is a UserError naming `where` and the accepted range.
 */
export function parseInteger(where: string, value: unknown, min: number, max?: number): number {
  const n = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || (max !== undefined && n > max)) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max.toLocaleString("en-US")}`;
    throw new UserError(`${where} must be an integer ${range}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A write that failed because the disk (of the store or of a run directory) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === "SQLITE_FULL" || code === "ENOSPC";
}

/** The one line a full disk gets: what happened, and that nothing is lost by stopping. */
export function diskFullMessage(err: unknown): string {
  return `the disk is full (${(err as Error).message}): free space, then run the same command again; ` +
    "runs resume from their checkpoints, and their journals hold every event the store could not take";
}

/** 0 ok, 1 some runs failed (or an unexpected error), 2 bad input, 130 interrupted. */
export type ExitCode = 0 | 1 | 2 | 130;
