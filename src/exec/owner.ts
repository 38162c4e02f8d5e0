// The processes behind a claim: this amago2 as an owner, and probing or signalling pids
// that may have exited meanwhile.
import os from "node:os";
import type { Owner } from "../store/runs.js";

export function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Signal a process (or with a negative id, a process group) that may have exited meanwhile. */
export function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** This process, as the owner of the runs it claims. */
export function thisOwner(): Owner {
  return { pid: process.pid, host: os.hostname() };
}
