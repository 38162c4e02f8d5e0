// The local executor: runs each RunSpec in its own worker process (src/exec/worker.ts) on
// a slot (a CPU slot, or a GPU handed out through CUDA_VISIBLE_DEVICES) and reports what it
// sees to the orchestrator. It writes no SQLite; the orchestrator does (src/exec/types.ts).
//
// Workers are detached into their own process groups, so a Ctrl-C in the terminal reaches
// only the orchestrator, which then asks them to stop (requestStop), and kill() can take a
// worker and its Python child down together with one signal to the group.
import { closeSync, openSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import type { ExecutorHandlers, LocalExecution, LocalExecutorOptions, RunOutcome, RunSpec } from "./types.js";
import { WORKER_EXIT, WORKER_LOG, writeRequest, type WorkerMessage } from "./worker-protocol.js";

const WORKER_SCRIPT = fileURLToPath(new URL("./worker.js", import.meta.url));

interface Slot {
  /** What onStart reports: "cpu" or "cuda:<id>". */
  device: string;
  /** The request's device: on a GPU slot the one visible GPU, on a CPU slot the CPU. */
  requestDevice: "cpu" | "cuda";
  env: Record<string, string>;
  busy: boolean;
}

interface RunningWorker {
  spec: RunSpec;
  slot: Slot;
  subprocess: ReturnType<typeof spawnWorker>;
}

function spawnWorker(runDir: string, env: Record<string, string>, logFd: number) {
  // execa's typings accept only the literal descriptors 3-9 here; at runtime any open
  // descriptor goes to the child as is, not piped through this process, as wanted: the
  // worker's output must not depend on the orchestrator staying alive.
  const logOutput = logFd as 3;
  return execa(process.execPath, [WORKER_SCRIPT, runDir], {
    ipc: true,
    serialization: "json",
    detached: true,
    stdin: "ignore",
    stdout: logOutput,
    stderr: logOutput,
    buffer: false,
    reject: false,
    env,
  });
}

/** The slots: GPUs x runsPerGpu when GPUs are given, else `parallel` CPU slots. */
export function makeSlots(opts: LocalExecutorOptions): Slot[] {
  const count = opts.gpus ? opts.gpus.length * opts.runsPerGpu : opts.parallel;
  // Each run gets an equal share of the cores: torch's default of one intra-op thread per
  // core in every worker would oversubscribe the machine N times over. A value the user
  // exported wins.
  const threads = String(Math.max(1, Math.floor(os.availableParallelism() / count)));
  const cpuThreads = {
    OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? threads,
    MKL_NUM_THREADS: process.env.MKL_NUM_THREADS ?? threads,
  };
  if (opts.gpus) {
    // GPU ids are nvidia-smi's, which numbers GPUs by PCI bus; CUDA numbers them fastest
    // first unless told otherwise, so on a machine of mixed GPUs an id would name another.
    const order = { CUDA_DEVICE_ORDER: process.env.CUDA_DEVICE_ORDER ?? "PCI_BUS_ID" };
    return opts.gpus.flatMap((gpu) =>
      Array.from({ length: opts.runsPerGpu }, () => ({
        device: `cuda:${gpu}`,
        requestDevice: "cuda" as const,
        env: { ...cpuThreads, ...order, CUDA_VISIBLE_DEVICES: gpu },
        busy: false,
      })),
    );
  }
  // No GPU for CPU slots, so a CPU run never allocates memory on a GPU someone else uses.
  const env = { ...cpuThreads, CUDA_VISIBLE_DEVICES: "" };
  return Array.from({ length: opts.parallel }, () => ({ device: "cpu", requestDevice: "cpu" as const, env, busy: false }));
}

export function startLocal(
  specs: RunSpec[],
  opts: LocalExecutorOptions,
  handlers: ExecutorHandlers,
): LocalExecution {
  const slots = makeSlots(opts);
  const queue: RunSpec[] = [...specs];
  const running = new Map<string, RunningWorker>();
  /** Runs taken from the queue whose onExit has not been delivered yet. */
  let unreported = 0;
  let stopping = false;
  let markIdle!: () => void;
  const idle = new Promise<void>((resolve) => (markIdle = resolve));

  const fill = () => {
    while (!stopping && queue.length > 0) {
      const slot = slots.find((s) => !s.busy);
      if (!slot) break;
      const spec = queue.shift()!;
      if (handlers.claim(spec.key)) launch(spec, slot);
    }
    if (queue.length === 0 && unreported === 0) markIdle();
  };

  const report = (key: string, outcome: RunOutcome) => {
    unreported -= 1;
    handlers.onExit(key, outcome);
    fill();
  };

  const launch = (spec: RunSpec, slot: Slot) => {
    unreported += 1;
    let logFd: number;
    try {
      writeRequest(spec.runDir, { ...spec.request, device: slot.requestDevice });
      // The worker's own stdout/stderr (Node-level failures) go to the same log as Python's.
      logFd = openSync(path.join(spec.runDir, WORKER_LOG), "a");
    } catch (err) {
      // Reported asynchronously like any other end, once the caller holds the execution.
      const reason = `cannot prepare ${spec.runDir}: ${(err as Error).message}`;
      queueMicrotask(() => report(spec.key, { kind: "crashed", reason, exitCode: null, signal: null }));
      return;
    }
    slot.busy = true;
    const subprocess = spawnWorker(spec.runDir, { ...slot.env, AMAGO2_PYTHON: opts.python }, logFd);
    const worker: RunningWorker = { spec, slot, subprocess };
    running.set(spec.key, worker);
    if (subprocess.pid !== undefined) handlers.onStart(spec.key, { pid: subprocess.pid, device: slot.device });
    void follow(worker, handlers).then((outcome) => {
      closeSync(logFd);
      running.delete(spec.key);
      slot.busy = false;
      report(spec.key, outcome);
    });
  };

  fill();
  return {
    enqueue(spec: RunSpec) {
      if (stopping) return; // after a stop request nothing new starts
      queue.push(spec);
      fill();
    },
    requestStop() {
      stopping = true;
      queue.length = 0;
      for (const { subprocess } of running.values()) {
        if (subprocess.connected) subprocess.sendMessage({ type: "stop" }).catch(() => {});
      }
      if (unreported === 0) markIdle();
    },
    kill() {
      stopping = true;
      queue.length = 0;
      for (const { subprocess } of running.values()) killGroup(subprocess.pid);
      if (unreported === 0) markIdle();
    },
    idle,
  };
}

/**
 * Forwards the worker's events to the handlers in order until its IPC channel closes (so
 * no message is lost to an early 'exit'), then turns how it ended into an outcome.
 */
async function follow(worker: RunningWorker, handlers: ExecutorHandlers): Promise<RunOutcome> {
  const { spec, subprocess } = worker;
  let ending: WorkerMessage | null = null;
  const messages = subprocess.getEachMessage();
  for (;;) {
    let next: IteratorResult<unknown>;
    try {
      next = await messages.next();
    } catch {
      break; // the channel broke (worker killed mid-message): the exit status tells the story
    }
    if (next.done) break;
    // Outside the try: a failing handler is the orchestrator's bug and must surface.
    const message = next.value as WorkerMessage;
    if (message.type === "event") handlers.onEvent(spec.key, message.line);
    else ending = message;
  }
  const result = await subprocess;
  return outcomeOf(ending, result.exitCode ?? null, result.signal ?? null);
}

/** The outcome from the worker's last message, checked against its exit status. */
export function outcomeOf(ending: WorkerMessage | null, exitCode: number | null, signal: string | null): RunOutcome {
  if (ending?.type === "result") {
    return ending.summary.status === "stopped" ? { kind: "interrupted" } : { kind: "finished", summary: ending.summary };
  }
  if (ending?.type === "crash") {
    return { kind: "crashed", reason: ending.reason, exitCode: ending.exitCode, signal: ending.signal };
  }
  const how = signal ? `killed by ${signal}` : `exited with code ${exitCode}`;
  const usage = exitCode === WORKER_EXIT.usage ? " (could not read its request; see worker.log)" : "";
  return { kind: "crashed", reason: `worker ${how} without a result${usage}`, exitCode, signal };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is already gone.
  }
}
