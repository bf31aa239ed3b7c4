/**
 * The checks a BIP174 Signer must make before it signs, run before any key is
 * touched (the HSM path calls {@linkcode assertSignable} first).
 *
 * Spec: BIP174 §"Signer" and its pseudo-code `sign_witness`/`sign_non_witness`
 * (https://github.com/bitcoin/bips/blob/master/bip-0174.mediawiki#signer):
 * - a non-witness UTXO must hash to the txid the input spends;
 * - a redeemScript must hash to the P2SH scriptPubKey it claims to satisfy;
 * - a witnessScript must hash to the P2WSH program (direct or nested);
 * - a witness UTXO must not be used to sign a non-witness input (its amount
 *   and script are unauthenticated for legacy sighashes);
 * - the sighash type must be one the signer accepts.
 * Plus BIP341 (taproot signs every spent output, so every input's UTXO must be
 * known, and a given internal key must tweak to the output key) and BIP143's
 * fee caveat (segwit v0 signatures commit only to their own amount; with
 * `requireNonWitnessUtxo` the full previous transaction is demanded).
 *
 * @module
 */
import { OutScript, RawTx, SigHash, Transaction, utils } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { PolicyViolationError, ValidationError } from "../errors/app_error.ts";
import { assertInputIndex, assertTransaction, describeType } from "./_assert.ts";
import { witnessProgram } from "./script_type.ts";
import { bytesEqual, hash160, PREVIOUS_TX_OPTS } from "./_util.ts";

/** Which signer check failed, reported as the `check` extension of the error. */
export type SignerCheck =
  | "missing-utxo"
  | "non-witness-utxo-txid-mismatch"
  | "non-witness-utxo-missing-output"
  | "witness-utxo-mismatch"
  | "witness-utxo-for-non-witness-input"
  | "non-witness-utxo-required"
  | "redeem-script-missing"
  | "redeem-script-mismatch"
  | "redeem-script-without-p2sh"
  | "witness-script-missing"
  | "witness-script-mismatch"
  | "witness-script-without-p2wsh"
  | "taproot-internal-key-mismatch"
  | "taproot-prevouts-missing"
  | "unsupported-script"
  | "duplicate-input"
  | "already-finalized"
  | "sighash-not-allowed";

/** Options of {@linkcode assertSignable}. */
export interface SignableOptions {
  /**
   * Sighash types the signer accepts. Default: SIGHASH_ALL, plus
   * SIGHASH_DEFAULT on taproot inputs (where it means ALL).
   */
  allowedSighashTypes?: readonly number[];
  /**
   * Demand PSBT_IN_NON_WITNESS_UTXO for segwit v0 inputs too: BIP143 lets a
   * signer be lied to about other inputs' amounts (the fee), which the full
   * previous transactions prevent. Default false.
   */
  requireNonWitnessUtxo?: boolean;
}

type TxInput = ReturnType<Transaction["getInput"]>;
interface PrevOut {
  script: Uint8Array;
  amount: bigint;
}

const DEFAULT_SIGHASH_TYPES: readonly number[] = [SigHash.ALL];

function refuse(index: number, check: SignerCheck, reason: string): ValidationError {
  return new ValidationError(`Cannot sign PSBT: input ${index} ${reason}`, {
    status: 422,
    extensions: { input: index, check },
  });
}

/** The script templates the signer resolves through. */
type DecodedScript =
  | { type: "sh" | "wsh" | "wpkh"; hash: Uint8Array }
  | { type: "tr"; pubkey: Uint8Array }
  | { type: "other" };

function decodeScript(script: Uint8Array): DecodedScript {
  let d;
  try {
    d = OutScript.decode(script);
  } catch {
    return { type: "other" };
  }
  switch (d.type) {
    case "sh":
    case "wsh":
    case "wpkh":
      return { type: d.type, hash: d.hash };
    case "tr":
      return { type: "tr", pubkey: d.pubkey };
    default:
      return { type: "other" };
  }
}

function isFinal(input: TxInput): boolean {
  return (input.finalScriptSig?.length ?? 0) > 0 || (input.finalScriptWitness?.length ?? 0) > 0;
}

/** txid of a decoded previous transaction (its serialisation without witnesses). */
function txidOf(prevTx: NonNullable<TxInput["nonWitnessUtxo"]>): string | null {
  try {
    return Transaction.fromRaw(RawTx.encode(prevTx), PREVIOUS_TX_OPTS).id;
  } catch {
    return null;
  }
}

/** The output input `index` spends, after checking its UTXO fields against each other. */
function spentOutput(index: number, input: TxInput): PrevOut {
  if (input.nonWitnessUtxo !== undefined) {
    // BIP174: the Signer must check that the non-witness UTXO hashes to the
    // spent txid; otherwise its amounts and scripts are made up.
    if (input.txid === undefined || txidOf(input.nonWitnessUtxo) !== hex.encode(input.txid)) {
      throw refuse(
        index,
        "non-witness-utxo-txid-mismatch",
        "has a non-witness UTXO whose txid is not the spent txid",
      );
    }
    const out = input.index === undefined ? undefined : input.nonWitnessUtxo.outputs[input.index];
    if (out === undefined) {
      throw refuse(
        index,
        "non-witness-utxo-missing-output",
        "spends an output its non-witness UTXO does not have",
      );
    }
    if (
      input.witnessUtxo !== undefined &&
      (input.witnessUtxo.amount !== out.amount || !bytesEqual(input.witnessUtxo.script, out.script))
    ) {
      throw refuse(
        index,
        "witness-utxo-mismatch",
        "has a witness UTXO that differs from its non-witness UTXO",
      );
    }
    return { script: out.script, amount: out.amount };
  }
  if (input.witnessUtxo !== undefined) {
    return { script: input.witnessUtxo.script, amount: input.witnessUtxo.amount };
  }
  throw refuse(index, "missing-utxo", "has no UTXO data (witness or non-witness UTXO)");
}

/** What kind of signature an input takes, once its scripts are resolved. */
type SpendKind = "legacy" | "segwit-v0" | "taproot";

/**
 * BIP174 `sign_witness`/`sign_non_witness` script resolution: follow the
 * redeemScript and witnessScript down from the spent output, checking each
 * hash, and say whether the input is signed as legacy, segwit v0 or taproot.
 */
function resolveScripts(index: number, input: TxInput, prev: PrevOut): SpendKind {
  const outer = decodeScript(prev.script);
  let script = prev.script;
  let decoded = outer;
  if (input.redeemScript !== undefined) {
    if (outer.type !== "sh") {
      throw refuse(
        index,
        "redeem-script-without-p2sh",
        "has a redeemScript but does not spend a P2SH output",
      );
    }
    // BIP16: a P2SH output commits to HASH160(redeemScript).
    if (!bytesEqual(hash160(input.redeemScript), outer.hash)) {
      throw refuse(
        index,
        "redeem-script-mismatch",
        "has a redeemScript that does not match the P2SH scriptPubKey",
      );
    }
    script = input.redeemScript;
    decoded = decodeScript(script);
  } else if (outer.type === "sh") {
    throw refuse(index, "redeem-script-missing", "spends a P2SH output but has no redeemScript");
  }
  const nested = script !== prev.script;
  switch (decoded.type) {
    case "wpkh":
      if (input.witnessScript !== undefined) {
        throw refuse(
          index,
          "witness-script-without-p2wsh",
          "has a witnessScript but spends a P2WPKH output",
        );
      }
      return "segwit-v0";
    case "wsh":
      if (input.witnessScript === undefined) {
        throw refuse(
          index,
          "witness-script-missing",
          "spends a P2WSH output but has no witnessScript",
        );
      }
      // BIP141: the v0 32-byte program is SHA256(witnessScript).
      if (!bytesEqual(sha256(input.witnessScript), decoded.hash)) {
        throw refuse(
          index,
          "witness-script-mismatch",
          `has a witnessScript that does not match the ${
            nested ? "redeemScript" : "P2WSH scriptPubKey"
          }`,
        );
      }
      return "segwit-v0";
    case "tr":
      // BIP341: v1 programs nested in P2SH are not taproot.
      if (nested) throw refuse(index, "unsupported-script", "wraps a taproot program in P2SH");
      if (input.tapInternalKey !== undefined) {
        let tweaked: Uint8Array | null = null;
        try {
          [tweaked] = utils.taprootTweakPubkey(
            input.tapInternalKey,
            input.tapMerkleRoot ?? new Uint8Array(0),
          );
        } catch {
          tweaked = null;
        }
        if (tweaked === null || !bytesEqual(tweaked, decoded.pubkey)) {
          throw refuse(
            index,
            "taproot-internal-key-mismatch",
            "has a taproot internal key and merkle root that do not tweak to the output key",
          );
        }
      }
      return "taproot";
  }
  // Any other witness program (future versions, v0 of the wrong length) is not ours to sign.
  if (witnessProgram(script) !== null) {
    throw refuse(
      index,
      "unsupported-script",
      "spends a witness program of an unsupported version or size",
    );
  }
  if (input.witnessScript !== undefined) {
    throw refuse(
      index,
      "witness-script-without-p2wsh",
      "has a witnessScript but does not spend a P2WSH output",
    );
  }
  // BIP174: "If a witness UTXO is provided, no non-witness signature may be created."
  if (input.witnessUtxo !== undefined) {
    throw refuse(
      index,
      "witness-utxo-for-non-witness-input",
      "is a non-witness input but has a witness UTXO",
    );
  }
  return "legacy";
}

function checkSighash(
  index: number,
  input: TxInput,
  kind: SpendKind,
  allowed: readonly number[] | undefined,
): void {
  const type = input.sighashType;
  if (type === undefined) return;
  // SIGHASH_DEFAULT (0) exists only for BIP341 signatures; for ECDSA it is an
  // undefined hash type that STRICTENC nodes refuse to relay.
  const accepted = allowed ??
    (kind === "taproot" ? [SigHash.DEFAULT, ...DEFAULT_SIGHASH_TYPES] : DEFAULT_SIGHASH_TYPES);
  if (!accepted.includes(type) || (type === SigHash.DEFAULT && kind !== "taproot")) {
    throw new PolicyViolationError(
      `Cannot sign PSBT: input ${index} asks for sighash type 0x${
        type.toString(16).padStart(2, "0")
      }, which is not allowed`,
      { extensions: { input: index, check: "sighash-not-allowed", sighashType: type } },
    );
  }
}

function checkInput(
  tx: Transaction,
  index: number,
  options: SignableOptions,
  kinds: Map<number, SpendKind>,
): void {
  const input = tx.getInput(index);
  const prev = spentOutput(index, input);
  const kind = resolveScripts(index, input, prev);
  kinds.set(index, kind);
  if (
    options.requireNonWitnessUtxo === true && kind === "segwit-v0" &&
    input.nonWitnessUtxo === undefined
  ) {
    throw refuse(
      index,
      "non-witness-utxo-required",
      "is a segwit v0 input without its previous transaction (required by policy)",
    );
  }
  checkSighash(index, input, kind, options.allowedSighashTypes);
}

/**
 * Refuse to sign unless every BIP174 Signer check passes for input `index`
 * (or for every input that is not final yet, when `index` is omitted).
 *
 * @param tx a parsed PSBT
 * @param index the input about to be signed; all non-final inputs when omitted
 * @param options accepted sighash types and the non-witness UTXO policy
 * @throws ValidationError (422) naming the input and the failed check
 *   (`extensions.check`, see {@linkcode SignerCheck}) when the PSBT's data is
 *   inconsistent; PolicyViolationError (422) for a sighash type not allowed
 * @example
 * ```ts
 * const { tx } = parsePsbt(body.psbt, { network });
 * assertSignable(tx); // before the HSM is asked for anything
 * ```
 */
export function assertSignable(
  tx: Transaction,
  index?: number,
  options: SignableOptions = {},
): void {
  assertTransaction(tx);
  if (index !== undefined) assertInputIndex(tx, index);
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describeType(options)}`);
  }
  if (options.allowedSighashTypes !== undefined) {
    if (!Array.isArray(options.allowedSighashTypes)) {
      throw new TypeError(
        `Invalid options.allowedSighashTypes: expected an array, got ${
          describeType(options.allowedSighashTypes)
        }`,
      );
    }
    for (const t of options.allowedSighashTypes) {
      if (!Number.isInteger(t) || t < 0 || t > 0xff) {
        throw new RangeError(
          `Invalid options.allowedSighashTypes: ${String(t)} is not a sighash byte`,
        );
      }
    }
  }
  if (tx.inputsLength === 0) {
    throw new ValidationError("Cannot sign PSBT: it has no inputs", { status: 422 });
  }
  // A transaction spending one outpoint twice is invalid; never sign one.
  const outpoints = new Map<string, number>();
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    const key = `${input.txid === undefined ? "" : hex.encode(input.txid)}:${input.index}`;
    const first = outpoints.get(key);
    if (first !== undefined) {
      throw refuse(i, "duplicate-input", `spends the same outpoint as input ${first}`);
    }
    outpoints.set(key, i);
  }
  const targets: number[] = [];
  if (index !== undefined) {
    if (isFinal(tx.getInput(index))) {
      throw refuse(index, "already-finalized", "is already finalized");
    }
    targets.push(index);
  } else {
    for (let i = 0; i < tx.inputsLength; i++) if (!isFinal(tx.getInput(i))) targets.push(i);
  }
  const kinds = new Map<number, SpendKind>();
  for (const i of targets) checkInput(tx, i, options, kinds);
  // BIP341 signature messages commit to the amounts and scripts of all spent
  // outputs (unless ANYONECANPAY), so every input's UTXO must be present.
  const taproot = targets.filter((i) => kinds.get(i) === "taproot");
  const anyoneCanPay = (i: number) => ((tx.getInput(i).sighashType ?? 0) & 0x80) !== 0;
  if (taproot.some((i) => !anyoneCanPay(i))) {
    for (let i = 0; i < tx.inputsLength; i++) {
      const input = tx.getInput(i);
      if (input.witnessUtxo === undefined && input.nonWitnessUtxo === undefined) {
        throw refuse(
          i,
          "taproot-prevouts-missing",
          "has no UTXO data, which taproot signatures commit to",
        );
      }
    }
  }
}
