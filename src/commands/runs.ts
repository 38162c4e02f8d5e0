// `amago2 runs`: every run in the store, newest last.
import { amagoHome, openStoreReadOnly } from "../store/db.js";
import { listRuns, overviewOf, type RunOverview, type RunRow } from "../store/runs.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "./exit-codes.js";
import { renderColumns } from "./summary.js";

export interface RunsOptions {
  json: boolean;
}

export interface RunListing extends RunOverview {
  /** The error's type and the first line of its message. */
  error: string | null;
}

export function parseRunsOptions(raw: { json?: boolean }): RunsOptions {
  return { json: Boolean(raw.json) };
}

export function toListing(r: RunRow): RunListing {
  return {
    ...overviewOf(r),
    error: r.error_type ? `${r.error_type}: ${(r.error_message ?? "").split("\n")[0]}` : null,
  };
}

export function collectRuns(home: string): RunListing[] {
  const db = openStoreReadOnly(home);
  if (!db) return [];
  try {
    return listRuns(db).map(toListing);
  } finally {
    db.close();
  }
}

export function renderRuns(rows: RunListing[]): string {
  return renderColumns(
    ["key", "status", "step", "attempts", "device", "error"],
    rows.map((r) => [r.key, r.status, r.totalSteps ? `${r.step}/${r.totalSteps}` : String(r.step), String(r.attempts),
      r.device ?? "-", r.error ?? ""]),
  );
}

export async function runRuns(opts: RunsOptions): Promise<ExitCode> {
  const log = createLogger(opts);
  const home = amagoHome();
  const rows = collectRuns(home);
  if (opts.json) log.out(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) log.info(`no runs yet in ${home}`);
  else log.out(renderRuns(rows));
  return 0;
}
