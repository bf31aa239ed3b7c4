import assert from "node:assert/strict";
import {
  calibrationMultiplier,
  type FeeMetrics,
  feeMetrics,
  formatFeeEvalTable,
  mempoolSpaceBaseline,
  percentileRuleBaseline,
  projectedMedianBaseline,
  rollingFolds,
  timeSplit,
} from "../../../../src/ml/train/fee/evaluate.ts";
import type { MempoolSnapshot } from "../../../../src/ml/features/fee_features.ts";

Deno.test("feeMetrics() matches a hand-computed example", () => {
  // predictions (floored at 1): 3, 2, 1 (from 0.5), 5; needed: 2, 2.5, 1, 4
  const m = feeMetrics([3, 2, 0.5, 5], [2, 2.5, 1, 4]);
  assert.equal(m.rows, 4);
  assert.equal(m.hitRate, 0.75); // rows 0, 2, 3
  assert.equal(m.medianOverpaySatVb, 1); // overpay 1, 0, 1
  assert.equal(m.medianOverpayRelative, 0.25); // 0.5, 0, 0.25
  assert.equal(m.medianShortfallSatVb, 0.5);
  assert.equal(m.costRatio, 11 / 9.5);
});

Deno.test("feeMetrics() reports NaN medians when there are no hits or no misses", () => {
  const allHit = feeMetrics([5, 5], [1, 2]);
  assert.ok(Number.isNaN(allHit.medianShortfallSatVb));
  const allMiss = feeMetrics([1, 1], [3, 2]);
  assert.equal(allMiss.hitRate, 0);
  assert.ok(Number.isNaN(allMiss.medianOverpaySatVb));
  assert.throws(() => feeMetrics([1], [1, 2]), RangeError);
  assert.throws(() => feeMetrics([], []), RangeError);
  assert.throws(() => feeMetrics([Number.NaN], [1]), RangeError);
  assert.throws(() => feeMetrics([1], [0]), RangeError);
});

Deno.test("timeSplit() is time-ordered with gaps of more than gapBlocks", () => {
  // One block every two rows.
  const heights = Array.from({ length: 2000 }, (_, i) => 100 + Math.floor(i / 2));
  const s = timeSplit(heights, { gapBlocks: 150 });
  assert.equal(s.train.start, 0);
  assert.ok(s.train.end <= s.validation.start);
  assert.ok(s.validation.end <= s.test.start);
  assert.equal(s.test.end, 2000);
  assert.ok(heights[s.validation.start]! - heights[s.train.end - 1]! > 150);
  assert.ok(heights[s.test.start]! - heights[s.validation.end - 1]! > 150);
  assert.ok(s.validation.end > s.validation.start);
  assert.throws(() => timeSplit(heights.slice(0, 300), { gapBlocks: 150 }), RangeError);
  assert.throws(() => timeSplit([3, 2, 1, 0, 0]), RangeError);
  assert.throws(() => timeSplit(heights, { trainFraction: 0.9, validationEnd: 0.8 }), RangeError);
});

Deno.test("calibrationMultiplier() is the smallest multiplier reaching the hit rate", () => {
  // Needed / predicted ratios: 1 (floored row, needed <= 1), 1.5, 2, 3.
  const predicted = [2, 2, 1, 1];
  const needed = [1, 3, 2, 3];
  assert.equal(calibrationMultiplier(predicted, needed, 0.25), 0);
  assert.equal(calibrationMultiplier(predicted, needed, 0.5), 1.5);
  assert.equal(calibrationMultiplier(predicted, needed, 0.75), 2);
  assert.equal(calibrationMultiplier(predicted, needed, 1), 3);
  const hit = feeMetrics(predicted.map((p) => p * 2), needed).hitRate;
  assert.equal(hit, 0.75);
  assert.throws(() => calibrationMultiplier([1], [1, 2], 0.5), RangeError);
  assert.throws(() => calibrationMultiplier([0], [1], 0.5), RangeError);
  assert.throws(() => calibrationMultiplier([1], [1], 1.5), RangeError);
});

Deno.test("rollingFolds() ends with the split's validation, each fold after its own gap", () => {
  const heights = Array.from({ length: 4000 }, (_, i) => Math.floor(i / 2));
  const split = timeSplit(heights, { gapBlocks: 150 });
  const folds = rollingFolds(heights, split, 3);
  assert.equal(folds.length, 3);
  assert.deepEqual(folds[2], { trainEnd: split.train.end, validation: split.validation });
  folds.forEach((f, k) => {
    assert.ok(heights[f.validation.start]! > heights[f.trainEnd - 1]! + 150);
    assert.ok(f.validation.end <= split.test.start);
    if (k > 0) assert.ok(f.trainEnd > folds[k - 1]!.trainEnd);
  });
  assert.throws(() => rollingFolds(heights, split, 0), RangeError);
});

Deno.test("baselines: mempool.space by target, percentile of recent blocks, projected median", () => {
  const fees = { fastestFee: 5, halfHourFee: 4, hourFee: 3, economyFee: 2, minimumFee: 1 };
  assert.deepEqual([1, 3, 6, 144].map((n) => mempoolSpaceBaseline(fees, n)), [5, 4, 3, 2]);
  const s: MempoolSnapshot = {
    timestampSec: 0,
    height: 1,
    lastBlockTimeSec: null,
    mempoolCount: 0,
    mempoolVsize: 0,
    mempoolTotalFeeSat: 0,
    histogram: [],
    nextBlockMedianFeeSatVb: 2.5,
    recentBlockMedianFeesSatVb: [6, 1, 5, 2, 4, 3, 100],
  };
  assert.equal(percentileRuleBaseline(s, 1), 6); // max of the newest 6
  assert.equal(percentileRuleBaseline(s, 3), 4.75); // p75 of 1..6
  assert.equal(percentileRuleBaseline(s, 6), 4); // median of all 7 values
  assert.equal(percentileRuleBaseline({ ...s, recentBlockMedianFeesSatVb: [] }, 1), 2.5);
  assert.equal(projectedMedianBaseline(s), 2.5);
  assert.ok(Number.isNaN(projectedMedianBaseline({ ...s, nextBlockMedianFeeSatVb: null })));
});

Deno.test("formatFeeEvalTable() prints one line per target and method", () => {
  const m: FeeMetrics = feeMetrics([3, 2], [2, 2.5]);
  const table = formatFeeEvalTable([{
    targetBlocks: 6,
    quantile: 0.8,
    methods: { model: m, mempool_space: m, percentile_rule: m, projected_median: m },
  }]);
  const lines = table.split("\n");
  assert.equal(lines.length, 6);
  assert.match(
    lines[2]!,
    /^\| 6 \| model \(q=0\.8\) \| 2 \| 50\.0% \| 1\.00 \| 50\.0% \| 0\.50 \| 1\.111 \|$/,
  );
  assert.match(lines[5]!, /projected_median/);
});
