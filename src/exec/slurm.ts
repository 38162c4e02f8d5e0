// Talking to Slurm: the job script, submission (sbatch), polling (squeue, scontrol, sacct,
// the jobcomp file) and cancellation (scancel). Nothing here touches SQLite; the sweep
// driver (slurm-sweep.ts) records what these functions report.
//
// A job is named by the id Slurm prints: "1234" for a batch job, "1234_5" for task 5 of an
// array job; squeue -r, scontrol and scancel all accept that form.
import { readFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { UserError } from "../ui/errors.js";
import type { SlurmOptions } from "../plan/execution-options.js";

export interface JobScript {
  /** The job's name; the manifest beside the script maps its tasks to run keys. */
  name: string;
  /** One run directory per cell; an array job's task i runs runDirs[i]. */
  runDirs: string[];
  /** Where the worker runs from (the amago2 checkout, on the shared filesystem). */
  packageRoot: string;
  node: string;
  python: string;
  /** sbatch's own output before the script redirects into the run directory, relative to the script's directory. */
  schedulerLog: string;
}

/** What one run asks of the scheduler. */
function resourceArgs(o: SlurmOptions): string[] {
  const args = ["--nodes=1", "--ntasks=1"];
  if (o.partition) args.push(`--partition=${o.partition}`);
  if (o.gpusPerRun > 0) args.push(`--gres=gpu:${o.gpusPerRun}`);
  if (o.cpusPerRun) args.push(`--cpus-per-task=${o.cpusPerRun}`);
  if (o.mem) args.push(`--mem=${o.mem}`);
  if (o.time) args.push(`--time=${o.time}`);
  if (o.account) args.push(`--account=${o.account}`);
  return args;
}

const STOP_AHEAD_S = 120;

/** A Slurm time limit (minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in seconds. */
export function timeLimitSeconds(time: string): number {
  const [days, clock] = time.includes("-") ? time.split("-") : [null, time];
  const parts = clock.split(":").map(Number);
  const [h, m, s] = days !== null ? [parts[0], parts[1] ?? 0, parts[2] ?? 0]
    : parts.length === 1 ? [0, parts[0], 0] : parts.length === 2 ? [0, parts[0], parts[1]] : parts;
  return ((Number(days ?? 0) * 24 + h) * 60 + m) * 60 + s;
}

/** Quotes a value for bash. */
function sh(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The batch script: resource requests as #SBATCH lines (readable, and resubmittable by
 * hand), then the same per-run worker the local executor starts, on the task's run
 * directory. The worker's exit code becomes the job's, so Slurm's state agrees with it.
 */
export function renderJobScript(job: JobScript, o: SlurmOptions): string {
  // --no-requeue: a job that Slurm would requeue (node failure, preemption) ends instead,
  // and amago2 resubmits the cell itself, counting the attempt against --retries.
  const directives = [`--job-name=${job.name}`, `--output=${job.schedulerLog}`, "--no-requeue", ...resourceArgs(o)];
  // At its time limit Slurm kills a job 30 s (KillWait) after its SIGTERM, too soon for a
  // run that is writing a large checkpoint: the worker (the batch shell, which it replaces)
  // is asked to stop STOP_AHEAD_S before. Only for limits well above that, where it is known.
  const limit = o.time === null ? null : timeLimitSeconds(o.time);
  if (limit !== null && limit >= 5 * STOP_AHEAD_S) directives.push(`--signal=B:TERM@${STOP_AHEAD_S}`);
  if (o.maxConcurrent !== null) directives.push(`--array=0-${job.runDirs.length - 1}%${o.maxConcurrent}`);
  return [
    "#!/bin/bash",
    ...directives.map((d) => `#SBATCH ${d}`),
    "# Written by amago2; one cell per job (or per array task). See the manifest beside it.",
    "set -euo pipefail",
    `RUN_DIRS=(${job.runDirs.map(sh).join(" ")})`,
    'RUN_DIR="${RUN_DIRS[${SLURM_ARRAY_TASK_ID:-0}]}"',
    'exec >>"$RUN_DIR/slurm-${SLURM_JOB_ID}.out" 2>&1',
    'echo "amago2: Slurm job ${SLURM_JOB_ID} on $(hostname), CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-}"',
    `cd ${sh(job.packageRoot)}`,
    `export AMAGO2_PYTHON=${sh(job.python)}`,
    // torch would start a thread per core of the node; the job owns only its CPUs. A value
    // the user exported (sbatch passes the environment on) wins.
    'export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"',
    `exec ${sh(job.node)} ${sh(`${job.packageRoot}/dist/src/exec/worker.js`)} "$RUN_DIR"`,
    "",
  ].join("\n");
}

interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

async function slurmCommand(command: string, args: string[], cwd?: string): Promise<CommandResult> {
  const result = await execa(command, args, { reject: false, timeout: 60_000, ...(cwd ? { cwd } : {}) });
  if (result.failed && result.code === "ENOENT") {
    throw new UserError(`${command} not found: this machine has no Slurm client on PATH (install slurm-client, or use --executor local)`);
  }
  return { ok: !result.failed, stdout: String(result.stdout), stderr: String(result.stderr).trim() };
}

/** Slurm's own message, without the repeated "sbatch: error:" prefixes. */
function slurmMessage(stderr: string): string {
  return stderr.split("\n").map((l) => l.replace(/^(\w+: error: |allocation failure: )/, "").trim()).filter(Boolean).join("; ");
}

/**
 * Checks, before anything is written, that this machine can submit what was asked: sbatch
 * is on PATH, the partition exists (else a UserError listing those that do), and Slurm
 * accepts the request (sbatch --test-only submits nothing).
 */
export async function preflightSlurm(o: SlurmOptions): Promise<void> {
  await slurmCommand("sbatch", ["--version"]);
  if (o.partition !== null) {
    const result = await slurmCommand("sinfo", ["-h", "-o", "%R"]);
    if (!result.ok) throw new Error(`sinfo failed: ${slurmMessage(result.stderr)}`);
    const partitions = result.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
    if (!partitions.includes(o.partition)) {
      throw new UserError(`Slurm partition '${o.partition}' does not exist; this cluster has: ${partitions.join(", ")}`);
    }
  }
  const probe = await slurmCommand("sbatch", ["--test-only", ...resourceArgs(o), ...o.sbatchArgs, "--wrap", "true"]);
  if (!probe.ok) throw new UserError(`Slurm refused the submission: ${slurmMessage(probe.stderr)}`);
}

/** Submits a script; returns the job ids, one per cell (array tasks as "<job>_<i>"). */
export async function submitJob(scriptPath: string, cells: number, o: SlurmOptions): Promise<string[]> {
  // From the script's directory: the job starts there, and its --output is relative to it.
  const result = await slurmCommand("sbatch", ["--parsable", ...o.sbatchArgs, scriptPath], path.dirname(scriptPath));
  if (!result.ok) {
    throw new UserError(`Slurm refused the submission: ${slurmMessage(result.stderr) || "sbatch failed without a message"}`);
  }
  // --parsable prints "<jobid>" or "<jobid>;<cluster>".
  const jobId = result.stdout.trim().split(";")[0];
  if (!/^\d+$/.test(jobId)) throw new Error(`sbatch printed no job id: ${JSON.stringify(result.stdout)}`);
  if (o.maxConcurrent === null) return [jobId];
  return Array.from({ length: cells }, (_, i) => `${jobId}_${i}`);
}

/** Where a job is in its life, as the sweep driver needs it. */
export type JobPhase = "queued" | "running" | "ended";

const QUEUED_STATES = new Set(["PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"]);
const RUNNING_STATES = new Set(["RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"]);

/** Scheduler state -> phase. Anything not queued or running is an end (COMPLETED, FAILED, TIMEOUT, ...). */
export function phaseOf(state: string): JobPhase {
  if (QUEUED_STATES.has(state)) return "queued";
  if (RUNNING_STATES.has(state)) return "running";
  return "ended";
}

export interface JobStatus {
  id: string;
  /** Slurm's state (CANCELLED by ... reduced to CANCELLED); LOST: no source knows the job. */
  state: string;
  phase: JobPhase;
  /** "code:signal" once ended, where the source says. */
  exitCode: string | null;
  reason: string | null;
  /** Which record said so. */
  source: "squeue" | "scontrol" | "sacct" | "jobcomp" | "none";
}

function status(id: string, state: string, source: JobStatus["source"], exitCode: string | null = null, reason: string | null = null): JobStatus {
  const plain = state.split(/\s/)[0].replace(/\+$/, "");
  return { id, state: plain, phase: phaseOf(plain), exitCode, reason: reason && reason !== "None" ? reason : null, source };
}

/** Key=Value pairs of one `scontrol -o` or jobcomp line. */
function fields(line: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const match of line.matchAll(/(\w+)=(\S*)/g)) map.set(match[1], match[2]);
  return map;
}

interface ClusterConfig {
  accounting: boolean;
  jobCompFile: string | null;
}

let clusterConfig: ClusterConfig | null = null;

async function readClusterConfig(): Promise<ClusterConfig> {
  if (clusterConfig) return clusterConfig;
  const result = await slurmCommand("scontrol", ["show", "config"]);
  if (!result.ok) throw new Error(`scontrol show config failed: ${slurmMessage(result.stderr)}`);
  const value = (name: string) => result.stdout.match(new RegExp(`^${name}\\s*=\\s*(.*)$`, "m"))?.[1].trim() ?? "";
  clusterConfig = {
    accounting: !["", "accounting_storage/none"].includes(value("AccountingStorageType")),
    jobCompFile: value("JobCompType") === "jobcomp/filetxt" ? value("JobCompLoc") || null : null,
  };
  return clusterConfig;
}

/**
 * The state of each job. squeue knows queued, running and recently ended jobs (for
 * MinJobAge seconds); scontrol adds an ended job's exit code; older jobs come from sacct
 * where accounting exists, else from the jobcomp file, the durable record. A job no source
 * knows is LOST (an ended job, treated like a failure).
 */
export async function pollJobs(ids: readonly string[]): Promise<Map<string, JobStatus>> {
  const found = new Map<string, JobStatus>();
  if (ids.length === 0) return found;
  const wanted = new Set(ids);
  const queue = await slurmCommand("squeue", ["--me", "-h", "-r", "--states=all", "-o", "%i|%T|%r"]);
  if (!queue.ok) throw new Error(`squeue failed: ${slurmMessage(queue.stderr)}`);
  for (const line of queue.stdout.split("\n")) {
    const [id, state, reason] = line.trim().split("|");
    if (id && wanted.has(id)) found.set(id, status(id, state, "squeue", null, reason));
  }
  for (const [id, job] of found) {
    if (job.phase !== "ended") continue;
    const shown = await slurmCommand("scontrol", ["show", "job", "-o", id]);
    const f = fields(shown.stdout);
    if (shown.ok && f.get("JobState")) found.set(id, status(id, f.get("JobState")!, "scontrol", f.get("ExitCode") ?? null, f.get("Reason") ?? null));
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) {
    const config = await readClusterConfig();
    if (config.accounting) await fromSacct(missing, found);
    if (config.jobCompFile) fromJobComp(config.jobCompFile, missing, found);
  }
  for (const id of ids) if (!found.has(id)) found.set(id, status(id, "LOST", "none", null, "no Slurm record of the job"));
  return found;
}

async function fromSacct(ids: string[], found: Map<string, JobStatus>): Promise<void> {
  const result = await slurmCommand("sacct", ["-n", "-P", "-X", "-j", ids.join(","), "-o", "JobID,State,ExitCode"]);
  if (!result.ok) return; // accounting configured but unreachable: the jobcomp file may still say
  for (const line of result.stdout.split("\n")) {
    const [id, state, exitCode] = line.trim().split("|");
    if (id && ids.includes(id)) found.set(id, status(id, state, "sacct", exitCode ?? null));
  }
}

function fromJobComp(file: string, ids: string[], found: Map<string, JobStatus>): void {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return; // the controller's file is not visible from this host
  }
  const wanted = new Set(ids.filter((id) => !found.has(id)));
  // Later lines win: a requeued job is recorded once per end.
  for (const line of text.split("\n")) {
    const f = fields(line);
    const jobId = f.get("JobId");
    if (!jobId) continue;
    const id = f.has("ArrayJobId") ? `${f.get("ArrayJobId")}_${f.get("ArrayTaskId")}` : jobId;
    if (wanted.has(id)) found.set(id, status(id, f.get("JobState") ?? "LOST", "jobcomp", f.get("ExitCode") ?? null));
  }
}

/** Our queued and running jobs with their names (to find a submission whose id was not recorded). */
export async function activeJobsByName(): Promise<{ id: string; name: string; phase: JobPhase }[]> {
  const queue = await slurmCommand("squeue", ["--me", "-h", "-r", "-o", "%i|%j|%T"]);
  if (!queue.ok) throw new Error(`squeue failed: ${slurmMessage(queue.stderr)}`);
  return queue.stdout.split("\n").filter(Boolean).map((line) => {
    const [id, name, state] = line.trim().split("|");
    return { id, name, phase: phaseOf(state) };
  }).filter((job) => job.phase !== "ended");
}

/** scancel; jobs that already ended are not an error. */
export async function cancelJobs(ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const result = await slurmCommand("scancel", [...ids]);
  if (!result.ok && !/Invalid job id|already completing or completed/i.test(result.stderr)) {
    throw new Error(`scancel failed: ${slurmMessage(result.stderr)}`);
  }
}
