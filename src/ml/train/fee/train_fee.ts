/**
 * Training of the fee-rate model from the SatCast snapshot CSV: features,
 * labels, time split, quantile GBT per target, quantile choice on validation,
 * held-out evaluation against three baselines, and the model card's content.
 * Pure and deterministic: the same text and seed give the same ensemble.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  FEE_FEATURE_NAMES,
  FEE_REFERENCE_FEATURE,
  feeFeatures,
  type MempoolSnapshot,
  MIN_RELAY_FEERATE_SAT_VB,
} from "../../features/fee_features.ts";
import {
  predictTreeEnsemble,
  type Tree,
  type TreeEnsemble,
  type TreeNode,
} from "../tree_ensemble.ts";
import {
  calibrationMultiplier,
  FEE_METHODS,
  type FeeMethod,
  type FeeMetrics,
  feeMetrics,
  type FeeSplit,
  type FeeTargetEvaluation,
  mempoolSpaceBaseline,
  percentileRuleBaseline,
  projectedMedianBaseline,
  rollingFolds,
  timeSplit,
} from "./evaluate.ts";
import { feeCard, type FeeCardContent } from "./_fee_card.ts";
import { binMatrix, type BinnedMatrix, fitLogQuantileGbt } from "./gbt.ts";
import { FEE_TARGETS, neededFeeRateLabels } from "./labels.ts";
import { blockArrivals, parseSatcastCsv, type SatcastRow, satcastSnapshots } from "./satcast.ts";

/** Quantile levels (of the ratio to the projected median) tried per target on the validation folds. */
export const FEE_QUANTILE_GRID: readonly number[] = Object.freeze([0.5, 0.65, 0.8]);

/** Expanding-window validation folds before the test gap (the last is the split's validation). */
export const FEE_VALIDATION_FOLDS = 3;

/**
 * Calibrated hit rate on every validation fold must reach mempool.space's on
 * that fold plus this margin (capped at 100%), so a shift between weeks does
 * not drop the model below it at once.
 */
export const FEE_HIT_RATE_MARGIN = 0.02;

/**
 * Optional strata of the calibration (Mondrian-style): one multiplier per
 * range of `mempool_vsize_blocks` (`<= 1`, `<= 2`, `<= 4`, more), each meeting
 * the hit-rate condition within its stratum. A shallow mempool clears within
 * 144 blocks at the minimum feerate, a deep one does not; one global
 * multiplier has to cover the worst case in both.
 */
export const FEE_CALIBRATION_STRATA: Readonly<{ feature: string; cuts: readonly number[] }> = Object
  .freeze({ feature: "mempool_vsize_blocks", cuts: Object.freeze([1, 2, 4]) });

/** A stratum needs this many rows in a fold for that fold to set its multiplier. */
const MIN_STRATUM_ROWS = 30;
/** Multipliers are clamped to [1/16, 16] (0 means the 1 sat/vB floor alone suffices). */
const MULTIPLIER_RANGE = [1 / 16, 16] as const;

/**
 * Boosting hyper-parameters (fixed, not tuned on the test split). 60 trees at
 * learning rate 0.2 rather than 120 at 0.1: on the validation folds the summed
 * mean overpayment differs by 3% (1.96 against 1.90 sat/vB over the four
 * targets) for half the per-row inference cost, which is what bounds request
 * coalescing in the engine.
 */
export const FEE_GBT_PARAMS: Readonly<{
  nTrees: number;
  learningRate: number;
  maxDepth: number;
  minLeafSize: number;
  subsample: number;
  maxBins: number;
}> = Object.freeze({
  nTrees: 60,
  learningRate: 0.2,
  maxDepth: 4,
  minLeafSize: 50,
  subsample: 0.8,
  maxBins: 64,
});

/** Tensor names of the fee model's ONNX graph. */
export const FEE_ONNX_TENSORS: Readonly<{ inputName: string; outputName: string }> = Object.freeze({
  inputName: "features",
  outputName: "feerate_sat_vb",
});

export type { FeeCardContent } from "./_fee_card.ts";

/** Everything `trainFeeModel` produces. */
export interface FeeTrainingResult {
  /** The model: output column t = feerate (sat/vB) to confirm within `targets[t]` blocks. */
  ensemble: TreeEnsemble;
  /** Input columns. */
  featureNames: readonly string[];
  /** Targets in blocks. */
  targets: readonly number[];
  /** Chosen quantile level per target. */
  quantiles: number[];
  /** Row ranges and their first/last timestamps. */
  split: FeeSplit & { timestamps: Record<"train" | "validation" | "test", [number, number]> };
  /** Held-out test results per target. */
  evaluation: FeeTargetEvaluation[];
  /** Validation results per target: the choice of quantile and calibration. */
  validation: FeeTargetValidation[];
  /** Card front matter content (the caller adds version and sha256). */
  cardContent: FeeCardContent;
  /** Card markdown body. */
  cardBody: string;
}

/** Multipliers applied to one target's output (inside the ensemble, as a last tree). */
export interface FeeCalibration {
  /** Stratifying feature name, or null for one global multiplier. */
  stratifiedBy: string | null;
  /** Upper bounds of the strata (`x <= cut`), ascending; empty when global. */
  cuts: number[];
  /** Multiplier per stratum (`cuts.length + 1` values). */
  multipliers: number[];
}

/** How a target's quantile level and calibration were chosen on the validation folds. */
export interface FeeTargetValidation {
  /** N blocks. */
  targetBlocks: number;
  /** Chosen quantile level. */
  quantile: number;
  /** Chosen calibration. */
  calibration: FeeCalibration;
  /** Every candidate with the mean over folds of the calibrated median overpayment. */
  candidates: { quantile: number; stratified: boolean; meanMedianOverpaySatVb: number }[];
  /**
   * Per fold: the calibrated model (in-sample for the calibration, which is fitted
   * on these folds) and mempool.space on the same rows.
   */
  folds: {
    validation: [number, number];
    model: FeeMetrics;
    mempoolSpace: FeeMetrics;
  }[];
}

/** The data set built from a CSV: snapshots, feature matrix, labels. */
export interface FeeDataset {
  /** Parsed rows. */
  rows: SatcastRow[];
  /** Snapshots aligned with rows. */
  snapshots: MempoolSnapshot[];
  /** Row-major features, `rows.length * FEE_FEATURE_NAMES.length`. */
  x: Float32Array;
  /** Needed rate per target (order of `FEE_TARGETS`), NaN where unlabelled. */
  labels: Float64Array[];
}

/**
 * Parse a snapshot CSV into features and labels.
 *
 * @param csvText SatCast-format CSV
 * @returns the dataset
 */
export function buildFeeDataset(csvText: string): FeeDataset {
  const rows = parseSatcastCsv(csvText);
  const snapshots = satcastSnapshots(rows);
  const d = FEE_FEATURE_NAMES.length;
  const x = new Float32Array(rows.length * d);
  snapshots.forEach((s, i) => x.set(feeFeatures(s), i * d));
  const arrivals = blockArrivals(rows);
  const labels = FEE_TARGETS.map((targetBlocks) =>
    neededFeeRateLabels(arrivals, { rowCount: rows.length, targetBlocks })
  );
  return { rows, snapshots, x, labels };
}

/**
 * Rows of `[start, end)` usable for evaluation of target t: labelled and with a
 * projected median (so every baseline is defined on the same rows).
 *
 * @param ds dataset
 * @param range row range
 * @param t target index
 */
export function evaluableRows(
  ds: FeeDataset,
  range: { start: number; end: number },
  t: number,
): number[] {
  const out: number[] = [];
  for (let r = range.start; r < range.end; r++) {
    if (Number.isFinite(ds.labels[t]![r]!) && ds.snapshots[r]!.nextBlockMedianFeeSatVb !== null) {
      out.push(r);
    }
  }
  return out;
}

/**
 * Metrics of the model column `t` and the three baselines on `rows`.
 *
 * @param ds dataset
 * @param options `rows`, target index `t`, `predict` (model output row for a dataset row)
 * @returns metrics per method
 */
export function evaluateFeeRows(
  ds: FeeDataset,
  options: { rows: readonly number[]; t: number; predict: (row: number) => number },
): Record<FeeMethod, FeeMetrics> {
  const { rows, t } = options;
  const n = FEE_TARGETS[t]!;
  const needed = rows.map((r) => ds.labels[t]![r]!);
  const preds: Record<FeeMethod, number[]> = {
    model: rows.map((r) => options.predict(r)),
    mempool_space: rows.map((r) => mempoolSpaceBaseline(ds.rows[r]!.recommended, n)),
    percentile_rule: rows.map((r) => percentileRuleBaseline(ds.snapshots[r]!, n)),
    projected_median: rows.map((r) => projectedMedianBaseline(ds.snapshots[r]!)),
  };
  return Object.fromEntries(
    FEE_METHODS.map((m) => [m, feeMetrics(preds[m], needed)]),
  ) as Record<FeeMethod, FeeMetrics>;
}

/**
 * Train and evaluate the fee-rate model.
 *
 * @param csvText SatCast-format CSV (the committed training file)
 * @param options `seed` of the subsampling (default 1)
 * @returns model, split, evaluation and card content
 * @example
 * ```ts
 * const result = trainFeeModel(await Deno.readTextFile(csvPath));
 * const onnx = treeEnsembleToOnnx(result.ensemble, FEE_ONNX_TENSORS);
 * ```
 */
export function trainFeeModel(
  csvText: string,
  options: { seed?: number; params?: Partial<typeof FEE_GBT_PARAMS> } = {},
): FeeTrainingResult {
  const seed = options.seed ?? 1;
  const params = { ...FEE_GBT_PARAMS, ...options.params };
  const ds = buildFeeDataset(csvText);
  const d = FEE_FEATURE_NAMES.length;
  const heights = ds.rows.map((r) => r.height);
  const split = timeSplit(heights);
  const folds = rollingFolds(heights, split, FEE_VALIDATION_FOLDS);
  // The model predicts ln(needed / reference); the ensemble multiplies by the
  // reference (scaleBy), computed from the float32 feature exactly as ORT does.
  const reference = Float64Array.from(
    { length: ds.rows.length },
    (_, r) => Math.max(ds.x[r * d + FEE_REFERENCE_FEATURE]!, MIN_RELAY_FEERATE_SAT_VB),
  );
  const scaleBy = { feature: FEE_REFERENCE_FEATURE, min: MIN_RELAY_FEERATE_SAT_VB };
  const rowOf = (r: number) => ds.x.subarray(r * d, (r + 1) * d);
  const range = (end: number) => Array.from({ length: end }, (_, i) => i);
  const fit = (m: BinnedMatrix, t: number, end: number, quantile: number) => {
    const f = fitLogQuantileGbt(m, { rates: ds.labels[t]!, rows: range(end), reference }, {
      ...params,
      quantile,
      seed: seed + 7919 * t,
    });
    return { base: f.base, trees: f.trees };
  };
  const foldBins = folds.map((f) =>
    binMatrix(ds.x, { nFeatures: d, fitRows: range(f.trainEnd), maxBins: params.maxBins })
  );
  let refit: BinnedMatrix | undefined;
  const refitBinned = () =>
    refit ??= binMatrix(ds.x, {
      nFeatures: d,
      fitRows: range(split.validation.end),
      maxBins: params.maxBins,
    });
  const strataFeature = FEE_FEATURE_NAMES.indexOf(FEE_CALIBRATION_STRATA.feature);
  const stratumOf = (r: number, cuts: readonly number[]) => {
    const v = ds.x[r * d + strataFeature]!;
    let k = 0;
    while (k < cuts.length && v > cuts[k]!) k++;
    return k;
  };

  const base: number[] = [];
  const trees: Tree[] = [];
  const quantiles: number[] = [];
  const validation: FeeTargetValidation[] = [];
  FEE_TARGETS.forEach((targetBlocks, t) => {
    const foldData = folds.map((f) => {
      const rows = evaluableRows(ds, f.validation, t);
      const needed = rows.map((r) => ds.labels[t]![r]!);
      const mempool = rows.map((r) => mempoolSpaceBaseline(ds.rows[r]!.recommended, targetBlocks));
      return { fold: f, rows, needed, mempool };
    }).filter((f) => f.rows.length > 0);
    if (foldData.length === 0 || evaluableRows(ds, split.test, t).length === 0) {
      throw new RangeError(
        `Cannot train the fee model: no labelled ${targetBlocks}-block rows in validation or test`,
      );
    }
    type Candidate = {
      quantile: number;
      calibration: FeeCalibration;
      score: number;
      foldMetrics: { model: FeeMetrics; mempoolSpace: FeeMetrics }[];
    };
    const candidates: Candidate[] = [];
    for (const quantile of FEE_QUANTILE_GRID) {
      const preds = foldData.map((fd) => {
        const i = folds.indexOf(fd.fold);
        const f = fit(foldBins[i]!, t, fd.fold.trainEnd, quantile);
        const single: TreeEnsemble = {
          nFeatures: d,
          nTargets: 1,
          base: [f.base],
          trees: f.trees.map((nodes) => ({ target: 0, nodes })),
          post: "exp",
          scaleBy,
        };
        return fd.rows.map((r) => predictTreeEnsemble(single, rowOf(r))[0]!);
      });
      for (const cuts of [[], FEE_CALIBRATION_STRATA.cuts]) {
        const multipliers = calibrate(foldData, preds, (r) => stratumOf(r, cuts), cuts.length + 1);
        const foldMetrics = foldData.map((fd, k) => ({
          model: feeMetrics(
            preds[k]!.map((p, i) =>
              p * Math.exp(Math.fround(Math.log(multipliers[stratumOf(fd.rows[i]!, cuts)]!)))
            ),
            fd.needed,
          ),
          mempoolSpace: feeMetrics(fd.mempool, fd.needed),
        }));
        const score = foldMetrics.reduce(
          (sum, m) =>
            sum + (Number.isNaN(m.model.medianOverpaySatVb) ? 0 : m.model.medianOverpaySatVb),
          0,
        ) / foldMetrics.length;
        candidates.push({
          quantile,
          calibration: {
            stratifiedBy: cuts.length === 0 ? null : FEE_CALIBRATION_STRATA.feature,
            cuts: [...cuts],
            multipliers,
          },
          score,
          foldMetrics,
        });
      }
    }
    // Lowest mean calibrated overpayment; ties keep the earlier (lower, global) candidate.
    const best = candidates.reduce((a, c) => (c.score < a.score ? c : a));
    // The final model is refitted on train + gap + validation (the most recent
    // data before the test gap) at the chosen level; the test split stays unseen.
    const final = fit(refitBinned(), t, split.validation.end, best.quantile);
    quantiles.push(best.quantile);
    base.push(final.base);
    for (const nodes of final.trees) trees.push({ target: t, nodes });
    trees.push({ target: t, nodes: calibrationTree(best.calibration, strataFeature) });
    validation.push({
      targetBlocks,
      quantile: best.quantile,
      calibration: best.calibration,
      candidates: candidates.map((c) => ({
        quantile: c.quantile,
        stratified: c.calibration.stratifiedBy !== null,
        meanMedianOverpaySatVb: c.score,
      })),
      folds: foldData.map((fd, k) => ({
        validation: [fd.fold.validation.start, fd.fold.validation.end],
        ...best.foldMetrics[k]!,
      })),
    });
  });
  const ensemble: TreeEnsemble = {
    nFeatures: d,
    nTargets: FEE_TARGETS.length,
    base,
    trees,
    post: "exp",
    scaleBy,
  };

  const testPredictions = new Map<number, Float64Array>();
  const predictRow = (r: number) => {
    let p = testPredictions.get(r);
    if (p === undefined) {
      p = predictTreeEnsemble(ensemble, rowOf(r));
      testPredictions.set(r, p);
    }
    return p;
  };
  const evaluation: FeeTargetEvaluation[] = FEE_TARGETS.map((targetBlocks, t) => ({
    targetBlocks,
    quantile: quantiles[t]!,
    methods: evaluateFeeRows(ds, {
      rows: evaluableRows(ds, split.test, t),
      t,
      predict: (r) => predictRow(r)[t]!,
    }),
  }));
  const ts = (range: { start: number; end: number }): [number, number] => [
    ds.rows[range.start]!.timestampSec,
    ds.rows[range.end - 1]!.timestampSec,
  ];
  const fullSplit = {
    ...split,
    timestamps: { train: ts(split.train), validation: ts(split.validation), test: ts(split.test) },
  };
  const csvSha256 = bytesToHex(sha256(new TextEncoder().encode(csvText)));
  const { cardContent, cardBody } = feeCard({
    split: fullSplit,
    evaluation,
    validation,
    quantiles,
    csvSha256,
    rowCount: ds.rows.length,
    seed,
    params,
    onnxTensors: FEE_ONNX_TENSORS,
    quantileGrid: FEE_QUANTILE_GRID,
    validationFolds: FEE_VALIDATION_FOLDS,
    hitRateMargin: FEE_HIT_RATE_MARGIN,
    calibrationStrata: FEE_CALIBRATION_STRATA,
  });
  return {
    ensemble,
    featureNames: FEE_FEATURE_NAMES,
    targets: FEE_TARGETS,
    quantiles,
    split: fullSplit,
    evaluation,
    validation,
    cardContent,
    cardBody,
  };
}

/**
 * Multipliers per stratum: on every fold with enough rows in the stratum, the
 * smallest multiplier whose hit rate there reaches mempool.space's plus the
 * margin; the largest over folds (strata without data take the global value).
 */
function calibrate(
  foldData: readonly { rows: number[]; needed: number[]; mempool: number[] }[],
  preds: readonly number[][],
  stratumOf: (row: number) => number,
  nStrata: number,
): number[] {
  const clamp = (m: number) => Math.min(MULTIPLIER_RANGE[1], Math.max(MULTIPLIER_RANGE[0], m));
  const worst = (select: (row: number) => boolean, minRows: number): number | null => {
    let m: number | null = null;
    foldData.forEach((fd, k) => {
      const idx = fd.rows.flatMap((r, i) => (select(r) ? [i] : []));
      if (idx.length < minRows) return;
      const needed = idx.map((i) => fd.needed[i]!);
      const reference = feeMetrics(idx.map((i) => fd.mempool[i]!), needed).hitRate;
      const need = calibrationMultiplier(
        idx.map((i) => preds[k]![i]!),
        needed,
        Math.min(1, reference + FEE_HIT_RATE_MARGIN),
      );
      m = Math.max(m ?? 0, need);
    });
    return m;
  };
  const global = clamp(worst(() => true, 1) ?? 1);
  if (nStrata === 1) return [global];
  return Array.from({ length: nStrata }, (_, s) => {
    const m = worst((r) => stratumOf(r) === s, MIN_STRATUM_ROWS);
    return m === null ? global : clamp(m);
  });
}

/** The calibration as a tree adding ln(multiplier) of the row's stratum (a chain of splits). */
function calibrationTree(c: FeeCalibration, feature: number): TreeNode[] {
  const leaf = (m: number): TreeNode => ({ kind: "leaf", value: Math.fround(Math.log(m)) });
  const nodes: TreeNode[] = [];
  c.cuts.forEach((cut, k) => {
    const at = nodes.length;
    nodes.push({ kind: "split", feature, threshold: Math.fround(cut), yes: at + 1, no: at + 2 });
    nodes.push(leaf(c.multipliers[k]!));
  });
  nodes.push(leaf(c.multipliers[c.cuts.length]!));
  return nodes;
}
