/**
 * Honest evaluation of fee-rate predictions: a time split with gaps, the
 * baselines, the metrics and the quantile choice on the validation split.
 *
 * Metrics, per target N and method, over the evaluated rows (each with a
 * needed rate, see `labels.ts`). Every prediction is first floored at
 * {@linkcode MIN_RELAY_FEERATE_SAT_VB} (nothing lower could be relayed):
 * - hit rate: share of rows with prediction >= needed rate;
 * - median overpayment: median over the hit rows of (prediction - needed), in
 *   sat/vB, and of (prediction - needed) / needed (relative);
 * - median shortfall: median over the missed rows of (needed - prediction), sat/vB;
 * - cost ratio: sum of predictions / sum of needed rates (what a user paying the
 *   prediction on every row pays relative to the needed rate, misses included).
 *
 * @module
 */
import { type MempoolSnapshot, MIN_RELAY_FEERATE_SAT_VB } from "../../features/fee_features.ts";
import type { RecommendedFees } from "./satcast.ts";

/** Metrics of one method on one target. */
export interface FeeMetrics {
  /** Rows evaluated. */
  rows: number;
  /** Share of rows with prediction >= needed. */
  hitRate: number;
  /** Median of (prediction - needed) over hit rows, sat/vB (NaN if no hit). */
  medianOverpaySatVb: number;
  /** Median of (prediction - needed) / needed over hit rows (NaN if no hit). */
  medianOverpayRelative: number;
  /** Median of (needed - prediction) over missed rows, sat/vB (NaN if no miss). */
  medianShortfallSatVb: number;
  /** Sum of predictions / sum of needed rates. */
  costRatio: number;
}

/** The compared methods, in table order. */
export const FEE_METHODS = [
  "model",
  "mempool_space",
  "percentile_rule",
  "projected_median",
] as const;

/** One of {@linkcode FEE_METHODS}. */
export type FeeMethod = typeof FEE_METHODS[number];

/** Evaluation of one target. */
export interface FeeTargetEvaluation {
  /** N blocks. */
  targetBlocks: number;
  /** Quantile level of the model for this target (NaN when unknown). */
  quantile: number;
  /** Metrics per method, on the same rows. */
  methods: Record<FeeMethod, FeeMetrics>;
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  values.sort((a, b) => a - b);
  const mid = values.length >> 1;
  return values.length % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
}

/**
 * Metrics of predictions against needed rates (see the module doc).
 *
 * @param predicted sat/vB per row
 * @param needed sat/vB per row, same length, finite and positive
 * @returns the metrics
 * @throws RangeError on mismatched lengths, an empty set or a non-finite value
 */
export function feeMetrics(predicted: ArrayLike<number>, needed: ArrayLike<number>): FeeMetrics {
  if (predicted.length !== needed.length || needed.length === 0) {
    throw new RangeError(
      `Invalid predictions: ${predicted.length} predictions for ${needed.length} rows`,
    );
  }
  let hits = 0;
  let paid = 0;
  let need = 0;
  const over: number[] = [];
  const overRel: number[] = [];
  const short: number[] = [];
  for (let i = 0; i < needed.length; i++) {
    const y = needed[i]!;
    const raw = predicted[i]!;
    if (!Number.isFinite(raw) || !(Number.isFinite(y) && y > 0)) {
      throw new RangeError(`Invalid row ${i}: prediction ${raw}, needed ${y}`);
    }
    const p = Math.max(MIN_RELAY_FEERATE_SAT_VB, raw);
    paid += p;
    need += y;
    if (p >= y) {
      hits++;
      over.push(p - y);
      overRel.push((p - y) / y);
    } else {
      short.push(y - p);
    }
  }
  return {
    rows: needed.length,
    hitRate: hits / needed.length,
    medianOverpaySatVb: median(over),
    medianOverpayRelative: median(overRel),
    medianShortfallSatVb: median(short),
    costRatio: paid / need,
  };
}

/**
 * mempool.space's recommendation for a target: fastestFee (N = 1), halfHourFee
 * (N <= 3), hourFee (N <= 6), economyFee (longer).
 *
 * @param fees the recommendation in the snapshot
 * @param targetBlocks N
 * @returns sat/vB
 */
export function mempoolSpaceBaseline(fees: RecommendedFees, targetBlocks: number): number {
  if (targetBlocks <= 1) return fees.fastestFee;
  if (targetBlocks <= 3) return fees.halfHourFee;
  if (targetBlocks <= 6) return fees.hourFee;
  return fees.economyFee;
}

/** The fixed percentile rule per target: percentile `p` of the last `k` block medians. */
export const PERCENTILE_RULE: Readonly<Record<number, { p: number; k: number }>> = Object.freeze({
  1: { p: 1, k: 6 },
  3: { p: 0.75, k: 6 },
  6: { p: 0.5, k: 12 },
  144: { p: 0.25, k: 24 },
});

/**
 * Percentile rule over recent blocks: the linearly interpolated `p`-percentile of
 * the newest `k` block medians (the projected median when there are none, then 1).
 *
 * @param s the snapshot
 * @param targetBlocks N (selects `PERCENTILE_RULE[N]`, else the N = 144 rule)
 * @returns sat/vB
 */
export function percentileRuleBaseline(s: MempoolSnapshot, targetBlocks: number): number {
  const rule = PERCENTILE_RULE[targetBlocks] ?? PERCENTILE_RULE[144]!;
  const recent = s.recentBlockMedianFeesSatVb.slice(0, rule.k).sort((a, b) => a - b);
  if (recent.length === 0) return s.nextBlockMedianFeeSatVb ?? MIN_RELAY_FEERATE_SAT_VB;
  const pos = rule.p * (recent.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(recent.length - 1, lo + 1);
  return recent[lo]! + (recent[hi]! - recent[lo]!) * (pos - lo);
}

/**
 * The projected next-block median as a prediction for every target.
 *
 * @param s the snapshot
 * @returns sat/vB (NaN when unknown)
 */
export function projectedMedianBaseline(s: MempoolSnapshot): number {
  return s.nextBlockMedianFeeSatVb ?? Number.NaN;
}

/** Row ranges `[start, end)` of a time split. */
export interface FeeSplit {
  /** Training rows. */
  train: { start: number; end: number };
  /** Validation rows (quantile choice). */
  validation: { start: number; end: number };
  /** Held-out test rows. */
  test: { start: number; end: number };
  /** Blocks between the last row of a part and the first of the next. */
  gapBlocks: number;
}

/**
 * Time split with gaps: train = the first `trainFraction` of rows; validation
 * starts at the first row whose height is more than `gapBlocks` above the last
 * training row's, ends at `validationEnd` of the rows; test likewise after
 * another gap. A gap of at least the longest label window (144 blocks) keeps a
 * part's labels from seeing the next part's period.
 *
 * @param heights tip height per row, non-decreasing
 * @param options fractions (default 0.6 and 0.8) and `gapBlocks` (default 168)
 * @returns the split
 * @throws RangeError when a part would be empty
 */
export function timeSplit(
  heights: ArrayLike<number>,
  options: { trainFraction?: number; validationEnd?: number; gapBlocks?: number } = {},
): FeeSplit {
  const trainFraction = options.trainFraction ?? 0.6;
  const validationEnd = options.validationEnd ?? 0.8;
  const gapBlocks = options.gapBlocks ?? 168;
  if (!(trainFraction > 0 && trainFraction < validationEnd && validationEnd < 1)) {
    throw new RangeError(`Invalid fractions: ${trainFraction}, ${validationEnd}`);
  }
  if (!Number.isInteger(gapBlocks) || gapBlocks < 0) {
    throw new RangeError(`Invalid gapBlocks: ${String(gapBlocks)}`);
  }
  const n = heights.length;
  for (let i = 1; i < n; i++) {
    if (heights[i]! < heights[i - 1]!) throw new RangeError(`Invalid heights: decrease at ${i}`);
  }
  const after = (end: number) => {
    const limit = heights[end - 1]! + gapBlocks;
    let i = end;
    while (i < n && heights[i]! <= limit) i++;
    return i;
  };
  const trainEnd = Math.floor(n * trainFraction);
  const valStart = after(trainEnd);
  const valEnd = Math.max(valStart, Math.floor(n * validationEnd));
  const testStart = after(valEnd);
  if (trainEnd < 1 || valEnd <= valStart || testStart >= n) {
    throw new RangeError(`Invalid split: ${n} rows are too few for gaps of ${gapBlocks} blocks`);
  }
  return {
    train: { start: 0, end: trainEnd },
    validation: { start: valStart, end: valEnd },
    test: { start: testStart, end: n },
    gapBlocks,
  };
}

/** One rolling validation fold: fit on `[0, trainEnd)`, validate on `validation`. */
export interface FeeFold {
  /** Training rows are `[0, trainEnd)`. */
  trainEnd: number;
  /** Validation rows, after a gap of more than `gapBlocks` blocks. */
  validation: { start: number; end: number };
}

/**
 * Expanding-window validation folds inside `[0, split.validation.end)`: the
 * last fold is the split's own train/validation pair; each earlier fold ends
 * validation span plus gap earlier, so the folds cover several weeks (and fee
 * regimes) before the test gap. Each fold's validation starts more than
 * `split.gapBlocks` blocks after its training rows, as in {@linkcode timeSplit}.
 *
 * @param heights tip height per row, non-decreasing
 * @param split the split (its test rows are never touched)
 * @param count number of folds (default 3)
 * @returns folds in time order (empty folds are dropped)
 * @throws RangeError on an invalid count
 */
export function rollingFolds(
  heights: ArrayLike<number>,
  split: FeeSplit,
  count = 3,
): FeeFold[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`Invalid count: ${count}`);
  const step = split.validation.end - split.train.end;
  const folds: FeeFold[] = [];
  for (let k = count - 1; k >= 0; k--) {
    const trainEnd = split.train.end - k * step;
    const end = split.validation.end - k * step;
    if (trainEnd < 1) continue;
    const limit = heights[trainEnd - 1]! + split.gapBlocks;
    let start = trainEnd;
    while (start < end && heights[start]! <= limit) start++;
    if (start < end) folds.push({ trainEnd, validation: { start, end } });
  }
  return folds;
}

/**
 * The smallest multiplier m such that predictions `m * predicted` (floored at
 * {@linkcode MIN_RELAY_FEERATE_SAT_VB}) reach at least `hitRate` of the rows:
 * a conformal-style calibration of a quantile model on held-out rows.
 *
 * @param predicted positive sat/vB per row
 * @param needed sat/vB per row, same length
 * @param hitRate wanted share of hits in [0, 1]
 * @returns the multiplier (0 when the floor alone reaches the hit rate)
 * @throws RangeError on mismatched lengths, an empty set or invalid values
 */
export function calibrationMultiplier(
  predicted: ArrayLike<number>,
  needed: ArrayLike<number>,
  hitRate: number,
): number {
  if (predicted.length !== needed.length || needed.length === 0) {
    throw new RangeError(
      `Invalid predictions: ${predicted.length} predictions for ${needed.length} rows`,
    );
  }
  if (!(hitRate >= 0 && hitRate <= 1)) throw new RangeError(`Invalid hitRate: ${hitRate}`);
  // Row i is a hit iff needed <= floor, or m >= needed / predicted.
  const required = Float64Array.from({ length: needed.length }, (_, i) => {
    const y = needed[i]!;
    const p = predicted[i]!;
    if (!(Number.isFinite(y) && y > 0 && Number.isFinite(p) && p > 0)) {
      throw new RangeError(`Invalid row ${i}: prediction ${p}, needed ${y}`);
    }
    return y <= MIN_RELAY_FEERATE_SAT_VB ? 0 : y / p;
  }).sort();
  const k = Math.ceil(hitRate * required.length - 1e-9) - 1;
  return k < 0 ? 0 : required[Math.min(k, required.length - 1)]!;
}

function pct(v: number): string {
  return Number.isNaN(v) ? "n/a" : `${(v * 100).toFixed(1)}%`;
}

function rate(v: number): string {
  return Number.isNaN(v) ? "n/a" : v.toFixed(2);
}

/**
 * A markdown table of an evaluation (one line per target and method).
 *
 * @param evaluation per-target results
 * @returns the table text
 */
export function formatFeeEvalTable(evaluation: readonly FeeTargetEvaluation[]): string {
  const lines = [
    "| N | method | rows | hit rate | median overpay sat/vB | median overpay rel | median shortfall sat/vB | cost ratio |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const t of evaluation) {
    for (const method of FEE_METHODS) {
      const m = t.methods[method];
      const name = method !== "model"
        ? method
        : Number.isNaN(t.quantile)
        ? "model"
        : `model (q=${t.quantile})`;
      lines.push(
        `| ${t.targetBlocks} | ${name} | ${m.rows} | ${pct(m.hitRate)} | ${
          rate(m.medianOverpaySatVb)
        } | ${pct(m.medianOverpayRelative)} | ${rate(m.medianShortfallSatVb)} | ${
          m.costRatio.toFixed(3)
        } |`,
      );
    }
  }
  return lines.join("\n");
}
