// What `table`, `plot` and `report` share: number flags, the bootstrap flags, the paths
// they write, and opening the store read-only with a clear message when nothing has been
// recorded yet.

import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { nearestExisting, openStoreReadOnly } from "../store/db.js";
import { collectSweeps } from "./collect.js";
import type { SweepRecord } from "./model.js";
import { parseInteger, UserError } from "../ui/errors.js";

/** A bootstrap needs enough repetitions for its 2.5th and 97.5th percentiles to mean something. */
const MIN_REPS = 100;

export interface BootstrapFlags {
  reps?: string;
  seed?: string;
}

export function parseBootstrap(raw: BootstrapFlags): { reps: number | null; seed: number } {
  return {
    reps: raw.reps === undefined ? null : parseInteger("--reps", raw.reps, MIN_REPS),
    seed: raw.seed === undefined ? 0 : parseInteger("--seed", raw.seed, 0),
  };
}

/** The sweep names given on the command line, checked for shape (existence is checked against the DB). */
export function parseSweepNames(names: readonly string[]): string[] {
  for (const name of names) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      throw new UserError(`'${name}' is not a sweep name: names are letters, digits, '.', '-' or '_' (see \`amago2 runs\`)`);
    }
  }
  return [...names];
}

/**
 * A path --out names, checked before any work: it is not already the other kind of thing
 * (a file where a folder is to be written, or the reverse), and the nearest existing path
 * above it is a folder, in which the missing ones can be made.
 */
export function checkOutputPath(target: string, kind: "file" | "folder", named = `--out ${target}`): void {
  if (existsSync(target) && statSync(target).isDirectory() !== (kind === "folder")) {
    const is = kind === "folder" ? "a file" : "a folder";
    throw new UserError(`${named} is ${is}, not ${kind === "folder" ? "a folder" : "a file"}: move it away or choose another --out`);
  }
  const above = nearestExisting(path.dirname(target));
  if (!statSync(above).isDirectory()) throw new UserError(`${named}: ${above} is a file, so nothing can be written below it: choose another --out`);
}

/** The named sweeps (all when none are named) as recorded, read from a read-only store. */
export function readSweeps(home: string, names: readonly string[]): SweepRecord[] {
  const db = openStoreReadOnly(home);
  if (!db) {
    // The rule of every read command: asked about everything, an empty store is no error
    // (nothing to show); asked about a sweep that does not exist, it is.
    if (names.length === 0) return [];
    throw new UserError(`no sweep '${names[0]}': nothing has run in ${home} yet (run \`amago2 sweep <benchmark>\` first, or set AMAGO2_HOME to where your runs are)`);
  }
  try {
    return collectSweeps(db, names);
  } finally {
    db.close();
  }
}
