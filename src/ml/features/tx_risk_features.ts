/**
 * The feature row of the transaction-risk anomaly model: facts of a
 * {@linkcode TxView} that a PSBT reveals before signing (fee against the
 * market, fee against the amount, shape, dust, OP_RETURN, script-type mix,
 * round amounts, BIP125 RBF, locktime, change). Pure, no I/O. nVersion is
 * left out on purpose: it tells wallet software and era apart (1 in 2015, 2
 * today), not risk, and would make every transaction of another era unusual.
 *
 * The model is an isolation forest: it scores how easily a row is separated
 * from the training rows, so features are scaled where the raw value spans
 * orders of magnitude (log of counts, sizes and ratios) and clipped so one
 * absurd value cannot overflow float32. No feature is ever NaN: an unknown
 * fact takes a documented neutral value that sits in the bulk of the real
 * transactions, so it neither raises nor lowers the score on its own.
 *
 * @module
 */
import { dustThreshold } from "../../bitcoin/tx_size.ts";
import type { TxView } from "./tx_view.ts";

/** Feature names, in row order. */
export const RISK_FEATURE_NAMES: readonly string[] = Object.freeze([
  "fee_rate_vs_estimate_log2",
  "fee_share_of_inputs",
  "input_count_log2",
  "output_count_log2",
  "min_output_vs_dust_log2",
  "near_dust_output_count_log2",
  "op_return_output_count",
  "output_type_not_in_inputs_share",
  "unusual_script_output_share",
  "round_output_share",
  "rbf_signalled",
  "locktime_kind",
  "change_identified",
]);

/** What each feature measures and its neutral value, for model cards and explanations. */
export const RISK_FEATURE_DOCS: Readonly<Record<string, string>> = Object.freeze({
  fee_rate_vs_estimate_log2:
    "log2(fee rate / current fee-rate estimate), clipped to [-12, 12]; 0 when the fee or the estimate is unknown",
  fee_share_of_inputs:
    "fee / total input value, in [0, 1] (above 0.5: the fee exceeds the amount sent); 0.001 when the fee is unknown",
  input_count_log2: "log2(1 + number of inputs)",
  output_count_log2: "log2(1 + number of outputs)",
  min_output_vs_dust_log2:
    "log2(smallest spendable output / its Bitcoin Core dust threshold), clipped to [-16, 32]: below 0 is dust; 16 when there is no spendable output",
  near_dust_output_count_log2:
    "log2(1 + spendable outputs worth less than 10x their dust threshold), dust included",
  op_return_output_count: "OP_RETURN (null data) outputs, capped at 1000",
  output_type_not_in_inputs_share:
    "share of spendable outputs whose script type no input spends; 0 when no input type is known",
  unusual_script_output_share:
    "share of outputs that are bare multisig, P2PK, future witness versions or non-standard",
  round_output_share: "share of spendable outputs that are a whole number of 0.001 BTC",
  rbf_signalled: "1 when some input has nSequence < 0xfffffffe (BIP125), else 0",
  locktime_kind: "0: no locktime, 1: a block height, 2: a timestamp (nLockTime >= 500000000)",
  change_identified: "1 when some output is known to be change, else 0",
});

/** Context of {@linkcode txRiskFeatures}. */
export interface RiskFeatureContext {
  /** The current fee-rate estimate (sat/vB), null when none is available. */
  feeRateEstimateSatVb: number | null;
}

/** Neutral `fee_share_of_inputs` for an unknown fee: 0.1 %, in the bulk of real transactions. */
export const NEUTRAL_FEE_SHARE = 0.001;

const UNUSUAL_TYPES = new Set(["multisig", "p2pk", "witness-unknown", "nonstandard"]);
const ROUND_SATS = 100_000n;
// BIP125: an input with nSequence < 0xfffffffe signals replaceability.
const RBF_MAX_SEQUENCE = 0xfffffffd;
// BIP113/Core: nLockTime below 500,000,000 is a block height, at or above it a Unix time.
const LOCKTIME_THRESHOLD = 500_000_000;
const MAX_COUNT = 1000;
// Why a ratio and not a dust count: real transactions almost never create dust, so a count is
// constant in training and an isolation forest never splits on a constant feature.
const NEAR_DUST_FACTOR = 10n;
const NO_SPENDABLE_OUTPUT_DUST_LOG2 = 16;

function minOutputVsDust(spendable: readonly TxView["outputs"][number][]): number {
  let min = Infinity;
  for (const o of spendable) {
    const threshold = dustThreshold(o.script);
    // Unspendable-by-size scripts have no threshold: they cannot be dust.
    if (threshold === 0n) continue;
    min = Math.min(min, Math.log2(Math.max(Number(o.amountSats), 1e-6) / Number(threshold)));
  }
  return min === Infinity ? NO_SPENDABLE_OUTPUT_DUST_LOG2 : clip(min, -16, 32);
}

/**
 * The feature row of a transaction, in {@linkcode RISK_FEATURE_NAMES} order.
 *
 * @param view the transaction (`txViewFromPsbt` / `txViewFromRawTx`)
 * @param ctx the current fee-rate estimate
 * @returns a float32 row without NaN
 */
export function txRiskFeatures(view: TxView, ctx: RiskFeatureContext): Float32Array {
  assertView(view);
  if (typeof ctx !== "object" || ctx === null) {
    throw new TypeError(`Invalid ctx: expected an object, got ${describe(ctx)}`);
  }
  const estimate = ctx.feeRateEstimateSatVb;
  if (
    estimate !== null && (typeof estimate !== "number" || !(estimate > 0) || !isFinite(estimate))
  ) {
    throw new RangeError(
      `Invalid ctx.feeRateEstimateSatVb: expected a positive number or null, got ${
        String(estimate)
      }`,
    );
  }
  const { inputs, outputs, feeSats, vsize } = view;
  const spendable = outputs.filter((o) => o.scriptType !== "op_return");
  const totalOut = outputs.reduce((s, o) => s + o.amountSats, 0n);

  let feeVsEstimate = 0;
  let feeShare = NEUTRAL_FEE_SHARE;
  if (feeSats !== null) {
    const fee = Number(feeSats);
    if (estimate !== null) {
      feeVsEstimate = clip(Math.log2(Math.max(fee / vsize, 1e-6) / estimate), -12, 12);
    }
    // Linear, not log: an isolation forest splits uniformly between a node's min and max, so a
    // linear share isolates the rare large fees quickly while the bulk near 0 stays together.
    const totalIn = fee + Number(totalOut);
    feeShare = totalIn > 0 ? clip(fee / totalIn, 0, 1) : 0;
  }
  const inputTypes = new Set(
    inputs.map((i) => i.scriptType).filter((t) => t !== "unknown"),
  );
  const notInInputs = inputTypes.size === 0
    ? 0
    : share(spendable, (o) => !inputTypes.has(o.scriptType));

  const row = [
    feeVsEstimate,
    feeShare,
    Math.log2(1 + inputs.length),
    Math.log2(1 + outputs.length),
    minOutputVsDust(spendable),
    Math.log2(
      1 + spendable.filter((o) => o.amountSats < NEAR_DUST_FACTOR * dustThreshold(o.script)).length,
    ),
    Math.min(outputs.length - spendable.length, MAX_COUNT),
    notInInputs,
    share(outputs, (o) => UNUSUAL_TYPES.has(o.scriptType)),
    share(spendable, (o) => o.amountSats > 0n && o.amountSats % ROUND_SATS === 0n),
    inputs.some((i) => i.sequence <= RBF_MAX_SEQUENCE) ? 1 : 0,
    view.locktime === 0 ? 0 : view.locktime < LOCKTIME_THRESHOLD ? 1 : 2,
    outputs.some((o) => o.isChange === true) ? 1 : 0,
  ];
  return Float32Array.from(row);
}

function share<T>(items: readonly T[], pred: (item: T) => boolean): number {
  if (items.length === 0) return 0;
  return items.filter(pred).length / items.length;
}

function clip(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function assertView(view: unknown): asserts view is TxView {
  if (typeof view !== "object" || view === null) {
    throw new TypeError(`Invalid view: expected a TxView, got ${describe(view)}`);
  }
  const v = view as Partial<TxView>;
  if (!Array.isArray(v.inputs) || !Array.isArray(v.outputs)) {
    throw new TypeError("Invalid view: expected inputs and outputs arrays");
  }
  if (typeof v.vsize !== "number" || !Number.isSafeInteger(v.vsize) || v.vsize < 1) {
    throw new RangeError(`Invalid view.vsize: expected a positive integer, got ${String(v.vsize)}`);
  }
  if (v.feeSats !== null && typeof v.feeSats !== "bigint") {
    throw new TypeError(
      `Invalid view.feeSats: expected a bigint or null, got ${describe(v.feeSats)}`,
    );
  }
  if (!Number.isSafeInteger(v.locktime) || !Number.isSafeInteger(v.version)) {
    throw new TypeError("Invalid view: locktime and version must be integers");
  }
  v.inputs.forEach((i, n) => {
    if (typeof i !== "object" || i === null) {
      throw new TypeError(`Invalid view.inputs[${n}]: expected an object, got ${describe(i)}`);
    }
    if (typeof i.scriptType !== "string" || !Number.isSafeInteger(i.sequence)) {
      throw new TypeError(`Invalid view.inputs[${n}]: expected scriptType and sequence`);
    }
  });
  v.outputs.forEach((o, n) => {
    if (typeof o !== "object" || o === null) {
      throw new TypeError(`Invalid view.outputs[${n}]: expected an object, got ${describe(o)}`);
    }
    if (typeof o.amountSats !== "bigint" || o.amountSats < 0n) {
      throw new TypeError(`Invalid view.outputs[${n}].amountSats: expected a non-negative bigint`);
    }
    if (!(o.script instanceof Uint8Array) || typeof o.scriptType !== "string") {
      throw new TypeError(`Invalid view.outputs[${n}]: expected script bytes and scriptType`);
    }
  });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  return typeof value;
}
