// `amago2 setup`: create (or with --force recreate) the project's Python runtime. The
// implementation lives with the bridge (src/bridge/setup.ts).
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "./exit-codes.js";

export interface SetupOptions {
  python?: string;
  force: boolean;
}

export function parseSetupOptions(raw: { python?: string; force?: boolean }): SetupOptions {
  return { force: Boolean(raw.force), ...(raw.python !== undefined ? { python: raw.python } : {}) };
}

export async function runSetup(opts: SetupOptions): Promise<ExitCode> {
  const { ensurePythonRuntime } = await import("../bridge/setup.js");
  const python = await ensurePythonRuntime(opts);
  createLogger().success(`Python runtime ready: ${python}`);
  return 0;
}
