// What crosses between an executor and a per-run worker process (src/exec/worker.ts):
// the request file, the IPC messages, and the exit codes. The exit code alone says how a
// run ended, so a worker started without an IPC parent (a Slurm batch job) is still
// understood; the IPC messages add the events as they happen and the summary's details.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { RunRequest } from "../bridge/request.js";

/**
 * How a worker process exits. Node itself exits with 1 on an uncaught exception and with
 * small codes for its own failures, so the run outcomes use codes well above those; a
 * worker killed by a signal or ending with any other code is a crash.
 */
export const WORKER_EXIT = {
  /** train() returned status "succeeded". */
  succeeded: 0,
  /** Bad command line or unreadable request.json: nothing was run. */
  usage: 2,
  /** train() returned status "failed" (a Python exception; the summary has the traceback). */
  failed: 10,
  /** Stopped on request (IPC stop message, SIGINT or SIGTERM) after a checkpoint. */
  interrupted: 11,
  /** Python died (exit, signal) or the bridge broke before train() returned. */
  crashed: 12,
} as const;

/** Executor -> worker. */
export type ParentMessage = { type: "stop" };

/** Worker -> executor, in the order they happen; `result` or `crash` comes last. */
export type WorkerMessage =
  | { type: "event"; line: string }
  | { type: "result"; summary: RunSummary }
  | { type: "crash"; reason: string; exitCode: number | null; signal: string | null };

/** What train() returns (docs/INTERFACES.md section 1). */
export interface RunSummary extends Record<string, unknown> {
  status: "succeeded" | "stopped" | "failed";
  error?: { type: string; message: string; traceback: string } | null;
}

export const REQUEST_FILE = "request.json";
export const WORKER_LOG = "worker.log";

/** Writes `<runDir>/request.json` atomically (tmp + rename), creating the run directory. */
export function writeRequest(runDir: string, request: RunRequest): void {
  mkdirSync(runDir, { recursive: true });
  const target = path.join(runDir, REQUEST_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(request, null, 2) + "\n");
  renameSync(tmp, target);
}

/** The worker exit code that reports a summary's status. */
export function exitCodeForStatus(status: RunSummary["status"]): number {
  if (status === "succeeded") return WORKER_EXIT.succeeded;
  if (status === "stopped") return WORKER_EXIT.interrupted;
  return WORKER_EXIT.failed;
}
