// Procgen's separate runtime (.venv-procgen, `amago2 setup --procgen`): which interpreter a
// benchmark gets, the one-line refusal when that runtime is missing, doctor's Procgen line,
// and, where this machine has the runtime, a sweep planned through it.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { execa } from "execa";
import { PROCGEN_BENCHMARKS, PROCGEN_PYTHON, PROJECT_PYTHON, chosenPython, resolvePython } from "../src/bridge/python.js";
import { main } from "../src/cli.js";
import { PROCGEN_LOCK, readLock } from "../src/bridge/runtime.js";
import { procgenCheck } from "../src/commands/doctor.js";
import { withBenchmarksFrom, type BenchmarkInfo, type Description } from "../src/plan/describe.js";
import { UserError } from "../src/ui/errors.js";
import { REPO_ROOT, VENV_PYTHON, capture, fingerprint, runCli, tempDir, withoutUserPython } from "./helpers.js";

const HAS_PROCGEN_RUNTIME = existsSync(PROCGEN_PYTHON);
const NO_RUNTIME = `no ${PROCGEN_PYTHON} on this machine (\`amago2 setup --procgen\` creates it)`;

withoutUserPython();

test("Procgen's benchmarks default to .venv-procgen, all others to .venv; --python and AMAGO2_PYTHON win", () => {
  assert.equal(PROCGEN_PYTHON, path.join(REPO_ROOT, ".venv-procgen", "bin", "python"));
  assert.deepEqual(PROCGEN_BENCHMARKS, ["procgen", "procgen-rescaled"]);
  for (const benchmark of PROCGEN_BENCHMARKS) assert.equal(chosenPython({ benchmark }), PROCGEN_PYTHON, benchmark);
  for (const benchmark of ["gym-mini", "ml45", "popgym-rescaled", undefined]) {
    assert.equal(chosenPython({ benchmark }), PROJECT_PYTHON, String(benchmark));
  }
  assert.equal(chosenPython({ benchmark: "procgen", python: "/opt/py/bin/python" }), "/opt/py/bin/python");
  process.env.AMAGO2_PYTHON = "/env/bin/python";
  try {
    assert.equal(chosenPython({ benchmark: "procgen" }), "/env/bin/python");
  } finally {
    delete process.env.AMAGO2_PYTHON;
  }
});

/**
 * A copy of this checkout's compiled CLI in `dir`, sharing its node_modules and sweep files
 * but with no virtualenv of its own: amago2 finds its venvs next to its compiled files, so
 * this is a checkout where `amago2 setup --procgen` was never run.
 */
function bareCheckout(dir: string): string {
  for (const part of ["package.json", "bin", path.join("dist", "src")]) {
    cpSync(path.join(REPO_ROOT, part), path.join(dir, part), { recursive: true });
  }
  for (const shared of ["node_modules", "experiments"]) symlinkSync(path.join(REPO_ROOT, shared), path.join(dir, shared));
  return path.join(dir, "bin", "amago2.js");
}

test("sweep procgen without the Procgen runtime: exit 2, one line saying `amago2 setup --procgen`, nothing written", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = path.join(dir, "checkout");
    mkdirSync(root);
    const bin = bareCheckout(root);
    const home = path.join(dir, "home");
    for (const args of [["sweep", "procgen", "--scale", "tiny"], ["ablate", "--actor", "ind", "--critic", "ind", "--benchmark", "procgen-rescaled"]]) {
      const res = await execa(process.execPath, [bin, ...args], { env: { AMAGO2_HOME: home, NO_COLOR: "1" }, reject: false });
      const label = `amago2 ${args.join(" ")}`;
      assert.equal(res.exitCode, 2, `${label}: ${res.stderr}`);
      assert.equal(res.stdout, "", label);
      assert.equal(res.stderr.trimEnd().split("\n").length, 1, `${label}: ${res.stderr}`);
      const missing = path.join(root, ".venv-procgen", "bin", "python").replace(/[.]/g, "\\.");
      assert.match(res.stderr, new RegExp(`no Python interpreter at ${missing} \\(the Procgen runtime, which benchmark '${args.includes("procgen") ? "procgen" : "procgen-rescaled"}' runs in\\); install it with \`amago2 setup --procgen\``), label);
      assert.equal(fingerprint(home), "absent", `${label} wrote to AMAGO2_HOME`);
      assert.equal(fingerprint(path.join(root, ".venv-procgen")), "absent", `${label} created a venv`);
    }
  } finally {
    cleanup();
  }
});

test("setup --procgen parses; with --python it is refused in one line", async () => {
  let seen: unknown;
  const code = await main(["node", "amago2", "setup", "--procgen"], async (_command, options) => {
    seen = options;
    return 0;
  });
  assert.equal(code, 0);
  assert.deepEqual(seen, { force: false, procgen: true });
  const refused = await capture(() => main(["node", "amago2", "setup", "--procgen", "--python", "/x/python"], async () => {
    throw new Error("must not dispatch");
  }));
  assert.equal(refused.result, 2);
  assert.equal(refused.stderr.trimEnd().split("\n").length, 1, refused.stderr);
  assert.match(refused.stderr, /--procgen always creates the project's \.venv-procgen and takes no --python/);
});

test("doctor's Procgen line: what to run when the runtime is missing or lacks procgen", async () => {
  const missing = await procgenCheck({ python: "/nonexistent/bin/python" });
  assert.deepEqual([missing.name, missing.level], ["procgen", "warn"]);
  assert.match(missing.detail, /^not installed \(no \/nonexistent\/bin\/python\): install it with `amago2 setup --procgen`/);
  // The main venv has amago2 and torch but no procgen (its numpy is 2.x).
  const lacking = await procgenCheck({ python: VENV_PYTHON });
  assert.equal(lacking.level, "warn");
  assert.match(lacking.detail, new RegExp(`^${VENV_PYTHON.replace(/[.]/g, "\\.")} cannot run Procgen \\(ModuleNotFoundError: No module named 'procgen'\\): install it with \`amago2 setup --procgen\``));
});

test("doctor's Procgen line with the runtime (made by setup --procgen): OK, its path and the locked versions", { skip: HAS_PROCGEN_RUNTIME ? false : NO_RUNTIME }, async () => {
  const check = await procgenCheck({});
  const lock = readLock(PROCGEN_LOCK);
  const pinned = (name: string) => [...lock.packages, ...lock.torch].find((p) => p.name === name)!.version.replace(/[.]/g, "\\.");
  assert.equal(check.level, "ok", check.detail);
  assert.match(check.detail, new RegExp(`^${PROCGEN_PYTHON.replace(/[.]/g, "\\.")}: Python 3\\.11\\.\\d+, torch ${pinned("torch")}\\S*, ` +
    `numpy ${pinned("numpy")}, procgen2 ${pinned("procgen2")}, gym ${pinned("gym")}; every package at its version in python/locks/procgen\\.txt$`));
});

test("benchmarks: Procgen's entries come from the runtime that runs them", () => {
  const entry = (installed: boolean, tasks: string[]): BenchmarkInfo => ({
    tasks, eval_tasks: [], k: installed ? 2 : null, horizon: null, packages: ["procgen2", "gym"], installed,
    install_hint: installed ? null : "run `amago2 setup --procgen`", presets: {},
  });
  const base = { objectives: ["dep", "ind"], scales: ["tiny"], hyperparameters: {} };
  const main: Description = { ...base, benchmarks: { "gym-mini": entry(true, ["a"]), procgen: entry(false, []), "procgen-rescaled": entry(false, []) } };
  const other: Description = { ...base, benchmarks: { "gym-mini": entry(false, []), procgen: entry(true, ["coinrun"]), "procgen-rescaled": entry(true, ["coinrun"]) } };
  const merged = withBenchmarksFrom(main, other, PROCGEN_BENCHMARKS);
  assert.deepEqual(merged.benchmarks.procgen, other.benchmarks.procgen);
  assert.deepEqual(merged.benchmarks["procgen-rescaled"], other.benchmarks["procgen-rescaled"]);
  assert.deepEqual(merged.benchmarks["gym-mini"], main.benchmarks["gym-mini"]);
  assert.equal(main.benchmarks.procgen.installed, false, "the input is left as it was");
});

test("with the runtime, sweep procgen plans through it (the main venv cannot load Procgen)", { skip: HAS_PROCGEN_RUNTIME ? false : NO_RUNTIME }, async () => {
  assert.equal(await resolvePython({ benchmark: "procgen" }), PROCGEN_PYTHON);
  await assert.rejects(resolvePython({ benchmark: "procgen", python: "/nonexistent/bin/python" }), UserError);
  const { dir, cleanup } = tempDir();
  try {
    const res = await runCli(["sweep", "procgen-rescaled", "--scale", "tiny", "--seeds", "1", "--dry-run", "--json"], { AMAGO2_HOME: dir });
    assert.equal(res.code, 0, res.stderr);
    const plan = JSON.parse(res.stdout) as { benchmark: string; runs: unknown[] };
    assert.deepEqual([plan.benchmark, plan.runs.length], ["procgen-rescaled", 4]);
  } finally {
    cleanup();
  }
});

test("a dry run of procgen without its runtime still prints the paper plan, and what to install", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = path.join(dir, "checkout");
    mkdirSync(root);
    const bin = bareCheckout(root);
    symlinkSync(path.join(REPO_ROOT, ".venv"), path.join(root, ".venv"));
    const home = path.join(dir, "home");
    const res = await execa(process.execPath, [bin, "sweep", "procgen", "--dry-run"], { env: { AMAGO2_HOME: home, NO_COLOR: "1" }, reject: false });
    assert.equal(res.exitCode, 0, res.stderr);
    // docs/METHOD.md's Procgen row: lr 1e-4, batch 24, L2 5e-3, d_model 512, context 128.
    assert.match(res.stdout, /^preset: lr=0\.0001 batch_size=24 .*weight_decay=0\.005 .*d_model=512 d_ff=2048 .*max_seq_len=128/m);
    assert.doesNotMatch(res.stdout, /^benchmark:/m, "the main venv cannot build Procgen, so it must not claim its tasks");
    assert.match(res.stdout, /^not runnable here yet: .*amago2 setup --procgen/m);
    assert.equal(fingerprint(home), "absent", "a dry run wrote to AMAGO2_HOME");
  } finally {
    cleanup();
  }
});
