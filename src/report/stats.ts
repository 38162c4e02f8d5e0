// Aggregate statistics for few-run deep-RL results, following the rliable recipe
// (Agarwal et al., NeurIPS 2021): point estimates over a runs x tasks score matrix and
// stratified-bootstrap confidence intervals. Pure functions over plain numbers; the
// bootstrap draws from a seeded PRNG so the same seed always gives the same interval.

/** Scores of one cell: `scores[run][task]`. Every run has a score for every task. */
export type ScoreMatrix = number[][];

/** A statistic of a task-major score block: `block[task * runs + run]`. */
export type Statistic = (block: Float64Array, runs: number, tasks: number) => number;

export interface Interval {
  lo: number;
  hi: number;
}

/** Confidence level used for every interval: the central 95%. */
const CI_LOWER_PCT = 2.5;
const CI_UPPER_PCT = 97.5;

/** Repetitions the rliable paper uses: 50,000 for aggregates, 2,000 for P(X > Y). */
export const DEFAULT_REPS = 50_000;
export const DEFAULT_POI_REPS = 2_000;

// ---------------------------------------------------------------- seeded PRNG

/**
 * xoshiro128** (Blackman & Vigna) seeded through splitmix32: fast, 32-bit state words
 * that JavaScript's integer ops handle exactly, and good enough statistical quality for
 * resampling. A class rather than a closure: V8 keeps its fields in registers in the
 * bootstrap's hot loop (about 2.5x faster measured).
 */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let sm = seed >>> 0;
    const splitmix = (): number => {
      sm = (sm + 0x9e3779b9) >>> 0;
      let z = sm;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
  }

  /** The next 32-bit unsigned integer. */
  next(): number {
    const b = this.b;
    const x = Math.imul(b, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = b << 9;
    this.c ^= this.a;
    this.d ^= b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return result;
  }

  /** An integer in [0, n): a 32-bit draw scaled down, unbiased enough for n far below 2^32. */
  int(n: number): number {
    return Math.floor(this.next() * 2.3283064365386963e-10 * n);
  }
}

// ---------------------------------------------------------------- point estimates

/** Validates a runs x tasks matrix and lays it out task-major for the statistics. */
export function toBlock(scores: ScoreMatrix): { block: Float64Array; runs: number; tasks: number } {
  const runs = scores.length;
  if (runs === 0) throw new Error("a score matrix needs at least one run");
  const tasks = scores[0].length;
  if (tasks === 0) throw new Error("a score matrix needs at least one task");
  const block = new Float64Array(runs * tasks);
  scores.forEach((row, r) => {
    if (row.length !== tasks) throw new Error(`run ${r} has ${row.length} task scores, expected ${tasks}`);
    row.forEach((value, t) => {
      block[t * runs + r] = value;
    });
  });
  return { block, runs, tasks };
}

/**
 * Interquartile mean of all pooled scores: drop floor(n/4) from each end, average the rest.
 * A NaN score (a diverged run) makes the result NaN rather than being trimmed away unseen.
 */
export const iqmStat: Statistic = (block) => {
  const sorted = Float64Array.from(block).sort();
  if (Number.isNaN(sorted[sorted.length - 1])) return NaN; // typed-array sort puts NaN last
  const cut = Math.floor(sorted.length * 0.25);
  let sum = 0;
  for (let i = cut; i < sorted.length - cut; i++) sum += sorted[i];
  return sum / (sorted.length - 2 * cut);
};

function taskMeans(block: Float64Array, runs: number, tasks: number): Float64Array {
  const means = new Float64Array(tasks);
  for (let t = 0; t < tasks; t++) {
    let sum = 0;
    for (let r = 0; r < runs; r++) sum += block[t * runs + r];
    means[t] = sum / runs;
  }
  return means;
}

/** Mean over tasks of each task's mean over runs. */
export const meanStat: Statistic = (block, runs, tasks) => {
  const means = taskMeans(block, runs, tasks);
  return means.reduce((s, v) => s + v, 0) / tasks;
};

/** Median over tasks of each task's mean over runs. */
export const medianStat: Statistic = (block, runs, tasks) => {
  const means = taskMeans(block, runs, tasks).sort();
  const mid = Math.floor(tasks / 2);
  return tasks % 2 === 1 ? means[mid] : (means[mid - 1] + means[mid]) / 2;
};

/** How far the pooled scores fall short of `threshold` on average (scores above count as the threshold). */
export function optimalityGapStat(threshold = 1): Statistic {
  return (block) => {
    let shortfall = 0;
    for (const v of block) shortfall += Math.max(threshold - v, 0);
    return shortfall / block.length;
  };
}

export const iqm = (scores: ScoreMatrix): number => applyStat(iqmStat, scores);
export const mean = (scores: ScoreMatrix): number => applyStat(meanStat, scores);
export const median = (scores: ScoreMatrix): number => applyStat(medianStat, scores);
export const optimalityGap = (scores: ScoreMatrix, threshold = 1): number =>
  applyStat(optimalityGapStat(threshold), scores);

function applyStat(stat: Statistic, scores: ScoreMatrix): number {
  const { block, runs, tasks } = toBlock(scores);
  return stat(block, runs, tasks);
}

/** Delta degrees of freedom of `meanStd`'s standard deviation (the sample std over runs). */
export const STD_DDOF = 1;

/**
 * Mean over runs of each run's task-average, with the standard deviation of those run
 * averages (ddof = STD_DDOF; 0 with a single run, where the sample std is undefined).
 */
export function meanStd(scores: ScoreMatrix): { mean: number; std: number } {
  const runAverages = scores.map((row) => row.reduce((s, v) => s + v, 0) / row.length);
  const m = runAverages.reduce((s, v) => s + v, 0) / runAverages.length;
  if (runAverages.length <= STD_DDOF) return { mean: m, std: 0 };
  const ss = runAverages.reduce((s, v) => s + (v - m) ** 2, 0);
  return { mean: m, std: Math.sqrt(ss / (runAverages.length - STD_DDOF)) };
}

/** Percentile with linear interpolation between order statistics (numpy's default). */
export function percentile(sorted: Float64Array, pct: number): number {
  const pos = (pct / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

// ---------------------------------------------------------------- bootstrap

/**
 * 95% interval of `stat` by stratified bootstrap: every repetition resamples, within each
 * task, the runs with replacement (tasks themselves are never resampled).
 */
export function bootstrapInterval(
  stat: Statistic,
  scores: ScoreMatrix,
  reps = DEFAULT_REPS,
  seed = 0,
): Interval {
  const { block, runs, tasks } = toBlock(scores);
  if (stat === iqmStat) return centralInterval(bootstrapIqm(block, runs, tasks, reps, seed));
  const rng = new SeededRandom(seed);
  const resampled = new Float64Array(block.length);
  const estimates = new Float64Array(reps);
  for (let rep = 0; rep < reps; rep++) {
    resampleInto(resampled, block, runs, tasks, rng);
    estimates[rep] = stat(resampled, runs, tasks);
  }
  return centralInterval(estimates);
}

/**
 * IQM estimates of the same resamples as the generic loop (same draws in the same order),
 * without a sort per repetition: every resampled score is one of the original ones, so
 * counting how often each original rank is drawn gives the sorted sample in linear time.
 * Tables run 50,000 repetitions per cell and curves one bootstrap per point; this is
 * what keeps them fast.
 */
function bootstrapIqm(block: Float64Array, runs: number, tasks: number, reps: number, seed: number): Float64Array {
  const n = block.length;
  const estimates = new Float64Array(reps);
  if (block.some(Number.isNaN)) return estimates.fill(NaN);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => block[a] - block[b]);
  const rankOf = new Int32Array(n);
  const sorted = new Float64Array(n);
  order.forEach((index, rank) => {
    rankOf[index] = rank;
    sorted[rank] = block[index];
  });
  const cut = Math.floor(n * 0.25);
  const kept = n - 2 * cut;
  const counts = new Int32Array(n);
  const rng = new SeededRandom(seed);
  for (let rep = 0; rep < reps; rep++) {
    counts.fill(0);
    for (let t = 0; t < tasks; t++) {
      const base = t * runs;
      for (let r = 0; r < runs; r++) counts[rankOf[base + rng.int(runs)]] += 1;
    }
    // Walk the ranks in order; each contributes the part of its copies inside [cut, n - cut).
    let seen = 0;
    let sum = 0;
    for (let rank = 0; rank < n && seen < n - cut; rank++) {
      const c = counts[rank];
      if (c === 0) continue;
      const inside = Math.min(seen + c, n - cut) - Math.max(seen, cut);
      if (inside > 0) sum += inside * sorted[rank];
      seen += c;
    }
    estimates[rep] = sum / kept;
  }
  return estimates;
}

/** The central 95% of bootstrap estimates; NaN bounds when any estimate is NaN. */
function centralInterval(estimates: Float64Array): Interval {
  estimates.sort();
  if (Number.isNaN(estimates[estimates.length - 1])) return { lo: NaN, hi: NaN };
  return { lo: percentile(estimates, CI_LOWER_PCT), hi: percentile(estimates, CI_UPPER_PCT) };
}

function resampleInto(
  out: Float64Array,
  block: Float64Array,
  runs: number,
  tasks: number,
  rng: SeededRandom,
): void {
  for (let t = 0; t < tasks; t++) {
    const base = t * runs;
    for (let r = 0; r < runs; r++) out[base + r] = block[base + rng.int(runs)];
  }
}

// ---------------------------------------------------------------- comparisons

/**
 * P(X > Y): per task, the chance that a random run of X beats a random run of Y, ties
 * counting half, averaged over tasks. X and Y may have different numbers of runs.
 */
export function probabilityOfImprovement(x: ScoreMatrix, y: ScoreMatrix): number {
  const bx = toBlock(x);
  const by = toBlock(y);
  if (bx.tasks !== by.tasks) throw new Error(`X has ${bx.tasks} tasks but Y has ${by.tasks}`);
  return poiOfBlocks(bx.block, bx.runs, by.block, by.runs, bx.tasks);
}

function poiOfBlocks(x: Float64Array, nx: number, y: Float64Array, ny: number, tasks: number): number {
  let total = 0;
  for (let t = 0; t < tasks; t++) {
    let wins = 0;
    for (let i = 0; i < nx; i++) {
      const xv = x[t * nx + i];
      for (let j = 0; j < ny; j++) {
        const yv = y[t * ny + j];
        if (xv > yv) wins += 1;
        else if (xv === yv) wins += 0.5;
      }
    }
    total += wins / (nx * ny);
  }
  return total / tasks;
}

/** 95% interval of P(X > Y), resampling X and Y independently (each stratified by task). */
export function probabilityOfImprovementInterval(
  x: ScoreMatrix,
  y: ScoreMatrix,
  reps = DEFAULT_POI_REPS,
  seed = 0,
): Interval {
  const bx = toBlock(x);
  const by = toBlock(y);
  if (bx.tasks !== by.tasks) throw new Error(`X has ${bx.tasks} tasks but Y has ${by.tasks}`);
  const rng = new SeededRandom(seed);
  const rx = new Float64Array(bx.block.length);
  const ry = new Float64Array(by.block.length);
  const estimates = new Float64Array(reps);
  for (let rep = 0; rep < reps; rep++) {
    resampleInto(rx, bx.block, bx.runs, bx.tasks, rng);
    resampleInto(ry, by.block, by.runs, by.tasks, rng);
    estimates[rep] = poiOfBlocks(rx, bx.runs, ry, by.runs, bx.tasks);
  }
  return centralInterval(estimates);
}

/** Performance profile: for each threshold tau, the fraction of all pooled scores strictly above it. */
export function performanceProfile(scores: ScoreMatrix, taus: number[]): number[] {
  const pooled = scores.flat();
  return taus.map((tau) => pooled.filter((v) => v > tau).length / pooled.length);
}
