// Every bad input through the real CLI process: exit code 2, exactly one line on stderr,
// nothing on stdout, and AMAGO2_HOME (with its DB) exactly as it was.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { openStore } from "../src/store/db.js";
import { fingerprint, runCli, storeWithOneRun, tempDir } from "./helpers.js";

const NO_SUCH_GPU = "GPU-00000000-0000-0000-0000-000000000000";

test("bad inputs: exit 2, one line, DB unchanged", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const home = path.join(dir, "home");
    openStore(home).close(); // an existing, valid store that must stay untouched
    const invalidYaml = path.join(dir, "bad.yaml");
    writeFileSync(invalidYaml, "benchmark: gym-mini\naxes:\n  actor: [dep, best]\n");
    const notAmago = path.join(dir, "not-amago");
    mkdirSync(notAmago);
    writeFileSync(path.join(notAmago, "amago2.db"), "a text file where the database should be\n".repeat(50));
    const taken = path.join(dir, "taken"); // a gym-mini sweep under the name popgym-mini's would take
    storeWithOneRun(taken, "popgym-mini-tiny", "k-gym-mini");
    const aFile = path.join(dir, "plain-file");
    writeFileSync(aFile, "x");
    // Values only Python's config can judge: each must be refused before anything is recorded.
    const userSet = (name: string, body: string) => {
      const file = path.join(dir, `${name}.yaml`);
      writeFileSync(file, `scale: tiny\nseeds: 1\nbenchmark:\n  name: ${name}\n  tasks:\n${body}`);
      return file;
    };
    const cartpole = "    - {env_id: CartPole-v1}\n";
    const negativeContext = userSet("neg", `${cartpole}overrides: {max_seq_len: -5}\n`);
    const fractionalContext = userSet("frac", `${cartpole}overrides: {max_seq_len: 1.5}\n`);
    const nanLr = userSet("nan", `${cartpole}overrides: {lr: .nan}\n`);
    const presetTypo = userSet("typo", `${cartpole}  preset: {learning_rate: 0.001}\n`);
    const noSuchEnv = userSet("noenv", "    - {env_id: NoSuchEnv-v0}\n");
    const badKwargs = userSet("kwargs", "    - {env_id: CartPole-v1, kwargs: {wings: 2}}\n");
    const escapeName = path.join(dir, "escape.yaml");
    writeFileSync(escapeName, "benchmark: gym-mini\nname: ../../escape\n");

    const cases: { args: string[]; env?: NodeJS.ProcessEnv; home?: string; says: RegExp }[] = [
      { args: ["sweep", "mujoco-party"], says: /unknown benchmark 'mujoco-party' \(known: atari, babyai, gym-mini/ },
      { args: ["ablate", "--actor", "both", "--critic", "dep"], says: /--actor must be dep or ind/ },
      { args: ["sweep", "gym-mini", "--critics", "indy"], says: /--critics must be dep, ind or dep,ind/ },
      { args: ["sweep", "gym-mini", "--seeds", "0"], says: /--seeds must be a positive count/ },
      { args: ["sweep", "gym-mini", "--seeds", "two"], says: /--seeds must be/ },
      { args: ["sweep", path.join(dir, "missing.yaml")], says: /cannot read sweep file .*missing\.yaml/ },
      { args: ["sweep", invalidYaml], says: /bad\.yaml: 'axes\.actor' must be dep, ind or both/ },
      { args: ["sweep", "gym-mini", "--turbo"], says: /unknown option '--turbo'/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny"], env: { AMAGO2_PYTHON: path.join(dir, "no-python") }, says: /no Python interpreter at .*no-python \(AMAGO2_PYTHON\); run `amago2 setup`/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny"], env: { AMAGO2_PYTHON: "/usr/bin/python3" }, says: /cannot import amago2/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny"], env: { AMAGO2_PYTHON: "/bin/true" }, says: /\/bin\/true \(AMAGO2_PYTHON\) is not a Python interpreter \(it ran the probe and printed nothing\); run `amago2 setup`/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny"], home: path.join(aFile, "home"), says: /AMAGO2_HOME .*plain-file\/home lies below .*plain-file, which is a file, not a folder: set AMAGO2_HOME to a folder/ },
      // Read commands too: a file is not an empty store.
      { args: ["status"], home: aFile, says: /AMAGO2_HOME .*plain-file is a file, not a folder: set AMAGO2_HOME to the folder of your runs/ },
      { args: ["runs", "--json"], home: aFile, says: /AMAGO2_HOME .*plain-file is a file, not a folder/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny"], home: notAmago, says: /amago2\.db is not an amago2 database/ },
      { args: ["status"], home: notAmago, says: /is not an amago2 database/ },
      // A sweep's tables compare one benchmark's cells: its name cannot take another's runs.
      { args: ["sweep", "popgym-mini", "--scale", "tiny"], home: taken, says: /sweep 'popgym-mini-tiny' in .*taken holds gym-mini runs, not popgym-mini: give this sweep another name \(--name/ },
      { args: ["sweep", "popgym-mini", "--scale", "tiny", "--dry-run"], home: taken, says: /sweep 'popgym-mini-tiny' .* holds gym-mini runs/ },
      { args: ["sweep", negativeContext], says: /max_seq_len must be positive; got -5/ },
      { args: ["sweep", fractionalContext], says: /override 'max_seq_len' must be int, got 1\.5/ },
      { args: ["sweep", nanLr], says: /'overrides\.lr' must be a finite number, got NaN/ },
      { args: ["sweep", presetTypo], says: /unknown hyperparameter 'learning_rate'/ },
      { args: ["sweep", noSuchEnv], says: /benchmark 'noenv' cannot run in .*: env_id 'NoSuchEnv-v0' is not a registered Gymnasium environment/ },
      { args: ["sweep", badKwargs], says: /benchmark 'kwargs' cannot run in .*wings/ },
      { args: ["sweep", escapeName], says: /'name' must be letters, digits/ },
      // GPUs named must be GPUs here (an empty CUDA_VISIBLE_DEVICES: none, whatever the machine).
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--gpus", "7"], env: { CUDA_VISIBLE_DEVICES: "" }, says: /--gpus 7: no GPU 7 here; this process sees no GPU/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--gpus", "0,3", "--dry-run"], env: { CUDA_VISIBLE_DEVICES: "0,1" }, says: /--gpus 0,3: no GPU 3 here; the GPUs here are 0,1: give some of them, or --gpus auto/ },
      // GPU slots with a torch that cannot use them (a GPU UUID that names no GPU: none, on any machine).
      { args: ["sweep", "gym-mini", "--scale", "tiny"], env: { CUDA_VISIBLE_DEVICES: NO_SUCH_GPU }, says: new RegExp(`GPU slots on ${NO_SUCH_GPU} \\(found by --gpus auto\\), but torch \\S+ in \\S+ cannot use CUDA \\((a CPU build|built for CUDA .*)\\): install a CUDA build of torch that this driver runs, or run on the CPU with --gpus none`) },
      { args: ["sweep", "gym-mini", "--seeds", "1000000000", "--dry-run"], says: /--seeds asks for 1000000000 seeds; at most 1000/ },
      { args: ["sweep", "gym-mini", "--steps", "100000000000000000000000"], says: /--steps must be an integer from 1 to/ },
      // Hyperparameter axes: the form here, the schema from describe(), the values from Python's config.
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--axis", "num_binz=16,32"], says: /--axis num_binz: unknown hyperparameter 'num_binz' \(known: / },
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--axis", "num_bins=16,wide"], says: /--axis num_bins: hyperparameter 'num_bins' must be a number, got "wide"/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--axis", "max_seq_len=16,-4"], says: /^amago2: --axis max_seq_len, at max_seq_len=-4: max_seq_len must be positive; got -4/ },
      // A value Python's config refuses is reported where it was given: --set, not the benchmark's file.
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--set", "dropout=2"], says: /^amago2: --set dropout=2: dropout must be in \[0, 1\); got 2\.0/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--set", "log_std_min=5", "--dry-run"], says: /--set log_std_min=5: log_std_min must be below log_std_max; got 5\.0 and 2\.0/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--set", "foo=1"], says: /--set: unknown hyperparameter 'foo' \(known: (?!.*\b(actor|critic)\b)[a-z_, ]+\)/ },
      { args: ["sweep", "gym-mini", "--scale", "tiny", "--set", "lr=fast"], says: /--set: hyperparameter 'lr' must be a number, got "fast"/ },
      { args: ["sweep", "gym-mini", "--axis", "seed=1,2"], says: /--axis seed: 'seed' is not a hyperparameter to set or sweep: seeds are set by 'seeds'/ },
      // The objectives name a run: pinned or grouped with another key they would label one
      // cell and record another's settings.
      { args: ["sweep", "gym-mini", "--set", "actor=ind"], says: /--set: 'actor' is not a hyperparameter to set or sweep: actors are swept on their own/ },
      { args: ["sweep", "gym-mini", "--axis", "num_bins,critic=[16,dep],[32,ind]"], says: /--axis num_bins,critic: 'critic' is not a hyperparameter to set or sweep: critics are swept on their own/ },
      { args: ["sweep", "gym-mini", "--axis", "critic=ind", "--critics", "dep"], says: /--critics and --axis critic say the same: give one/ },
      { args: ["ablate", "--actor", "ind", "--critic", "dep", "--axis", "actor=dep,ind"], says: /ablate runs one actor x critic cell/ },
    ];
    for (const c of cases) {
      const target = c.home ?? home;
      const before = [fingerprint(target), fingerprint(home)];
      const res = await runCli(c.args, { AMAGO2_HOME: target, ...c.env });
      const label = `amago2 ${c.args.join(" ")}`;
      assert.equal(res.code, 2, `${label}: ${res.stderr}`);
      assert.equal(res.stdout, "", label);
      assert.equal(res.stderr.trimEnd().split("\n").length, 1, `${label}: ${res.stderr}`);
      assert.match(res.stderr, c.says, label);
      assert.deepEqual([fingerprint(target), fingerprint(home)], before, `${label} wrote something`);
    }
  } finally {
    cleanup();
  }
});
