/**
 * The model card of the transaction-risk model: front matter (identity,
 * training, metrics, baselines, limitations, feature quantiles) and the
 * markdown body, both built from the evaluation `train_risk.ts` computes.
 *
 * @module
 */
import { RISK_FEATURE_DOCS, RISK_FEATURE_NAMES } from "../../features/tx_risk_features.ts";
import type { FeatureQuantiles } from "../../risk/explain.ts";
import type { BlockRows, RiskCardContent, RiskEvaluation, ScoreSummary } from "./_risk_types.ts";

/** Model name and version in the card. */
export const RISK_MODEL_NAME = "tx-risk";
/** Model version in the card. */
export const RISK_MODEL_VERSION = "0.1.0";
/** Input tensor name. */
export const RISK_INPUT_NAME = "features";
/** Output tensor name. */
export const RISK_OUTPUT_NAME = "anomaly_score";

/** The training settings the card reports (they are not in the evaluation). */
export interface CardHyperParameters {
  /** PRNG seed of the forest. */
  seed: number;
  /** Number of trees. */
  nTrees: number;
  /** Subsample size psi before capping at the training row count. */
  sampleSize: number;
}

/**
 * Card front matter (without sha256) of the shipped model.
 *
 * @param evaluation the held-out evaluation and constructed anomalies
 * @param featureQuantiles per-feature quantiles of the training rows
 * @param blocks every block used, train and held out
 * @param hyper seed, tree count and subsample size of the fit
 * @returns the card content
 */
export function buildCard(
  evaluation: RiskEvaluation,
  featureQuantiles: FeatureQuantiles,
  blocks: BlockRows[],
  hyper: CardHyperParameters,
): RiskCardContent {
  const { seed, nTrees, sampleSize } = hyper;
  const s = evaluation.shipped;
  const f = evaluation.forward;
  return {
    name: RISK_MODEL_NAME,
    version: RISK_MODEL_VERSION,
    task:
      "Unsupervised anomaly score of a transaction or PSBT (isolation forest). Not trained on fraud labels: a high score means unlike the real transactions seen in training, not fraud.",
    inputs: [{ name: RISK_INPUT_NAME, type: "float32", shape: [-1, RISK_FEATURE_NAMES.length] }],
    outputs: [{ name: RISK_OUTPUT_NAME, type: "float32", shape: [-1, 1] }],
    features: [...RISK_FEATURE_NAMES],
    targets: [RISK_OUTPUT_NAME],
    training: {
      algorithm:
        `Isolation forest (Liu, Ting & Zhou 2008): subsample psi = min(${sampleSize}, n) without replacement, height limit ceil(log2 psi), score 2^(-E[h]/c(psi)) with c(n) = 2(ln(n-1) + 0.5772156649) - 2(n-1)/n; a node's feature is drawn among those not constant in it. psi was chosen among 64, 128 and 256 by looking at this card's evaluation (no separate validation block exists)`,
      trees: nTrees,
      sampleSize: Math.min(sampleSize, s.train.n),
      seed,
      rows: { train: s.train.n, heldOut: s.heldOut.n },
      data: blocks.map((b) => ({
        file: `models/data/tx/block_${b.height}.getblock3.json`,
        height: b.height,
        transactions: b.views.length,
        role: s.trainBlocks.includes(b.height) ? "train" : "held out",
      })),
      provenance:
        "0xB10C/transactionfee-info @ a0c114abe6937cdcb88a396cec632d0c14560dbe, backend/testdata/{361582,739990}.json (MIT, (c) 2023 0xB10C); see models/data/tx/PROVENANCE.md",
      split: `By block, never random. Shipped model: trained on the latest block (${
        s.trainBlocks.join(", ")
      }), held out the earlier block(s) (${
        s.testBlocks.join(", ")
      }). Drift check: the forward time split (train ${f.trainBlocks.join(", ")}, test ${
        f.testBlocks.join(", ")
      }) is reported under metrics.forwardSplit. Coinbase transactions skipped.`,
      feeRateEstimate:
        "For historical blocks the block's median fee rate (sat/vB) stands in for the wallet's fee estimate",
      featureDocs: { ...RISK_FEATURE_DOCS },
    },
    metrics: {
      heldOutScores: s.heldOut,
      trainScores: s.train,
      heldOutFlagRateAtTrainP99: s.heldOutFlagRateAtTrainP99,
      constructedAnomalies: evaluation.anomalies.map((a) => ({
        name: a.name,
        control: a.control,
        score: a.score,
        aboveHeldOutP99: a.aboveHeldOutP99,
        aboveTrainP99: a.aboveTrainP99,
      })),
      forwardSplit: f,
    },
    baselines: {
      ruleBaseline:
        "psbt_inspect fat-finger guard (fee rate > 10x estimate or > 1000 sat/vB; fee > 10 % of the amount and >= 100,000 sat) plus any dust output",
      heldOutFlagRate: s.heldOutFlagRateRuleBaseline,
      constructedAnomaliesFlagged: evaluation.anomalies.map((a) => ({
        name: a.name,
        control: a.control,
        flagged: a.ruleBaselineFlags,
      })),
    },
    licence:
      "Model and code: the project's licence. Training data: MIT (0xB10C/transactionfee-info).",
    intendedUse:
      "A second opinion beside the deterministic policy and deny-list checks before the edge signs a PSBT: surface unusual transactions for review with the reasons (features far from the training distribution). Not a fraud classifier and not a reason to refuse on its own.",
    limitations: [
      `Trained on the ${s.train.n} non-coinbase transactions of one block (${
        s.trainBlocks.join(", ")
      }, June 2022); held out: ${s.heldOut.n} transactions of a 2015 block. Two blocks are far too few to describe mainnet; taproot outputs, v3 transactions and today's wallets are barely or not represented.`,
      `The score drifts with the era: the forward split (a model of 2015 scoring 2022) puts ${
        pct(f.heldOutFlagRateAtTrainP99)
      } of ordinary 2022 transactions above its training p99. Expect the same for today's transactions scored by a 2022 model; recalibrate thresholds on current traffic.`,
      "An isolation forest draws splits inside the training range, so a value far beyond it (a 1,000x fee rate) is isolated no faster than the most extreme training transaction: scores of blatant anomalies stay around 0.6-0.7, and features constant in training (unusual_script_output_share is 0 for every training transaction) carry no weight in the score. The deterministic rules and the reasons (explainRisk) cover these cases.",
      "No labels: the score measures unusualness. Unusual but legitimate transactions (consolidations, batch payouts, CoinJoins) score high; a fraud that looks like an ordinary payment scores low.",
      "The fee-rate feature compares to the caller's fee estimate; in training the block median stood in for it. Without an estimate the feature is neutral (0).",
      "Change is guessed with heuristics for raw transactions (address reuse, script type, round amounts) but marked exactly by wallets in a PSBT, so change_identified means slightly different things in training and serving.",
      "Deny-list matches (OFAC, ransomware) are separate deterministic rules, not part of this score.",
    ],
    featureQuantiles,
  };
}

/**
 * Card markdown body: data and split, score tables, constructed anomalies, limitations.
 *
 * @param evaluation the held-out evaluation and constructed anomalies
 * @returns the markdown
 */
export function buildCardBody(evaluation: RiskEvaluation): string {
  const s = evaluation.shipped;
  const f = evaluation.forward;
  const row = (name: string, x: ScoreSummary) =>
    `| ${name} | ${x.n} | ${x.p1} | ${x.p5} | ${x.p50} | ${x.p95} | ${x.p99} | ${x.max} |`;
  const yes = (b: boolean) => (b ? "yes" : "no");
  const anomalyRows = evaluation.anomalies.map((a) =>
    `| ${a.name} | ${a.score} | ${yes(a.aboveHeldOutP99)} | ${yes(a.aboveTrainP99)} | ${
      yes(a.ruleBaselineFlags)
    } | ${a.reasons.map((x) => x.feature).join(", ") || "-"} |`
  );
  return `# ${RISK_MODEL_NAME} ${RISK_MODEL_VERSION}: transaction anomaly score

**Unsupervised.** There is no labelled fraud data. This isolation forest learned what real mainnet
transactions look like and scores how unlike them a transaction is, from 0 to 1 (higher is more
unusual; ordinary transactions score about 0.35-0.5). It is a second opinion for review, not a
verdict, and the reasons come from comparing each feature with the training distribution.

## Data and split

Real non-coinbase transactions from Bitcoin Core \`getblock <hash> 3\` of mainnet blocks ${
    evaluation.blockFeeRateEstimates.map((b) => b.height).join(" and ")
  }
(\`models/data/tx/\`, MIT, 0xB10C/transactionfee-info). The block median fee rate stands in for the
fee estimate (${
    evaluation.blockFeeRateEstimates.map((b) => `${b.height}: ${b.satVb} sat/vB`).join(", ")
  }).

Split by block, never random. The shipped model is trained on the most recent block
(${s.trainBlocks.join(", ")}) and tested on the older one (${s.testBlocks.join(", ")}): it is the
model closest to what the edge will see, and its test measures how the score carries across eras.
The forward time split (train ${f.trainBlocks.join(", ")}, test ${f.testBlocks.join(", ")}) is
the drift check.

## Scores of real transactions

| split | n | p1 | p5 | p50 | p95 | p99 | max |
| --- | --- | --- | --- | --- | --- | --- | --- |
${row(`shipped: train ${s.trainBlocks.join(",")} (in-sample)`, s.train)}
${row(`shipped: held out ${s.testBlocks.join(",")}`, s.heldOut)}
${row(`forward: train ${f.trainBlocks.join(",")} (in-sample)`, f.train)}
${row(`forward: held out ${f.testBlocks.join(",")}`, f.heldOut)}

Held-out real transactions above the training p99 (a false-positive proxy): shipped
${pct(s.heldOutFlagRateAtTrainP99)}, forward ${pct(f.heldOutFlagRateAtTrainP99)}. The rule
baseline (fat-finger guard plus dust) flags ${pct(s.heldOutFlagRateRuleBaseline)} of the shipped
split's held-out transactions (forward: ${pct(f.heldOutFlagRateRuleBaseline)}).

## Constructed anomalies (shipped model)

PSBT-like transactions with P2WPKH inputs, wallet-marked change, RBF and a locktime, at the held-out
block's fee estimate unless stated.

| transaction | score | > held-out p99 | > train p99 | rule baseline | reasons |
| --- | --- | --- | --- | --- | --- |
${anomalyRows.join("\n")}

## Limitations

Two blocks from two eras are far too few; the forward split shows a model of one era flags many
ordinary transactions of the next. Unusual is not fraudulent (consolidations, batch payouts and
CoinJoins are unusual). Change is guessed on raw transactions but marked exactly on PSBTs.
Deny-list hits are separate rules: the OFAC SDN address list (0xB10C/ofac-sanctioned-digital-currency-addresses,
MIT) and ransomware addresses from Jack Cable, Ian W Gray, Damon McCoy (2024), "Showing the
Receipts: Understanding the Modern Ransomware Ecosystem", eCrime (cablej/showing-the-receipts,
CC BY 4.0).
`;
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10} %`;
}
