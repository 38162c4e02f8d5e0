// Sweep files, plans, grid expansion and run keys.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { checkOverrides, type Description } from "../src/plan/describe.js";
import { builtinSweeps, loadSweepFile, resolveSweepArg } from "../src/plan/sweep-file.js";
import { parseAxisFlag, parseSetFlags } from "../src/plan/axes.js";
import { canonicalJson, comboOf, expandGrid, gridFactors, makePlan, runKey, type SweepPlan } from "../src/plan/sweep.js";
import { UserError } from "../src/ui/errors.js";
import { REPO_ROOT, runCli, tempDir } from "./helpers.js";

const sweepFiles = tempDir();
after(() => sweepFiles.cleanup());
let sweepFilesWritten = 0;

/** A sweep file holding text, named s.yaml (as the expected messages say), each in its own folder. */
function sweepFile(text: string): string {
  const dir = path.join(sweepFiles.dir, String(sweepFilesWritten++));
  mkdirSync(dir);
  const file = path.join(dir, "s.yaml");
  writeFileSync(file, text);
  return file;
}

test("every built-in sweep file loads and names a benchmark Python knows (amago2 benchmarks)", async () => {
  const listed = await runCli(["benchmarks", "--json"], {});
  assert.equal(listed.code, 0, listed.stderr);
  const names = (JSON.parse(listed.stdout) as { name: string }[]).map((b) => b.name).sort();
  assert.deepEqual(builtinSweeps(), names);
  for (const name of builtinSweeps()) {
    const file = loadSweepFile(resolveSweepArg(name));
    assert.equal(file.benchmark, name);
    assert.deepEqual([file.actors, file.critics], [["dep", "ind"], ["dep", "ind"]]);
  }
});

const invalid: { yaml: string; says: RegExp }[] = [
  { yaml: "benchmark: ml45\nseedz: 3\n", says: /s\.yaml: unknown key 'seedz' \(known: / },
  { yaml: "benchmark: ml45\n---\nbenchmark: popgym\n", says: /s\.yaml holds 2 YAML documents \(separated by '---'\): a sweep file is one mapping$/ },
  { yaml: "---\nbenchmark: ml45\nseeds: 2\nseeds: 3\n", says: /s\.yaml is not valid YAML: Map keys must be unique at line 4, column 1$/ },
  { yaml: "benchmark: ml45\naxes:\n  actor: [dep]\n  lr: []\n", says: /'axes\.lr' must be a non-empty list of values/ },
  { yaml: "benchmark: ml45\naxes:\n  lr: 0.001\n", says: /'axes\.lr' must be a non-empty list of values, e\.g\. \[16, 32, 64\], got 0\.001/ },
  { yaml: "benchmark: ml45\naxes:\n  lr: [0.001, 0.001]\n", says: /'axes\.lr' lists 0\.001 twice/ },
  { yaml: "benchmark: ml45\naxes:\n  lr: [{a: 1}]\n", says: /'axes\.lr': lr must be a number, string, boolean or list of numbers/ },
  { yaml: "benchmark: ml45\naxes:\n  seed: [1, 2]\n", says: /'seed' is not a hyperparameter to set or sweep: seeds are set by 'seeds'/ },
  { yaml: "benchmark: ml45\naxes:\n  Bad-Key: [1]\n", says: /'Bad-Key' is not a hyperparameter name/ },
  { yaml: "benchmark: ml45\naxes:\n  actor,critic: [[dep, dep], [ind, ind]]\n", says: /'axes.actor,critic': 'actor' is not a hyperparameter to set or sweep/ },
  { yaml: "benchmark: ml45\noverrides:\n  critic: ind\n", says: /'overrides': 'critic' is not a hyperparameter to set or sweep/ },
  { yaml: "benchmark: ml45\naxes:\n  d_model,d_ff: [[64, 128], [128]]\n", says: /must be a list of \[d_model, d_ff\] lists/ },
  { yaml: "benchmark: ml45\naxes:\n  d_model,d_ff: [[64, 128]]\n  d_model: [32]\n", says: /'axes' varies 'd_model' twice/ },
  { yaml: "benchmark: ml45\noverrides: {lr: 0.1}\naxes:\n  lr: [0.2]\n", says: /'lr' is both in 'overrides' and swept in 'axes'/ },
  { yaml: "benchmark: ml45\naxes:\n  actor: [dep, best]\n", says: /'axes\.actor' must be dep, ind or both/ },
  { yaml: "benchmark: ml45\nseeds: -1\n", says: /'seeds' must be a positive integer count/ },
  { yaml: "benchmark: ml45\nseeds: [0, x]\n", says: /'seeds' must be/ },
  { yaml: "benchmark: ml45\nscale: big\n", says: /'scale' must be one of tiny, cpu, small, paper/ },
  { yaml: "benchmark: ml45\nsteps: 10.5\n", says: /'steps' must be a positive integer/ },
  { yaml: "benchmark: ml45\noverrides: [lr]\n", says: /'overrides' must be a mapping/ },
  { yaml: "benchmark: ml45\noverrides:\n  lr: {a: 1}\n", says: /'overrides\.lr' must be a number/ },
  { yaml: "seeds: 2\n", says: /'benchmark' must be a benchmark name or a mapping/ },
  { yaml: "- just\n- a list\n", says: /must be a YAML mapping/ },
  { yaml: "benchmark: [unclosed\n", says: /is not valid YAML/ },
  { yaml: "benchmark:\n  name: mine\n  tasks: []\n", says: /'benchmark\.tasks' must be a non-empty list/ },
  { yaml: "benchmark:\n  name: mine\n  tasks:\n    - env_id: CartPole-v1\n      reward_scale: 2\n", says: /unknown key 'benchmark\.tasks\[0\]\.reward_scale'/ },
  { yaml: "benchmark:\n  name: mine\n  tasks:\n    - {env_id: CartPole-v1, reward_multiplier: 0}\n", says: /'benchmark\.tasks\[0\]\.reward_multiplier' must be a positive number/ },
  { yaml: "benchmark:\n  name: mine\n  k: 0\n  tasks:\n    - env_id: CartPole-v1\n", says: /'benchmark\.k' must be a positive integer/ },
  { yaml: "benchmark:\n  name: mine\n  tasks:\n    - {env_id: CartPole-v1, return_range: [500, 0]}\n", says: /'benchmark\.tasks\[0\]\.return_range' must be \[lowest, highest\] episode return/ },
  { yaml: "benchmark:\n  name: mine\n  tasks:\n    - {env_id: CartPole-v1, return_range: 500}\n", says: /'benchmark\.tasks\[0\]\.return_range' must be/ },
  { yaml: "benchmark: ml45\nname: ../../escape\n", says: /'name' must be letters, digits, '\.', '-' or '_'/ },
  { yaml: "benchmark: ml45\nname: \"\\e[2Jcleared\"\n", says: /'name' must be letters, digits/ },
  { yaml: "benchmark: ml45\nname: $(touch x)\n", says: /'name' must be letters, digits/ },
  { yaml: "benchmark: ml45\noverrides:\n  lr: .nan\n", says: /'overrides\.lr' must be a finite number, got NaN/ },
  { yaml: "benchmark: ml45\nsteps: 1.0e+30\n", says: /'steps' must be a positive integer of at most 1e\+12/ },
  { yaml: "benchmark: ml45\nseeds: 1000000000\n", says: /'seeds' asks for 1000000000 seeds; at most 1000/ },
  { yaml: "benchmark: ml45\nseeds: [0, 99999999999]\n", says: /a seed must be at most 2147483647/ },
];

for (const { yaml, says } of invalid) {
  test(`invalid sweep file: ${JSON.stringify(yaml).slice(0, 60)}`, () => {
    const file = sweepFile(yaml);
    assert.throws(() => loadSweepFile(file), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.ok(!err.message.includes("\n"), "one line");
      assert.match(err.message, says);
      return true;
    });
  });
}

test("a user-defined benchmark becomes benchmark_def in every request", () => {
  const file = loadSweepFile(sweepFile(`
benchmark:
  name: two-games
  k: 2
  horizon: 200
  tasks:
    - env_id: CartPole-v1
    - env_id: Acrobot-v1
      reward_multiplier: 0.1
  eval_tasks:
    - {env_id: MountainCar-v0, name: car}
  preset: {lr: 0.0003}
seeds: [3]
scale: tiny
overrides: {batch_size: 4}
`));
  const plan = makePlan(file, {});
  assert.equal(plan.name, "two-games-tiny");
  const runs = expandGrid(plan, (key) => `/home/runs/${key}`);
  assert.equal(runs.length, 4);
  assert.deepEqual(runs[0].request.benchmark_def, {
    tasks: [{ env_id: "CartPole-v1", reward_multiplier: 1, kwargs: {} }, { env_id: "Acrobot-v1", reward_multiplier: 0.1, kwargs: {} }],
    eval_tasks: [{ env_id: "MountainCar-v0", name: "car", reward_multiplier: 1, kwargs: {} }],
    k: 2, horizon: 200, preset: { lr: 0.0003 },
  });
  assert.deepEqual(runs[0].request.overrides, { batch_size: 4 });
  assert.equal(runs[0].request.run_dir, `/home/runs/${runs[0].key}`);
});

test("every shipped sweep file in a subfolder of experiments/ loads and plans", () => {
  const dirs = readdirSync(path.join(REPO_ROOT, "experiments"), { withFileTypes: true }).filter((d) => d.isDirectory());
  const files = dirs.flatMap((d) => readdirSync(path.join(REPO_ROOT, "experiments", d.name))
    .filter((f) => f.endsWith(".yaml")).map((f) => path.join(REPO_ROOT, "experiments", d.name, f)));
  assert.ok(files.some((f) => f.endsWith(path.join("ablations", "popgym-bins.yaml"))));
  for (const file of files) {
    const plan = makePlan(loadSweepFile(file), {});
    assert.ok(expandGrid(plan, (k) => k).length > 0, file);
  }
  const bins = makePlan(loadSweepFile(path.join(REPO_ROOT, "experiments", "ablations", "popgym-bins.yaml")), {});
  assert.deepEqual(gridFactors(bins), [["actor", 1], ["critic", 2], ["num_bins", 4], ["seeds", 3]]);
});

test("flags override the file, the file overrides the defaults; the grid is actor x critic x seed", () => {
  const file = loadSweepFile(sweepFile("benchmark: gym-mini\nseeds: 2\nscale: small\nsteps: 100\n"));
  const fromFile = makePlan(file, {});
  assert.deepEqual([fromFile.seeds, fromFile.scale, fromFile.steps, fromFile.name], [[0, 1], "small", 100, "gym-mini-small"]);
  const flagged = makePlan(file, { seeds: [7], scale: "tiny", steps: 50, actors: ["ind"], name: "x" });
  assert.deepEqual([flagged.seeds, flagged.scale, flagged.steps, flagged.actors, flagged.name], [[7], "tiny", 50, ["ind"], "x"]);
  const runs = expandGrid(fromFile, (k) => k);
  assert.deepEqual(runs.map((r) => `${r.actor}/${r.critic}/${r.seed}`),
    ["dep/dep/0", "dep/dep/1", "dep/ind/0", "dep/ind/1", "ind/dep/0", "ind/dep/1", "ind/ind/0", "ind/ind/1"]);
  assert.equal(new Set(runs.map((r) => r.key)).size, 8);
  assert.ok(runs.every((r) => r.request.steps === 100 && r.request.scale === "small"));
});

test("hyperparameter axes: the grid nests actor, critic, each axis in turn, seed; each cell's values are its overrides", () => {
  const file = loadSweepFile(sweepFile([
    "benchmark: gym-mini", "seeds: 2", "scale: tiny", "overrides: {batch_size: 4}",
    "axes:", "  actor: [ind]", "  critic: [dep, ind]", "  num_bins: [16, 32]", "  d_model,d_ff: [[64, 128], [128, 256]]", ""].join("\n")));
  const plan = makePlan(file, {});
  assert.deepEqual(plan.axes.map((a) => [a.keys, a.points]), [[["num_bins"], [[16], [32]]], [["d_model", "d_ff"], [[64, 128], [128, 256]]]]);
  assert.deepEqual(gridFactors(plan), [["actor", 1], ["critic", 2], ["num_bins", 2], ["d_model+d_ff", 2], ["seeds", 2]]);
  const runs = expandGrid(plan, (k) => k);
  assert.equal(runs.length, 16);
  const at = (i: number) => [runs[i].critic, runs[i].request.overrides.num_bins, runs[i].request.overrides.d_model, runs[i].seed];
  assert.deepEqual([0, 1, 2, 4, 8, 15].map(at),
    [["dep", 16, 64, 0], ["dep", 16, 64, 1], ["dep", 16, 128, 0], ["dep", 32, 64, 0], ["ind", 16, 64, 0], ["ind", 32, 128, 1]]);
  assert.deepEqual(runs[15].request.overrides, { batch_size: 4, num_bins: 32, d_model: 128, d_ff: 256 });
  assert.deepEqual(comboOf(plan, runs[15]), { num_bins: 32, d_model: 128, d_ff: 256 });
  assert.equal(new Set(runs.map((r) => r.key)).size, 16);
});

test("the same cell asked for by two sweeps is one run; a sweep without extra axes keeps its keys", () => {
  const wide = makePlan(loadSweepFile(sweepFile("benchmark: gym-mini\nscale: tiny\naxes:\n  num_bins: [16, 32]\n")), {});
  const narrow = makePlan(loadSweepFile(sweepFile("benchmark: gym-mini\nscale: tiny\noverrides: {num_bins: 32}\n")), {});
  const flagged = makePlan(loadSweepFile(sweepFile("benchmark: gym-mini\nscale: tiny\n")), { set: { num_bins: 32 } });
  const keys = (plan: SweepPlan) => expandGrid(plan, (k) => k).map((r) => r.key);
  const thirtyTwo = expandGrid(wide, (k) => k).filter((r) => r.request.overrides.num_bins === 32).map((r) => r.key);
  assert.deepEqual(keys(narrow), thirtyTwo);
  assert.deepEqual(keys(flagged), thirtyTwo);
  const plain = makePlan(loadSweepFile(sweepFile("benchmark: gym-mini\nscale: tiny\n")), {});
  assert.deepEqual(keys(plain), expandGrid(plain, (k) => k).map((r) => runKey(r.request)), "no axes: the key of the request alone");
  assert.equal(new Set([...keys(wide), ...keys(plain)]).size, keys(wide).length + keys(plain).length, "a changed setting is a new run");
});

test("flags win over the file's axes: --axis replaces an axis, --set pins a key; contradictions are refused", () => {
  const file = loadSweepFile(sweepFile("benchmark: gym-mini\naxes:\n  num_bins: [16, 32]\n  d_model,d_ff: [[64, 128], [128, 256]]\n  lr: [0.001]\n"));
  const replaced = makePlan(file, { axes: [parseAxisFlag("num_bins=64,128")] });
  assert.deepEqual(replaced.axes.map((a) => [a.keys.join(","), a.points.flat()]), [["num_bins", [64, 128]], ["d_model,d_ff", [64, 128, 128, 256]], ["lr", [0.001]]]);
  const pinned = makePlan(file, { set: { num_bins: 8, gamma: 0.9 } });
  assert.deepEqual(pinned.axes.map((a) => a.keys.join(",")), ["d_model,d_ff", "lr"]);
  assert.deepEqual(expandGrid(pinned, (k) => k)[0].request.overrides, { num_bins: 8, gamma: 0.9, d_model: 64, d_ff: 128, lr: 0.001 });
  const added = makePlan(file, { axes: [parseAxisFlag("gammas=[0.9,0.99],[0.95,0.999]")] });
  assert.deepEqual(added.axes.at(-1)?.points, [[[0.9, 0.99]], [[0.95, 0.999]]]);
  const refused: [() => unknown, RegExp][] = [
    [() => makePlan(file, { set: { d_model: 32 } }), /varies d_model, d_ff together: a flag can replace the whole axis \(--axis d_model,d_ff=\.\.\.\), not 'd_model' alone/],
    [() => makePlan(file, { axes: [parseAxisFlag("d_ff=64,128")] }), /not 'd_ff' alone/],
    [() => makePlan(file, { set: { lr: 0.1 }, axes: [parseAxisFlag("lr=0.2,0.3")] }), /'lr' is both set \(--set\) and swept \(--axis\): give one/],
    [() => makePlan(file, { axes: [parseAxisFlag("lr=0.2"), parseAxisFlag("lr=0.3")] }), /--axis varies 'lr' twice/],
    [() => makePlan(file, { axes: [parseAxisFlag("a=1,2,3,4,5,6,7,8,9,10"), parseAxisFlag("b=1,2,3,4,5,6,7,8,9,10"),
      parseAxisFlag("c=1,2,3,4,5,6,7,8,9,10")] }), /the grid has 48000 runs \(actor 2 x critic 2 x num_bins 2 x d_model\+d_ff 2 x lr 1 x a 10 x b 10 x c 10 x seeds 3\); at most 10000/],
    [() => parseAxisFlag("num_bins"), /--axis takes key=value, e\.g\. --axis num_bins=16,32,64; got "num_bins"/],
    [() => parseAxisFlag("num_bins=16,16"), /--axis num_bins lists 16 twice/],
    [() => parseAxisFlag("d_model,d_ff=64,128"), /--axis d_model,d_ff must be a list of \[d_model, d_ff\] lists/],
    [() => parseAxisFlag("lr=[0.1"), /--axis lr: cannot read/],
    [() => parseSetFlags(["lr=0.1", "lr=0.2"]), /--set gives 'lr' twice/],
    [() => parseSetFlags(["lr"]), /--set takes key=value, e\.g\. --set lr=3e-4/],
    [() => parseSetFlags(["seed=3"]), /'seed' is not a hyperparameter to set or sweep/],
    [() => parseSetFlags(["lr={a: 1}"]), /--set lr must be a number, string, boolean or list of numbers/],
  ];
  for (const [call, says] of refused) {
    assert.throws(call, (err: unknown) => err instanceof UserError && says.test(err.message) && !err.message.includes("\n"), String(says));
  }
  assert.deepEqual(parseSetFlags(["lr=3e-4", "use_popart=false", "optimizer=adam", "gammas=[0.9, 0.99]"]),
    { lr: 3e-4, use_popart: false, optimizer: "adam", gammas: [0.9, 0.99] });
});

test("run keys: stable, independent of key order and location, different for any config change", () => {
  const base = { benchmark: "ml45", actor: "ind" as const, critic: "dep" as const, seed: 0, scale: "tiny" as const, overrides: { lr: 1e-4, batch_size: 8 } };
  const key = runKey(base);
  assert.match(key, /^ml45-ind-dep-s0-[0-9a-f]{10}$/);
  assert.equal(runKey({ ...base, overrides: { batch_size: 8, lr: 1e-4 } }), key);
  assert.equal(runKey({ ...base }), key, "same input, same key (no time or randomness)");
  for (const changed of [{ seed: 1 }, { scale: "small" as const }, { steps: 10 }, { overrides: { lr: 2e-4, batch_size: 8 } }, { actor: "dep" as const }]) {
    assert.notEqual(runKey({ ...base, ...changed }), key, JSON.stringify(changed));
  }
  assert.equal(canonicalJson({ b: [1, { d: 1, c: 2 }], a: null }), '{"a":null,"b":[1,{"c":2,"d":1}]}');
});

const desc: Description = {
  benchmarks: {
    "gym-mini": { tasks: ["a"], eval_tasks: [], k: 2, horizon: 200, packages: [], installed: true, install_hint: null,
      presets: { paper: { total_steps: 10_000_000 }, small: { total_steps: 10_000_000 }, tiny: { total_steps: 3000 } } },
    ml45: { tasks: ["a"], eval_tasks: [], k: 3, horizon: 500, packages: ["metaworld"], installed: true, install_hint: null,
      presets: { paper: { total_steps: 100_000_000 }, small: { total_steps: 10_000_000 }, tiny: { total_steps: 3000 } } },
  },
  hyperparameters: { lr: 1e-4, total_steps: 1_000_000, gammas: [0.9], actor: "ind" },
};

test("overrides are checked against describe()'s hyperparameters", () => {
  checkOverrides({ lr: 3e-4, gammas: [0.5, 0.9] }, desc, "f.yaml");
  assert.throws(() => checkOverrides({ learning_rate: 1 }, desc, "f.yaml"), /f\.yaml: unknown hyperparameter 'learning_rate' \(known: gammas, lr, total_steps\)/);
  assert.throws(() => checkOverrides({ lr: "fast" }, desc, "f.yaml"), /hyperparameter 'lr' must be a number/);
});
