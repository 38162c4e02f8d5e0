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
