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
