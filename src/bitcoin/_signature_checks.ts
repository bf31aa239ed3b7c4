/**
 * Per-signature checks shared by `signatures.ts`: which output an input spends,
 * how its ECDSA signatures are hashed (legacy vs BIP143 scriptCode, from the
 * spent script, PSBT_IN_REDEEM_SCRIPT and PSBT_IN_WITNESS_SCRIPT), and the
 * BIP340/BIP341 checks of taproot key-path and script-path signatures.
 *
 * @module
 */
import { OutScript, type Transaction } from "@scure/btc-signer";
import { tapLeafHash } from "@scure/btc-signer/payment.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { classifyScript } from "./script_type.ts";
import { bytesEqual, hash160 } from "./_util.ts";
import {
  legacySighash,
  type PrevOut,
  segwitV0Sighash,
  TAPROOT_HASH_TYPES,
  taprootSighash,
  type TapscriptContext,
  verifyEcdsa,
  verifySchnorr,
} from "./sighash.ts";

// Still importable from here (`_descriptor_key.ts` does); `_util.ts` is where they live.
export { bytesEqual, hash160 } from "./_util.ts";

/** Where a checked signature came from. */
export type SignatureSource =
  | "partial_sig"
  | "tap_key_sig"
  | "tap_script_sig"
  | "final_script_sig"
  | "final_script_witness";

/** The outcome of checking one signature. */
export interface SignatureCheck {
  /** Signature scheme. */
  kind: "ecdsa" | "schnorr";
  /** The PSBT field or final script the signature was taken from. */
  source: SignatureSource;
  /** Public key the signature was checked against (hex; empty when none matched). */
  pubkeyHex: string;
  /** The sighash type the signature commits to (0 = taproot SIGHASH_DEFAULT). */
  sighashType: number;
  /** Outcome of the check. */
  status: "valid" | "invalid" | "unverifiable";
  /** ECDSA only: false for a high-S signature (valid in consensus, non-standard). */
  lowS?: boolean;
  /** Why the signature is invalid or could not be checked. */
  reason?: string;
}

const SIGHASH_ANYONECANPAY = 0x80;

/** A PSBT input as `Transaction.getInput` returns it. */
export type TxInput = ReturnType<Transaction["getInput"]>;

/** One input being checked, with access to the outputs every input spends. */
export class InputContext {
  /** The spending transaction. */
  readonly tx: Transaction;
  /** Input index. */
  readonly index: number;
  /** The input (a copy). */
  readonly input: TxInput;
  #prevouts: readonly (PrevOut | null)[] | undefined;
  // Why: every sighash is a pass over the whole transaction (scure keeps no BIP143 midstate) and
  // a multisig signature is tried against each key in turn; one digest per (scheme, hash type)
  // is all the keys need. Mainnet 200-input multisig spends went from ~2 s to ~0.8 s.
  #ecdsaSighashes = new Map<string, Uint8Array>();

  /**
   * Capture input `index` of `tx`.
   *
   * @param tx the spending transaction
   * @param index input index
   * @param prevouts explicit spent outputs, else the PSBT's UTXO fields
   */
  constructor(tx: Transaction, index: number, prevouts: readonly (PrevOut | null)[] | undefined) {
    this.tx = tx;
    this.index = index;
    this.input = tx.getInput(index);
    this.#prevouts = prevouts;
  }

  /**
   * The output spent by input `i` (default: this input), null when unknown.
   *
   * @param i input index
   */
  prevout(i: number = this.index): PrevOut | null {
    if (this.#prevouts !== undefined) return this.#prevouts[i] ?? null;
    return psbtPrevout(i === this.index ? this.input : this.tx.getInput(i));
  }

  /**
   * The ECDSA signature hash of this input (legacy or BIP143), computed once per scheme and hash type.
   *
   * @param scheme legacy or BIP143 hashing with its scriptCode
   * @param hashType the signature's sighash byte
   */
  ecdsaSighash(scheme: EcdsaScheme, hashType: number): Uint8Array {
    const key = scheme.kind === "legacy"
      ? `legacy:${hashType}:${hex.encode(scheme.scriptCode)}`
      : `segwit:${hashType}:${scheme.amountSats}:${hex.encode(scheme.scriptCode)}`;
    let digest = this.#ecdsaSighashes.get(key);
    if (digest === undefined) {
      digest = scheme.kind === "legacy"
        ? legacySighash(this.tx, this.index, scheme.scriptCode, hashType)
        : segwitV0Sighash(this.tx, this.index, scheme.scriptCode, scheme.amountSats, hashType);
      this.#ecdsaSighashes.set(key, digest);
    }
    return digest;
  }

  /**
   * All prevouts for BIP341, or the name of the first missing one.
   *
   * @param hashType the signature's hash type (ANYONECANPAY needs only this input's)
   */
  allPrevouts(hashType: number): PrevOut[] | string {
    const own = this.prevout();
    if (own === null) return `input ${this.index} has no UTXO data`;
    // ANYONECANPAY commits to this input only; the others' slots are never read.
    if (hashType & SIGHASH_ANYONECANPAY) {
      return Array.from({ length: this.tx.inputsLength }, () => own);
    }
    const out: PrevOut[] = [];
    for (let i = 0; i < this.tx.inputsLength; i++) {
      const p = this.prevout(i);
      if (p === null) return `input ${i} has no UTXO data (BIP341 signs every spent output)`;
      out.push(p);
    }
    return out;
  }
}

/**
 * The output spent by a PSBT input, from PSBT_IN_WITNESS_UTXO or PSBT_IN_NON_WITNESS_UTXO.
 *
 * @param input a PSBT input as returned by `Transaction.getInput`
 * @returns the spent output, or null when the PSBT does not carry it
 */
export function psbtPrevout(input: TxInput): PrevOut | null {
  if (input.witnessUtxo) {
    return { script: input.witnessUtxo.script, amountSats: input.witnessUtxo.amount };
  }
  if (input.nonWitnessUtxo && input.index !== undefined) {
    const out = input.nonWitnessUtxo.outputs[input.index];
    if (out) return { script: out.script, amountSats: out.amount };
  }
  return null;
}

/** How an ECDSA signature on this input is hashed. */
export type EcdsaScheme =
  | { kind: "legacy"; scriptCode: Uint8Array }
  | { kind: "segwit"; scriptCode: Uint8Array; amountSats: bigint };

/**
 * `OP_DUP OP_HASH160 <hash> OP_EQUALVERIFY OP_CHECKSIG`, the BIP143 scriptCode of P2WPKH.
 *
 * @param hash 20-byte key hash
 */
export function p2pkhScript(hash: Uint8Array): Uint8Array {
  return OutScript.encode({ type: "pkh", hash });
}

/** Work out the ECDSA scheme of a non-final input from its prevout and scripts. */
export function ecdsaScheme(ctx: InputContext): EcdsaScheme | string {
  const prev = ctx.prevout();
  if (prev === null) return "missing UTXO data";
  const { redeemScript, witnessScript } = ctx.input;
  const type = classifyScript(prev.script);
  switch (type) {
    case "p2pkh":
    case "p2pk":
    case "multisig":
      return { kind: "legacy", scriptCode: prev.script };
    case "p2wpkh":
      return {
        kind: "segwit",
        scriptCode: p2pkhScript(prev.script.slice(2)),
        amountSats: prev.amountSats,
      };
    case "p2wsh":
      if (!witnessScript) return "missing witnessScript";
      // Why: a witnessScript that does not hash to the program would make us check (and report)
      // a signature over a script the output cannot execute.
      if (!bytesEqual(sha256(witnessScript), prev.script.slice(2))) {
        return "witnessScript does not match the P2WSH output";
      }
      return { kind: "segwit", scriptCode: witnessScript, amountSats: prev.amountSats };
    case "p2sh": {
      if (!redeemScript) return "missing redeemScript";
      if (!bytesEqual(hash160(redeemScript), prev.script.slice(2, 22))) {
        return "redeemScript does not match the P2SH output";
      }
      const inner = classifyScript(redeemScript);
      if (inner === "p2wpkh") {
        return {
          kind: "segwit",
          scriptCode: p2pkhScript(redeemScript.slice(2)),
          amountSats: prev.amountSats,
        };
      }
      if (inner === "p2wsh") {
        if (!witnessScript) return "missing witnessScript";
        if (!bytesEqual(sha256(witnessScript), redeemScript.slice(2))) {
          return "witnessScript does not match the redeemScript";
        }
        return { kind: "segwit", scriptCode: witnessScript, amountSats: prev.amountSats };
      }
      return { kind: "legacy", scriptCode: redeemScript };
    }
    case "p2tr":
      return "ECDSA signature on a taproot input";
    default:
      return `cannot evaluate a ${type} output`;
  }
}

/**
 * Check one ECDSA signature (DER + sighash byte) against `pubkey`.
 *
 * @param ctx the input
 * @param scheme legacy or BIP143 hashing
 * @param pubkey SEC1 public key
 * @param sigWithType signature with its trailing sighash byte
 * @param source where it came from
 */
export function ecdsaCheck(
  ctx: InputContext,
  scheme: EcdsaScheme,
  pubkey: Uint8Array,
  sigWithType: Uint8Array,
  source: SignatureSource,
): SignatureCheck {
  const base = { kind: "ecdsa" as const, source, pubkeyHex: hex.encode(pubkey) };
  if (sigWithType.length < 9) {
    return { ...base, sighashType: -1, status: "invalid", reason: "signature too short" };
  }
  const hashType = sigWithType[sigWithType.length - 1]!;
  const der = sigWithType.subarray(0, -1);
  const { valid, lowS } = verifyEcdsa(pubkey, ctx.ecdsaSighash(scheme, hashType), der);
  return valid
    ? { ...base, sighashType: hashType, status: "valid", lowS }
    : { ...base, sighashType: hashType, status: "invalid", reason: "signature does not verify" };
}

/**
 * Check a PSBT_IN_PARTIAL_SIG entry.
 *
 * @param ctx the input
 * @param pubkey the entry's key
 * @param sig the entry's signature
 */
export function checkPartialSig(
  ctx: InputContext,
  pubkey: Uint8Array,
  sig: Uint8Array,
): SignatureCheck {
  const scheme = ecdsaScheme(ctx);
  if (typeof scheme === "string") {
    return {
      kind: "ecdsa",
      source: "partial_sig",
      pubkeyHex: hex.encode(pubkey),
      sighashType: sig.length > 0 ? sig[sig.length - 1]! : -1,
      // A signature on a P2TR output or on scripts that do not match their hash is wrong
      // whatever the key; missing data only makes it uncheckable.
      status: scheme.startsWith("missing") || scheme.startsWith("cannot")
        ? "unverifiable"
        : "invalid",
      reason: scheme,
    };
  }
  return ecdsaCheck(ctx, scheme, pubkey, sig, "partial_sig");
}

/** Split a BIP341 signature into its 64 bytes and hash type; a string says what is wrong. */
export function splitSchnorrSig(sig: Uint8Array): { sig64: Uint8Array; hashType: number } | string {
  if (sig.length === 64) return { sig64: sig, hashType: 0x00 };
  if (sig.length !== 65) return "taproot signature must be 64 or 65 bytes";
  const hashType = sig[64]!;
  // BIP341: a 65-byte signature with hash type 0x00 is invalid (DEFAULT must be implicit).
  if (!TAPROOT_HASH_TYPES.has(hashType) || hashType === 0x00) {
    return `invalid taproot hash type 0x${hashType.toString(16)}`;
  }
  return { sig64: sig.subarray(0, 64), hashType };
}

/**
 * Check a BIP340 signature (64 bytes, or 65 with a hash type) against `pubkey`.
 *
 * @param ctx the input
 * @param pubkey x-only key
 * @param sig the signature
 * @param source where it came from
 * @param options script-path leaf and annex
 */
export function schnorrCheck(
  ctx: InputContext,
  pubkey: Uint8Array,
  sig: Uint8Array,
  source: SignatureSource,
  options: { leaf?: TapscriptContext; annex?: Uint8Array } = {},
): SignatureCheck {
  const base = { kind: "schnorr" as const, source, pubkeyHex: hex.encode(pubkey) };
  const split = splitSchnorrSig(sig);
  if (typeof split === "string") {
    return { ...base, sighashType: -1, status: "invalid", reason: split };
  }
  const out = { ...base, sighashType: split.hashType };
  // BIP341: SIGHASH_SINGLE without a matching output has no message; such a signature is invalid.
  if ((split.hashType & 0x03) === 0x03 && ctx.index >= ctx.tx.outputsLength) {
    return { ...out, status: "invalid", reason: "SIGHASH_SINGLE without a matching output" };
  }
  const prevouts = ctx.allPrevouts(split.hashType);
  if (typeof prevouts === "string") return { ...out, status: "unverifiable", reason: prevouts };
  const msg = taprootSighash(ctx.tx, ctx.index, prevouts, split.hashType, options);
  return verifySchnorr(pubkey, msg, split.sig64)
    ? { ...out, status: "valid" }
    : { ...out, status: "invalid", reason: "signature does not verify" };
}

/**
 * The tweaked output key of a P2TR input, or why there is none.
 *
 * @param ctx the input
 */
export function taprootOutputKey(ctx: InputContext): Uint8Array | string {
  const prev = ctx.prevout();
  if (prev === null) return "missing UTXO data";
  if (classifyScript(prev.script) !== "p2tr") return "taproot signature on a non-taproot input";
  return prev.script.slice(2);
}

/**
 * Check a key-path signature against the output key in the spent scriptPubKey.
 *
 * @param ctx the input
 * @param sig the signature
 * @param source where it came from
 * @param annex the witness annex, if any
 */
export function checkTapKeySig(
  ctx: InputContext,
  sig: Uint8Array,
  source: SignatureSource,
  annex?: Uint8Array,
): SignatureCheck {
  const key = taprootOutputKey(ctx);
  if (typeof key === "string") {
    return {
      kind: "schnorr",
      source,
      pubkeyHex: "",
      sighashType: sig.length === 65 ? sig[64]! : 0,
      status: key.startsWith("missing") ? "unverifiable" : "invalid",
      reason: key,
    };
  }
  // BIP341 key path: the signature is checked against the tweaked output key Q in the
  // scriptPubKey itself, so no internal key or merkle root is needed.
  return schnorrCheck(ctx, key, sig, source, annex === undefined ? {} : { annex });
}

/**
 * Check a PSBT_IN_TAP_SCRIPT_SIG entry against its leaf in PSBT_IN_TAP_LEAF_SCRIPT.
 *
 * @param ctx the input
 * @param pubkey x-only key
 * @param leafHash the leaf it signs for
 * @param sig the signature
 */
export function checkTapScriptSig(
  ctx: InputContext,
  pubkey: Uint8Array,
  leafHash: Uint8Array,
  sig: Uint8Array,
): SignatureCheck {
  for (const [cb, scriptWithVersion] of ctx.input.tapLeafScript ?? []) {
    const leafVersion = scriptWithVersion[scriptWithVersion.length - 1]!;
    const leafScript = scriptWithVersion.subarray(0, -1);
    if (leafVersion !== (cb.version & 0xfe)) continue;
    if (bytesEqual(tapLeafHash(leafScript, leafVersion), leafHash)) {
      return schnorrCheck(ctx, pubkey, sig, "tap_script_sig", {
        leaf: { leafScript, leafVersion },
      });
    }
  }
  return {
    kind: "schnorr",
    source: "tap_script_sig",
    pubkeyHex: hex.encode(pubkey),
    sighashType: sig.length === 65 ? sig[64]! : 0,
    status: "unverifiable",
    reason: "the signed leaf script is not in PSBT_IN_TAP_LEAF_SCRIPT",
  };
}
