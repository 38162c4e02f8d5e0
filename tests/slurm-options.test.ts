// Slurm executor options (flags and sweep-file keys) and the batch script, without a
// cluster: the script is run with bash as a compute node would, with a stand-in for node.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { DEFAULT_SLURM_OPTIONS, parseFileExecution, resolveExecution } from "../src/plan/execution-options.js";
import { renderJobScript, timeLimitSeconds } from "../src/exec/slurm.js";
import { UserError } from "../src/ui/errors.js";
import { tempDir } from "./helpers.js";

const tmp = tempDir("amago2-slurm-options-");
after(() => tmp.cleanup());

test("flags override the sweep file, which overrides the defaults", () => {
  assert.deepEqual(resolveExecution({}), { executor: "local", slurm: DEFAULT_SLURM_OPTIONS, follow: false });
  const file = parseFileExecution("s.yaml", { executor: "slurm", slurm: { partition: "gpu", gpus_per_run: 1, time: "2-00:00:00", sbatch_args: ["--qos=low"] } });
  const execution = resolveExecution({ gpusPerRun: "2", maxConcurrent: "4", follow: true }, file);
  assert.deepEqual(execution, {
    executor: "slurm",
    follow: true,
    slurm: { ...DEFAULT_SLURM_OPTIONS, partition: "gpu", gpusPerRun: 2, time: "2-00:00:00", maxConcurrent: 4, sbatchArgs: ["--qos=low"] },
  });
});

test("bad executor input is a UserError naming the flag or the file's key", () => {
  const cases: [() => unknown, string][] = [
    [() => resolveExecution({ executor: "k8s" }), '--executor must be local or slurm, got "k8s"'],
    [() => resolveExecution({ partition: "gpu" }), "--partition, --gpus-per-run, --cpus-per-run, --mem, --time, --account, --max-concurrent, --sbatch-arg and --follow need --executor slurm"],
    [() => resolveExecution({ executor: "slurm", gpusPerRun: "-1" }), '--gpus-per-run must be an integer >= 0, got "-1"'],
    [() => resolveExecution({ executor: "slurm", maxConcurrent: "0" }), '--max-concurrent must be an integer >= 1, got "0"'],
    [() => resolveExecution({ executor: "slurm", time: "1h" }), '--time must be minutes, HH:MM:SS or D-HH:MM, got "1h"'],
    [() => resolveExecution({ executor: "slurm", mem: "lots" }), '--mem must be a size such as 16G or 16000M, got "lots"'],
    [() => resolveExecution({ executor: "slurm", sbatchArg: ["qos=high"] }), '--sbatch-arg must be one sbatch option such as --qos=high, got "qos=high"'],
    [() => resolveExecution({ executor: "slurm", sbatchArg: ["--job-name=mine"] }), '--sbatch-arg must be an option amago2 does not set itself (it sets --job-name, -J, --output, -o, --error, -e, --array, -a, --requeue, --no-requeue, --parsable, --wrap), got "--job-name=mine"'],
    [() => resolveExecution({ executor: "slurm", sbatchArg: ["-Jmine"] }), '--sbatch-arg must be an option amago2 does not set itself (it sets --job-name, -J, --output, -o, --error, -e, --array, -a, --requeue, --no-requeue, --parsable, --wrap), got "-Jmine"'],
    [() => parseFileExecution("s.yaml", { slurm: { gpus: 1 } }), "s.yaml: unknown key 'slurm.gpus' (known: partition, gpus_per_run, cpus_per_run, mem, time, account, max_concurrent, sbatch_args)"],
    [() => parseFileExecution("s.yaml", { slurm: { mem: "4 GB" } }), `s.yaml: 'slurm.mem' must be a size such as 16G or 16000M, got "4 GB"`],
    [() => parseFileExecution("s.yaml", { executor: "cloud" }), `s.yaml: 'executor' must be local or slurm, got "cloud"`],
  ];
  for (const [call, message] of cases) {
    assert.throws(call, (err: unknown) => err instanceof UserError && err.message === message, message);
  }
});

test("the batch script runs the worker on its array task's run directory, logging into it", () => {
  const runDirs = ["first", "it's second"].map((name) => path.join(tmp.dir, name));
  runDirs.forEach((dir) => mkdirSync(dir, { recursive: true }));
  const options = { ...DEFAULT_SLURM_OPTIONS, partition: "gpu", gpusPerRun: 2, cpusPerRun: 4, mem: "16G", time: "60", account: "rl", maxConcurrent: 1 };
  // /bin/echo stands in for node: the script's last line prints what it would run.
  const script = renderJobScript({ name: "amago2-x", runDirs, packageRoot: tmp.dir, node: "/bin/echo", python: "/venv/bin/python", schedulerLog: "/logs/%A_%a.out" }, options);
  const directives = script.split("\n").filter((l) => l.startsWith("#SBATCH")).map((l) => l.slice(8));
  assert.deepEqual(directives, ["--job-name=amago2-x", "--output=/logs/%A_%a.out", "--no-requeue", "--nodes=1", "--ntasks=1", "--partition=gpu",
    "--gres=gpu:2", "--cpus-per-task=4", "--mem=16G", "--time=60", "--account=rl", "--signal=B:TERM@120", "--array=0-1%1"]);
  execFileSync("bash", ["-c", script], { cwd: tmp.dir, env: { ...process.env, SLURM_ARRAY_TASK_ID: "1", SLURM_JOB_ID: "42", CUDA_VISIBLE_DEVICES: "1" } });
  const log = readFileSync(path.join(runDirs[1], "slurm-42.out"), "utf8");
  assert.match(log, /^amago2: Slurm job 42 on .*, CUDA_VISIBLE_DEVICES=1$/m);
  assert.equal(log.split("\n")[1], `${tmp.dir}/dist/src/exec/worker.js ${runDirs[1]}`);
});

test("a time limit well above two minutes asks Slurm for the stop signal two minutes ahead; a short or unknown one does not", () => {
  assert.deepEqual(["90", "1:30", "2:03:04", "1-2", "1-2:30", "1-0:0:30"].map(timeLimitSeconds), [5400, 90, 7384, 93600, 95400, 86430]);
  const signal = (time: string | null) => renderJobScript({ name: "j", runDirs: ["/r"], packageRoot: "/p", node: "node", python: "py",
    schedulerLog: "/l" }, { ...DEFAULT_SLURM_OPTIONS, time }).includes("#SBATCH --signal=B:TERM@120");
  assert.deepEqual([signal("2-00:00:00"), signal("10"), signal("5"), signal(null)], [true, true, false, false]);
});
