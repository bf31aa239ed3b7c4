import assert from "node:assert/strict";
import {
  binFeeHistogram,
  FEE_FEATURE_NAMES,
  FEE_HISTOGRAM_BIN_LOWER_EDGES,
  FEE_REFERENCE_FEATURE,
  feeFeatures,
  feeHistogramBinIndex,
  type MempoolSnapshot,
} from "../../../src/ml/features/fee_features.ts";

function snapshot(over: Partial<MempoolSnapshot> = {}): MempoolSnapshot {
  return {
    timestampSec: 1_744_000_000, // 2025-04-07T04:26:40Z, a Monday
    height: 890_000,
    lastBlockTimeSec: 1_743_999_700,
    mempoolCount: 20_000,
    mempoolVsize: 3_500_000,
    mempoolTotalFeeSat: 9_000_000,
    histogram: [[12.5, 200_000], [5.2, 300_000], [3, 1_000_000], [1.4, 2_000_000]],
    nextBlockMedianFeeSatVb: 3.1,
    recentBlockMedianFeesSatVb: [4, 2, 3, 5, 1.5, 2.5, 6],
    ...over,
  };
}

const feature = (f: Float32Array, name: string) => f[FEE_FEATURE_NAMES.indexOf(name)]!;

Deno.test("FEE_HISTOGRAM_BIN_LOWER_EDGES matches the 52 SatCast histogram columns", () => {
  const edges = FEE_HISTOGRAM_BIN_LOWER_EDGES;
  assert.equal(edges.length, 52);
  assert.deepEqual(edges.slice(0, 11), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]);
  assert.equal(edges[edges.length - 1], 1000);
  for (let i = 1; i < edges.length; i++) assert.ok(edges[i]! > edges[i - 1]!);
});

Deno.test("feeHistogramBinIndex() puts lower <= rate < upper in a bin and drops rates below 1", () => {
  assert.equal(feeHistogramBinIndex(0.5), -1);
  assert.equal(feeHistogramBinIndex(1), 0);
  assert.equal(feeHistogramBinIndex(1.999), 0);
  assert.equal(feeHistogramBinIndex(2), 1);
  assert.equal(feeHistogramBinIndex(11), 9); // 10..12
  assert.equal(feeHistogramBinIndex(5000), 51);
  const bins = binFeeHistogram([[1.2, 10], [1.9, 5], [0.3, 99], [2, 7]]);
  assert.equal(bins[0], 15);
  assert.equal(bins[1], 7);
  assert.equal(bins.reduce((a, b) => a + b, 0), 22);
});

Deno.test("feeFeatures() returns one finite float32 per name", () => {
  const f = feeFeatures(snapshot());
  assert.ok(f instanceof Float32Array);
  assert.equal(f.length, FEE_FEATURE_NAMES.length);
  assert.ok(f.every(Number.isFinite));
  assert.equal(new Set(FEE_FEATURE_NAMES).size, FEE_FEATURE_NAMES.length);
});

Deno.test("feeFeatures() computes cumulative vsize, depth rates and recent-block statistics", () => {
  const f = feeFeatures(snapshot());
  assert.equal(feature(f, "mempool_vsize_blocks"), 3.5);
  assert.equal(feature(f, "vsize_above_2_sat_vb_blocks"), Math.fround(1.5));
  assert.equal(feature(f, "vsize_above_3_sat_vb_blocks"), Math.fround(1.5));
  assert.equal(feature(f, "vsize_above_5_sat_vb_blocks"), Math.fround(0.5));
  assert.equal(feature(f, "vsize_above_10_sat_vb_blocks"), Math.fround(0.2));
  assert.equal(feature(f, "vsize_above_20_sat_vb_blocks"), 0);
  assert.equal(feature(f, "feerate_at_0_5_mvb_depth"), 5);
  assert.equal(feature(f, "feerate_at_1_mvb_depth"), 3);
  assert.equal(feature(f, "feerate_at_2_mvb_depth"), 1);
  assert.equal(feature(f, "feerate_at_3_mvb_depth"), 1);
  assert.equal(feature(f, "next_block_median_sat_vb"), Math.fround(3.1));
  assert.equal(feature(f, "recent_block_median_last"), 4);
  assert.equal(feature(f, "recent_block_median_min_3"), 2);
  assert.equal(feature(f, "recent_block_median_median_6"), 2.75);
  assert.equal(feature(f, "recent_block_median_min_12"), 1.5);
  assert.equal(feature(f, "seconds_since_last_block"), 300);
  assert.equal(feature(f, "hour_of_day_utc"), 4);
  assert.equal(feature(f, "is_weekend_utc"), 0);
  // Ratios to the projected median (the model's output reference).
  const ref = Math.fround(3.1);
  assert.equal(feature(f, "feerate_at_0_5_mvb_depth_rel"), Math.fround(5 / ref));
  assert.equal(feature(f, "recent_block_median_last_rel"), Math.fround(4 / ref));
  assert.equal(feature(f, "recent_block_median_median_6_rel"), Math.fround(2.75 / ref));
  assert.equal(FEE_FEATURE_NAMES[FEE_REFERENCE_FEATURE], "next_block_median_sat_vb");
});

Deno.test("feeFeatures() invariants: above-threshold vsize falls and depth rates fall with depth", () => {
  const f = feeFeatures(snapshot());
  const above = [2, 3, 5, 10, 20, 50].map((t) => feature(f, `vsize_above_${t}_sat_vb_blocks`));
  for (let i = 1; i < above.length; i++) assert.ok(above[i]! <= above[i - 1]!);
  const depth = ["0_5", "1", "2", "3"].map((d) => feature(f, `feerate_at_${d}_mvb_depth`));
  for (let i = 1; i < depth.length; i++) assert.ok(depth[i]! <= depth[i - 1]!);
  assert.ok(feature(f, "vsize_above_2_sat_vb_blocks") <= feature(f, "mempool_vsize_blocks"));
});

Deno.test("feeFeatures() uses documented defaults for missing inputs, never NaN", () => {
  const f = feeFeatures(snapshot({
    lastBlockTimeSec: null,
    nextBlockMedianFeeSatVb: null,
    recentBlockMedianFeesSatVb: [],
    histogram: [],
    mempoolVsize: 0,
    mempoolTotalFeeSat: 0,
  }));
  assert.ok(f.every(Number.isFinite));
  assert.equal(feature(f, "seconds_since_last_block"), 600);
  assert.equal(feature(f, "feerate_at_1_mvb_depth"), 1);
  assert.equal(feature(f, "next_block_median_sat_vb"), 1);
  assert.equal(feature(f, "recent_block_median_last"), 1);
  assert.equal(feature(f, "mempool_avg_feerate_sat_vb"), 0);
});

Deno.test("feeFeatures() ignores histogram order", () => {
  const s = snapshot();
  const reversed = snapshot({ histogram: s.histogram.slice().reverse() });
  assert.deepEqual(feeFeatures(reversed), feeFeatures(s));
});

Deno.test("feeFeatures() rejects wrong types and ranges", () => {
  const cases: [string, unknown, typeof TypeError | typeof RangeError][] = [
    ["snapshot null", null, TypeError],
    ["timestampSec string", snapshot({ timestampSec: "1" as unknown as number }), TypeError],
    ["timestampSec NaN", snapshot({ timestampSec: Number.NaN }), RangeError],
    ["height fractional", snapshot({ height: 1.5 }), RangeError],
    ["mempoolVsize negative", snapshot({ mempoolVsize: -1 }), RangeError],
    ["histogram not array", snapshot({ histogram: {} as unknown as [] }), TypeError],
    [
      "histogram pair short",
      snapshot({ histogram: [[1] as unknown as [number, number]] }),
      TypeError,
    ],
    ["histogram rate Infinity", snapshot({ histogram: [[Infinity, 1]] }), RangeError],
    ["histogram vsize string", snapshot({ histogram: [[1, "2" as unknown as number]] }), TypeError],
    ["next median negative", snapshot({ nextBlockMedianFeeSatVb: -2 }), RangeError],
    [
      "recent not array",
      snapshot({ recentBlockMedianFeesSatVb: 3 as unknown as number[] }),
      TypeError,
    ],
    ["recent NaN", snapshot({ recentBlockMedianFeesSatVb: [Number.NaN] }), RangeError],
    ["lastBlockTime string", snapshot({ lastBlockTimeSec: "x" as unknown as number }), TypeError],
  ];
  for (const [label, input, error] of cases) {
    assert.throws(() => feeFeatures(input as MempoolSnapshot), error, label);
  }
});
