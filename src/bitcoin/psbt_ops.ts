/**
 * PSBT Combiner, Input Finalizer and Transaction Extractor.
 *
 * Specs: BIP174 §"Combiner" (PSBTs for the same unsigned transaction merge
 * into the union of their key-value pairs; unknown keys pass through),
 * §"Input Finalizer" (build the final scriptSig/scriptWitness, then drop the
 * other input fields except the UTXOs and unknowns), §"Transaction Extractor"
 * (every input final → network serialisation); BIP370 for version 2.
 * https://github.com/bitcoin/bips/blob/master/bip-0174.mediawiki#combiner
 *
 * The merging, finalizing and serialising are `@scure/btc-signer`'s
 * (`Transaction.combine`, `finalizeIdx`, `extract`); this module adds the
 * checks and the client-facing errors, and never mutates its arguments.
 *
 * @module
 */
import { Transaction } from "@scure/btc-signer";
import { base64, hex } from "@scure/base";
import { ValidationError } from "../errors/app_error.ts";
import { assertTransaction, describeType } from "./_assert.ts";
import { verifyInputSignatures } from "./signatures.ts";
import { bytesEqual, sha256d } from "./_util.ts";

/** A PSBT produced by an operation, with its serialisation. */
export interface PsbtResult {
  /** The resulting PSBT (a fresh object; inputs are never mutated). */
  tx: Transaction;
  /** PSBT version it is serialised in. */
  psbtVersion: 0 | 2;
  /** `tx.toPSBT(psbtVersion)`, base64. */
  psbtBase64: string;
}

/** A network transaction extracted from a finalized PSBT. */
export interface ExtractedTransaction {
  /** Network serialisation (with witnesses), hex. */
  hex: string;
  txid: string;
  /** Witness txid (equals `txid` without witnesses). */
  wtxid: string;
  weight: number;
  vsize: number;
  /** Inputs − outputs, or null when an input lacks UTXO data. */
  feeSats: bigint | null;
}

/**
 * PSBT version of a parsed or created transaction (scure records it in
 * `opts.PSBTVersion`; a transaction built in memory has none and is v0).
 *
 * @param tx a PSBT
 */
export function psbtVersionOf(tx: Transaction): 0 | 2 {
  assertTransaction(tx);
  return tx.opts.PSBTVersion === 2 ? 2 : 0;
}

function copyOf(tx: Transaction): Transaction {
  return Transaction.fromPSBT(tx.toPSBT(psbtVersionOf(tx)), tx.opts);
}

function result(tx: Transaction, psbtVersion: 0 | 2): PsbtResult {
  return { tx, psbtVersion, psbtBase64: base64.encode(tx.toPSBT(psbtVersion)) };
}

/**
 * BIP174 Combiner: merge PSBTs of the same unsigned transaction.
 *
 * @param psbts two or more parsed PSBTs (one is returned unchanged)
 * @returns the union, serialised in the PSBT version of the first
 * @throws ValidationError (422) when the PSBTs are for different transactions
 *   or carry different values for the same key
 * @example
 * ```ts
 * const combined = combinePsbts([a.tx, b.tx]);
 * combined.psbtBase64;
 * ```
 */
export function combinePsbts(psbts: readonly Transaction[]): PsbtResult {
  if (!Array.isArray(psbts)) {
    throw new TypeError(`Invalid psbts: expected an array, got ${describeType(psbts)}`);
  }
  if (psbts.length === 0) throw new RangeError("Invalid psbts: expected at least one PSBT");
  psbts.forEach((tx) => assertTransaction(tx));
  const first = psbts[0]!;
  const version = psbtVersionOf(first);
  // BIP174: "the Combiner must fail to merge them" unless the unsigned
  // transactions are identical (compared as serialised; v2 rebuilds it).
  const unsigned = first.unsignedTx;
  for (const [i, tx] of psbts.entries()) {
    if (!bytesEqual(tx.unsignedTx, unsigned)) {
      throw new ValidationError("Cannot combine PSBTs: PSBTs are for different transactions", {
        status: 422,
        extensions: { psbtIndex: i },
      });
    }
  }
  const acc = copyOf(first);
  for (let i = 1; i < psbts.length; i++) {
    try {
      acc.combine(psbts[i]!);
    } catch (cause) {
      throw new ValidationError(
        `Cannot combine PSBTs: PSBT ${i} has a different value for a field the others also set`,
        { status: 422, extensions: { psbtIndex: i }, cause },
      );
    }
  }
  return result(acc, version);
}

function isFinal(input: ReturnType<Transaction["getInput"]>): boolean {
  return (input.finalScriptSig?.length ?? 0) > 0 || (input.finalScriptWitness?.length ?? 0) > 0;
}

function cannotFinalize(index: number, reason: string, cause?: unknown): ValidationError {
  return new ValidationError(`Cannot finalize PSBT: input ${index} ${reason}`, {
    status: 422,
    extensions: { input: index },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Why scure could not finalize an input, in client terms. */
function finalizeReason(input: ReturnType<Transaction["getInput"]>, err: unknown): string {
  const message = err instanceof Error ? err.message : "";
  const ms = /m=(\d+) n=(\d+) signatures=(\d+)/.exec(message);
  if (ms) return `has ${ms[3]} of the ${ms[1]} signatures its ${ms[1]}-of-${ms[2]} multisig needs`;
  if (message.includes("Outputs spends more than inputs")) {
    return "cannot be finalized: the outputs exceed the inputs";
  }
  if (input.tapLeafScript !== undefined && input.tapScriptSig !== undefined) {
    return "has taproot script-path signatures that satisfy none of its leaves";
  }
  return "cannot be finalized: its script type is not supported or data is missing";
}

/**
 * BIP174 Input Finalizer: build the final scriptSig/witness of every input
 * that is not final yet. Signatures are verified first (Core's finalizer runs
 * the script interpreter; an invalid signature must not be finalized into a
 * transaction that would only fail at broadcast).
 *
 * @param tx a parsed PSBT (not modified)
 * @returns the finalized PSBT, in the same PSBT version
 * @throws ValidationError (422) naming the first input that cannot be
 *   finalized and why (no UTXO data, no or too few signatures, invalid signature)
 */
export function finalizePsbt(tx: Transaction): PsbtResult {
  assertTransaction(tx);
  const version = psbtVersionOf(tx);
  if (tx.inputsLength === 0) {
    throw new ValidationError("Cannot finalize PSBT: it has no inputs", { status: 422 });
  }
  const out = copyOf(tx);
  for (let i = 0; i < out.inputsLength; i++) {
    const input = out.getInput(i);
    if (isFinal(input)) continue;
    if (input.witnessUtxo === undefined && input.nonWitnessUtxo === undefined) {
      throw cannotFinalize(
        i,
        "has no UTXO data (PSBT_IN_WITNESS_UTXO or PSBT_IN_NON_WITNESS_UTXO)",
      );
    }
    const hasSignature = (input.partialSig?.length ?? 0) > 0 || input.tapKeySig !== undefined ||
      (input.tapScriptSig?.length ?? 0) > 0;
    if (!hasSignature) throw cannotFinalize(i, "has no signatures");
    const report = verifyInputSignatures(out, i);
    if (report.status === "invalid") {
      const bad = report.signatures.find((s) => s.status === "invalid");
      throw cannotFinalize(i, `has an invalid signature${bad?.reason ? `: ${bad.reason}` : ""}`);
    }
    try {
      out.finalizeIdx(i);
    } catch (cause) {
      throw cannotFinalize(i, finalizeReason(input, cause), cause);
    }
  }
  return result(out, version);
}

/**
 * BIP174 Transaction Extractor: the network transaction of a PSBT whose
 * inputs are all final.
 *
 * @param tx a finalized PSBT (not modified)
 * @returns raw hex, txid, wtxid, size and fee
 * @throws ValidationError (422) when an input is not final, there are no
 *   outputs, or the outputs exceed the inputs
 */
export function extractTransaction(tx: Transaction): ExtractedTransaction {
  assertTransaction(tx);
  if (tx.inputsLength === 0) {
    throw new ValidationError("Cannot extract transaction: the PSBT has no inputs", {
      status: 422,
    });
  }
  for (let i = 0; i < tx.inputsLength; i++) {
    if (!isFinal(tx.getInput(i))) {
      throw new ValidationError(`Cannot extract transaction: input ${i} is not finalized`, {
        status: 422,
        extensions: { input: i },
      });
    }
  }
  let feeSats: bigint | null;
  try {
    feeSats = tx.fee;
  } catch {
    feeSats = null;
  }
  if (feeSats !== null && feeSats < 0n) {
    throw new ValidationError("Cannot extract transaction: the outputs exceed the inputs", {
      status: 422,
    });
  }
  let raw: Uint8Array;
  try {
    raw = tx.extract();
  } catch (cause) {
    const detail = tx.outputsLength === 0 ? "it has no outputs" : "it is not complete";
    throw new ValidationError(`Cannot extract transaction: ${detail}`, { status: 422, cause });
  }
  return {
    hex: hex.encode(raw),
    txid: tx.id,
    // BIP141: wtxid = SHA256d of the serialisation with witnesses, shown byte-reversed.
    wtxid: hex.encode(sha256d(raw).reverse()),
    weight: tx.weight,
    vsize: tx.vsize,
    feeSats,
  };
}
