// `amago2 runs`: every run in the store, newest last.
import { amagoHome, openStoreReadOnly } from "../store/db.js";
import { pidAlive, thisOwner } from "../exec/owner.js";
import { listRuns, overviewOf, ownerGone, type RunOverview, type RunRow } from "../store/runs.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";
import { sweptSettings } from "../report/collect.js";
import { renderColumns } from "../ui/columns.js";

export interface RunsOptions {
  json: boolean;
}

export interface RunListing extends RunOverview {
  /** The run's values of the axes its sweeps vary besides actor, critic and seed ({num_bins: "16"}). */
  settings: Record<string, string>;
  /** The error's type and the first line of its message. */
  error: string | null;
  /**
   * For a run recorded running (or queued) whose amago2 is gone: who that was and when it
   * was last seen. The next `sweep` of it takes it over and resumes it.
   */
  stale: string | null;
}

export function parseRunsOptions(raw: { json?: boolean }): RunsOptions {
  return { json: Boolean(raw.json) };
}

export function toListing(r: RunRow, settings: Record<string, string> = {}): RunListing {
  const held = (r.status === "running" || r.status === "queued") && r.executor === "local";
  const seen = r.owner_seen_at ?? r.heartbeat_at;
  return {
    ...overviewOf(r),
    settings,
    error: r.error_type ? `${r.error_type}: ${(r.error_message ?? "").split("\n")[0]}` : null,
    stale: held && ownerGone(r, thisOwner(), pidAlive)
      ? `its amago2 (pid ${r.orchestrator_pid ?? "?"}${r.owner_host ? ` on ${r.owner_host}` : ""}) is gone` +
        `${seen ? `, last seen ${new Date(seen * 1000).toISOString().replace("T", " ").slice(0, 19)} UTC` : ""}; the next sweep resumes it`
      : null,
  };
}

export function collectRuns(home: string): RunListing[] {
  const db = openStoreReadOnly(home);
  if (!db) return [];
  try {
    const settings = sweptSettings(db);
    return listRuns(db).map((r) => toListing(r, settings.get(r.key)));
  } finally {
    db.close();
  }
}

export function renderRuns(rows: RunListing[]): string {
  // The settings column only where some run's sweep varies more than actor, critic and seed.
  const withSettings = rows.some((r) => Object.keys(r.settings).length > 0);
  const settings = (r: RunListing) => (withSettings ? [Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(" ")] : []);
  return renderColumns(
    ["key", ...(withSettings ? ["settings"] : []), "status", "step", "attempts", "device", "error"],
    rows.map((r) => [r.key, ...settings(r), r.stale ? `${r.status} (stale)` : r.status,
      r.totalSteps ? `${r.step}/${r.totalSteps}` : String(r.step), String(r.attempts), r.device ?? "-", r.stale ?? r.error ?? ""]),
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
