// `amago2 setup`: create (or with --force recreate) the project's Python runtime, or with
// --procgen the separate Procgen runtime. The implementation lives with the bridge
// (src/bridge/setup.ts).
import { UserError } from "../ui/errors.js";
import { createLogger } from "../ui/logger.js";
import type { ExitCode } from "../ui/errors.js";

export interface SetupOptions {
  python?: string;
  force: boolean;
  /** Set up the Procgen runtime instead of the main one. */
  procgen?: boolean;
}

export function parseSetupOptions(raw: { python?: string; force?: boolean; procgen?: boolean }): SetupOptions {
  // The Procgen runtime is always the project's own .venv-procgen: installing numpy<2 into
  // an interpreter the user named would downgrade their environment.
  if (raw.procgen && raw.python !== undefined) {
    throw new UserError("--procgen always creates the project's .venv-procgen and takes no --python; to use your own Python 3.11, run `pip install -e 'python[procgen]'` in it and pass it to sweep with --python");
  }
  return {
    force: Boolean(raw.force),
    ...(raw.procgen ? { procgen: true } : {}),
    ...(raw.python !== undefined ? { python: raw.python } : {}),
  };
}

export async function runSetup(opts: SetupOptions): Promise<ExitCode> {
  const log = createLogger();
  const { ensureProcgenRuntime, ensurePythonRuntime } = await import("../bridge/setup.js");
  if (opts.procgen) {
    const { PROCGEN_PYTHON } = await import("../bridge/python.js");
    const v = await ensureProcgenRuntime(opts);
    log.success(`Procgen runtime ready: ${PROCGEN_PYTHON} (Python ${v.python}, torch ${v.torch}, numpy ${v.numpy}, procgen2 ${v.procgen2}, gym ${v.gym})`);
    return 0;
  }
  const python = await ensurePythonRuntime(opts);
  log.success(`Python runtime ready: ${python}`);
  return 0;
}
