/**
 * Types shared by the risk trainer and its private helpers: the evaluation it
 * reports, the card content it builds, and the per-block rows it trains on.
 * Kept apart from `train_risk.ts` so `_risk_card.ts` can use them without an
 * import cycle; `train_risk.ts` re-exports the public ones.
 *
 * @module
 */
import type { ModelCard } from "../../model_card.ts";
import type { FeatureQuantiles, RiskReason } from "../../risk/explain.ts";
import type { TxView } from "../../features/tx_view.ts";

/** Score distribution summary. */
export interface ScoreSummary {
  /** Number of transactions. */
  n: number;
  /** Percentiles of the anomaly score. */
  p1: number;
  /** 5th percentile. */
  p5: number;
  /** 25th percentile. */
  p25: number;
  /** Median. */
  p50: number;
  /** 75th percentile. */
  p75: number;
  /** 95th percentile. */
  p95: number;
  /** 99th percentile. */
  p99: number;
  /** Largest score. */
  max: number;
}

/** One evaluation of a train/test split by block. */
export interface SplitEvaluation {
  /** Heights of the training blocks. */
  trainBlocks: number[];
  /** Heights of the held-out blocks. */
  testBlocks: number[];
  /** Scores of the training transactions (in-sample). */
  train: ScoreSummary;
  /** Scores of the held-out transactions. */
  heldOut: ScoreSummary;
  /** Share of held-out real transactions scoring above the training p99 (false-positive proxy). */
  heldOutFlagRateAtTrainP99: number;
  /** Share of held-out real transactions the rule baseline flags. */
  heldOutFlagRateRuleBaseline: number;
}

/** A constructed anomalous (or control) transaction and how it scored. */
export interface AnomalyCheck {
  /** What was constructed. */
  name: string;
  /** True for the ordinary control transaction, which should not be flagged. */
  control: boolean;
  /** Model score. */
  score: number;
  /** Score above the held-out real p99 of the shipped split. */
  aboveHeldOutP99: boolean;
  /** Score above the training (in-sample) p99 of the shipped model. */
  aboveTrainP99: boolean;
  /** Whether the rule baseline flags it. */
  ruleBaselineFlags: boolean;
  /** The reasons `explainRisk` gives. */
  reasons: RiskReason[];
}

/** The evaluation of the shipped model. */
export interface RiskEvaluation {
  /** The shipped model: trained on the latest block, tested on the earlier ones. */
  shipped: SplitEvaluation;
  /** Forward time split (train on the earlier blocks, test on the latest): the drift check. */
  forward: SplitEvaluation;
  /** Constructed anomalies and the control, scored by the shipped model. */
  anomalies: AnomalyCheck[];
  /** Fee-rate estimate (block median, sat/vB) used for each block. */
  blockFeeRateEstimates: { height: number; satVb: number }[];
}

/** Card content without what only the written file knows (its sha256). */
export type RiskCardContent =
  // Not Omit<>: ModelCard has an index signature (passthrough), and Omit over it drops every
  // known key; a key-remapping mapped type keeps them.
  & { [K in keyof ModelCard as K extends "sha256" ? never : K]: ModelCard[K] }
  & { featureQuantiles: FeatureQuantiles };

/** The real transactions of one block as views, with the block's fee-rate stand-in. */
export interface BlockRows {
  /** Block height. */
  height: number;
  /** The block's median fee rate (sat/vB), standing in for the wallet's estimate. */
  estimateSatVb: number;
  /** The non-coinbase transactions as views. */
  views: TxView[];
  /** Their risk feature rows, in the same order. */
  rows: Float32Array[];
}
