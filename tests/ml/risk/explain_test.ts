/** explainRisk: percentiles on stored quantiles, ordering, limits and argument checks. */
import assert from "node:assert/strict";
import {
  computeFeatureQuantiles,
  explainRisk,
  type FeatureQuantiles,
  percentileOf,
} from "../../../src/ml/risk/explain.ts";

const P = [0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1];

// Columns: a = 0..100 (uniform), b = 0 except the last row (a rare count), c = 0..200.
const ROWS = Array.from({ length: 101 }, (_, i) => [i, i === 100 ? 1 : 0, 2 * i]);
const Q: FeatureQuantiles = computeFeatureQuantiles(ROWS, ["a", "b", "c"], P);

Deno.test("computeFeatureQuantiles() interpolates order statistics like numpy", () => {
  assert.deepEqual(Q.probabilities, P);
  assert.deepEqual(Q.features[0]!.values, [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100]);
  assert.deepEqual(Q.features[1]!.values, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
});

Deno.test("percentileOf() interpolates inside segments, mid-ranks ties, clamps outside", () => {
  const a = Q.features[0]!.values;
  assert.equal(percentileOf(50, a, P), 50);
  assert.ok(Math.abs(percentileOf(37.5, a, P) - 37.5) < 1e-9);
  assert.equal(percentileOf(-1, a, P), 0);
  assert.equal(percentileOf(101, a, P), 100);
  const b = Q.features[1]!.values;
  // 0 spans probabilities 0..0.99: mid-rank 49.5, so a zero count is ordinary.
  assert.equal(percentileOf(0, b, P), 49.5);
  assert.equal(percentileOf(1, b, P), 100);
  assert.ok(Math.abs(percentileOf(0.5, b, P) - 99.5) < 1e-9);
  assert.throws(() => percentileOf(NaN, a, P), TypeError);
  assert.throws(() => percentileOf(1, [1], [0]), RangeError);
  assert.throws(() => percentileOf(1, [2, 1], [0, 1]), RangeError);
});

Deno.test("explainRisk() returns the most unusual features first, at most 5, none when ordinary", () => {
  assert.deepEqual(explainRisk([50, 0, 100], Q), []);
  const reasons = explainRisk([99.5, 1, 500], Q);
  assert.deepEqual(reasons.map((r) => r.feature), ["c", "b", "a"]);
  assert.deepEqual(reasons.map((r) => r.percentile), [100, 100, 99.5]);
  assert.equal(reasons[0]!.value, 500);
  assert.equal(reasons[0]!.message, "c = 500 is above every training transaction (max 200)");
  assert.match(reasons[1]!.message, /^b = 1: at most 1% of training transactions are this high$/);
  assert.deepEqual(explainRisk([-5, 0, 100], Q).map((r) => [r.feature, r.percentile]), [["a", 0]]);
  assert.equal(
    explainRisk([-5, 0, 100], Q)[0]!.message,
    "a = -5 is below every training transaction (min 0)",
  );
  assert.equal(explainRisk([99.5, 1, 500], Q, { maxReasons: 1 }).length, 1);
  // With minDeviation 0 every feature is a candidate; the cap of 5 still holds.
  const wide = computeFeatureQuantiles(
    Array.from({ length: 11 }, (_, i) => Array.from({ length: 8 }, () => i)),
    Array.from({ length: 8 }, (_, i) => `f${i}`),
    P,
  );
  assert.equal(explainRisk(Array.from({ length: 8 }, () => 99), wide).length, 5);
  assert.equal(
    explainRisk(Array.from({ length: 8 }, () => 5), wide, { minDeviation: 0 }).length,
    5,
  );
});

Deno.test("explainRisk() and computeFeatureQuantiles() refuse bad arguments", () => {
  assert.throws(() => explainRisk([1, 2], Q), RangeError);
  assert.throws(() => explainRisk([1, 2, 3], null as unknown as FeatureQuantiles), TypeError);
  assert.throws(() => explainRisk([1, 2, 3], Q, { maxReasons: 6 }), RangeError);
  assert.throws(() => explainRisk([1, 2, 3], Q, { minDeviation: 51 }), RangeError);
  assert.throws(() => explainRisk([1, 2, 3], { ...Q, probabilities: [0.5, 0.2] }), RangeError);
  assert.throws(() => explainRisk([1, 2, 3], { ...Q, probabilities: [0.1, 1] }), RangeError);
  assert.throws(() => computeFeatureQuantiles([], ["a"], P), RangeError);
  assert.throws(() => computeFeatureQuantiles([[1, 2]], ["a"], P), RangeError);
  assert.throws(() => computeFeatureQuantiles([[1]], ["a"], [0, 2]), RangeError);
});
