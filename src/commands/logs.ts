// `amago2 logs <run> [--follow]`: the run's worker.log; --follow keeps printing while the
// run is running, and returns once it has ended and the log is read to its end.
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as delay } from "node:timers/promises";
import { WORKER_LOG } from "../exec/worker-protocol.js";
import { amagoHome, openStoreReadOnly } from "../store/db.js";
import { getRun } from "../store/runs.js";
import { UserError } from "../ui/errors.js";
import type { ExitCode } from "../ui/errors.js";
import { resolveRun } from "../store/runs.js";

export interface LogsOptions {
  run: string;
  follow: boolean;
}

const FOLLOW_POLL_MS = 500;

export function parseLogsOptions(run: string, raw: { follow?: boolean }): LogsOptions {
  return { run, follow: Boolean(raw.follow) };
}

/**
 * Copy bytes [from, end of file) to stdout as text; returns the new offset. The decoder
 * holds a character split between two reads until its last byte arrives.
 */
function printFrom(file: string, from: number, decoder: StringDecoder): number {
  if (!existsSync(file)) return from;
  const size = statSync(file).size;
  if (size <= from) return from;
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    process.stdout.write(decoder.write(buf));
  } finally {
    closeSync(fd);
  }
  return size;
}

export async function runLogs(opts: LogsOptions): Promise<ExitCode> {
  const home = amagoHome();
  const db = openStoreReadOnly(home);
  if (!db) throw new UserError(`no run '${opts.run}': nothing has run in ${home} yet`);
  try {
    const run = resolveRun(db, opts.run);
    const file = path.join(run.run_dir, WORKER_LOG);
    if (!opts.follow && !existsSync(file)) {
      process.stderr.write(`${run.key} has no ${WORKER_LOG} yet (status ${run.status})\n`);
      return 0;
    }
    const decoder = new StringDecoder("utf8");
    let offset = printFrom(file, 0, decoder);
    if (!opts.follow) return 0;
    let interrupted = false;
    const onSigint = () => {
      interrupted = true;
    };
    process.on("SIGINT", onSigint);
    try {
      // Read the status before the file so the final read happens after the run ended.
      for (;;) {
        const running = getRun(db, run.key)?.status === "running";
        offset = printFrom(file, offset, decoder);
        if (!running || interrupted) break;
        await delay(FOLLOW_POLL_MS);
      }
    } finally {
      process.off("SIGINT", onSigint);
    }
    return interrupted ? 130 : 0;
  } finally {
    db.close();
  }
}
