// The local executor and the per-run worker, through real processes, the real pythonia
// bridge and real (tiny) amago2 training; failures come from amago2.testing's fault entry
// point (docs/INTERFACES.md section 5).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { makeSlots, outcomeOf } from "../src/exec/local.js";
import { WORKER_EXIT } from "../src/exec/worker-protocol.js";
import { tempDir } from "./helpers.js";
import { journalLines, pythonPids, runExecutor, tinySpec, waitUntilGone, type RunRecord } from "./exec-helpers.js";

const FAULT_ENTRY = "amago2.testing:train_with_fault";
// Far below any real run's length: a bridge call made with pythonia's default timeout
// would be rejected after this long.
const SHORT_BRIDGE_TIMEOUT_MS = "2000";

function assertForwardedAll(rec: RunRecord, runDir: string): void {
  assert.deepEqual(rec.lines, journalLines(runDir), "every journal line reaches onEvent, in order");
  assert.deepEqual(rec.events.map((e) => e.seq), rec.events.map((_, i) => i));
}

describe("five runs at once: three Python deaths, one exception, one healthy run", () => {
  const { dir, cleanup } = tempDir("amago2-exec-");
  const specs = [1, 2, 3, 4, 5].map((seed) => tinySpec(dir, seed));
  const faults = [
    { seed: 1, kind: "os_exit" },
    { seed: 2, kind: "segfault" },
    { seed: 3, kind: "sigkill" },
    { seed: 4, kind: "raise" },
  ];
  let records: Map<string, RunRecord>;
  before(async () => {
    records = await runExecutor(specs, {
      parallel: specs.length,
      env: { AMAGO2_ENTRY: FAULT_ENTRY, AMAGO2_FAULT: JSON.stringify(faults), REQ_TIMEOUT: SHORT_BRIDGE_TIMEOUT_MS },
    });
  });
  after(cleanup);

  it("reports os._exit, a segfault and SIGKILL of Python as crashed, with how Python died", (t) => {
    const expected = [
      { key: "seed-1", exitCode: 71, signal: null, reason: /python exited with code 71/ },
      { key: "seed-2", exitCode: null, signal: "SIGSEGV", reason: /killed by SIGSEGV/ },
      { key: "seed-3", exitCode: null, signal: "SIGKILL", reason: /killed by SIGKILL/ },
    ];
    for (const { key, exitCode, signal, reason } of expected) {
      const rec = records.get(key)!;
      assert.equal(rec.exits, 1, `${key}: onExit exactly once`);
      assert.equal(rec.outcome?.kind, "crashed", `${key}: ${JSON.stringify(rec.outcome)}`);
      if (rec.outcome?.kind !== "crashed") continue;
      assert.equal(rec.outcome.exitCode, exitCode);
      assert.equal(rec.outcome.signal, signal);
      assert.match(rec.outcome.reason, reason);
      // The fault fires after the first metrics event, which must have been forwarded.
      assert.ok(rec.events.some((e) => e.type === "metrics"), `${key} forwarded its metrics before dying`);
      assertForwardedAll(rec, specs.find((s) => s.key === key)!.runDir);
      t.diagnostic(`${key}: onExit ${rec.exitAtMs - rec.lastEventAtMs} ms after the last event`);
    }
  });

  it("turns a Python exception into a finished run with a failed summary and the traceback", () => {
    const rec = records.get("seed-4")!;
    assert.equal(rec.outcome?.kind, "finished");
    if (rec.outcome?.kind !== "finished") return;
    const error = rec.outcome.summary.error as { type: string; message: string; traceback: string };
    assert.equal(rec.outcome.summary.status, "failed");
    assert.equal(error.type, "InjectedFault");
    assert.match(error.traceback, /Traceback \(most recent call last\)/);
    assert.match(error.traceback, /amago2\/testing\.py/);
    assert.equal(rec.events.at(-1)?.type, "finished");
  });

  it("lets the other run finish, and a train() call far longer than pythonia's request timeout is not cut off", () => {
    const rec = records.get("seed-5")!;
    assert.equal(rec.outcome?.kind, "finished", JSON.stringify(rec.outcome));
    if (rec.outcome?.kind !== "finished") return;
    assert.equal(rec.outcome.summary.status, "succeeded");
    assert.ok(Number(rec.outcome.summary.wall_s) * 1000 > Number(SHORT_BRIDGE_TIMEOUT_MS),
      "the run must outlast the shortened bridge timeout for this check to mean anything");
    assert.equal(rec.device, "cpu");
    assertForwardedAll(rec, specs[4].runDir);
  });

  it("leaves no Python process behind", async () => {
    for (const rec of records.values()) {
      for (const pid of pythonPids(rec)) assert.ok(await waitUntilGone(pid), `python ${pid} still running`);
    }
  });
});

describe("stopping and killing", () => {
  const { dir, cleanup } = tempDir("amago2-exec-");
  const stopped = tinySpec(dir, 1, 4000); // long enough to be running when stopped
  const workerKilled = tinySpec(dir, 2, 4000);
  const hung = tinySpec(dir, 3, 4000);
  const neverStarted = tinySpec(dir, 4);
  let records: Map<string, RunRecord>;
  before(async () => {
    let stopRequested = false;
    records = await runExecutor([stopped, workerKilled, hung], {
      parallel: 3,
      env: { AMAGO2_ENTRY: FAULT_ENTRY, AMAGO2_FAULT: JSON.stringify([{ seed: 3, kind: "hang" }]) },
    }, {
      onEvent(key, event, exec, recs) {
        if (key === workerKilled.key && event.type === "started") process.kill(recs.get(key)!.workerPid!, "SIGKILL");
        const stoppable = recs.get(stopped.key)?.events.some((e) => e.type === "checkpoint");
        const hanging = recs.get(hung.key)?.events.some((e) => e.type === "metrics");
        if (!stopRequested && stoppable && hanging) {
          stopRequested = true;
          exec.requestStop();
          exec.enqueue(neverStarted); // ignored: nothing starts after a stop request
        }
      },
      // The stopped run is done; the hung one never reaches a safe point: kill it.
      onExit(key, _outcome, exec) {
        if (key === stopped.key) exec.kill();
      },
    });
  });
  after(cleanup);

  it("SIGKILL of a worker is a crash and takes its Python child with it", async () => {
    const rec = records.get(workerKilled.key)!;
    assert.deepEqual(rec.outcome, {
      kind: "crashed", reason: "worker killed by SIGKILL without a result", exitCode: null, signal: "SIGKILL",
    });
    const [pid] = pythonPids(rec);
    assert.ok(await waitUntilGone(pid), `python ${pid} outlived its worker`);
  });

  it("requestStop leaves the run interrupted with a checkpoint and a stopped summary", async () => {
    const rec = records.get(stopped.key)!;
    assert.deepEqual(rec.outcome, { kind: "interrupted" });
    assert.ok(existsSync(path.join(stopped.runDir, "ckpt", "latest.pt")));
    const last = rec.events.at(-1)!;
    assert.equal(last.type, "finished");
    assert.equal((last.summary as { status: string }).status, "stopped");
    assert.ok(await waitUntilGone(pythonPids(rec)[0]));
  });

  it("kill() takes down a hung run's whole process group; queued runs never start after a stop", async () => {
    const rec = records.get(hung.key)!;
    assert.equal(rec.outcome?.kind, "crashed");
    assert.equal(rec.outcome?.kind === "crashed" && rec.outcome.signal, "SIGKILL");
    assert.ok(await waitUntilGone(pythonPids(rec)[0]));
    assert.ok(await waitUntilGone(rec.workerPid!));
    assert.equal(records.has(neverStarted.key), false);
  });
});

describe("executor bookkeeping", () => {
  it("hands out GPUs x runsPerGpu slots with one visible device each, else CPU slots", () => {
    const gpu = makeSlots({ parallel: 9, gpus: ["0", "3"], runsPerGpu: 2, python: "py" });
    assert.deepEqual(gpu.map((s) => [s.device, s.requestDevice, s.env.CUDA_VISIBLE_DEVICES]), [
      ["cuda:0", "cuda", "0"], ["cuda:0", "cuda", "0"], ["cuda:3", "cuda", "3"], ["cuda:3", "cuda", "3"],
    ]);
    if (process.env.CUDA_DEVICE_ORDER === undefined) {                  // ids as nvidia-smi numbers them
      assert.ok(gpu.every((s) => s.env.CUDA_DEVICE_ORDER === "PCI_BUS_ID"));
    }
    const cpu = makeSlots({ parallel: 2, gpus: null, runsPerGpu: 1, python: "py" });
    assert.deepEqual(cpu.map((s) => [s.device, s.requestDevice, s.env.CUDA_VISIBLE_DEVICES]), [
      ["cpu", "cpu", ""], ["cpu", "cpu", ""],
    ]);
  });

  it("trusts the worker's last message over its exit status, and calls a silent exit a crash", () => {
    const summary = { status: "failed" as const, error: { type: "E", message: "m", traceback: "t" } };
    assert.deepEqual(outcomeOf({ type: "result", summary }, WORKER_EXIT.failed, null), { kind: "finished", summary });
    assert.deepEqual(outcomeOf({ type: "result", summary: { status: "stopped" } }, WORKER_EXIT.interrupted, null), { kind: "interrupted" });
    assert.deepEqual(outcomeOf(null, WORKER_EXIT.succeeded, null), {
      kind: "crashed", reason: "worker exited with code 0 without a result", exitCode: 0, signal: null,
    });
  });
});
