// One training run in its own process: `node dist/src/exec/worker.js <runDir>`.
//
// It hosts one pythonia bridge to Python and calls `amago2.bridge.train(request_json,
// emit)` (or AMAGO2_ENTRY=module:function, for tests); src/bridge/pythonia.ts holds what
// pythonia 1.2.6 needs (its child watched for death, no request timeout on any call). Node
// never exits while the bridge is open, so every way out calls python.exit() and then
// process.exit(). One disposable process per run keeps any of that from reaching the
// orchestrator (docs/INTERFACES.md section 6).
//
// With an IPC parent (the local executor) every event line is forwarded as it comes, and
// a `stop` message makes emit() return true. Without one (a Slurm batch job) the events
// only go to the journal Python writes; SIGINT/SIGTERM ask for the same graceful stop.
// The exit code says how the run ended either way (WORKER_EXIT).
import { openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import { chosenPython } from "../bridge/python.js";
import { callEntry, importPythonia, watchPython, type Pythonia, type PythonCrash } from "../bridge/pythonia.js";
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
type Ending = { kind: "returned"; summary: RunSummary } | { kind: "died"; crash: PythonCrash };

/** The open bridge, closed (python.exit()) on every way out of this process. */
let openBridge: Pythonia | null = null;

function exitWorker(code: number): never {
  openBridge?.python.exit();
  openBridge = null;
  process.exit(code);
}

/** What this worker runs, from its argv, request file and AMAGO2_ENTRY; a usage error is written and its exit code returned. */
interface Invocation {
  runDir: string;
  requestJson: string;
  entry: string;
  moduleName: string;
  functionName: string;
}

function readInvocation(): Invocation | number {
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
  return { runDir, requestJson, entry, moduleName, functionName };
}

/**
 * The ways a stop is asked for: the executor's `stop` message, the executor going away, or
 * a first SIGINT/SIGTERM. A second signal means "now": no checkpoint, Python goes with us.
 * Returns whether a stop has been asked for.
 */
function listenForStop(log: (line: string) => void): () => boolean {
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
    log(`second ${signal}: killing python without a checkpoint`);
    openBridge?.com.proc?.kill("SIGKILL");
    exitWorker(WORKER_EXIT.crashed);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => stopRequested;
}

async function main(): Promise<number> {
  const run = readInvocation();
  if (typeof run === "number") return run;

  // Python's stdout and stderr go straight to this file (an O_APPEND descriptor shared with
  // the child), so they survive this process dying.
  const logFd = openSync(path.join(run.runDir, WORKER_LOG), "a");
  const log = (line: string) => writeSync(logFd, `[worker ${new Date().toISOString()}] ${line}\n`);
  const send = process.send ? (message: WorkerMessage) => sendToParent(message) : null;
  const stopRequested = listenForStop(log);

  log(`run ${run.runDir}: ${run.entry} with ${chosenPython()} (pid ${process.pid})`);
  const pythonia = await importPythonia(chosenPython(), logFd);
  openBridge = pythonia;
  const child = pythonia.com.proc;
  if (!child) throw new Error("pythonia did not start a Python process");
  const { gone, exited } = watchPython(child, log);
  const pythonGone = gone.then((crash): Ending => ({ kind: "died", crash }));

  const emit = (eventJson: string): boolean => {
    send?.({ type: "event", line: eventJson });
    return stopRequested();
  };

  const training = callEntry(pythonia, run.moduleName, run.functionName, run.requestJson, emit)
    .then((summaryJson): Ending => ({ kind: "returned", summary: JSON.parse(summaryJson) as RunSummary }))
    .catch(async (err: Error): Promise<Ending> => {
      // Python raised past train() (train itself never raises; an import of the entry module
      // can): a failed run with the traceback, unless Python is dead, which the exit says.
      if (exited()) return new Promise<Ending>(() => {});
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
