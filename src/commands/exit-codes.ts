/** 0 ok, 1 some runs failed (or an unexpected error), 2 bad input, 130 interrupted. */
export type ExitCode = 0 | 1 | 2 | 130;
