/**
 * Transaction weight arithmetic for building transactions before they are
 * signed: how many weight units an input will take once satisfied, what an
 * output costs, the weight of the whole transaction, and below which value an
 * output is dust.
 *
 * Specs: BIP141 §"Transaction size calculations" (weight = 3 × base size +
 * total size; vsize = ⌈weight / 4⌉; marker and flag bytes; every input of a
 * segwit transaction carries a witness, empty for legacy inputs) and Bitcoin
 * Core `src/policy/policy.cpp` `GetDustThreshold` (dust at the 3 sat/vB dust
 * relay fee) and `src/policy/policy.h` (`MAX_STANDARD_TX_WEIGHT` = 400,000 WU).
 * https://github.com/bitcoin/bips/blob/master/bip-0141.mediawiki#transaction-size-calculations
 *
 * Signature sizes are upper bounds, so estimates never come out below the
 * signed transaction: ECDSA 72 bytes with the sighash byte (low-S DER with a
 * 33-byte R is at most 71 bytes, and non-low-S is non-standard), Schnorr 64
 * bytes (key path, SIGHASH_DEFAULT, which is what we ask signers for).
 *
 * @module
 */
import { assertBytes, describeType } from "./_assert.ts";
import { isUnspendable, MAX_SCRIPT_SIZE, witnessProgram } from "./script_type.ts";
import { compactSizeLength, type InputWeight, pushLength, weighInput } from "./_util.ts";

export { compactSizeLength, type InputWeight };

/** Largest standard transaction weight (Core `MAX_STANDARD_TX_WEIGHT`). */
export const MAX_STANDARD_TX_WEIGHT = 400_000;
/**
 * Fee rate used for the dust threshold, sat/kvB (Core `DUST_RELAY_TX_FEE`).
 * A relay policy constant, independent of the fee rate the caller pays.
 */
export const DUST_RELAY_FEE_RATE_SAT_PER_KVB = 3000;
/** Upper bound of an ECDSA signature with its sighash byte. */
export const MAX_ECDSA_SIG_BYTES = 72;
/** A BIP340 signature with SIGHASH_DEFAULT (no sighash byte). */
export const SCHNORR_SIG_BYTES = 64;

/** How an input will be satisfied, which fixes its size. */
export type InputSpend =
  | { kind: "p2pkh" }
  | { kind: "p2wpkh" }
  | { kind: "p2sh-p2wpkh" }
  | { kind: "p2tr-keypath" }
  /** m-of-n `OP_CHECKMULTISIG` in P2WSH, P2SH-P2WSH or bare P2SH. */
  | {
    kind: "p2wsh-multisig" | "p2sh-p2wsh-multisig" | "p2sh-multisig";
    m: number;
    scriptBytes: number;
  };

/** Aggregate of the inputs of a transaction, enough to weigh it. */
export interface InputTotals {
  /** Number of inputs. */
  count: number;
  /** Sum of {@linkcode InputWeight.weight}. */
  weight: number;
  /** Inputs without witness: each gets a 1-byte empty witness in a segwit transaction. */
  nonWitnessCount: number;
}

/**
 * Weight of an output: value (8) + CompactSize script length + script, all
 * non-witness bytes (×4).
 *
 * @param script the output's scriptPubKey
 */
export function outputWeight(script: Uint8Array): number {
  assertBytes(script, "script");
  return 4 * (8 + compactSizeLength(script.length) + script.length);
}

/**
 * Core's dust threshold for an output paying `script`: the fee, at the dust
 * relay fee rate, of the output plus the input that would later spend it.
 * Unspendable outputs (OP_RETURN, oversized scripts) have none.
 *
 * @param script the output's scriptPubKey
 * @returns the smallest non-dust value in satoshis
 */
export function dustThreshold(script: Uint8Array): bigint {
  assertBytes(script, "script");
  if (isUnspendable(script)) return 0n;
  let size = 8 + compactSizeLength(script.length) + script.length;
  // Core's spend-size assumption: a 107-byte scriptSig (72-byte signature and
  // 33-byte key with pushes) for legacy; for witness programs the same bytes
  // at a quarter weight, with Core's integer division (107 / 4 = 26).
  size += witnessProgram(script) !== null
    ? 32 + 4 + 1 + Math.floor(107 / 4) + 4
    : 32 + 4 + 1 + 107 + 4;
  return (BigInt(size) * BigInt(DUST_RELAY_FEE_RATE_SAT_PER_KVB) + 999n) / 1000n;
}

/**
 * Whether an output of `valueSats` paying `script` is dust (Core `IsDust`).
 *
 * @param script the output's scriptPubKey
 * @param valueSats the output value
 */
export function isDust(script: Uint8Array, valueSats: bigint): boolean {
  if (typeof valueSats !== "bigint") {
    throw new TypeError(`Invalid valueSats: expected a bigint, got ${describeType(valueSats)}`);
  }
  return valueSats < dustThreshold(script);
}

/**
 * Weight an input will have once signed, with worst-case signature sizes.
 *
 * @param spend how the input is satisfied
 */
export function inputWeight(spend: InputSpend): InputWeight {
  if (typeof spend !== "object" || spend === null) {
    throw new TypeError(
      `Invalid spend: expected an object, got ${spend === null ? "null" : typeof spend}`,
    );
  }
  const sig = MAX_ECDSA_SIG_BYTES;
  switch (spend.kind) {
    case "p2pkh":
      return weighInput(pushLength(sig) + pushLength(33), null);
    case "p2wpkh":
      return weighInput(0, [sig, 33]);
    case "p2sh-p2wpkh":
      // scriptSig pushes the 22-byte v0 program `0014<hash160>`.
      return weighInput(pushLength(22), [sig, 33]);
    case "p2tr-keypath":
      return weighInput(0, [SCHNORR_SIG_BYTES]);
    case "p2wsh-multisig":
    case "p2sh-p2wsh-multisig":
    case "p2sh-multisig": {
      const { m, scriptBytes } = spend;
      if (!Number.isSafeInteger(m) || m < 1 || m > 20) {
        throw new RangeError(`Invalid multisig threshold: expected 1..20, got ${String(m)}`);
      }
      if (!Number.isSafeInteger(scriptBytes) || scriptBytes < 1 || scriptBytes > MAX_SCRIPT_SIZE) {
        throw new RangeError(`Invalid script length: got ${String(scriptBytes)}`);
      }
      // CHECKMULTISIG pops one element more than it checks: an empty item / OP_0 (BIP147 NULLDUMMY).
      const sigs: number[] = Array.from({ length: m }, () => sig);
      if (spend.kind === "p2sh-multisig") {
        const scriptSig = 1 + sigs.reduce((n, s) => n + pushLength(s), 0) + pushLength(scriptBytes);
        return weighInput(scriptSig, null);
      }
      const witness = [0, ...sigs, scriptBytes];
      // P2SH-P2WSH's scriptSig pushes the 34-byte v0 program `0020<sha256>`.
      return weighInput(spend.kind === "p2wsh-multisig" ? 0 : pushLength(34), witness);
    }
    default:
      throw new TypeError(`Invalid spend kind: ${String((spend as { kind: unknown }).kind)}`);
  }
}

/**
 * Weight of a transaction with the given inputs and output scripts: version,
 * locktime and counts, plus the segwit marker and flag and one empty witness
 * per legacy input when any input has a witness.
 *
 * @param inputs totals of the inputs (see {@linkcode sumInputs})
 * @param outputScripts scriptPubKeys of all outputs
 */
export function txWeight(inputs: InputTotals, outputScripts: readonly Uint8Array[]): number {
  if (typeof inputs !== "object" || inputs === null) {
    throw new TypeError("Invalid inputs: expected totals");
  }
  if (!Array.isArray(outputScripts)) {
    throw new TypeError("Invalid outputScripts: expected an array");
  }
  const { count, weight, nonWitnessCount } = inputs;
  for (
    const [name, v] of [["count", count], ["weight", weight], [
      "nonWitnessCount",
      nonWitnessCount,
    ]] as const
  ) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`Invalid inputs.${name}: got ${String(v)}`);
    }
  }
  if (nonWitnessCount > count) {
    throw new RangeError("Invalid inputs: more legacy inputs than inputs");
  }
  let total = 4 * (4 + compactSizeLength(count) + compactSizeLength(outputScripts.length) + 4) +
    weight;
  for (const script of outputScripts) total += outputWeight(script);
  // Marker + flag (2 WU) and a 0x00 witness count for each legacy input.
  if (count > nonWitnessCount) total += 2 + nonWitnessCount;
  return total;
}

/**
 * Add up input weights.
 *
 * @param weights per-input weights
 */
export function sumInputs(weights: readonly InputWeight[]): InputTotals {
  if (!Array.isArray(weights)) throw new TypeError("Invalid weights: expected an array");
  let weight = 0;
  let nonWitnessCount = 0;
  for (const w of weights) {
    weight += w.weight;
    if (!w.witness) nonWitnessCount++;
  }
  return { count: weights.length, weight, nonWitnessCount };
}

/**
 * Virtual size: weight / 4 rounded up (BIP141).
 *
 * @param weight weight units
 */
export function weightToVsize(weight: number): number {
  if (!Number.isSafeInteger(weight) || weight < 0) {
    throw new RangeError(`Invalid weight: expected a non-negative integer, got ${String(weight)}`);
  }
  return Math.ceil(weight / 4);
}
