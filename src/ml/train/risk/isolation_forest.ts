/**
 * Isolation forest (Liu, Ting & Zhou, "Isolation Forest", ICDM 2008),
 * deterministic from a seed, exported as a {@linkcode TreeEnsemble}.
 *
 * Each tree is grown on a subsample of ψ rows (ψ = min(256, n), drawn without
 * replacement) by splitting on a random feature at a random value between the
 * node's minimum and maximum, up to the height limit ⌈log2 ψ⌉. The path
 * length h(x) of a row is the depth of the leaf it reaches plus c(size), the
 * average path length of an unbuilt subtree over the leaf's training rows,
 * where c(n) = 2H(n−1) − 2(n−1)/n, H(i) ≈ ln(i) + γ (paper, eq. 1). The
 * anomaly score is s = 2^(−E[h(x)] / c(ψ)) in (0, 1]: near 1 for rows that
 * isolate quickly, about 0.5 or below for ordinary ones.
 *
 * As a tree ensemble: leaf value v = −(depth + c(leafSize))·ln2 / (c(ψ)·T)
 * for T trees, `base` 0 and `post: "exp"`, so exp(Σ v) = s. Split thresholds
 * are float32 (`Math.fround`) and strictly between two observed values of the
 * node, so onnxruntime (float32) and this code send every training row down
 * the same branch. As in scikit-learn, a node picks its feature among those
 * that are not constant in it (the paper draws any feature and stops on a
 * constant one), so constant features never end a branch early.
 *
 * @module
 */
import type { Tree, TreeEnsemble, TreeNode } from "../tree_ensemble.ts";
import { mulberry32 } from "../prng.ts";

/** Euler–Mascheroni constant, for H(i) ≈ ln(i) + γ. */
const EULER_GAMMA = 0.5772156649015329;

/** Options of {@linkcode fitIsolationForest}. */
export interface IsolationForestOptions {
  /** Number of trees (default 200). */
  nTrees?: number;
  /** Subsample size ψ (default 256, capped at the number of rows). */
  sampleSize?: number;
  /** PRNG seed (default 1). */
  seed?: number;
}

/** A fitted forest with what its scores depend on. */
export interface IsolationForest {
  /** The forest as a tree ensemble whose output is the anomaly score. */
  ensemble: TreeEnsemble;
  /** Subsample size ψ actually used. */
  sampleSize: number;
  /** Height limit ⌈log2 ψ⌉. */
  heightLimit: number;
  /** c(ψ), the normaliser of the path lengths. */
  cPsi: number;
}

/**
 * Average path length of an unsuccessful BST search among n points (c(n) of
 * Liu et al.): 2H(n−1) − 2(n−1)/n for n > 2, 1 for n = 2, 0 for n ≤ 1.
 *
 * @param n number of points
 */
export function averagePathLength(n: number): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
    throw new RangeError(`Invalid n: expected a non-negative integer, got ${String(n)}`);
  }
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + EULER_GAMMA) - (2 * (n - 1)) / n;
}

/**
 * Fit an isolation forest.
 *
 * @param rows training rows, all of the same width, without NaN or infinities
 * @param options trees, subsample size, seed
 * @returns the forest as a tree ensemble scoring s = 2^(−E[h]/c(ψ))
 */
export function fitIsolationForest(
  rows: readonly ArrayLike<number>[],
  options: IsolationForestOptions = {},
): IsolationForest {
  if (!Array.isArray(rows) || rows.length < 2) {
    throw new RangeError("Invalid rows: expected an array of at least 2 rows");
  }
  const nFeatures = rows[0]!.length;
  if (!Number.isInteger(nFeatures) || nFeatures < 1) {
    throw new RangeError("Invalid rows: rows must have at least one feature");
  }
  // Work on float32 copies: the values ONNX will compare against the thresholds.
  const data = rows.map((r, i) => {
    if (r === null || typeof r !== "object" || r.length !== nFeatures) {
      throw new RangeError(`Invalid rows[${i}]: expected ${nFeatures} features`);
    }
    const f = Float32Array.from(r);
    if (!f.every(Number.isFinite)) throw new RangeError(`Invalid rows[${i}]: not finite`);
    return f;
  });
  const nTrees = options.nTrees ?? 200;
  const seed = options.seed ?? 1;
  const requested = options.sampleSize ?? 256;
  if (!Number.isInteger(nTrees) || nTrees < 1 || nTrees > 10_000) {
    throw new RangeError(`Invalid nTrees: expected 1..10000, got ${String(nTrees)}`);
  }
  if (!Number.isInteger(requested) || requested < 2) {
    throw new RangeError(`Invalid sampleSize: expected an integer >= 2, got ${String(requested)}`);
  }
  const psi = Math.min(requested, data.length);
  const heightLimit = Math.ceil(Math.log2(psi));
  const cPsi = averagePathLength(psi);
  const rand = mulberry32(seed);
  const scale = Math.LN2 / (cPsi * nTrees);
  const trees: Tree[] = [];
  for (let t = 0; t < nTrees; t++) {
    const sample = subsample(data.length, psi, rand).map((i) => data[i]!);
    const nodes: TreeNode[] = [];
    growTree(sample, 0, { nodes, heightLimit, scale, rand });
    trees.push({ target: 0, nodes });
  }
  return {
    ensemble: { nFeatures, nTargets: 1, base: [0], trees, post: "exp" },
    sampleSize: psi,
    heightLimit,
    cPsi,
  };
}

/**
 * The anomaly score s = 2^(−E[h(x)]/c(ψ)) computed in float64 from path
 * lengths, independently of the ensemble arithmetic (a reference for tests;
 * serving uses the ONNX model).
 *
 * @param forest a fitted forest
 * @param row one row
 */
export function isolationScore(forest: IsolationForest, row: ArrayLike<number>): number {
  const e = forest.ensemble;
  if (row === null || typeof row !== "object" || row.length !== e.nFeatures) {
    throw new RangeError(`Invalid row: expected ${e.nFeatures} features`);
  }
  const x = Float32Array.from(row);
  let total = 0;
  for (const tree of e.trees) {
    let i = 0;
    for (;;) {
      const node = tree.nodes[i]!;
      if (node.kind === "leaf") {
        // The leaf stores −h·ln2/(c(ψ)·T); undo the scaling to recover h.
        total += (-node.value * forest.cPsi * e.trees.length) / Math.LN2;
        break;
      }
      i = x[node.feature]! <= node.threshold ? node.yes : node.no;
    }
  }
  return Math.pow(2, -(total / e.trees.length) / forest.cPsi);
}

/**
 * Grow the subtree of `part` at `depth` into `ctx.nodes`, pre-order: a node is
 * pushed before its children, so children get larger indices (as `TreeEnsemble`
 * requires). Returns the subtree root's index.
 */
function growTree(
  part: Float32Array[],
  depth: number,
  ctx: { nodes: TreeNode[]; heightLimit: number; scale: number; rand: () => number },
): number {
  const { nodes } = ctx;
  const at = nodes.length;
  const split = depth < ctx.heightLimit && part.length > 1 ? chooseSplit(part, ctx.rand) : null;
  if (split === null) {
    nodes.push({ kind: "leaf", value: -(depth + averagePathLength(part.length)) * ctx.scale });
    return at;
  }
  const { feature, threshold } = split;
  nodes.push({ kind: "split", feature, threshold, yes: 0, no: 0 });
  const yes = growTree(part.filter((r) => r[feature]! <= threshold), depth + 1, ctx);
  const no = growTree(part.filter((r) => r[feature]! > threshold), depth + 1, ctx);
  nodes[at] = { kind: "split", feature, threshold, yes, no };
  return at;
}

/** `k` distinct indices of 0..n−1 (partial Fisher–Yates), in draw order. */
function subsample(n: number, k: number, rand: () => number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k);
}

/**
 * A random split of `part`: a random non-constant feature, a uniform value p in
 * (min, max), and as threshold a float32 strictly between the observed values
 * on either side of p (their float32 midpoint, or the lower one when the two are
 * adjacent float32 numbers). Null when every feature is constant.
 */
function chooseSplit(
  part: Float32Array[],
  rand: () => number,
): { feature: number; threshold: number } | null {
  const nFeatures = part[0]!.length;
  const usable: { feature: number; min: number; max: number }[] = [];
  for (let f = 0; f < nFeatures; f++) {
    let min = Infinity;
    let max = -Infinity;
    for (const r of part) {
      const v = r[f]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (max > min) usable.push({ feature: f, min, max });
  }
  if (usable.length === 0) return null;
  const { feature, min, max } = usable[Math.floor(rand() * usable.length)]!;
  const p = min + rand() * (max - min);
  let lo = min;
  let hi = max;
  for (const r of part) {
    const v = r[feature]!;
    if (v <= p && v > lo) lo = v;
    if (v > p && v < hi) hi = v;
  }
  // p can round onto max itself; then the split falls below the largest value.
  if (lo === hi) {
    lo = min;
    for (const r of part) if (r[feature]! < hi && r[feature]! > lo) lo = r[feature]!;
  }
  const mid = Math.fround(lo + (hi - lo) / 2);
  const threshold = mid > lo && mid < hi ? mid : lo;
  return { feature, threshold };
}
