// Golden values of the rliable recipe (Agarwal et al., 2021) and the bootstrap's contracts.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  bootstrapInterval, iqm, iqmStat, mean, meanStd, median, optimalityGap, percentile, performanceProfile,
  probabilityOfImprovement, probabilityOfImprovementInterval, SeededRandom,
} from "../src/report/stats.js";

const close = (actual: number, expected: number, tol = 1e-9): void =>
  assert.ok(Math.abs(actual - expected) <= tol, `${actual} is not within ${tol} of ${expected}`);

const column = (xs: number[]): number[][] => xs.map((x) => [x]);

const X = [[1, 2], [2, 2], [1, 1], [2, 1]];
const Y = [[1, 1], [2, 2], [3, 3]];
const A = [[0.1, 0.5, 0.9], [0.2, 0.55, 0.8], [0.15, 0.6, 0.95], [0.3, 0.4, 0.85], [0.25, 0.45, 0.7]];
const B = A.map((row) => row.map((v) => v - 0.1));

test("X: IQM, mean and median are all 1.5", () => {
  close(iqm(X), 1.5);
  close(mean(X), 1.5);
  close(median(X), 1.5);
});

test("P(X > Y) = 1/3 and P(Y > X) = 2/3", () => {
  close(probabilityOfImprovement(X, Y), 1 / 3);
  close(probabilityOfImprovement(Y, X), 2 / 3);
});

test("IQM(1..10) = 5.5 and IQM([1,2,3,4,100]) = 3.0", () => {
  close(iqm(column([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), 5.5);
  close(iqm(column([1, 2, 3, 4, 100])), 3.0);
});

test("IQM of fewer than 4 scores drops nothing", () => {
  close(iqm(column([1, 2, 30])), 11);
});

test("P([1,2,3] > [2,2,2]) = 0.5 (ties count half)", () => {
  close(probabilityOfImprovement(column([1, 2, 3]), column([2, 2, 2])), 0.5);
});

test("A and B = A - 0.1: IQMs, P(A > B) and the CI of IQM(A)", () => {
  close(iqm(A), 0.505556, 1e-6);
  close(iqm(B), 0.405556, 1e-6);
  close(probabilityOfImprovement(A, B), 0.8, 1e-9);
  const ci = bootstrapInterval(iqmStat, A, 50_000, 0);
  close(ci.lo, 0.461, 0.005);
  close(ci.hi, 0.55, 0.005);
});

test("performance profile of A at tau = 0, .25, .5, .75, 1", () => {
  const profile = performanceProfile(A, [0, 0.25, 0.5, 0.75, 1]);
  [1, 0.7333, 0.4667, 0.2667, 0].forEach((expected, i) => close(profile[i], expected, 1e-4));
});

test("mean, median and optimality gap follow their definitions", () => {
  // Task means 0.2, 0.5, 0.84 (runs x tasks A): mean 0.51333, median 0.5.
  close(mean(A), (0.2 + 0.5 + 0.84) / 3);
  close(median(A), 0.5);
  close(median([[1, 5, 2, 10]]), 3.5);
  close(optimalityGap([[0.5, 1.2], [0.0, 1.0]]), (0.5 + 0 + 1 + 0) / 4);
});

test("mean +- std uses the sample std (ddof 1) over runs' task averages", () => {
  const { mean: m, std } = meanStd([[1, 3], [3, 5], [5, 7]]); // run averages 2, 4, 6
  close(m, 4);
  close(std, 2);
  assert.deepEqual(meanStd([[1, 2]]), { mean: 1.5, std: 0 });
});

test("percentile interpolates linearly between order statistics (numpy's default)", () => {
  const sorted = Float64Array.from([1, 2, 3, 4]);
  close(percentile(sorted, 50), 2.5);
  close(percentile(sorted, 2.5), 1.075);
  close(percentile(sorted, 100), 4);
});

test("the same seed gives the same interval; another seed a different one", () => {
  const a = bootstrapInterval(iqmStat, A, 2000, 7);
  const b = bootstrapInterval(iqmStat, A, 2000, 7);
  assert.deepEqual(a, b);
  const poi1 = probabilityOfImprovementInterval(A, B, 2000, 3);
  const poi2 = probabilityOfImprovementInterval(A, B, 2000, 3);
  assert.deepEqual(poi1, poi2);
  const draws = (seed: number): number[] => {
    const rng = new SeededRandom(seed);
    return Array.from({ length: 8 }, () => rng.next());
  };
  assert.notDeepEqual(draws(1), draws(2));
});

test("the bootstrap never resamples across tasks (stratified)", () => {
  // Each task has one value repeated over runs: any within-task resample gives back the
  // same matrix, so the interval collapses to the point; pooling across tasks would not.
  const constantPerTask = [[0, 10], [0, 10], [0, 10]];
  const ci = bootstrapInterval(iqmStat, constantPerTask, 500, 1);
  close(ci.lo, iqm(constantPerTask));
  close(ci.hi, iqm(constantPerTask));
});

test("P(X > Y)'s interval brackets its point estimate", () => {
  const point = probabilityOfImprovement(A, B);
  const ci = probabilityOfImprovementInterval(A, B, 2000, 0);
  assert.ok(ci.lo <= point && point <= ci.hi, `${point} outside [${ci.lo}, ${ci.hi}]`);
  assert.ok(ci.hi - ci.lo > 0);
});

test("50,000 repetitions over a 5 x 45 matrix bracket its IQM", () => {
  const rng = new SeededRandom(11);
  const big = Array.from({ length: 5 }, () => Array.from({ length: 45 }, () => rng.next() / 2 ** 32));
  const ci = bootstrapInterval(iqmStat, big, 50_000, 0);
  assert.ok(ci.lo < iqm(big) && iqm(big) < ci.hi);
});

test("a ragged or empty matrix is refused", () => {
  assert.throws(() => iqm([]), /at least one run/);
  assert.throws(() => iqm([[1, 2], [3]]), /run 1 has 1 task scores, expected 2/);
  assert.throws(() => probabilityOfImprovement([[1, 2]], [[1]]), /X has 2 tasks but Y has 1/);
});

test("a NaN score (diverged run) shows as NaN, never trimmed away", () => {
  const diverged = [[0.1, 0.2], [0.3, NaN], [0.5, 0.6], [0.7, 0.8]];
  assert.ok(Number.isNaN(iqm(diverged)));
  const ci = bootstrapInterval(iqmStat, diverged, 200, 0);
  assert.ok(Number.isNaN(ci.lo) && Number.isNaN(ci.hi));
});

test("the IQM bootstrap's counting shortcut gives what resampling and sorting gives", () => {
  const rng = new SeededRandom(5);
  // Ties included: scores on a coarse grid.
  const scores = Array.from({ length: 4 }, () => Array.from({ length: 7 }, () => Math.floor((rng.next() / 2 ** 32) * 6) / 5));
  const viaSort: typeof iqmStat = (block, runs, tasks) => iqmStat(block, runs, tasks);
  for (const seed of [0, 1, 2]) {
    const fast = bootstrapInterval(iqmStat, scores, 3000, seed);
    const slow = bootstrapInterval(viaSort, scores, 3000, seed);
    close(fast.lo, slow.lo, 1e-12);
    close(fast.hi, slow.hi, 1e-12);
  }
});
