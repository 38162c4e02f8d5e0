// `<run>` arguments: a full run key or a unique prefix of one.
import type { Store } from "../store/db.js";
import { findRuns, type RunRow } from "../store/runs.js";
import { UserError } from "../ui/errors.js";

export function resolveRun(db: Store, arg: string): RunRow {
  const matches = findRuns(db, arg);
  if (matches.length === 1) return matches[0];
  if (matches.length === 0) throw new UserError(`no run '${arg}' (see \`amago2 runs\` for the keys)`);
  const shown = matches.slice(0, 5).map((r) => r.key).join(", ");
  throw new UserError(`'${arg}' matches ${matches.length} runs (${shown}${matches.length > 5 ? ", ..." : ""}): give more of the key`);
}
