// Locating the Python runtime, one-shot JSON calls into it, and the worker started on its
// own (as a Slurm batch job runs it): exit codes instead of IPC messages.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { PROJECT_PYTHON, callPythonJson, resolvePython } from "../src/bridge/python.js";
import { ensurePythonRuntime } from "../src/bridge/setup.js";
import { REQUEST_FILE, WORKER_EXIT, writeRequest } from "../src/exec/worker-protocol.js";
import { UserError } from "../src/ui/errors.js";
import { REPO_ROOT, tempDir, withoutUserPython } from "./helpers.js";
import { journalLines, tinySpec } from "./exec-helpers.js";

const WORKER = path.join(REPO_ROOT, "dist", "src", "exec", "worker.js");

withoutUserPython();

test("the project venv is the default interpreter; a missing one is a one-line user error naming the fix", async () => {
  assert.equal(await resolvePython(), PROJECT_PYTHON);
  await assert.rejects(resolvePython({ python: "/nonexistent/bin/python" }), (err: Error) => {
    assert.ok(err instanceof UserError);
    assert.match(err.message, /no Python interpreter at \/nonexistent\/bin\/python \(--python\).*amago2 setup.*AMAGO2_PYTHON=/);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  });
});

test("an interpreter without the amago2 package is refused, saying so", async (t) => {
  const system = await execa("python3", ["-c", "import sys; print(sys.executable)"], { reject: false, env: { PATH: "/usr/bin:/bin" }, extendEnv: false });
  if (system.failed) return t.skip("no system python3 to try");
  const bare = String(system.stdout).trim();
  const hasPackage = await execa(bare, ["-c", "import amago2"], { reject: false });
  if (!hasPackage.failed) return t.skip(`${bare} has amago2 installed`);
  process.env.AMAGO2_PYTHON = bare;
  try {
    await assert.rejects(resolvePython(), (err: Error) => err instanceof UserError && /\(AMAGO2_PYTHON\) cannot import amago2/.test(err.message));
  } finally {
    delete process.env.AMAGO2_PYTHON;
  }
});

test("setup for an interpreter that does not exist is a user error, before anything is installed", async () => {
  await assert.rejects(ensurePythonRuntime({ python: "/nonexistent/bin/python" }), (err: Error) =>
    err instanceof UserError && /no Python interpreter at \/nonexistent\/bin\/python/.test(err.message));
});

test("environment_report comes back as JSON with the interpreter's torch", async () => {
  const report = (await callPythonJson(PROJECT_PYTHON, "environment_report")) as { torch: string; python: string; cuda: { available: boolean } };
  const torch = await execa(PROJECT_PYTHON, ["-c", "import torch; print(torch.__version__)"]);
  assert.equal(report.torch, String(torch.stdout).trim());
  assert.match(report.python, /^3\.\d+\.\d+$/);
  assert.equal(typeof report.cuda.available, "boolean");
});

test("the worker alone: a bad command line is exit 2; a run's end is told by the exit code", async () => {
  const { dir, cleanup } = tempDir("amago2-worker-");
  try {
    const usage = await execa(process.execPath, [WORKER], { reject: false });
    assert.equal(usage.exitCode, WORKER_EXIT.usage);
    const noRequest = await execa(process.execPath, [WORKER, dir], { reject: false });
    assert.equal(noRequest.exitCode, WORKER_EXIT.usage);
    assert.match(noRequest.stderr, new RegExp(`cannot read ${path.join(dir, REQUEST_FILE)}`));

    const spec = tinySpec(dir, 0);
    writeRequest(spec.runDir, { ...spec.request, device: "cpu" });
    const failed = await execa(process.execPath, [WORKER, spec.runDir], {
      reject: false,
      env: { AMAGO2_ENTRY: "amago2.testing:train_with_fault", AMAGO2_FAULT: JSON.stringify({ kind: "raise" }) },
    });
    assert.equal(failed.exitCode, WORKER_EXIT.failed);
    const last = JSON.parse(journalLines(spec.runDir).at(-1)!);
    assert.equal(last.type, "finished");
    assert.equal(last.summary.error.type, "InjectedFault");
  } finally {
    cleanup();
  }
});
