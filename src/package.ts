// Where the installed amago2 package lives, found from this compiled file
// (dist/src/package.js), so the CLI works from any working directory. Every layer may
// import it: it imports nothing of amago2.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const EXPERIMENTS_DIR = path.join(PACKAGE_ROOT, "experiments");

let cachedVersion: string | undefined;
export function toolVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as {
    version: string;
  }).version;
  return cachedVersion;
}
