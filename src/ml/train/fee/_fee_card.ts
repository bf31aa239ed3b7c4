/**
 * The fee-rate model card: front matter content and markdown body, built from
 * a training run's split, validation and held-out evaluation. Private to
 * `train_fee.ts`, which passes in its settings so that this module does not
 * import it back (STYLE.md §2: no cycles, type-only imports included).
 *
 * @module
 */
import { FEE_FEATURE_NAMES } from "../../features/fee_features.ts";
import type { ModelCard } from "../../model_card.ts";
import {
  type FeeMetrics,
  type FeeSplit,
  type FeeTargetEvaluation,
  formatFeeEvalTable,
  PERCENTILE_RULE,
} from "./evaluate.ts";
import { FEE_TARGETS } from "./labels.ts";

/** The card's machine-read content except what depends on the ONNX bytes. */
export type FeeCardContent = Pick<
  ModelCard,
  | "name"
  | "task"
  | "inputs"
  | "outputs"
  | "features"
  | "targets"
  | "training"
  | "metrics"
  | "baselines"
  | "licence"
  | "intendedUse"
  | "limitations"
>;

/**
 * What the card reads of one target's validation (`FeeTargetValidation` in
 * `train_fee.ts`); the whole object is written to the card's `training.validation`.
 */
export interface FeeCardValidation {
  /** N blocks. */
  targetBlocks: number;
  /** Chosen quantile level. */
  quantile: number;
  /** Chosen calibration (one multiplier per stratum). */
  calibration: { multipliers: readonly number[] };
  /** Per fold: row range, the calibrated model and mempool.space on the same rows. */
  folds: readonly {
    validation: readonly [number, number];
    model: FeeMetrics;
    mempoolSpace: FeeMetrics;
  }[];
}

/** Inputs of {@linkcode feeCard}: a training run's results and the settings it used. */
export interface FeeCardInput {
  /** Row ranges and their first/last timestamps. */
  split: FeeSplit & { timestamps: Record<"train" | "validation" | "test", [number, number]> };
  /** Held-out test results per target. */
  evaluation: FeeTargetEvaluation[];
  /** Validation results per target. */
  validation: readonly FeeCardValidation[];
  /** Chosen quantile level per target. */
  quantiles: number[];
  /** sha256 (hex) of the training CSV. */
  csvSha256: string;
  /** Rows in the training CSV. */
  rowCount: number;
  /** Subsampling seed. */
  seed: number;
  /** Boosting hyper-parameters (`FEE_GBT_PARAMS` with any overrides). */
  params: Readonly<Record<string, number>>;
  /** Tensor names of the ONNX graph (`FEE_ONNX_TENSORS`). */
  onnxTensors: Readonly<{ inputName: string; outputName: string }>;
  /** Quantile levels tried per target (`FEE_QUANTILE_GRID`). */
  quantileGrid: readonly number[];
  /** Expanding-window validation folds (`FEE_VALIDATION_FOLDS`). */
  validationFolds: number;
  /** Hit-rate margin over mempool.space (`FEE_HIT_RATE_MARGIN`). */
  hitRateMargin: number;
  /** Calibration strata (`FEE_CALIBRATION_STRATA`). */
  calibrationStrata: Readonly<{ feature: string; cuts: readonly number[] }>;
}

function isoDate(sec: number): string {
  return new Date(sec * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * Build the fee-rate model card's content and markdown body.
 *
 * @param o training results and settings
 * @returns front matter content (the caller adds version and sha256) and body
 */
export function feeCard(o: FeeCardInput): { cardContent: FeeCardContent; cardBody: string } {
  const s = o.split;
  const range = (k: "train" | "validation" | "test") =>
    `rows ${s[k].start}–${s[k].end - 1}, ${isoDate(s.timestamps[k][0])} to ${
      isoDate(s.timestamps[k][1])
    }`;
  const limitations = [
    "Labels are a proxy: the minimum over the next N block arrivals of mempool.space's projected next-block median just before each arrival (a block template, not mined blocks); floored at 1 sat/vB.",
    "recentBlockMedianFeesSatVb in training is a proxy too: the projected median just before each earlier arrival (repeated for each block of a multi-block jump between 5-minute snapshots); live serving should pass real block medians, which differ somewhat.",
    "Trained on 7 weeks of a low-fee regime (fastestFee p50 3 sat/vB, max 52): fee spikes and high-fee regimes are barely represented, and tree outputs cannot extrapolate above the training range.",
    "Rows are 5-minute snapshots and strongly autocorrelated; the test split is about one week, so metrics carry wide uncertainty.",
    "The histogram is coarsened to the training bins (1 sat/vB wide below 10 sat/vB); sub-1 sat/vB transactions are ignored.",
    "The calibration multiplier is set by the worst validation fold (a week with a higher fee level, where mempool.space's integer recommendations hit often): in calm weeks the model hits far more often than mempool.space and can overpay more than it (validation: N=6 on the last fold, N=144 on the April folds where mempool.space's 1 sat/vB is exact). The hit-rate condition holds on new data only if its shift is no worse than the folds'.",
    "The output scales with the projected next-block median (ratio model): a wrong or stale median moves every target's output with it; an unknown median falls back to the feerate at 1 MvB depth.",
    "Outputs below 1 sat/vB must be raised to the node's minimum relay feerate by the caller (the evaluation does this for every method).",
  ];
  const targets = FEE_TARGETS.map((n) => `feerate_${n}_block${n === 1 ? "" : "s"}_sat_vb`);
  const metrics = Object.fromEntries(
    o.evaluation.map((e) => [`n${e.targetBlocks}`, e.methods.model]),
  );
  const baselines = Object.fromEntries(o.evaluation.map((e) => [
    `n${e.targetBlocks}`,
    {
      mempool_space: e.methods.mempool_space,
      percentile_rule: e.methods.percentile_rule,
      projected_median: e.methods.projected_median,
    },
  ]));
  const cardContent: FeeCardContent = {
    name: "fee-rate",
    task:
      "Feerate (sat/vB) needed to confirm within 1, 3, 6 and 144 blocks, from a mempool snapshot (quantile gradient-boosted trees on the log ratio to the projected next-block median, calibrated against mempool.space's hit rate)",
    inputs: [{
      name: o.onnxTensors.inputName,
      type: "float32",
      shape: [-1, FEE_FEATURE_NAMES.length],
    }],
    outputs: [{
      name: o.onnxTensors.outputName,
      type: "float32",
      shape: [-1, FEE_TARGETS.length],
    }],
    features: [...FEE_FEATURE_NAMES],
    targets,
    training: {
      data: "models/data/fee/satcast_mempool_snapshots_5min_2025-03-05_2025-04-27.csv",
      dataSha256: o.csvSha256,
      rows: o.rowCount,
      provenance:
        "UBC-MDS/Capstone_SatCast_Trilemma data/raw/mar_5_may_12.parquet @ d97447982855229d9de11bf89bf13fb80dcd39a9 (rows before 2025-04-28), see models/data/fee/PROVENANCE.md",
      dataLicence: "MIT (© 2025 JennyonOort)",
      featureDefinition: "src/ml/features/fee_features.ts",
      labels: "src/ml/train/fee/labels.ts",
      algorithm:
        "quantile (pinball) gradient boosting on ln(needed / max(next_block_median_sat_vb, 1)), one tree set per target; output exp(.) times that reference (scaleBy), then a calibration multiplier (a last tree per target)",
      hyperparameters: { ...o.params, seed: o.seed },
      quantiles: Object.fromEntries(FEE_TARGETS.map((n, t) => [`n${n}`, o.quantiles[t]])),
      quantileChoice:
        `per target, the (quantile level, calibration) pair with the lowest mean over ${o.validationFolds} expanding-window validation folds of the calibrated median overpayment; calibration = the smallest multiplier whose hit rate reaches mempool.space's + ${o.hitRateMargin} on every fold (globally, or per ${o.calibrationStrata.feature} stratum <= ${
          o.calibrationStrata.cuts.join(", ")
        })`,
      quantileGrid: [...o.quantileGrid],
      validation: o.validation,
      split: {
        method: `time split with ${s.gapBlocks}-block gaps (>= the 144-block label window)`,
        train: range("train"),
        validation: range("validation"),
        test: range("test"),
        finalFit: `train + gap + validation (rows 0–${
          s.validation.end - 1
        }) at the chosen quantiles`,
      },
    },
    metrics: {
      split: "test",
      definitions:
        "hitRate = share of rows with max(1, prediction) >= needed; medianOverpay over hit rows (sat/vB and relative to needed); medianShortfall over missed rows; costRatio = sum of predictions / sum of needed",
      ...metrics,
    },
    baselines: {
      mempool_space:
        "recommended fastestFee (N=1), halfHourFee (3), hourFee (6), economyFee (144) in the same snapshot",
      percentile_rule: `percentile p of the last k block medians: ${
        Object.entries(PERCENTILE_RULE).map(([n, r]) => `N=${n}: p${r.p * 100} of ${r.k}`).join(
          ", ",
        )
      }`,
      projected_median: "projected next-block median in the same snapshot, for every N",
      ...baselines,
    },
    licence: "MIT (model and training data)",
    intendedUse:
      "Suggesting a feerate for a target confirmation window on Bitcoin mainnet from a live mempool snapshot, next to (not instead of) a node's own estimator.",
    limitations,
  };
  const body = [
    "# fee-rate",
    "",
    "Quantile gradient-boosted trees that map a mempool snapshot (`src/ml/features/fee_features.ts`) to the",
    "feerate needed to confirm within 1, 3, 6 and 144 blocks. Trained by `deno task train` on 5-minute",
    "mempool.space snapshots from 2025-03-05 to 2025-04-27 (SatCast data, MIT).",
    "",
    "## Split",
    "",
    `- train: ${range("train")}`,
    `- validation: ${range("validation")}, the last of ${o.validationFolds} expanding-window`,
    "  folds (each earlier fold shifted back by one validation span, each after its own gap).",
    "  Per target, the quantile level and a calibration multiplier are chosen on these folds:",
    `  the multiplier is the smallest whose hit rate reaches mempool.space's + ${
      o.hitRateMargin * 100
    } points on`,
    "  every fold (so the worst week sets it), optionally per mempool-depth stratum; the level",
    "  (and stratification) with the lowest mean calibrated median overpayment wins. The final",
    "  model is refitted on train + validation at that level and the multipliers are applied.",
    `- test (reported below): ${range("test")}`,
    `- gaps of ${s.gapBlocks} blocks between parts, longer than the 144-block label window.`,
    "",
    "## Validation folds (chosen calibration, in-sample for the multiplier)",
    "",
    "| N | q | multipliers | fold | model hit | model overpay | mempool.space hit | mempool.space overpay |",
    "|---|---|---|---|---|---|---|---|",
    ...o.validation.flatMap((v) =>
      v.folds.map((f) =>
        `| ${v.targetBlocks} | ${v.quantile} | ${
          v.calibration.multipliers.map((m) => m.toFixed(3)).join(", ")
        } | rows ${f.validation[0]}–${f.validation[1] - 1} | ${
          (f.model.hitRate * 100).toFixed(1)
        }% | ${f.model.medianOverpaySatVb.toFixed(2)} | ${
          (f.mempoolSpace.hitRate * 100).toFixed(1)
        }% | ${f.mempoolSpace.medianOverpaySatVb.toFixed(2)} |`
      )
    ),
    "",
    "## Held-out test results",
    "",
    formatFeeEvalTable(o.evaluation),
    "",
    "hit rate: share of rows where max(1, prediction) >= the needed rate. Overpayment: median of",
    "prediction - needed over the hit rows. Shortfall: median of needed - prediction over the misses.",
    "Cost ratio: sum of predictions / sum of needed rates over all rows.",
    "",
    "## Limitations",
    "",
    ...limitations.map((l) => `- ${l}`),
  ].join("\n");
  return { cardContent, cardBody: body };
}
