/**
 * The fee-rate model's features: one definition shared by training
 * (`src/ml/train/fee/`) and live serving, so both compute identical inputs.
 *
 * Every input is available live from a chain backend:
 * - `histogram`: Esplora / mempool.space `GET /mempool` `fee_histogram`, or
 *   Bitcoin Core `getrawmempool true` (bucket each entry's `fees.base / vsize`);
 * - mempool totals: `GET /mempool` (`count`, `vsize`, `total_fee`) or `getmempoolinfo`;
 * - `nextBlockMedianFeeSatVb`: mempool.space `/api/v1/fees/mempool-blocks[0].medianFee`
 *   (or the median feerate of a `getblocktemplate`);
 * - `recentBlockMedianFeesSatVb`: mempool.space `/api/v1/blocks` `extras.medianFee`,
 *   or `getblockstats <h> ["feerate_percentiles"]` (the 50th percentile);
 * - tip height and arrival time: `/blocks/tip/height` plus the time the edge saw it.
 *
 * The histogram is first coarsened onto {@linkcode FEE_HISTOGRAM_BIN_LOWER_EDGES}, the
 * bins of the training data (a pair with `lower <= feerate < upper` adds its vsize
 * to that bin; pairs below 1 sat/vB are dropped, as the collector of the training
 * data did). Features computed from the coarsened histogram are therefore the same
 * whether it came from a live backend or from the stored bins.
 *
 * @module
 */

// The chain port delivers the snapshot (`ChainBackend.getMempoolSnapshot`); ML only reads it.
import type { MempoolSnapshot } from "../../chain/mempool_snapshot.ts";
import { describeType } from "../../util/describe_type.ts";
export type { MempoolSnapshot };

/**
 * Lower edges (sat/vB) of the histogram bins: 1..10 by 1, 10..30 by 2, 30..100
 * by 5, 100..1000 by 50, then 1000+. The same bins as the training data
 * (`mempool_fee_histogram_bin_<lower>_<upper>` columns).
 */
export const FEE_HISTOGRAM_BIN_LOWER_EDGES: readonly number[] = Object.freeze(buildEdges());

function buildEdges(): number[] {
  const edges: number[] = [];
  for (let r = 1; r < 10; r++) edges.push(r);
  for (let r = 10; r < 30; r += 2) edges.push(r);
  for (let r = 30; r < 100; r += 5) edges.push(r);
  for (let r = 100; r < 1000; r += 50) edges.push(r);
  edges.push(1000);
  return edges;
}

/** vsize of a full block (4,000,000 WU / 4), used for block-equivalents. */
export const BLOCK_VSIZE = 1_000_000;

/** Lowest feerate a transaction could be relayed with in the training period, sat/vB. */
export const MIN_RELAY_FEERATE_SAT_VB = 1;

/** Feerates (sat/vB, bin edges) above which cumulative mempool vsize is measured. */
const VSIZE_ABOVE_THRESHOLDS = [2, 3, 5, 10, 20, 50] as const;
/** Mempool depths (MvB from the top) at which the feerate is read. */
const DEPTHS_MVB = [0.5, 1, 2, 3] as const;
/** Seconds between blocks on average, used when the last arrival is unknown. */
const EXPECTED_BLOCK_INTERVAL_SEC = 600;

/** Feature names, in the model's input order. */
export const FEE_FEATURE_NAMES: readonly string[] = Object.freeze([
  "mempool_vsize_blocks",
  "mempool_count",
  "mempool_avg_feerate_sat_vb",
  ...VSIZE_ABOVE_THRESHOLDS.map((t) => `vsize_above_${t}_sat_vb_blocks`),
  ...DEPTHS_MVB.map((d) => `feerate_at_${String(d).replace(".", "_")}_mvb_depth`),
  "next_block_median_sat_vb",
  "recent_block_median_last",
  "recent_block_median_min_3",
  "recent_block_median_median_6",
  "recent_block_median_min_12",
  "recent_block_median_median_24",
  "seconds_since_last_block",
  "hour_of_day_utc",
  "is_weekend_utc",
  // Ratios to the projected next-block median (floored at the minimum relay
  // feerate): the model predicts the ratio of the needed rate to that median,
  // and ratios keep their meaning when the whole fee level shifts.
  ...DEPTHS_MVB.map((d) => `feerate_at_${String(d).replace(".", "_")}_mvb_depth_rel`),
  "recent_block_median_last_rel",
  "recent_block_median_min_3_rel",
  "recent_block_median_median_6_rel",
  "recent_block_median_min_12_rel",
  "recent_block_median_median_24_rel",
  "mempool_avg_feerate_rel",
]);

/**
 * Index of `next_block_median_sat_vb` in {@linkcode FEE_FEATURE_NAMES}: the
 * reference the fee model scales its output by.
 */
export const FEE_REFERENCE_FEATURE: number = FEE_FEATURE_NAMES.indexOf("next_block_median_sat_vb");

function assertFiniteNonNegative(value: unknown, name: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid ${name}: expected a number, got ${describeType(value)}`);
  }
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Invalid ${name}: expected a finite number >= 0, got ${value}`);
  }
}

/**
 * Check a snapshot's shape and ranges.
 *
 * @param s the snapshot
 * @throws TypeError on a wrong type, RangeError on a negative or non-finite number
 */
export function assertMempoolSnapshot(s: MempoolSnapshot): void {
  if (typeof s !== "object" || s === null) {
    throw new TypeError(`Invalid snapshot: expected an object, got ${describeType(s)}`);
  }
  assertFiniteNonNegative(s.timestampSec, "timestampSec");
  assertFiniteNonNegative(s.height, "height");
  if (!Number.isInteger(s.height)) throw new RangeError(`Invalid height: ${s.height}`);
  if (s.lastBlockTimeSec !== null) assertFiniteNonNegative(s.lastBlockTimeSec, "lastBlockTimeSec");
  assertFiniteNonNegative(s.mempoolCount, "mempoolCount");
  assertFiniteNonNegative(s.mempoolVsize, "mempoolVsize");
  assertFiniteNonNegative(s.mempoolTotalFeeSat, "mempoolTotalFeeSat");
  if (!Array.isArray(s.histogram)) {
    throw new TypeError(`Invalid histogram: expected an array, got ${describeType(s.histogram)}`);
  }
  s.histogram.forEach((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(`Invalid histogram[${i}]: expected a [feeRate, vsize] pair`);
    }
    assertFiniteNonNegative(pair[0], `histogram[${i}][0]`);
    assertFiniteNonNegative(pair[1], `histogram[${i}][1]`);
  });
  if (s.nextBlockMedianFeeSatVb !== null) {
    assertFiniteNonNegative(s.nextBlockMedianFeeSatVb, "nextBlockMedianFeeSatVb");
  }
  if (!Array.isArray(s.recentBlockMedianFeesSatVb)) {
    throw new TypeError(
      `Invalid recentBlockMedianFeesSatVb: expected an array, got ${
        describeType(s.recentBlockMedianFeesSatVb)
      }`,
    );
  }
  s.recentBlockMedianFeesSatVb.forEach((v, i) =>
    assertFiniteNonNegative(v, `recentBlockMedianFeesSatVb[${i}]`)
  );
}

/**
 * Index of the bin holding `feeRate` (`lower <= feeRate < upper`), or -1 below 1 sat/vB.
 *
 * @param feeRate sat/vB
 * @returns the bin index into {@linkcode FEE_HISTOGRAM_BIN_LOWER_EDGES}
 */
export function feeHistogramBinIndex(feeRate: number): number {
  const edges = FEE_HISTOGRAM_BIN_LOWER_EDGES;
  if (!(feeRate >= edges[0]!)) return -1;
  let lo = 0;
  let hi = edges.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= feeRate) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Coarsen a `[feeRate, vsize]` histogram onto the training bins.
 *
 * @param histogram pairs in any order
 * @returns vsize per bin, in the order of {@linkcode FEE_HISTOGRAM_BIN_LOWER_EDGES}
 */
export function binFeeHistogram(
  histogram: ReadonlyArray<readonly [number, number]>,
): Float64Array {
  const bins = new Float64Array(FEE_HISTOGRAM_BIN_LOWER_EDGES.length);
  for (const [rate, vsize] of histogram) {
    const b = feeHistogramBinIndex(rate);
    if (b >= 0) bins[b] = bins[b]! + vsize;
  }
  return bins;
}

function median(sorted: readonly number[]): number {
  const n = sorted.length;
  const mid = n >> 1;
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The model's input row for a snapshot.
 *
 * Missing inputs get documented defaults, never NaN: an unknown projected
 * median falls back to the feerate at 1 MvB depth; missing recent block
 * medians fall back to the projected median; an unknown last-arrival time
 * counts as one average block interval.
 *
 * @param s the snapshot
 * @returns `FEE_FEATURE_NAMES.length` float32 values
 * @throws TypeError / RangeError on an invalid snapshot
 */
export function feeFeatures(s: MempoolSnapshot): Float32Array {
  assertMempoolSnapshot(s);
  const edges = FEE_HISTOGRAM_BIN_LOWER_EDGES;
  const bins = binFeeHistogram(s.histogram);
  const out: number[] = [];
  out.push(s.mempoolVsize / BLOCK_VSIZE);
  out.push(s.mempoolCount);
  out.push(s.mempoolVsize > 0 ? s.mempoolTotalFeeSat / s.mempoolVsize : 0);

  // Cumulative vsize from the highest bin down: cum[b] = vsize paying >= edges[b].
  const cum = new Float64Array(bins.length);
  let acc = 0;
  for (let b = bins.length - 1; b >= 0; b--) {
    acc += bins[b]!;
    cum[b] = acc;
  }
  for (const t of VSIZE_ABOVE_THRESHOLDS) {
    out.push(cum[edges.indexOf(t)]! / BLOCK_VSIZE);
  }
  // Feerate at depth d: the lower edge of the bin where the cumulative vsize from
  // the top first reaches d MvB; the minimum relay feerate when the mempool is shallower.
  const depthRates = DEPTHS_MVB.map((d) => {
    for (let b = bins.length - 1; b >= 0; b--) {
      if (cum[b]! >= d * BLOCK_VSIZE) return edges[b]!;
    }
    return MIN_RELAY_FEERATE_SAT_VB;
  });
  out.push(...depthRates);

  const nextMedian = s.nextBlockMedianFeeSatVb ?? depthRates[1]!;
  out.push(nextMedian);
  const recent = s.recentBlockMedianFeesSatVb.length > 0
    ? s.recentBlockMedianFeesSatVb
    : [nextMedian];
  const window = (k: number) => recent.slice(0, k).sort((a, b) => a - b);
  const recentStats = [
    recent[0]!,
    window(3)[0]!,
    median(window(6)),
    window(12)[0]!,
    median(window(24)),
  ];
  out.push(...recentStats);

  const since = s.lastBlockTimeSec === null
    ? EXPECTED_BLOCK_INTERVAL_SEC
    : Math.max(0, s.timestampSec - s.lastBlockTimeSec);
  out.push(since);
  const date = new Date(Math.floor(s.timestampSec) * 1000);
  out.push(date.getUTCHours());
  const day = date.getUTCDay();
  out.push(day === 0 || day === 6 ? 1 : 0);

  // The same reference the model's output is scaled by (float32, floored at 1).
  const reference = Math.max(Math.fround(nextMedian), MIN_RELAY_FEERATE_SAT_VB);
  for (const rate of depthRates) out.push(rate / reference);
  for (const v of recentStats) out.push(v / reference);
  out.push((s.mempoolVsize > 0 ? s.mempoolTotalFeeSat / s.mempoolVsize : 0) / reference);
  return Float32Array.from(out);
}
