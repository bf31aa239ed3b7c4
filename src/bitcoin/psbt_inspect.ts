/**
 * PSBT inspection: the body of `POST /v1/psbt/decode`. Pure, no I/O.
 *
 * For each input: outpoint, spent value and script (from PSBT_IN_WITNESS_UTXO
 * or PSBT_IN_NON_WITNESS_UTXO, BIP174), address, whether it is signed and
 * whether its signatures verify (`signatures.ts`). For each output: address,
 * value, script type and whether it is change, which BIP174 wallets signal by
 * attaching PSBT_OUT_BIP32_DERIVATION / PSBT_OUT_TAP_BIP32_DERIVATION (BIP371)
 * to outputs they own. Then fee, weight and vsize (BIP141 §"Transaction size
 * calculations"), fee rate in sat/kvB, locktime, BIP125 RBF signalling, and
 * warnings with stable codes ({@linkcode PsbtWarningCode}).
 *
 * Size: exact (scure's weight of the finalized transaction) when every input
 * is finalized; otherwise finalized inputs count with their real
 * scriptSig/witness and the others with worst-case satisfaction sizes per
 * script type (`tx_size.ts`: 72-byte ECDSA, 64-byte Schnorr signatures), so an
 * estimated fee rate is never above the one the signed transaction will pay.
 * `feeRate.exact` is true only when the fee is known (every UTXO present) and
 * the size is exact.
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import type { BitcoinNetwork } from "./network.ts";
import { feeRateSatPerKvb } from "./amount.ts";
import { assertNetwork, scriptPubKeyToAddress } from "./address.ts";
import { classifyScript, type ScriptType } from "./script_type.ts";
import {
  type ParsedPsbt,
  type PsbtInputFields,
  psbtNetworkFindings,
  type PsbtOutputFields,
} from "./psbt_parse.ts";
import {
  type InputSignatureReport,
  psbtPrevout,
  type SignatureCheck,
  type TxInput,
  verifyInputSignatures,
} from "./signatures.ts";
import type { PrevOut } from "./sighash.ts";
import {
  dustThreshold,
  type InputWeight,
  isDust,
  sumInputs,
  txWeight,
  weightToVsize,
} from "./tx_size.ts";
import { estimateInputWeight, finalInputWeight } from "./_input_weight.ts";
import { describeType } from "./_assert.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesEqual, hash160 } from "./_util.ts";

/**
 * Fat-finger guard thresholds (warning `fee-rate-high` / `fee-high`):
 * - the fee rate is above `currentRateMultiplier` × the current estimate
 *   (when the caller passes one), or above `maxSatPerKvb` whatever the market
 *   (1,000 sat/vB: far above any sustained mempool level to date);
 * - the fee is more than `maxFeeSharePercent` % of the total output value and at
 *   least `minFeeForShareSats` (small consolidations legitimately pay a large share).
 */
export const FAT_FINGER: Readonly<{
  currentRateMultiplier: number;
  maxSatPerKvb: number;
  maxFeeSharePercent: bigint;
  minFeeForShareSats: bigint;
}> = Object.freeze({
  currentRateMultiplier: 10,
  maxSatPerKvb: 1_000_000,
  maxFeeSharePercent: 10n,
  minFeeForShareSats: 100_000n,
});

/** Stable warning codes of {@linkcode inspectPsbt}. */
export type PsbtWarningCode =
  | "missing-utxo"
  | "fee-rate-high"
  | "fee-high"
  | "outputs-exceed-inputs"
  | "dust-output"
  | "non-standard-script"
  | "non-standard-version"
  | "network-mismatch"
  | "non-default-sighash"
  | "invalid-signature"
  | "script-mismatch"
  | "witness-utxo-for-legacy-input"
  | "size-unknown";

/** One warning. */
export interface PsbtWarning {
  /** Stable code, see {@linkcode PsbtWarningCode}. */
  code: PsbtWarningCode;
  /** Client-safe explanation naming the input/output. */
  message: string;
}

/** One input of the report. */
export interface PsbtInputReport {
  /** Input index. */
  index: number;
  /** `txid:vout` of the spent output. */
  outpoint: string;
  /** nSequence (0xffffffff when the PSBT omits it). */
  sequence: number;
  /** Value of the spent output, null when the PSBT has no UTXO data for it. */
  valueSats: bigint | null;
  /** Script type of the spent output, null when unknown. */
  scriptType: ScriptType | null;
  /** Address of the spent output, null when unknown or without address form. */
  address: string | null;
  /** True when finalized or carrying at least one signature. */
  signed: boolean;
  /** The input carries a final scriptSig or witness. */
  finalized: boolean;
  /** Signature verification outcome (see `signatures.ts`); `not-checked` when disabled. */
  signatureStatus: InputSignatureReport["status"] | "not-checked";
  /** Per-signature results (empty when not checked). */
  signatures: SignatureCheck[];
  /** Sighash types in use (signatures and PSBT_IN_SIGHASH_TYPE), e.g. `ALL`, `SINGLE|ANYONECANPAY`. */
  sighashTypes: string[];
  /** Weight units this input contributes, null when it cannot be estimated. */
  weight: number | null;
  /** True when `weight` is the finalized input's real size. */
  weightExact: boolean;
}

/** One output of the report. */
export interface PsbtOutputReport {
  /** Output index. */
  index: number;
  /** Address on the configured network, null for scripts without one. */
  address: string | null;
  /** Output value. */
  valueSats: bigint;
  /** Script type of the output. */
  scriptType: ScriptType;
  /** The output script, hex. */
  scriptPubKeyHex: string;
  /** The output carries BIP32/taproot derivation info: a wallet marked it as its own (change). */
  isChange: boolean;
  /** Below Core's dust threshold (unspendable outputs such as OP_RETURN never are). */
  dust: boolean;
}

/** Fee rate of the transaction. */
export interface FeeRateReport {
  /** Fee rate in sat/kvB, rounded down. */
  satPerKvb: number;
  /** True when fee and size are both exact. */
  exact: boolean;
}

/** The decode report. */
export interface PsbtReport {
  /** PSBT version (0 or 2). */
  psbtVersion: 0 | 2;
  /** Transaction version. */
  txVersion: number;
  /** nLockTime (BIP370-resolved for PSBTv2). */
  locktime: number;
  /** BIP125: some input has nSequence < 0xfffffffe. */
  rbf: boolean;
  /** Final txid, when every input is finalized. */
  txid: string | null;
  /** Inputs in order. */
  inputs: PsbtInputReport[];
  /** Outputs in order. */
  outputs: PsbtOutputReport[];
  /** Sum of the spent outputs, null when some UTXO is missing. */
  totalInputSats: bigint | null;
  /** Sum of the outputs. */
  totalOutputSats: bigint;
  /** Inputs minus outputs; null when some UTXO is missing. */
  feeSats: bigint | null;
  /** Weight units, exact or estimated (see `feeRate.exact`); null when unknown. */
  weight: number | null;
  /** Virtual size, ⌈weight / 4⌉. */
  vsize: number | null;
  /** Fee rate, null when the fee or size is unknown. */
  feeRate: FeeRateReport | null;
  /** Findings, stable codes. */
  warnings: PsbtWarning[];
}

/** Options of {@linkcode inspectPsbt}. */
export interface InspectOptions {
  /** The configured network. */
  network: BitcoinNetwork;
  /** The current fee estimate, for the fat-finger guard. */
  currentFeeRateSatPerKvb?: number;
  /** Verify signatures (default true). */
  verifySignatures?: boolean;
}

const SEQUENCE_FINAL = 0xffffffff;
// BIP125: a transaction signals replaceability when any input has nSequence < 0xfffffffe.
const RBF_MAX_SEQUENCE = 0xfffffffd;
const STANDARD_TX_VERSIONS = new Set([1, 2, 3]);

/**
 * Describe a parsed PSBT for `POST /v1/psbt/decode`.
 *
 * @param parsed the output of `parsePsbt`
 * @param options network, current fee estimate, whether to verify signatures
 * @returns the report; amounts are bigint satoshis
 * @example
 * ```ts
 * const report = inspectPsbt(parsePsbt(body.psbt, { network }), { network, currentFeeRateSatPerKvb: 2000 });
 * report.warnings.map((w) => w.code); // ["missing-utxo"]
 * ```
 */
export function inspectPsbt(parsed: ParsedPsbt, options: InspectOptions): PsbtReport {
  if (typeof parsed !== "object" || parsed === null || typeof parsed.tx !== "object") {
    throw new TypeError(`Invalid parsed: expected a ParsedPsbt, got ${describeType(parsed)}`);
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describeType(options)}`);
  }
  assertNetwork(options.network);
  const current = options.currentFeeRateSatPerKvb;
  if (current !== undefined && (!Number.isSafeInteger(current) || current < 0)) {
    throw new RangeError(`Invalid currentFeeRateSatPerKvb: ${String(current)}`);
  }
  const { tx } = parsed;
  const warnings: PsbtWarning[] = [];
  const seen = new Set<string>();
  const warn = (code: PsbtWarningCode, message: string) => {
    // The same finding from several places (e.g. two testnet xpubs) is reported once.
    const key = `${code}\n${message}`;
    if (!seen.has(key)) warnings.push({ code, message });
    seen.add(key);
  };

  // Read once: scure deep-copies a whole input or output on every getInput/getOutput.
  const fields = {
    inputs: Array.from({ length: tx.inputsLength }, (_, i) => tx.getInput(i)),
    outputs: Array.from({ length: tx.outputsLength }, (_, i) => tx.getOutput(i)),
  };
  const inputs: PsbtInputReport[] = [];
  const weights: (InputWeight | null)[] = [];
  for (const [i, input] of fields.inputs.entries()) {
    const { report, weight } = inspectInput(tx, i, input, options, warn);
    inputs.push(report);
    weights.push(weight);
  }
  const outputs = fields.outputs.map((o, i) => inspectOutput(o, i, options.network, warn));

  for (const f of psbtNetworkFindings(parsed, options.network, fields)) {
    warn("network-mismatch", f.message);
  }
  if (!STANDARD_TX_VERSIONS.has(tx.version)) {
    warn("non-standard-version", `Transaction version ${tx.version} is not relayed by default`);
  }

  const totalOutputSats = outputs.reduce((s, o) => s + o.valueSats, 0n);
  const totalInputSats = inputs.every((i) => i.valueSats !== null)
    ? inputs.reduce((s, i) => s + i.valueSats!, 0n)
    : null;
  const feeSats = totalInputSats === null ? null : totalInputSats - totalOutputSats;
  if (feeSats !== null && feeSats < 0n) {
    warn(
      "outputs-exceed-inputs",
      `Outputs exceed inputs by ${-feeSats} sat: the transaction is invalid`,
    );
  }

  const allFinal = tx.inputsLength > 0 && inputs.every((i) => i.finalized);
  let weight: number | null = null;
  // Finalized inputs carry their real sizes, so the same sum is then exact.
  if (weights.every((w) => w !== null)) {
    weight = txWeight(
      sumInputs(weights as InputWeight[]),
      fields.outputs.map((o) => o.script ?? new Uint8Array()),
    );
  } else {
    warn("size-unknown", "Size cannot be estimated: some input's spending script is unknown");
  }
  const vsize = weight === null ? null : weightToVsize(weight);
  const feeRate = feeSats !== null && feeSats >= 0n && vsize !== null && vsize > 0
    ? { satPerKvb: feeRateSatPerKvb(feeSats, vsize), exact: allFinal }
    : null;
  if (feeRate !== null && feeSats !== null) {
    fatFingerWarnings(feeSats, feeRate.satPerKvb, totalOutputSats, current, warn);
  }

  let rbf = false;
  for (const i of inputs) if (i.sequence <= RBF_MAX_SEQUENCE) rbf = true;
  return {
    psbtVersion: parsed.version,
    txVersion: tx.version,
    locktime: tx.lockTime,
    rbf,
    txid: allFinal ? tx.id : null,
    inputs,
    outputs,
    totalInputSats,
    totalOutputSats,
    feeSats,
    weight,
    vsize,
    feeRate,
    warnings,
  };
}

function fatFingerWarnings(
  feeSats: bigint,
  satPerKvb: number,
  totalOutputSats: bigint,
  current: number | undefined,
  warn: (code: PsbtWarningCode, message: string) => void,
): void {
  const rate = `${(satPerKvb / 1000).toFixed(3).replace(/\.?0+$/, "")} sat/vB`;
  if (
    current !== undefined && current > 0 && satPerKvb > current * FAT_FINGER.currentRateMultiplier
  ) {
    warn(
      "fee-rate-high",
      `Fee rate ${rate} is more than ${FAT_FINGER.currentRateMultiplier}x the current estimate (${
        (current / 1000).toFixed(3).replace(/\.?0+$/, "")
      } sat/vB)`,
    );
  } else if (satPerKvb > FAT_FINGER.maxSatPerKvb) {
    warn("fee-rate-high", `Fee rate ${rate} is above ${FAT_FINGER.maxSatPerKvb / 1000} sat/vB`);
  }
  if (
    feeSats >= FAT_FINGER.minFeeForShareSats &&
    feeSats * 100n > totalOutputSats * FAT_FINGER.maxFeeSharePercent
  ) {
    warn(
      "fee-high",
      `Fee of ${feeSats} sat is more than ${FAT_FINGER.maxFeeSharePercent}% of the ${totalOutputSats} sat sent`,
    );
  }
}

function inspectInput(
  tx: Transaction,
  index: number,
  input: PsbtInputFields,
  options: InspectOptions,
  warn: (code: PsbtWarningCode, message: string) => void,
): { report: PsbtInputReport; weight: InputWeight | null } {
  const prev = psbtPrevout(input);
  const where = `Input ${index}`;
  const txid = input.txid ? hex.encode(input.txid) : "";
  const vout = input.index ?? 0;
  const sequence = input.sequence ?? SEQUENCE_FINAL;
  const scriptType = prev === null ? null : classifyScript(prev.script);
  if (prev === null) {
    warn("missing-utxo", `${where} has no UTXO data: fee and fee rate are unknown`);
  }
  if (scriptType === "nonstandard") {
    warn("non-standard-script", `${where} spends a non-standard script`);
  }
  // BIP174 "signer must fail" vector: a witness UTXO for a non-segwit input lets a signer be lied
  // to about the amount, and a legacy signature does not commit to it.
  if (input.witnessUtxo && !input.nonWitnessUtxo && prev !== null && !spendsWitness(prev, input)) {
    warn(
      "witness-utxo-for-legacy-input",
      `${where} has only a witness UTXO but is not a segwit input`,
    );
  }
  const mismatch = scriptMismatch(prev, input);
  if (mismatch !== null) warn("script-mismatch", `${where}: ${mismatch}`);

  const finalized = (input.finalScriptSig?.length ?? 0) > 0 ||
    (input.finalScriptWitness?.length ?? 0) > 0;
  let sig: InputSignatureReport | null = null;
  if (options.verifySignatures !== false) {
    sig = verifyInputSignatures(tx, index);
    if (sig.status === "invalid") {
      warn("invalid-signature", `${where} has a signature that does not verify`);
    }
  }
  const sighashes = new Set<number>();
  if (input.sighashType !== undefined) sighashes.add(input.sighashType);
  for (const s of sig?.signatures ?? []) if (s.sighashType >= 0) sighashes.add(s.sighashType);
  if (sig === null) {
    for (const [, s] of input.partialSig ?? []) if (s.length > 0) sighashes.add(s[s.length - 1]!);
    if (input.tapKeySig) sighashes.add(taprootHashType(input.tapKeySig));
    for (const [, s] of input.tapScriptSig ?? []) sighashes.add(taprootHashType(s));
  }
  const nonDefault = [...sighashes].filter((h) => h !== 0x00 && h !== 0x01);
  if (nonDefault.length > 0) {
    warn("non-default-sighash", `${where} uses ${nonDefault.map(sighashName).join(", ")}`);
  }
  const signed = finalized || (input.partialSig?.length ?? 0) > 0 ||
    input.tapKeySig !== undefined ||
    (input.tapScriptSig?.length ?? 0) > 0;
  const weight = finalized ? finalInputWeight(input) : estimateInputWeight(prev, input);
  return {
    report: {
      index,
      outpoint: `${txid}:${vout}`,
      sequence,
      valueSats: prev?.amountSats ?? null,
      scriptType,
      address: prev === null ? null : scriptPubKeyToAddress(prev.script, options.network),
      signed,
      finalized,
      signatureStatus: sig?.status ?? "not-checked",
      signatures: sig?.signatures ?? [],
      sighashTypes: [...sighashes].sort((a, b) => a - b).map(sighashName),
      weight: weight?.weight ?? null,
      weightExact: finalized,
    },
    weight,
  };
}

function inspectOutput(
  out: PsbtOutputFields,
  index: number,
  network: BitcoinNetwork,
  warn: (code: PsbtWarningCode, message: string) => void,
): PsbtOutputReport {
  const script = out.script ?? new Uint8Array();
  const valueSats = out.amount ?? 0n;
  const scriptType = classifyScript(script);
  const where = `Output ${index}`;
  if (scriptType === "nonstandard") {
    warn("non-standard-script", `${where} pays a non-standard script`);
  }
  // Core's IsDust: unspendable outputs (OP_RETURN, oversized scripts) have no threshold.
  const dust = isDust(script, valueSats);
  if (dust) {
    warn(
      "dust-output",
      `${where} pays ${valueSats} sat, below the dust threshold of ${dustThreshold(script)} sat`,
    );
  }
  return {
    index,
    address: scriptPubKeyToAddress(script, network),
    valueSats,
    scriptType,
    scriptPubKeyHex: hex.encode(script),
    isChange: (out.bip32Derivation?.length ?? 0) > 0 || (out.tapBip32Derivation?.length ?? 0) > 0,
    dust,
  };
}

/** BIP341: a 64-byte signature is SIGHASH_DEFAULT, a 65-byte one ends with its hash type. */
function taprootHashType(sig: Uint8Array): number {
  return sig.length === 65 ? sig[64]! : 0x00;
}

const SIGHASH_BASE: Record<number, string> = { 0: "DEFAULT", 1: "ALL", 2: "NONE", 3: "SINGLE" };

/**
 * Name a sighash type: `ALL`, `NONE|ANYONECANPAY`, `DEFAULT`, or hex for others.
 *
 * @param type the sighash byte / PSBT_IN_SIGHASH_TYPE value
 */
export function sighashName(type: number): string {
  if (!Number.isInteger(type) || type < 0) throw new RangeError(`Invalid sighash type: ${type}`);
  const base = SIGHASH_BASE[type & 0x7f];
  // 0x80 (DEFAULT|ANYONECANPAY) is not a valid combination; it is shown in hex like unknown types.
  if (base !== undefined && type <= 0xff && type !== 0x80) {
    return type & 0x80 ? `${base}|ANYONECANPAY` : base;
  }
  return `0x${type.toString(16).padStart(2, "0")}`;
}

/** Whether spending `prev` uses a witness (native or P2SH-wrapped segwit). */
function spendsWitness(prev: PrevOut, input: TxInput): boolean {
  const type = classifyScript(prev.script);
  if (type === "p2sh") {
    if (!input.redeemScript) return true; // unknown: do not accuse
    const inner = classifyScript(input.redeemScript);
    return inner === "p2wpkh" || inner === "p2wsh" || inner === "p2tr" ||
      inner === "witness-unknown";
  }
  return type === "p2wpkh" || type === "p2wsh" || type === "p2tr" || type === "witness-unknown" ||
    type === "p2a";
}

/** BIP174 "signer must fail" cases: scripts that do not hash to what they claim. */
function scriptMismatch(prev: PrevOut | null, input: TxInput): string | null {
  if (prev === null) return null;
  const type = classifyScript(prev.script);
  const { redeemScript, witnessScript } = input;
  if (redeemScript !== undefined) {
    if (type !== "p2sh") return "PSBT_IN_REDEEM_SCRIPT given for an output that is not P2SH";
    if (!bytesEqual(hash160(redeemScript), prev.script.subarray(2, 22))) {
      return "PSBT_IN_REDEEM_SCRIPT does not match the spent P2SH output";
    }
  }
  if (witnessScript !== undefined) {
    const program = type === "p2wsh"
      ? prev.script.subarray(2)
      : redeemScript !== undefined && classifyScript(redeemScript) === "p2wsh"
      ? redeemScript.subarray(2)
      : null;
    if (program === null) return "PSBT_IN_WITNESS_SCRIPT given for an input that is not P2WSH";
    if (!bytesEqual(sha256(witnessScript), program)) {
      return "PSBT_IN_WITNESS_SCRIPT does not match the P2WSH program";
    }
  }
  return null;
}
