/**
 * Gradient-boosted regression trees with quantile (pinball) loss, in plain
 * TypeScript, deterministic for a given seed.
 *
 * Method (Friedman 2001, "Greedy function approximation", LAD/quantile
 * variant, as in scikit-learn's `GradientBoostingRegressor(loss="quantile")`):
 * start from the alpha-quantile of the targets; each round fits a
 * least-squares tree to the negative pinball gradient (alpha where y > F,
 * alpha - 1 elsewhere) on a seeded row subsample, then replaces each leaf's
 * value by the alpha-quantile of the residuals y - F of its rows (the exact
 * line search for pinball loss), times the learning rate.
 *
 * Splits come from per-feature histograms (at most `maxBins` candidate
 * thresholds from the training rows). Every threshold is float32-exact and
 * lies in `[a, b)` between two consecutive float32 feature values a < b, so a
 * float32 input takes the same branch in TypeScript and in onnxruntime.
 *
 * @module
 */
import type { Tree, TreeEnsemble, TreeNode } from "../tree_ensemble.ts";
import { mulberry32 } from "../prng.ts";

/** Hyper-parameters of one quantile GBT fit. */
export interface QuantileGbtOptions {
  /** Quantile level alpha in (0, 1). */
  quantile: number;
  /** Boosting rounds (default 150). */
  nTrees?: number;
  /** Shrinkage (default 0.1). */
  learningRate?: number;
  /** Maximum tree depth (default 4). */
  maxDepth?: number;
  /** Minimum rows in a leaf (default 40). */
  minLeafSize?: number;
  /** Fraction of rows drawn (without replacement) per tree (default 0.8). */
  subsample?: number;
  /** Seed of the subsampling (default 1). */
  seed?: number;
}

/** A feature matrix quantised for histogram splits. */
export interface BinnedMatrix {
  /** Rows. */
  nRows: number;
  /** Columns. */
  nFeatures: number;
  /** Candidate thresholds per feature, ascending, float32-exact. */
  thresholds: Float32Array[];
  /** Per feature, per row: index of the first threshold >= x (thresholds.length if none). */
  codes: Uint8Array[];
}

/** Largest number of candidate thresholds per feature (codes fit a byte). */
export const MAX_BINS = 255;

/**
 * A float32-exact threshold t with a <= t < b for float32 values a < b.
 *
 * @param a lower value (float32)
 * @param b upper value (float32), greater than a
 */
export function float32Midpoint(a: number, b: number): number {
  const t = Math.fround((a + b) / 2);
  return a <= t && t < b ? t : a;
}

/**
 * Quantise a row-major float32 matrix, taking candidate thresholds from the rows `fitRows`.
 *
 * @param x row-major values, `nRows * nFeatures`
 * @param options `nFeatures`; `fitRows` (default all); `maxBins` (default 64)
 * @returns the binned matrix for all rows
 * @throws TypeError / RangeError on invalid arguments
 */
export function binMatrix(
  x: Float32Array,
  options: { nFeatures: number; fitRows?: ArrayLike<number>; maxBins?: number },
): BinnedMatrix {
  if (!(x instanceof Float32Array)) throw new TypeError("Invalid x: expected a Float32Array");
  const { nFeatures } = options;
  const maxBins = options.maxBins ?? 64;
  if (!Number.isInteger(nFeatures) || nFeatures < 1 || x.length % nFeatures !== 0) {
    throw new RangeError(`Invalid nFeatures: ${String(nFeatures)} for ${x.length} values`);
  }
  if (!Number.isInteger(maxBins) || maxBins < 2 || maxBins > MAX_BINS) {
    throw new RangeError(`Invalid maxBins: ${String(maxBins)}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]!)) throw new RangeError(`Invalid x: NaN at ${i}`);
  }
  const nRows = x.length / nFeatures;
  const fitRows = options.fitRows ?? Array.from({ length: nRows }, (_, i) => i);
  const thresholds: Float32Array[] = [];
  const codes: Uint8Array[] = [];
  for (let f = 0; f < nFeatures; f++) {
    const values = Float64Array.from(
      { length: fitRows.length },
      (_, k) => x[fitRows[k]! * nFeatures + f]!,
    );
    values.sort();
    const distinct: number[] = [];
    for (const v of values) {
      if (distinct.length === 0 || v !== distinct[distinct.length - 1]) distinct.push(v);
    }
    const cuts: number[] = [];
    if (distinct.length <= maxBins) {
      for (let i = 0; i + 1 < distinct.length; i++) {
        cuts.push(float32Midpoint(distinct[i]!, distinct[i + 1]!));
      }
    } else {
      // Cut at equal-count positions of the sorted values, between distinct values.
      for (let k = 1; k < maxBins; k++) {
        const a = values[Math.floor((k * values.length) / maxBins)]!;
        const above = upperBound(distinct, a);
        if (above >= distinct.length) continue;
        const t = float32Midpoint(a, distinct[above]!);
        if (cuts.length === 0 || t > cuts[cuts.length - 1]!) cuts.push(t);
      }
    }
    const thr = Float32Array.from(cuts);
    const code = new Uint8Array(nRows);
    for (let r = 0; r < nRows; r++) code[r] = lowerBoundGe(thr, x[r * nFeatures + f]!);
    thresholds.push(thr);
    codes.push(code);
  }
  return { nRows, nFeatures, thresholds, codes };
}

/** Index of the first element of ascending `a` greater than v. */
function upperBound(a: readonly number[], v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element of ascending `a` that is >= v (x <= a[i]). */
function lowerBoundGe(a: Float32Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The alpha-quantile minimising pinball loss: the ceil(alpha n)-th smallest value.
 *
 * @param values values (reordered in place)
 * @param alpha level in (0, 1)
 */
export function pinballQuantile(values: Float64Array, alpha: number): number {
  if (values.length === 0) throw new RangeError("Invalid values: empty");
  values.sort();
  const k = Math.min(values.length - 1, Math.max(0, Math.ceil(alpha * values.length) - 1));
  return values[k]!;
}

interface FitState {
  m: BinnedMatrix;
  y: Float64Array;
  f: Float64Array;
  grad: Float64Array;
  alpha: number;
  lr: number;
  maxDepth: number;
  minLeaf: number;
}

/**
 * Fit one quantile GBT on the rows `rows` of `m` (targets already in the fitted space).
 *
 * @param m binned matrix
 * @param data `y` per row of `m` (finite where used), `rows` to fit on
 * @param options hyper-parameters
 * @returns base value and trees (nodes only; the caller sets the target)
 * @throws RangeError on invalid options or data
 */
export function fitQuantileGbt(
  m: BinnedMatrix,
  data: { y: Float64Array; rows: ArrayLike<number> },
  options: QuantileGbtOptions,
): { base: number; trees: TreeNode[][] } {
  const alpha = options.quantile;
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`Invalid quantile: ${String(alpha)}`);
  const nTrees = options.nTrees ?? 150;
  const lr = options.learningRate ?? 0.1;
  const maxDepth = options.maxDepth ?? 4;
  const minLeaf = options.minLeafSize ?? 40;
  const subsample = options.subsample ?? 0.8;
  if (!Number.isInteger(nTrees) || nTrees < 1) throw new RangeError(`Invalid nTrees: ${nTrees}`);
  if (!(lr > 0 && lr <= 1)) throw new RangeError(`Invalid learningRate: ${lr}`);
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new RangeError(`Invalid maxDepth: ${maxDepth}`);
  }
  if (!Number.isInteger(minLeaf) || minLeaf < 1) {
    throw new RangeError(`Invalid minLeafSize: ${minLeaf}`);
  }
  if (!(subsample > 0 && subsample <= 1)) throw new RangeError(`Invalid subsample: ${subsample}`);
  const rows = Uint32Array.from(data.rows);
  if (rows.length < 2 * minLeaf) throw new RangeError(`Invalid rows: ${rows.length} is too few`);
  for (const r of rows) {
    if (r >= m.nRows || !Number.isFinite(data.y[r]!)) throw new RangeError(`Invalid row ${r}`);
  }
  const rand = mulberry32(options.seed ?? 1);
  const base = Math.fround(pinballQuantile(Float64Array.from(rows, (r) => data.y[r]!), alpha));
  const state: FitState = {
    m,
    y: data.y,
    f: new Float64Array(m.nRows).fill(base),
    grad: new Float64Array(m.nRows),
    alpha,
    lr,
    maxDepth,
    minLeaf,
  };
  const nSample = Math.max(2 * minLeaf, Math.floor(rows.length * subsample));
  const pool = Uint32Array.from(rows);
  const trees: TreeNode[][] = [];
  for (let t = 0; t < nTrees; t++) {
    // Partial Fisher-Yates: the first nSample entries are a uniform sample.
    for (let i = 0; i < nSample && i < pool.length - 1; i++) {
      const j = i + Math.floor(rand() * (pool.length - i));
      const tmp = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = tmp;
    }
    const sample = pool.slice(0, nSample).sort();
    for (let k = 0; k < sample.length; k++) {
      const r = sample[k]!;
      state.grad[r] = state.y[r]! > state.f[r]! ? alpha : alpha - 1;
    }
    const nodes: TreeNode[] = [];
    const bins: number[] = [];
    growNode(state, sample, 0, { nodes, bins });
    trees.push(nodes);
    for (let k = 0; k < rows.length; k++) {
      const r = rows[k]!;
      state.f[r] = state.f[r]! + leafValue(m, nodes, bins, r);
    }
  }
  return { base, trees };
}

/** Value of the leaf row `r` reaches (training-time traversal on codes; `bins[i]` = split bin). */
function leafValue(
  m: BinnedMatrix,
  nodes: readonly TreeNode[],
  bins: readonly number[],
  r: number,
): number {
  let i = 0;
  for (;;) {
    const node = nodes[i]!;
    if (node.kind === "leaf") return node.value;
    i = m.codes[node.feature]![r]! <= bins[i]! ? node.yes : node.no;
  }
}

/** Append the subtree for `rows` to `out.nodes` (split bins in `out.bins`); returns its index. */
function growNode(
  s: FitState,
  rows: Uint32Array,
  depth: number,
  out: { nodes: TreeNode[]; bins: number[] },
): number {
  const { nodes, bins } = out;
  const index = nodes.length;
  nodes.push({ kind: "leaf", value: 0 });
  bins.push(-1);
  const split = depth < s.maxDepth ? bestSplit(s, rows) : null;
  if (split === null) {
    const residuals = Float64Array.from(rows, (r) => s.y[r]! - s.f[r]!);
    nodes[index] = { kind: "leaf", value: Math.fround(s.lr * pinballQuantile(residuals, s.alpha)) };
    return index;
  }
  const code = s.m.codes[split.feature]!;
  const left = rows.filter((r) => code[r]! <= split.bin);
  const right = rows.filter((r) => code[r]! > split.bin);
  bins[index] = split.bin;
  const yes = growNode(s, left, depth + 1, out);
  const no = growNode(s, right, depth + 1, out);
  nodes[index] = {
    kind: "split",
    feature: split.feature,
    threshold: s.m.thresholds[split.feature]![split.bin]!,
    yes,
    no,
  };
  return index;
}

/** Least-squares best split of the gradients (ties: lowest feature, then lowest bin). */
function bestSplit(s: FitState, rows: Uint32Array): { feature: number; bin: number } | null {
  const n = rows.length;
  if (n < 2 * s.minLeaf) return null;
  const grad = s.grad;
  let total = 0;
  for (let k = 0; k < n; k++) total += grad[rows[k]!]!;
  const parent = (total * total) / n;
  let best: { feature: number; bin: number } | null = null;
  let bestGain = 1e-12;
  for (let f = 0; f < s.m.nFeatures; f++) {
    const nBins = s.m.thresholds[f]!.length + 1;
    if (nBins < 2) continue;
    const sum = new Float64Array(nBins);
    const count = new Uint32Array(nBins);
    const code = s.m.codes[f]!;
    for (let k = 0; k < n; k++) {
      const r = rows[k]!;
      const c = code[r]!;
      sum[c] = sum[c]! + grad[r]!;
      count[c] = count[c]! + 1;
    }
    let sl = 0;
    let nl = 0;
    for (let b = 0; b < nBins - 1; b++) {
      sl += sum[b]!;
      nl += count[b]!;
      const nr = n - nl;
      if (nl < s.minLeaf) continue;
      if (nr < s.minLeaf) break;
      const sr = total - sl;
      const gain = (sl * sl) / nl + (sr * sr) / nr - parent;
      if (gain > bestGain) {
        bestGain = gain;
        best = { feature: f, bin: b };
      }
    }
  }
  return best;
}

/**
 * Train one quantile GBT per target in log space and combine them into one
 * ensemble with `post: "exp"` (output column t = target t).
 *
 * @param m binned matrix
 * @param data `rates` per target (positive where used; NaN rows are skipped), `rows` to fit on
 * @param options `quantiles` per target, shared hyper-parameters and `seed`
 * @returns the ensemble
 */
export function trainQuantileGbtEnsemble(
  m: BinnedMatrix,
  data: { rates: readonly Float64Array[]; rows: ArrayLike<number> },
  options: Omit<QuantileGbtOptions, "quantile"> & { quantiles: readonly number[] },
): TreeEnsemble {
  if (data.rates.length !== options.quantiles.length || data.rates.length === 0) {
    throw new RangeError("Invalid quantiles: expected one per target");
  }
  const base: number[] = [];
  const trees: Tree[] = [];
  data.rates.forEach((rates, target) => {
    const fit = fitLogQuantileGbt(m, { rates, rows: data.rows }, {
      ...options,
      quantile: options.quantiles[target]!,
      seed: (options.seed ?? 1) + 7919 * target,
    });
    base.push(fit.base);
    for (const nodes of fit.trees) trees.push({ target, nodes });
  });
  return { nFeatures: m.nFeatures, nTargets: data.rates.length, base, trees, post: "exp" };
}

/**
 * {@linkcode fitQuantileGbt} on ln(rate), skipping rows whose rate is not a positive number.
 * With `reference`, on ln(rate / reference): a model of the ratio to a
 * per-row reference (the caller multiplies predictions by it, see
 * `TreeEnsemble.scaleBy`).
 *
 * @param m binned matrix
 * @param data `rates` per row of `m`, `rows` to fit on, optional positive `reference` per row
 * @param options hyper-parameters
 * @returns base and trees in log space
 */
export function fitLogQuantileGbt(
  m: BinnedMatrix,
  data: { rates: Float64Array; rows: ArrayLike<number>; reference?: ArrayLike<number> },
  options: QuantileGbtOptions,
): { base: number; trees: TreeNode[][] } {
  const y = new Float64Array(m.nRows).fill(Number.NaN);
  const rows: number[] = [];
  for (let k = 0; k < data.rows.length; k++) {
    const r = data.rows[k]!;
    const v = data.rates[r]!;
    const ref = data.reference === undefined ? 1 : data.reference[r]!;
    if (!(ref > 0 && Number.isFinite(ref))) throw new RangeError(`Invalid reference at row ${r}`);
    if (v > 0) {
      y[r] = Math.log(v) - Math.log(ref);
      rows.push(r);
    }
  }
  return fitQuantileGbt(m, { y, rows }, options);
}
