// Hyperparameter axes end to end through the real CLI, real workers and real PyTorch
// training: a critic x num_bins grid at tiny scale is planned, run and tabled; the runs show
// their axis values; a second sweep asking for one of its cells shares the finished run.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { runCli, storeRows, tempDir } from "./helpers.js";
import { writeTinySweep } from "./exec-helpers.js";

test("a critic x num_bins grid: planned, run, tabled by its axes; the same cell from another sweep is the same run", async () => {
  const { dir, cleanup } = tempDir("amago2-axes-");
  try {
    const home = path.join(dir, "home");
    const file = writeTinySweep(dir, "bins", 40, { actor: ["ind"], critic: ["dep", "ind"], num_bins: [16, 32] });
    const env = { AMAGO2_HOME: home };
    const plan = await runCli(["sweep", file, "--dry-run"], env);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^grid: actor 1 x critic 2 x num_bins 2 x seeds 1 = 4 runs$/m);
    assert.match(plan.stdout, /num_bins=\{16\|32\}/);

    const swept = await runCli(["sweep", file, "--parallel", "2", "--retries", "0"], env);
    assert.equal(swept.code, 0, swept.stderr);
    const rows = storeRows<{ key: string; status: string; request: string }>(home, "SELECT key, status, request FROM runs ORDER BY key");
    assert.equal(rows.length, 4);
    assert.ok(rows.every((r) => r.status === "succeeded"), JSON.stringify(rows.map((r) => r.status)));
    assert.deepEqual(rows.map((r) => (JSON.parse(r.request) as { overrides: { num_bins: number } }).overrides.num_bins).sort(), [16, 16, 32, 32]);
    const configs = storeRows<{ config: string }>(home, "SELECT config FROM runs");
    assert.deepEqual(configs.map((c) => (JSON.parse(c.config) as { agent: { num_bins: number } }).agent.num_bins).sort(), [16, 16, 32, 32],
      "each run trained with its own value");

    const listed = await runCli(["runs"], env);
    assert.match(listed.stdout, /^key +settings +status/m);
    assert.equal(listed.stdout.split("\n").filter((l) => /num_bins=(16|32) +succeeded/.test(l)).length, 4);

    const pivot = await runCli(["table", "bins", "--rows", "num_bins", "--cols", "critic", "--format", "csv", "--reps", "200"], env);
    assert.equal(pivot.code, 0, pivot.stderr);
    const csv = pivot.stdout.trim().split("\n");
    assert.match(csv[0], /^num_bins,[a-z_/]+\/critic=dep\/iqm,/);
    assert.deepEqual(csv.slice(1).map((l) => l.split(",")[0]), ["16", "32"]);

    // Another sweep asks for the critic=ind, num_bins=32 cell alone: the finished run is shared.
    const again = await runCli(["sweep", file, "--name", "one-cell", "--critics", "ind", "--axis", "num_bins=32", "--json"], env);
    assert.equal(again.code, 0, again.stderr);
    const report = JSON.parse(again.stdout) as { started: number; runs: { key: string; status: string }[] };
    assert.deepEqual([report.started, report.runs.length, report.runs[0].status], [0, 1, "succeeded"]);
    assert.ok(rows.some((r) => r.key === report.runs[0].key));
    assert.equal(storeRows<{ n: number }>(home, "SELECT count(*) AS n FROM runs")[0].n, 4, "no run was added");
  } finally {
    cleanup();
  }
});

test("every trajectory encoder through the CLI: a group axis of traj_encoder and attention_sink, one tiny run each", async () => {
  const { dir, cleanup } = tempDir("amago2-encoders-");
  try {
    const home = path.join(dir, "home");
    const file = writeTinySweep(dir, "encoders", 40, {
      actor: ["ind"], critic: ["ind"],
      "traj_encoder,attention_sink": [["transformer", false], ["transformer", true], ["gru", false], ["ff", false], ["trmrl", false]],
    });
    const env = { AMAGO2_HOME: home };
    const bad = await runCli(["sweep", file, "--axis", "traj_encoder,attention_sink=[gru,true]"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /traj_encoder=gru attention_sink=true: attention_sink needs traj_encoder transformer/);
    const swept = await runCli(["sweep", file, "--parallel", "2", "--retries", "0"], env);
    assert.equal(swept.code, 0, swept.stderr);
    const configs = storeRows<{ status: string; config: string }>(home, "SELECT status, config FROM runs");
    const agents = configs.map((c) => (JSON.parse(c.config) as { agent: { traj_encoder: string; attention_sink: boolean } }).agent);
    assert.deepEqual(configs.map((c) => c.status), ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"]);
    assert.deepEqual(agents.map((a) => `${a.traj_encoder}/${a.attention_sink}`).sort(),
      ["ff/false", "gru/false", "transformer/false", "transformer/true", "trmrl/false"]);
    const table = await runCli(["table", "encoders", "--format", "json", "--reps", "200"], env);
    const all = (JSON.parse(table.stdout) as { rows: Record<string, unknown>[] }).rows;
    assert.equal(all.at(-1)?.actor, "random play");  // the floor, after the cells
    const rows = all.slice(0, -1);
    // Rows follow the key columns, in the order the sweep declared its axes: traj_encoder, then attention_sink.
    assert.deepEqual(rows.map((r) => `${r.traj_encoder}/${r.attention_sink}`),
      ["ff/false", "gru/false", "transformer/false", "transformer/true", "trmrl/false"]);
    assert.deepEqual(Object.keys(rows[0]).slice(0, 4), ["actor", "critic", "traj_encoder", "attention_sink"]);
  } finally {
    cleanup();
  }
});
