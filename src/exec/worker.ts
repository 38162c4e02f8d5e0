// One training run in its own process: `node dist/src/exec/worker.js <runDir>`.
//
// It hosts one pythonia bridge to Python and calls `amago2.bridge.train(request_json,
// emit)` (or AMAGO2_ENTRY=module:function, for tests). pythonia 1.2.6 needs a wrapper
// (docs/INTERFACES.md section 6): it only notices a dead Python
// after its request timeout, so this process watches the Python child's exit itself; it
// rejects calls longer than REQ_TIMEOUT, so every call here passes {$timeout: Infinity};
// Node never exits while the bridge is open, so every way out calls python.exit() and
// then process.exit(). One disposable process per run keeps any of that from reaching the
// orchestrator.
//
// With an IPC parent (the local executor) every event line is forwarded as it comes, and
// a `stop` message makes emit() return true. Without one (a Slurm batch job) the events
// only go to the journal Python writes; SIGINT/SIGTERM ask for the same graceful stop.
// The exit code says how the run ended either way (WORKER_EXIT).
import cp from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import { chosenPython } from "../bridge/python.js";
import {
  REQUEST_FILE,
  WORKER_EXIT,
  WORKER_LOG,
  exitCodeForStatus,
  type ParentMessage,
  type RunSummary,
  type WorkerMessage,
} from "./worker-protocol.js";

const DEFAULT_ENTRY = "amago2.bridge:train";
/**
 * Options for a call that waits for Python as long as it lives (its death is noticed
 * through the exit watch). A fresh object per call: pythonia deletes `$timeout` from the
 * object it is given, so a shared one would silently restore the 100 s limit.
 */
const noTimeout = () => ({ $timeout: Infinity });

/** The parts of pythonia 1.2.6 used here (its typings omit `builtins` and `com`). */
interface Pythonia {
  python: { exit(): void };
  // Proxies to Python objects: any attribute is a further proxy, any call goes to Python.
  builtins: any;
  com: { proc: ChildProcess | null };
}

interface Crash {
  reason: string;
  exitCode: number | null;
  signal: string | null;
}

type Ending = { kind: "returned"; summary: RunSummary } | { kind: "died"; crash: Crash };

/** The open bridge, closed (python.exit()) on every way out of this process. */
let openBridge: Pythonia | null = null;

function exitWorker(code: number): never {
  openBridge?.python.exit();
  openBridge = null;
  process.exit(code);
}

async function main(): Promise<number> {
  const runDir = process.argv[2];
  if (!runDir || process.argv.length > 3) {
    process.stderr.write("usage: node worker.js <runDir>  (reads <runDir>/request.json)\n");
    return WORKER_EXIT.usage;
  }
  let requestJson: string;
  try {
    requestJson = readFileSync(path.join(runDir, REQUEST_FILE), "utf8");
    JSON.parse(requestJson);
  } catch (err) {
    process.stderr.write(`cannot read ${path.join(runDir, REQUEST_FILE)}: ${(err as Error).message}\n`);
    return WORKER_EXIT.usage;
  }
  const entry = process.env.AMAGO2_ENTRY || DEFAULT_ENTRY;
  const [moduleName, functionName] = entry.split(":");
  if (!moduleName || !functionName) {
    process.stderr.write(`AMAGO2_ENTRY must be module:function, got ${JSON.stringify(entry)}\n`);
    return WORKER_EXIT.usage;
  }

  // Python's stdout and stderr go straight to this file (an O_APPEND descriptor shared with
  // the child), so they survive this process dying.
  const logFd = openSync(path.join(runDir, WORKER_LOG), "a");
  const log = (line: string) => writeSync(logFd, `[worker ${new Date().toISOString()}] ${line}\n`);
  const send = process.send ? (message: WorkerMessage) => sendToParent(message) : null;

  let stopRequested = false;
  const requestStop = (why: string) => {
    if (stopRequested) return;
    stopRequested = true;
    log(`stop requested (${why}); the run checkpoints at its next safe point`);
  };
  process.on("message", (message: ParentMessage) => {
    if (message?.type === "stop") requestStop("executor");
  });
  // The executor is gone (killed, crashed): nobody is left to record the run, so stop it
  // cleanly; the next sweep resumes it from the checkpoint.
  process.on("disconnect", () => requestStop("executor disconnected"));

  let signalsSeen = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signalsSeen += 1;
    if (signalsSeen === 1) return requestStop(signal);
    // A second signal means "now": no checkpoint, Python goes with us.
    log(`second ${signal}: killing python without a checkpoint`);
    openBridge?.com.proc?.kill("SIGKILL");
    exitWorker(WORKER_EXIT.crashed);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  log(`run ${runDir}: ${entry} with ${chosenPython()} (pid ${process.pid})`);
  const pythonia = await importPythonia(chosenPython(), logFd);
  openBridge = pythonia;
  const child = pythonia.com.proc;
  if (!child) throw new Error("pythonia did not start a Python process");
  let pythonExited = false;
  const pythonGone = new Promise<Ending>((resolve) => {
    child.once("exit", (code, signal) => {
      pythonExited = true;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      resolve({ kind: "died", crash: { reason: `python ${how} before train() returned`, exitCode: code, signal } });
    });
    // 'error' also fires when pythonia's GC timer writes to the closed channel of a dead
    // Python; without a listener that would throw and kill this process. Only a failed
    // spawn (no pid) ends the run here: a Python that ran is reported by its 'exit'.
    child.on("error", (err) => {
      log(`python process error: ${err.message}`);
      if (child.pid === undefined) {
        resolve({ kind: "died", crash: { reason: `python could not be run: ${err.message}`, exitCode: null, signal: null } });
      }
    });
  });

  const emit = (eventJson: string): boolean => {
    send?.({ type: "event", line: eventJson });
    return stopRequested;
  };

  const training = (async (): Promise<Ending> => {
    // = python.setFastMode(true), but awaited and without the request timeout (a rejected
    // un-awaited call would be an unhandled rejection that kills this process).
    await pythonia.builtins.sendInspect$(false, noTimeout());
    const module = await pythonia.builtins.python$(moduleName, noTimeout());
    const summaryJson: string = await module[`${functionName}$`](requestJson, emit, noTimeout());
    return { kind: "returned", summary: JSON.parse(summaryJson) as RunSummary };
  })().catch(async (err: Error): Promise<Ending> => {
    // Python raised past train() (train itself never raises; an import of the entry module
    // can): a failed run with the traceback, unless Python is dead, which the exit says.
    if (pythonExited) return new Promise<Ending>(() => {});
    return { kind: "returned", summary: failedSummary(err) };
  });

  const ending = await Promise.race([training, pythonGone]);
  if (ending.kind === "died") {
    log(`crashed: ${ending.crash.reason}`);
    await send?.({ type: "crash", ...ending.crash });
    return WORKER_EXIT.crashed;
  }
  const { summary } = ending;
  log(`train() returned status ${summary.status}${summary.error ? `: ${summary.error.type}` : ""}`);
  await send?.({ type: "result", summary });
  return exitCodeForStatus(summary.status);
}

/**
 * Imports pythonia, which spawns Python at import time from PYTHON_BIN with stdout and
 * stderr inherited. pythonia offers no way to redirect them, so child_process.spawn is
 * wrapped for the duration of the import to hand Python the log file instead (and no
 * stdin: Python must never read a terminal).
 */
async function importPythonia(python: string, logFd: number): Promise<Pythonia> {
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

/** A failed summary for a Python exception that came through the bridge. */
function failedSummary(err: Error): RunSummary {
  // pythonia leaves `message` empty and puts the formatted Python traceback in `stack`;
  // its last "Type: message" line is the exception.
  const traceback = err.stack ?? String(err);
  const match = [...traceback.matchAll(/([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)):\s?(.*)$/gm)].pop();
  return {
    status: "failed",
    steps: 0,
    updates: 0,
    wall_s: 0,
    error: { type: match?.[1] ?? err.name, message: match?.[2] ?? err.message, traceback },
  };
}

function sendToParent(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    // An executor that went away mid-send is not an error here: the journal has it all.
    process.send!(message, undefined, {}, () => resolve());
  });
}

main().then(exitWorker, (err: Error) => {
  process.stderr.write(`worker failed: ${err.stack ?? err}\n`);
  exitWorker(WORKER_EXIT.crashed);
});
