/**
 * Reasons behind a risk score: which features of a transaction sit furthest
 * from the real transactions the model was trained on. An isolation forest
 * has no per-feature attribution of its own; a row is isolated quickly
 * exactly when some of its values are rare, so the features in the tails of
 * the training distribution are the ones that drove the score. Each feature
 * value is placed on the training distribution through per-feature quantiles
 * (stored in the model card as plain numbers) and the most extreme are
 * returned. Pure, no I/O.
 *
 * @module
 */

/** Per-feature quantiles of the training rows, as stored in the model card. */
export interface FeatureQuantiles {
  /** Probabilities in [0, 1], increasing, starting at 0 and ending at 1. */
  probabilities: number[];
  /** One entry per feature, in row order; `values[k]` is the quantile at `probabilities[k]`. */
  features: { name: string; values: number[] }[];
}

/** One reason. */
export interface RiskReason {
  /** Feature name. */
  feature: string;
  /** The transaction's value. */
  value: number;
  /** Where the value falls among the training transactions, 0–100 (mid-rank for ties). */
  percentile: number;
  /** A sentence for people. */
  message: string;
}

/** Options of {@linkcode explainRisk}. */
export interface ExplainOptions {
  /** Most reasons returned (default 5, at most 5). */
  maxReasons?: number;
  /**
   * Smallest distance of the percentile from 50 for a feature to count as
   * unusual (default 40: below the 10th or above the 90th percentile).
   */
  minDeviation?: number;
}

/**
 * Quantiles of each column of `rows` at `probabilities` (linear interpolation
 * between order statistics, numpy's default), rounded to float32 like the rows.
 *
 * @param rows training rows
 * @param names feature names, one per column
 * @param probabilities increasing values in [0, 1]
 */
export function computeFeatureQuantiles(
  rows: readonly ArrayLike<number>[],
  names: readonly string[],
  probabilities: readonly number[],
): FeatureQuantiles {
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new RangeError("Invalid rows: expected a non-empty array");
  }
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) {
    throw new TypeError("Invalid names: expected an array of strings");
  }
  assertProbabilities(probabilities);
  rows.forEach((r, i) => {
    if (r === null || typeof r !== "object" || r.length !== names.length) {
      throw new RangeError(`Invalid rows[${i}]: expected ${names.length} features`);
    }
  });
  return {
    probabilities: [...probabilities],
    features: names.map((name, f) => {
      const col = rows.map((r) => r[f]!).sort((a, b) => a - b);
      return {
        name,
        values: probabilities.map((p) => {
          const pos = p * (col.length - 1);
          const lo = Math.floor(pos);
          const hi = Math.min(lo + 1, col.length - 1);
          return Math.fround(col[lo]! + (col[hi]! - col[lo]!) * (pos - lo));
        }),
      };
    }),
  };
}

/**
 * Percentile (0–100) of `value` on a feature's quantile table: linear between
 * quantiles; for a value equal to one or more quantiles (ties, e.g. a count
 * that is 0 for most transactions) the mid-point of the probabilities it spans.
 *
 * @param value the value
 * @param quantiles the feature's quantile values
 * @param probabilities their probabilities
 */
export function percentileOf(
  value: number,
  quantiles: readonly number[],
  probabilities: readonly number[],
): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`Invalid value: expected a number, got ${String(value)}`);
  }
  if (quantiles.length !== probabilities.length || quantiles.length < 2) {
    throw new RangeError("Invalid quantiles: expected one value per probability, at least 2");
  }
  for (let k = 0; k < quantiles.length; k++) {
    const q = quantiles[k]!;
    if (typeof q !== "number" || !Number.isFinite(q) || (k > 0 && q < quantiles[k - 1]!)) {
      throw new RangeError("Invalid quantiles: expected finite non-decreasing numbers");
    }
  }
  const { below, upTo } = cdfBounds(Math.fround(value), quantiles, probabilities);
  return 50 * (below + upTo);
}

/**
 * F(v−) and F(v) of the piecewise-linear CDF through the quantiles: equal
 * inside a segment, apart where v equals quantiles (the CDF jumps there).
 */
function cdfBounds(
  v: number,
  quantiles: readonly number[],
  probabilities: readonly number[],
): { below: number; upTo: number } {
  let lowP = -1;
  let highP = -1;
  for (let k = 0; k < quantiles.length; k++) {
    if (quantiles[k] !== v) continue;
    if (lowP < 0) lowP = probabilities[k]!;
    highP = probabilities[k]!;
  }
  if (lowP >= 0) return { below: lowP, upTo: highP };
  if (v < quantiles[0]!) return { below: 0, upTo: 0 };
  if (v > quantiles[quantiles.length - 1]!) return { below: 1, upTo: 1 };
  let k = 0;
  while (!(quantiles[k]! < v && v < quantiles[k + 1]!)) k++;
  const q0 = quantiles[k]!;
  const p0 = probabilities[k]!;
  const p = p0 + (probabilities[k + 1]! - p0) * (v - q0) / (quantiles[k + 1]! - q0);
  return { below: p, upTo: p };
}

/**
 * The features of `row` that are most unusual against the training
 * distribution, most unusual first (ties by the distance outside the training range, then
 * feature order), at most 5.
 *
 * @param row a feature row (`txRiskFeatures`)
 * @param quantiles the training quantiles from the model card
 * @param options how many reasons and how unusual
 * @returns reasons; empty when every feature is within the usual range
 */
export function explainRisk(
  row: ArrayLike<number>,
  quantiles: FeatureQuantiles,
  options: ExplainOptions = {},
): RiskReason[] {
  if (typeof quantiles !== "object" || quantiles === null || !Array.isArray(quantiles.features)) {
    throw new TypeError("Invalid quantiles: expected { probabilities, features }");
  }
  assertProbabilities(quantiles.probabilities);
  if (row === null || typeof row !== "object" || row.length !== quantiles.features.length) {
    throw new RangeError(`Invalid row: expected ${quantiles.features.length} features`);
  }
  const maxReasons = options.maxReasons ?? 5;
  const minDeviation = options.minDeviation ?? 40;
  if (!Number.isInteger(maxReasons) || maxReasons < 0 || maxReasons > 5) {
    throw new RangeError(`Invalid maxReasons: expected 0..5, got ${String(maxReasons)}`);
  }
  if (typeof minDeviation !== "number" || !(minDeviation >= 0 && minDeviation <= 50)) {
    throw new RangeError(`Invalid minDeviation: expected 0..50, got ${String(minDeviation)}`);
  }
  const scored = quantiles.features.map((f, i) => {
    if (!Array.isArray(f.values) || f.values.length !== quantiles.probabilities.length) {
      throw new RangeError(`Invalid quantiles.features[${i}]: expected one value per probability`);
    }
    const value = row[i]!;
    const percentile = percentileOf(value, f.values, quantiles.probabilities);
    const min = f.values[0]!;
    const max = f.values[f.values.length - 1]!;
    // Ties at 0 or 100 are broken by how far outside the training range the value lies,
    // in units of that range, so "5x the largest ever seen" ranks above "equal to it".
    const outside = Math.max(value - max, min - value, 0) / Math.max(max - min, 1e-9);
    return { i, feature: f.name, value, percentile, deviation: Math.abs(percentile - 50), outside };
  });
  return scored
    .filter((s) => s.deviation >= minDeviation)
    .sort((a, b) => b.deviation - a.deviation || b.outside - a.outside || a.i - b.i)
    .slice(0, maxReasons)
    .map((s) => ({
      feature: s.feature,
      value: s.value,
      percentile: round2(s.percentile),
      message: reasonMessage(s.feature, s.value, s.percentile, {
        values: quantiles.features[s.i]!.values,
        probabilities: quantiles.probabilities,
      }),
    }));
}

function reasonMessage(
  feature: string,
  value: number,
  percentile: number,
  table: { values: number[]; probabilities: number[] },
): string {
  const shown = Number.isInteger(value) ? String(value) : value.toPrecision(4);
  const q = table.values;
  const min = q[0]!;
  const max = q[q.length - 1]!;
  const v = Math.fround(value);
  if (v > max) return `${feature} = ${shown} is above every training transaction (max ${fmt(max)})`;
  if (v < min) return `${feature} = ${shown} is below every training transaction (min ${fmt(min)})`;
  // Upper bound on the share of training rows at least this extreme that the quantile grid
  // supports: above v, at most 1 - (the last probability whose quantile is below v).
  const p = table.probabilities;
  let share: number;
  if (percentile >= 50) {
    let k = q.length - 1;
    while (k > 0 && !(q[k]! < v)) k--;
    share = q[k]! < v ? 1 - p[k]! : 1;
    return `${feature} = ${shown}: at most ${
      fmt(round2(100 * share))
    }% of training transactions are this high`;
  }
  let k = 0;
  while (k < q.length - 1 && !(q[k]! > v)) k++;
  share = q[k]! > v ? p[k]! : 1;
  return `${feature} = ${shown}: at most ${
    fmt(round2(100 * share))
  }% of training transactions are this low`;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(3);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function assertProbabilities(p: unknown): asserts p is number[] {
  if (!Array.isArray(p) || p.length < 2) {
    throw new TypeError("Invalid probabilities: expected an array of at least 2 numbers");
  }
  for (let k = 0; k < p.length; k++) {
    const x = p[k];
    if (typeof x !== "number" || !(x >= 0 && x <= 1) || (k > 0 && !(x > p[k - 1]))) {
      throw new RangeError("Invalid probabilities: expected increasing numbers in [0, 1]");
    }
  }
  if (p[0] !== 0 || p[p.length - 1] !== 1) {
    throw new RangeError("Invalid probabilities: expected to start at 0 and end at 1");
  }
}
