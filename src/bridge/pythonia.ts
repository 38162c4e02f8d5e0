// pythonia 1.2.6, the bridge a training worker runs Python through, and the ways it has to
// be held: it spawns Python when imported, forgets request timeouts only when told on each
// call, and notices a dead Python only after its request timeout, so its child is watched.
import cp from "node:child_process";
import type { ChildProcess } from "node:child_process";

/**
 * Options for a call that waits for Python as long as it lives (its death is noticed
 * through the exit watch). A fresh object per call: pythonia deletes `$timeout` from the
 * object it is given, so a shared one would silently restore the 100 s limit.
 */
const noTimeout = () => ({ $timeout: Infinity });

/** The parts of pythonia 1.2.6 used here (its typings omit `builtins` and `com`). */
export interface Pythonia {
  python: { exit(): void };
  // Proxies to Python objects: any attribute is a further proxy, any call goes to Python.
  builtins: any;
  com: { proc: ChildProcess | null };
}

/** How the Python child ended, when it ended before train() returned. */
export interface PythonCrash {
  reason: string;
  exitCode: number | null;
  signal: string | null;
}

/**
 * Watches the Python child: `gone` resolves if it exits (or cannot be spawned) and
 * `exited()` says whether it has. Also keeps its 'error' events from killing this process.
 */
export function watchPython(child: ChildProcess, log: (line: string) => void): { gone: Promise<PythonCrash>; exited: () => boolean } {
  let pythonExited = false;
  const gone = new Promise<PythonCrash>((resolve) => {
    child.once("exit", (code, signal) => {
      pythonExited = true;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      resolve({ reason: `python ${how} before train() returned`, exitCode: code, signal });
    });
    // 'error' also fires when pythonia's GC timer writes to the closed channel of a dead
    // Python; without a listener that would throw and kill this process. Only a failed
    // spawn (no pid) ends the run here: a Python that ran is reported by its 'exit'.
    child.on("error", (err) => {
      log(`python process error: ${err.message}`);
      if (child.pid === undefined) resolve({ reason: `python could not be run: ${err.message}`, exitCode: null, signal: null });
    });
  });
  return { gone, exited: () => pythonExited };
}

/** Calls `<module>.<fn>(requestJson, emit)` in Python with no request timeout; its JSON string result. */
export async function callEntry(pythonia: Pythonia, moduleName: string, functionName: string, requestJson: string,
  emit: (eventJson: string) => boolean): Promise<string> {
  // = python.setFastMode(true), but awaited and without the request timeout (a rejected
  // un-awaited call would be an unhandled rejection that kills this process).
  await pythonia.builtins.sendInspect$(false, noTimeout());
  const module = await pythonia.builtins.python$(moduleName, noTimeout());
  return module[`${functionName}$`](requestJson, emit, noTimeout());
}

/**
 * Imports pythonia, which spawns Python at import time from PYTHON_BIN with stdout and
 * stderr inherited. pythonia offers no way to redirect them, so child_process.spawn is
 * wrapped for the duration of the import to hand Python the log file instead (and no
 * stdin: Python must never read a terminal).
 */
export async function importPythonia(python: string, logFd: number): Promise<Pythonia> {
  process.env.PYTHON_BIN = python;
  process.env.FORCE_COLOR = "0"; // plain tracebacks in worker.log and in error rows
  const spawn = cp.spawn;
  const spawnToLog = (command: string, args: readonly string[], options: cp.SpawnOptions) =>
    spawn(command, args, { ...options, stdio: ["ignore", logFd, logFd, "ipc"] });
  cp.spawn = spawnToLog as typeof cp.spawn;
  try {
    return (await import("pythonia")).default as unknown as Pythonia;
  } finally {
    cp.spawn = spawn;
  }
}
