#!/usr/bin/env node
// What the orchestration adds to a run's wall time (the target: under 1% at the default
// logging rate): the same tiny real run (CartPole, --scale tiny, its default logging rate)
// once as a plain `python -c "amago2.bridge.train(...)"` and once through the whole
// machinery (orchestrator + local executor + worker + pythonia bridge + SQLite ingest),
// alternating, REPS times each. Run `npm run build` first.
//
//   node bench/orchestration.mjs            REPS=3 STEPS=800 by default
//
// It prints the medians and, from inside Python, the time the run spent blocked in emit()
// (the bridge callback plus the IPC forward): the part of the overhead that grows with
// the run, where start-up is paid once.
import { execa } from "execa";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => import(path.join(ROOT, "dist", "src", p));
const { orchestrate } = await dist("exec/orchestrator.js");
const { startLocal } = await dist("exec/local.js");
const { loadSweepFile } = await dist("plan/sweep-file.js");
const { makePlan, expandGrid } = await dist("plan/sweep.js");
const { openStore, runDirOf } = await dist("store/db.js");
const { upsertSweep } = await dist("store/runs.js");
const { createLogger } = await dist("ui/logger.js");

const REPS = Number(process.env.REPS ?? 3);
const STEPS = Number(process.env.STEPS ?? 800);
const PYTHON = process.env.AMAGO2_PYTHON ?? path.join(ROOT, ".venv", "bin", "python");
const THREADS = String(os.availableParallelism()); // what one CPU slot of --parallel 1 gets
const BENCHMARK_NAME = "cartpole-bench";
const BENCHMARK_DEF = { tasks: [{ env_id: "CartPole-v1" }], k: 1, horizon: 200 };

const journal = (runDir) =>
  readFileSync(path.join(runDir, "events.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));

/** Seconds from `startMs` to the run's `started` event, and from there to `finished`. */
function phases(runDir, startMs) {
  const events = journal(runDir);
  const summary = events.findLast((e) => e.type === "finished")?.summary;
  if (summary?.status !== "succeeded") throw new Error(`run in ${runDir} did not succeed: ${JSON.stringify(summary)}`);
  const started = events.find((e) => e.type === "started").t;
  const finished = events.findLast((e) => e.type === "finished").t;
  return { startup: started - startMs / 1000, train: finished - started, events: events.length };
}

async function plainRun(dir) {
  const runDir = path.join(dir, "plain");
  mkdirSync(runDir, { recursive: true });
  const request = {
    run_dir: runDir, benchmark: BENCHMARK_NAME, actor: "ind", critic: "dep", seed: 0, scale: "tiny",
    steps: STEPS, device: "cpu", overrides: {}, benchmark_def: BENCHMARK_DEF,
  };
  writeFileSync(path.join(runDir, "request.json"), JSON.stringify(request));
  const code = `import sys, amago2.bridge as b\nb.train(open(sys.argv[1]).read(), None)`;
  const start = Date.now();
  // train() reports a failure in its summary, never by raising: check the journal's end.
  await execa(PYTHON, ["-c", code, path.join(runDir, "request.json")], {
    env: { OMP_NUM_THREADS: THREADS, MKL_NUM_THREADS: THREADS, CUDA_VISIBLE_DEVICES: "" },
  });
  return { wall: (Date.now() - start) / 1000, ...phases(runDir, start), emit: 0 };
}

async function managedRun(dir) {
  const home = path.join(dir, "home");
  const sweepFile = path.join(dir, "bench.yaml");
  writeFileSync(sweepFile, JSON.stringify({
    name: "bench", benchmark: { name: BENCHMARK_NAME, ...BENCHMARK_DEF }, axes: { actor: ["ind"], critic: ["dep"] }, seeds: [0], scale: "tiny", steps: STEPS,
  }));
  const plan = makePlan(loadSweepFile(sweepFile), {});
  const runs = expandGrid(plan, (key) => runDirOf(home, key));
  const db = openStore(home);
  upsertSweep(db, { name: plan.name, benchmark: plan.benchmark, scale: plan.scale, source: plan.source, command: "bench" }, runs);
  process.env.AMAGO2_ENTRY = "emit_probe:train";
  process.env.PYTHONPATH = path.join(ROOT, "bench");
  const start = Date.now();
  const result = await orchestrate({
    db, runs, retries: 0, command: "bench", log: createLogger({ json: true }),
    startExecutor: (specs, handlers) => startLocal(specs, { parallel: 1, gpus: null, runsPerGpu: 1, python: PYTHON }, handlers),
  });
  const wall = (Date.now() - start) / 1000;
  db.close();
  if (result.code !== 0) throw new Error(`managed run ended with code ${result.code}; see ${runs[0].runDir}/worker.log`);
  const timing = JSON.parse(readFileSync(path.join(runs[0].runDir, "emit_timing.json"), "utf8"));
  return { wall, ...phases(runs[0].runDir, start), emit: timing.emit_s };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { plain: [], managed: [] };
for (let rep = 0; rep < REPS; rep++) {
  for (const [mode, fn] of [["plain", plainRun], ["managed", managedRun]]) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "amago2-bench-"));
    try {
      const r = await fn(dir);
      rows[mode].push(r);
      process.stderr.write(`${mode} rep ${rep + 1}/${REPS}: ${r.wall.toFixed(2)} s\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const stat = (mode, k) => median(rows[mode].map((r) => r[k]));
const fmt = (x, d = 3) => x.toFixed(d).padStart(9);
console.log(`\norchestration overhead: ${REPS} reps, ${STEPS} env steps, CartPole tiny, ${os.cpus().length} CPUs (medians)`);
console.log("mode       wall_s  startup_s    train_s  events    emit_s");
for (const mode of ["plain", "managed"]) {
  console.log(`${mode.padEnd(7)}${fmt(stat(mode, "wall"))}${fmt(stat(mode, "startup"))}${fmt(stat(mode, "train"))}${String(stat(mode, "events")).padStart(8)}${fmt(stat(mode, "emit"), 4)}`);
}
const plainWall = stat("plain", "wall");
const extra = stat("managed", "wall") - plainWall;
const emitShare = median(rows.managed.map((r) => r.emit / r.wall));
console.log(`\nwall-time difference: ${extra.toFixed(3)} s = ${((100 * extra) / plainWall).toFixed(2)}% of the plain run (noisy: it includes run-to-run variation)`);
console.log(`time Python spent blocked in emit (bridge + IPC): ${(100 * emitShare).toFixed(3)}% of the managed run's wall time`);
console.log(`start-up difference (spawn -> started event): ${(stat("managed", "startup") - stat("plain", "startup")).toFixed(3)} s, paid once per run`);
