// `amago2 cancel <sweep|run>`: runs not running become cancelled at once; running ones are
// flagged, and their orchestrator stops them (checkpoint first) and records them cancelled.
import { pidAlive } from "../exec/owner.js";
import { amagoHome, openStore, openStoreReadOnly } from "../store/db.js";
import { findRuns, getSweep, listSweeps, markEnded, requestCancel, resolveRun, runsOfSweep, type RunRow } from "../store/runs.js";
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";

export interface CancelOptions {
  target: string;
  json: boolean;
}

export interface CancelResult {
  cancelled: string[];
  stopping: string[];
  untouched: string[];
}

export function parseCancelOptions(target: string, raw: { json?: boolean }): CancelOptions {
  return { target, json: Boolean(raw.json) };
}

export async function cancelRuns(home: string, target: string): Promise<CancelResult> {
  // Resolve with a read-only handle first, so a bad target writes nothing.
  const reader = openStoreReadOnly(home);
  if (!reader) throw new UserError(`no sweep or run '${target}': nothing has run in ${home} yet`);
  let runs: RunRow[];
  try {
    if (getSweep(reader, target)) runs = runsOfSweep(reader, target);
    else if (findRuns(reader, target).length > 0) runs = [resolveRun(reader, target)];
    else {
      const sweeps = listSweeps(reader).map((s) => s.name);
      throw new UserError(`no sweep or run '${target}' in ${home} (its sweeps: ${sweeps.join(", ") || "none yet"}; run keys: \`amago2 runs\`)`);
    }
  } finally {
    reader.close();
  }
  const db = openStore(home);
  const result: CancelResult = { cancelled: [], stopping: [], untouched: [] };
  try {
    // Runs with a Slurm job: scancel, then cancelled at once (no orchestrator of ours runs them).
    const onSlurm = runs.filter((r) => r.executor === "slurm" && (r.status === "queued" || r.status === "running"));
    if (onSlurm.length > 0) result.cancelled.push(...await (await import("../exec/slurm-sweep.js")).cancelSlurmRuns(db, onSlurm));
    for (const run of runs) {
      if (onSlurm.includes(run)) continue;
      if (run.status === "succeeded" || run.status === "cancelled") result.untouched.push(run.key);
      else if (run.status === "running" && pidAlive(run.orchestrator_pid)) {
        requestCancel(db, run.key);
        result.stopping.push(run.key);
      } else {
        markEnded(db, run.key, { status: "cancelled" });
        result.cancelled.push(run.key);
      }
    }
  } finally {
    db.close();
  }
  return result;
}

export async function runCancel(opts: CancelOptions): Promise<ExitCode> {
  const log = createLogger(opts);
  const result = await cancelRuns(amagoHome(), opts.target);
  if (opts.json) log.out(JSON.stringify(result, null, 2));
  else {
    log.out(`cancelled ${result.cancelled.length}, stopping ${result.stopping.length} (checkpoint first), unchanged ${result.untouched.length}`);
  }
  return 0;
}
