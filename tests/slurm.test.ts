// The Slurm executor against a real single-node Slurm cluster (scripts/slurm-cluster.sh):
// real sbatch, squeue, scontrol, scancel, the jobcomp file, fake GPUs through gres, and
// real (tiny) training runs through the CLI. CI brings the cluster up before the suite;
// elsewhere these tests bring it up themselves when they can (root with apt-get), and skip
// with a message when they cannot.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { pollJobs, submitJob } from "../src/exec/slurm.js";
import { DEFAULT_SLURM_OPTIONS } from "../src/plan/execution-options.js";
import { REPO_ROOT, runCli, startCli, storeRows, tempDir } from "./helpers.js";

const CLUSTER_SCRIPT = path.join(REPO_ROOT, "scripts", "slurm-cluster.sh");
/** Exit code of slurm-cluster.sh when Slurm is missing and cannot be installed here. */
const CANNOT_INSTALL = 3;

interface Cluster {
  skip: string | null;
  startedHere: boolean;
}

/** Use the running cluster, or start one; a reason to skip when Slurm cannot be had. */
function bringUpCluster(): Cluster {
  const status = spawnSync("bash", [CLUSTER_SCRIPT, "status"], { encoding: "utf8" });
  const up = status.status === 0 ? status : spawnSync("bash", [CLUSTER_SCRIPT, "up"], { encoding: "utf8" });
  if (up.status === CANNOT_INSTALL) return { skip: `Slurm is not installed and cannot be installed here (${up.stderr.trim()})`, startedHere: false };
  if (up.status !== 0) throw new Error(`scripts/slurm-cluster.sh up failed:\n${up.stderr}`);
  process.env.SLURM_CONF = /SLURM_CONF=(\S+)/.exec(up.stdout)![1];
  return { skip: null, startedHere: status.status !== 0 };
}

const cluster = bringUpCluster();
if (cluster.skip) console.log(`# skipping the Slurm tests: ${cluster.skip}`);

const tmp = tempDir("amago2-slurm-test-");
after(() => {
  if (cluster.startedHere) spawnSync("bash", [CLUSTER_SCRIPT, "down"], { stdio: "inherit" });
  tmp.cleanup();
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutS = 180): Promise<T> {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutS} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** A sweep file for a real run small enough for 2 cores: CartPole, 16 env steps, 4 updates. */
function sweepFile(dir: string, name: string, actors: string[]): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, [
    `name: ${name}`,
    "benchmark: {name: cart, tasks: [{env_id: CartPole-v1}], k: 1, horizon: 16}",
    "scale: tiny",
    "seeds: [0]",
    `axes: {actor: [${actors.join(", ")}], critic: [ind]}`,
    "steps: 16",
    "overrides: {parallel_actors: 1, steps_per_epoch: 8, updates_per_epoch: 2, batch_size: 2, max_seq_len: 16,",
    "  ckpt_every_updates: 1, log_every_updates: 1, eval_every_epochs: 1, warmup_updates: 1}",
    "",
  ].join("\n"));
  return file;
}

interface RunRow {
  key: string;
  status: string;
  attempts: number;
  slurm_job_id: string | null;
  run_dir: string;
  error_type: string | null;
  error_message: string | null;
}

function rows(home: string): RunRow[] {
  return storeRows<RunRow>(home, "SELECT * FROM runs ORDER BY actor");
}

function journal(runDir: string): { type: string; t: number; resumed?: boolean }[] {
  try {
    return readFileSync(path.join(runDir, "events.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** CUDA_VISIBLE_DEVICES as the job script printed it, per Slurm job of the run. */
function visibleDevices(runDir: string): string[] {
  return readdirSync(runDir).filter((f) => /^slurm-\d+\.out$/.test(f))
    .map((f) => /CUDA_VISIBLE_DEVICES=(\S*)/.exec(readFileSync(path.join(runDir, f), "utf8"))?.[1] ?? "");
}

function fault(kind: "os_exit" | "hang"): NodeJS.ProcessEnv {
  return { AMAGO2_ENTRY: "amago2.testing:train_with_fault", AMAGO2_FAULT: JSON.stringify({ kind, after_updates: 2 }) };
}

/** A store per test, in a directory whose name holds a space and a quote (they must not matter). */
function home(name: string): { AMAGO2_HOME: string } {
  return { AMAGO2_HOME: path.join(tmp.dir, `store 'of' ${name}`) };
}

const squeueIds = () => execFileSync("squeue", ["--me", "-h", "-r", "-o", "%i"], { encoding: "utf8" }).split("\n").filter(Boolean);

describe("Slurm executor on a real cluster", { skip: cluster.skip ?? false }, () => {
  let plainJobs: string[] = [];

  before(() => mkdirSync(tmp.dir, { recursive: true }));

  test("plain jobs: COMPLETED and FAILED with exit codes from squeue and scontrol", async () => {
    const script = (code: number) => {
      const file = path.join(tmp.dir, `exit-${code}.sh`);
      writeFileSync(file, `#!/bin/bash\n#SBATCH --output=/dev/null\nexit ${code}\n`);
      return file;
    };
    plainJobs = [...await submitJob(script(0), 1, DEFAULT_SLURM_OPTIONS), ...await submitJob(script(3), 1, DEFAULT_SLURM_OPTIONS)];
    const ended = await waitFor("both jobs to end", async () => {
      const jobs = await pollJobs(plainJobs);
      return [...jobs.values()].every((j) => j.phase === "ended") ? jobs : undefined;
    });
    assert.equal(ended.get(plainJobs[0])!.state, "COMPLETED");
    assert.equal(ended.get(plainJobs[1])!.state, "FAILED");
    assert.equal(ended.get(plainJobs[1])!.exitCode, "3:0");
  });

  test("a tiny real sweep completes; concurrent cells get GPUs 0 and 1; re-running submits nothing", async () => {
    const env = home("gpus");
    const file = sweepFile(tmp.dir, "gpus", ["dep", "ind"]);
    const first = await runCli(["sweep", file, "--executor", "slurm", "--gpus-per-run", "1", "--cpus-per-run", "1", "--follow"], env);
    assert.equal(first.code, 0, first.stderr);
    const runs = rows(env.AMAGO2_HOME);
    assert.deepEqual(runs.map((r) => [r.status, r.attempts]), [["succeeded", 1], ["succeeded", 1]]);
    assert.ok(runs.every((r) => /^\d+$/.test(r.slurm_job_id ?? "")));
    assert.deepEqual(runs.flatMap((r) => visibleDevices(r.run_dir)).sort(), ["0", "1"]);
    const db = new Database(path.join(env.AMAGO2_HOME, "amago2.db"), { readonly: true });
    const metrics = db.prepare("SELECT COUNT(*) AS n FROM metrics").get() as { n: number };
    db.close();
    assert.ok(metrics.n > 0, "metrics were ingested from the journals");

    const again = await runCli(["sweep", file, "--executor", "slurm", "--gpus-per-run", "1"], env);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /submitted/);
    assert.deepEqual(rows(env.AMAGO2_HOME).map((r) => [r.attempts, r.slurm_job_id]), runs.map((r) => [1, r.slurm_job_id]));
  });

  // These need at most one of the cluster's two CPU slots each, so they run side by side;
  // a job that finds both slots taken waits in the queue (PENDING) like on any cluster.
  describe("one-slot scenarios, concurrently", { concurrency: true }, () => {
    test("--max-concurrent 1 submits one throttled array job whose tasks run one at a time", async () => {
      const env = home("array");
      const file = sweepFile(tmp.dir, "array", ["dep", "ind"]);
      const result = await runCli(["sweep", file, "--executor", "slurm", "--max-concurrent", "1", "--follow"], env);
      assert.equal(result.code, 0, result.stderr);
      const runs = rows(env.AMAGO2_HOME);
      const arrayId = runs[0].slurm_job_id!.split("_")[0];
      assert.deepEqual(runs.map((r) => r.slurm_job_id).sort(), [`${arrayId}_0`, `${arrayId}_1`]);
      assert.deepEqual(runs.map((r) => r.status), ["succeeded", "succeeded"]);
      const spans = runs.map((r) => journal(r.run_dir)).map((events) => [events[0].t, events.at(-1)!.t]).sort((a, b) => a[0] - b[0]);
      assert.ok(spans[1][0] >= spans[0][1], "the second task started after the first had finished");
  });

  test("a failing cell is resubmitted on the next sweep and resumes from its checkpoint", async () => {
    const env = home("failing");
    const file = sweepFile(tmp.dir, "failing", ["ind"]);
    const first = await runCli(["sweep", file, "--executor", "slurm", "--follow", "--retries", "0"], { ...env, ...fault("os_exit") });
    assert.equal(first.code, 1, first.stderr);
    const [crashed] = rows(env.AMAGO2_HOME);
    assert.equal(crashed.status, "crashed");
    assert.equal(crashed.error_type, "SlurmFAILED");
    // As if the first attempt had started under another amago2, whose default differed:
    // the resumed job keeps the recorded setting, and --follow says so.
    const recorded = path.join(crashed.run_dir, "config.json");
    const config = JSON.parse(readFileSync(recorded, "utf8"));
    config.train.eval_trials_per_task = 3;
    writeFileSync(recorded, JSON.stringify(config));

    const second = await runCli(["sweep", file, "--executor", "slurm", "--follow", "--retries", "1"], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /resumed +\S.* with the settings it started with: eval_trials_per_task=3 \(now 1\)/);
    const [resumed] = rows(env.AMAGO2_HOME);
    assert.deepEqual([resumed.status, resumed.attempts], ["succeeded", 2]);
    assert.notEqual(resumed.slurm_job_id, crashed.slurm_job_id);
    const starts = journal(resumed.run_dir).filter((e) => e.type === "started");
    assert.deepEqual(starts.map((e) => e.resumed), [false, true]);
  });

  test("a job killed by its time limit shows TIMEOUT and is resumed by the next sweep", async () => {
    const env = home("timeout");
    const file = sweepFile(tmp.dir, "timeout", ["ind"]);
    const submitted = await runCli(["sweep", file, "--executor", "slurm", "--time", "5"], { ...env, ...fault("hang") });
    assert.equal(submitted.code, 0, submitted.stderr);
    const [run] = rows(env.AMAGO2_HOME);
    await waitFor("a checkpoint before the hang", () => journal(run.run_dir).some((e) => e.type === "checkpoint"));
    // Slurm's limits have a granularity of a minute; moving the running job's end time to
    // now makes slurmctld's own time-limit check kill it at its next pass (seconds, not a minute).
    execFileSync("scontrol", ["update", `JobId=${run.slurm_job_id}`, "EndTime=now"]);
    await waitFor("the run to be recorded as timed out", async () => {
      await runCli(["status"], env);
      return rows(env.AMAGO2_HOME)[0].status === "crashed";
    });
    const [timedOut] = rows(env.AMAGO2_HOME);
    assert.equal(timedOut.error_type, "SlurmTIMEOUT");
    assert.match(timedOut.error_message!, /TIMEOUT/);

    const resumed = await runCli(["sweep", file, "--executor", "slurm", "--follow"], env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(rows(env.AMAGO2_HOME)[0].status, "succeeded");
    assert.deepEqual(journal(run.run_dir).filter((e) => e.type === "started").map((e) => e.resumed), [false, true]);
  });

  test("the CLI killed mid-sweep and re-run submits no duplicates; amago2 cancel scancels", async () => {
    const env = home("killed");
    const file = sweepFile(tmp.dir, "killed", ["ind"]);
    const cli = startCli(["sweep", file, "--executor", "slurm", "--follow"], { ...env, ...fault("hang") });
    const jobId = await waitFor("the job id to be recorded", () => {
      try {
        return rows(env.AMAGO2_HOME)[0]?.slurm_job_id ?? undefined;
      } catch {
        return undefined; // the store is not created yet
      }
    });
    cli.child.kill("SIGKILL");
    await cli.done;

    const rerun = await runCli(["sweep", file, "--executor", "slurm"], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, /already queued or running/);
    assert.deepEqual(rows(env.AMAGO2_HOME).map((r) => [r.attempts, r.slurm_job_id]), [[1, jobId]]);

    // Another amago2, alive, between its sbatch and its own record of the job (this test
    // process stands in for it): the job is its to record, not adopted here.
    const db = new Database(path.join(env.AMAGO2_HOME, "amago2.db"));
    db.prepare(`UPDATE runs SET status = 'queued', slurm_job_id = NULL, attempts = 0, orchestrator_pid = ?, owner_host = ?,
      owner_seen_at = ?`).run(process.pid, os.hostname(), Date.now() / 1000);
    const meanwhile = await runCli(["sweep", file, "--executor", "slurm"], env);
    assert.equal(meanwhile.code, 0, meanwhile.stderr);
    assert.match(meanwhile.stderr, /already queued or running/);
    assert.deepEqual(rows(env.AMAGO2_HOME).map((r) => [r.status, r.attempts, r.slurm_job_id]), [["queued", 0, null]]);

    // Killed between sbatch and the store write: the job is found by its name and adopted.
    db.prepare("UPDATE runs SET status = 'planned', slurm_job_id = NULL, attempts = 0, orchestrator_pid = NULL, owner_host = NULL, owner_seen_at = NULL").run();
    db.close();
    const adopting = await runCli(["sweep", file, "--executor", "slurm"], env);
    assert.equal(adopting.code, 0, adopting.stderr);
    assert.deepEqual(rows(env.AMAGO2_HOME).map((r) => [r.attempts, r.slurm_job_id]), [[1, jobId]]);
    assert.deepEqual(squeueIds().filter((id) => id === jobId), [jobId]);

    const cancel = await runCli(["cancel", "killed"], env);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(rows(env.AMAGO2_HOME)[0].status, "cancelled");
    const ended = await waitFor("Slurm to end the job", async () => {
      const job = (await pollJobs([jobId])).get(jobId)!;
      return job.phase === "ended" ? job : undefined;
    });
    assert.equal(ended.state, "CANCELLED");
  });

  test("two sweeps submitting one store at the same moment: each cell gets one job", async () => {
    const env = home("twice");
    const file = sweepFile(tmp.dir, "twice", ["dep", "ind"]);
    const args = ["sweep", file, "--executor", "slurm", "--follow"];
    const [a, b] = await Promise.all([runCli(args, env), runCli(args, env)]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const runs = rows(env.AMAGO2_HOME);
    assert.deepEqual(runs.map((r) => [r.status, r.attempts]), [["succeeded", 1], ["succeeded", 1]]);
    const submitted = [...`${a.stderr}\n${b.stderr}`.matchAll(/submitted .* as Slurm job (\d+)/g)].map((m) => m[1]);
    assert.deepEqual(submitted.sort(), runs.map((r) => r.slurm_job_id!).sort(), "one submission per cell, in all");
  });

  test("bad Slurm input: one line, exit 2, nothing written", async () => {
    const file = sweepFile(tmp.dir, "bad", ["ind"]);
    const nodeOnly = path.join(tmp.dir, "node-only");
    mkdirSync(nodeOnly, { recursive: true });
    symlinkSync(process.execPath, path.join(nodeOnly, "node"));
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [["--partition", "nope"], {}, /^amago2: Slurm partition 'nope' does not exist; this cluster has: debug\n$/],
      [["--gpus-per-run", "5"], {}, /^amago2: Slurm refused the submission: Requested node configuration is not available\n$/],
      [[], { PATH: nodeOnly }, /^amago2: sbatch not found: .*--executor local\)\n$/],
    ];
    for (const [args, extraEnv, message] of cases) {
      const env = home(`bad-${args.join("") || "path"}`);
      const result = await runCli(["sweep", file, "--executor", "slurm", ...args], { ...env, ...extraEnv });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.throws(() => readdirSync(env.AMAGO2_HOME), /ENOENT/);
    }
  });

  });

  test("ended jobs that left squeue are still known from the jobcomp file", async () => {
    const jobs = await waitFor("the plain jobs to age out of squeue (MinJobAge)", async () => {
      const found = await pollJobs(plainJobs);
      return [...found.values()].every((j) => j.source === "jobcomp") ? found : undefined;
    });
    assert.deepEqual(plainJobs.map((id) => jobs.get(id)!.state), ["COMPLETED", "FAILED"]);
  });
});
