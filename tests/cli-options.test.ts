// argv -> validated options, with the commands themselves replaced by a recorder; and
// every bad flag: exit 2 with exactly one line on stderr.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { main } from "../src/cli.js";
import type { SweepOptions } from "../src/commands/sweep.js";
import { EXPERIMENTS_DIR } from "../src/package.js";
import { capture } from "./helpers.js";

async function parse(args: string[]): Promise<{ command: string; options: unknown }> {
  let seen: { command: string; options: unknown } | undefined;
  const code = await main(["node", "amago2", ...args], async (command, options) => {
    seen = { command, options };
    return 0;
  });
  assert.equal(code, 0);
  assert.ok(seen, `no command dispatched for ${args.join(" ")}`);
  return seen;
}

const sweepCases: { argv: string[]; expect: Partial<{ name: string; scale: string; actors: string[]; critics: string[]; seeds: number[]; steps: number | null; parallel: number; gpus: unknown; runsPerGpu: number; retries: number; dryRun: boolean; json: boolean }> }[] = [
  { argv: ["sweep", "ml45"], expect: { name: "ml45", scale: "paper", actors: ["dep", "ind"], critics: ["dep", "ind"], seeds: [0, 1, 2], steps: null, parallel: 1, gpus: "auto", runsPerGpu: 1, retries: 1, dryRun: false, json: false } },
  { argv: ["sweep", "ml45-mini", "--scale", "tiny", "--parallel", "2"], expect: { name: "ml45-mini-tiny", scale: "tiny", seeds: [0, 1], parallel: 2 } },
  { argv: ["sweep", "gym-mini", "--seeds", "4", "--steps", "500", "--actors", "ind", "--critics", "dep,ind"], expect: { seeds: [0, 1, 2, 3], steps: 500, actors: ["ind"], critics: ["dep", "ind"] } },
  { argv: ["sweep", "popgym", "--seeds", "0,5,9", "--name", "pg-a", "--gpus", "0,1", "--runs-per-gpu", "2", "--retries", "0"], expect: { seeds: [0, 5, 9], name: "pg-a", gpus: ["0", "1"], runsPerGpu: 2, retries: 0 } },
  { argv: ["sweep", "atari", "--dry-run", "--json"], expect: { dryRun: true, json: true } },
  { argv: ["sweep", "ml45", "--gpus", "none", "--parallel", "3"], expect: { gpus: "none", parallel: 3 } },
  { argv: ["sweep", "ml45", "--gpus", "GPU-8f2a61c0-1d2e,MIG-GPU-8f2a61c0/1/0"], expect: { gpus: ["GPU-8f2a61c0-1d2e", "MIG-GPU-8f2a61c0/1/0"] } },
];

for (const { argv, expect } of sweepCases) {
  test(`argv: amago2 ${argv.join(" ")}`, async () => {
    const { command, options } = await parse(argv);
    assert.equal(command, "sweep");
    const o = options as SweepOptions;
    const flat = {
      name: o.plan.name, scale: o.plan.scale, actors: o.plan.actors, critics: o.plan.critics, seeds: o.plan.seeds,
      steps: o.plan.steps, parallel: o.run.parallel, gpus: o.run.gpus, runsPerGpu: o.run.runsPerGpu,
      retries: o.run.retries, dryRun: o.run.dryRun, json: o.run.json,
    };
    for (const [k, v] of Object.entries(expect)) assert.deepEqual(flat[k as keyof typeof flat], v, k);
    assert.equal(o.plan.source, path.join(EXPERIMENTS_DIR, `${argv[1]}.yaml`));
  });
}

test("argv: ablate is one cell under the benchmark's sweep name", async () => {
  const { command, options } = await parse(["ablate", "--actor", "ind", "--critic", "dep", "--benchmark", "gym-mini", "--scale", "tiny", "--seeds", "2"]);
  assert.equal(command, "ablate");
  const o = options as SweepOptions;
  assert.deepEqual([o.plan.actors, o.plan.critics, o.plan.seeds, o.plan.name], [["ind"], ["dep"], [0, 1], "gym-mini-tiny"]);
  const dflt = (await parse(["ablate", "--actor", "dep", "--critic", "ind"])).options as SweepOptions;
  assert.equal(dflt.plan.benchmark, "ml45");
});

test("argv: read commands", async () => {
  assert.deepEqual(await parse(["runs", "--json"]), { command: "runs", options: { json: true } });
  assert.deepEqual(await parse(["status"]), { command: "status", options: { json: false } });
  assert.deepEqual(await parse(["status", "ml45"]), { command: "status", options: { sweep: "ml45", json: false } });
  assert.deepEqual(await parse(["logs", "abc", "--follow"]), { command: "logs", options: { run: "abc", follow: true } });
  assert.deepEqual(await parse(["cancel", "ml45"]), { command: "cancel", options: { target: "ml45", json: false } });
  assert.deepEqual(await parse(["benchmarks"]), { command: "benchmarks", options: { json: false } });
  assert.deepEqual(await parse(["doctor", "--python", "/x/python"]), { command: "doctor", options: { json: false, python: "/x/python" } });
  assert.deepEqual(await parse(["setup", "--force"]), { command: "setup", options: { force: true } });
});

const badInputs: { argv: string[]; says: RegExp }[] = [
  { argv: ["sweep", "nosuchbench"], says: /unknown benchmark 'nosuchbench' \(known: .*gym-mini.*ml45/ },
  { argv: ["sweep", "ml45", "--actors", "both"], says: /--actors must be dep, ind or dep,ind/ },
  { argv: ["sweep", "ml45", "--critics", "dep,xyz"], says: /--critics must be/ },
  { argv: ["ablate", "--actor", "ind"], says: /^amago2: ablate needs --critic dep or --critic ind: the cell to run\n$/ },
  { argv: ["ablate", "--actor", "mixed", "--critic", "dep"], says: /--actor must be dep or ind, got 'mixed'/ },
  { argv: ["sweep", "ml45", "--seeds", "0"], says: /--seeds must be a positive count \(e.g. 3\) or a comma list of non-negative integers \(e.g. 0,4,7\), got .0./ },
  { argv: ["sweep", "ml45", "--seeds", ",3"], says: /--seeds must be a positive count .*, got .,3./ },
  { argv: ["sweep", "ml45", "--actors", "dep,dep"], says: /--actors lists dep twice/ },
  { argv: ["sweep", "ml45", "--seeds", "-2"], says: /--seeds/ },
  { argv: ["sweep", "ml45", "--seeds", "1.5"], says: /--seeds must be/ },
  { argv: ["sweep", "ml45", "--seeds", "1,1"], says: /lists a seed twice/ },
  { argv: ["sweep", "ml45", "--scale", "huge"], says: /--scale must be one of tiny, cpu, small, paper/ },
  { argv: ["sweep", "ml45", "--seeds", "1000000000", "--dry-run"], says: /--seeds asks for 1000000000 seeds; at most 1000/ },
  { argv: ["sweep", "ml45", "--seeds", "99999999999999999999"], says: /--seeds asks for 100000000000000000000 seeds/ },
  { argv: ["sweep", "ml45", "--steps", "100000000000000000000000"], says: /--steps must be an integer from 1 to 1,000,000,000,000/ },
  { argv: ["sweep", "ml45", "--parallel", "99999"], says: /--parallel must be an integer from 1 to 1,024/ },
  { argv: ["sweep", "ml45", "--steps", "0"], says: /--steps must be an integer from 1 to 1,000,000,000,000, got .0./ },
  { argv: ["sweep", "ml45", "--parallel", "two"], says: /--parallel must be an integer from 1 to 1,024, got .two./ },
  { argv: ["sweep", "ml45", "--gpus", "first"], says: /--gpus must be auto, none or a comma list of distinct GPU ids/ },
  { argv: ["sweep", "ml45", "--gpus", "0", "--parallel", "2"], says: /--parallel sets CPU slots and --gpus 0 puts the runs on GPUs: give one/ },
  { argv: ["sweep", "ml45", "--executor", "slurm", "--parallel", "2"], says: /--parallel sets local slots; on Slurm each run is a job: leave it out \(--gpus-per-run/ },
  { argv: ["sweep", "ml45", "--executor", "slurm", "--gpus", "0,1", "--runs-per-gpu", "3"], says: /--gpus and --runs-per-gpu set local slots; on Slurm/ },
  { argv: ["sweep", "ml45", "--name", "a b"], says: /--name must be/ },
  { argv: ["sweep", "ml45", "--frobnicate"], says: /unknown option '--frobnicate'/ },
  { argv: ["sweep"], says: /missing required argument/ },
  { argv: ["sweep", "./does/not/exist.yaml"], says: /cannot read sweep file .*exist\.yaml \(ENOENT\)/ },
  { argv: ["launch"], says: /unknown command 'launch'/ },
];

for (const { argv, says } of badInputs) {
  test(`bad input: amago2 ${argv.join(" ")} -> exit 2, one line`, async () => {
    const { result, stdout, stderr } = await capture(() => main(["node", "amago2", ...argv], async () => {
      throw new Error("must not dispatch");
    }));
    assert.equal(result, 2);
    assert.equal(stdout, "");
    assert.equal(stderr.trimEnd().split("\n").length, 1, stderr);
    assert.match(stderr, says);
  });
}
