/**
 * Signature messages (sighashes) and the two signature checks Bitcoin uses.
 *
 * Specs:
 * - Legacy sighash: Bitcoin Core `SignatureHash()` for pre-segwit scripts.
 * - BIP143 "Specification" (witness v0 transaction digest).
 * - BIP341 "Common signature message" (`SigMsg`) and BIP342 "Common signature
 *   message extension" (`tapleaf_hash`, `key_version`, `codesep_pos`).
 * - BIP340 "Verification", and ECDSA over secp256k1 with DER signatures
 *   (BIP66) and the BIP146 low-S rule, which is reported, not enforced:
 *   high-S signatures are valid in consensus but non-standard.
 *
 * The digests come from `@scure/btc-signer`'s preimage functions, the checks
 * from `@noble/curves`; nothing here is hand-rolled and nothing signs.
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import {
  assertBytes,
  assertInputIndex,
  assertInteger,
  assertSats,
  describeType,
} from "./_assert.ts";

/** An output being spent: its scriptPubKey and value. */
export interface PrevOut {
  /** The spent output's scriptPubKey. */
  script: Uint8Array;
  /** The spent output's value. */
  amountSats: bigint;
}

/** BIP341: the hash types a taproot signature may commit to (0x00 = SIGHASH_DEFAULT). */
export const TAPROOT_HASH_TYPES: ReadonlySet<number> = new Set([
  0x00,
  0x01,
  0x02,
  0x03,
  0x81,
  0x82,
  0x83,
]);
/** BIP342: the leaf version of tapscript. */
export const TAPSCRIPT_LEAF_VERSION = 0xc0;

/**
 * BIP340 Schnorr verification, the one used for every taproot signature here.
 *
 * @param pubkey 32-byte x-only public key
 * @param message the signed message (any length; 32 bytes for Bitcoin sighashes)
 * @param signature 64-byte signature
 * @returns true when the signature is valid; false for invalid keys or signatures
 */
export function verifySchnorr(
  pubkey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  assertBytes(pubkey, "pubkey", 32);
  assertBytes(message, "message");
  assertBytes(signature, "signature", 64);
  try {
    return schnorr.verify(signature, message, pubkey);
  } catch {
    // noble throws for keys that are not on the curve or out of range: not a valid signature.
    return false;
  }
}

/**
 * ECDSA verification of a DER signature over a 32-byte sighash.
 *
 * @param pubkey 33- or 65-byte SEC1 public key
 * @param sighash the 32-byte message hash
 * @param derSignature DER signature without the trailing sighash byte
 * @returns `valid`, and `lowS` (false for high-S signatures, which still verify)
 */
export function verifyEcdsa(
  pubkey: Uint8Array,
  sighash: Uint8Array,
  derSignature: Uint8Array,
): { valid: boolean; lowS: boolean } {
  assertBytes(pubkey, "pubkey");
  assertBytes(sighash, "sighash", 32);
  assertBytes(derSignature, "derSignature");
  try {
    const sig = secp256k1.Signature.fromBytes(derSignature, "der");
    const valid = secp256k1.verify(derSignature, sighash, pubkey, {
      prehash: false,
      // Verify high-S too, and report it separately: BIP146 low-S is policy, not consensus.
      lowS: false,
      format: "der",
    });
    return { valid, lowS: !sig.hasHighS() };
  } catch {
    return { valid: false, lowS: true };
  }
}

interface LegacyPreimage {
  preimageLegacy(idx: number, prevOutScript: Uint8Array, hashType: number): Uint8Array;
}

/**
 * Legacy (pre-segwit) signature hash of input `index`.
 *
 * @param tx the spending transaction
 * @param index input index
 * @param scriptCode the script being executed (prevout script, or the P2SH redeemScript)
 * @param hashType the sighash byte of the signature
 */
export function legacySighash(
  tx: Transaction,
  index: number,
  scriptCode: Uint8Array,
  hashType: number,
): Uint8Array {
  assertInputIndex(tx, index);
  assertBytes(scriptCode, "scriptCode");
  assertInteger(hashType, "hashType", 0, 0xff);
  // scure implements Core's legacy algorithm (incl. the SIGHASH_SINGLE "one" quirk) but keeps the
  // method private; pinned at @scure/btc-signer 2.4.1 and covered by the mainnet block tests.
  const impl = (tx as unknown as LegacyPreimage).preimageLegacy;
  if (typeof impl !== "function") throw new TypeError("legacySighash: unsupported scure version");
  return impl.call(tx, index, scriptCode, hashType);
}

/**
 * BIP143 signature hash of input `index`.
 *
 * @param tx the spending transaction
 * @param index input index
 * @param scriptCode BIP143 scriptCode (P2PKH script for P2WPKH, the witnessScript for P2WSH)
 * @param amountSats value of the spent output
 * @param hashType the sighash byte of the signature
 */
export function segwitV0Sighash(
  tx: Transaction,
  index: number,
  scriptCode: Uint8Array,
  amountSats: bigint,
  hashType: number,
): Uint8Array {
  assertInputIndex(tx, index);
  assertBytes(scriptCode, "scriptCode");
  assertSats(amountSats, "amountSats");
  assertInteger(hashType, "hashType", 0, 0xff);
  return tx.preimageWitnessV0(index, scriptCode, hashType, amountSats);
}

/** Script-path details for {@linkcode taprootSighash}. */
export interface TapscriptContext {
  /** The leaf script (without its version byte). */
  leafScript: Uint8Array;
  /** Leaf version (0xc0 for tapscript). */
  leafVersion: number;
}

/**
 * BIP341 signature hash of input `index` (key path, or script path with `leaf`).
 *
 * @param tx the spending transaction
 * @param index input index
 * @param prevouts every input's spent output (BIP341 commits to all of them)
 * @param hashType 0x00 (DEFAULT), 0x01-0x03 or 0x81-0x83
 * @param options `leaf` for a script-path spend, `annex` when the witness has one
 */
export function taprootSighash(
  tx: Transaction,
  index: number,
  prevouts: readonly PrevOut[],
  hashType: number,
  options: { leaf?: TapscriptContext; annex?: Uint8Array } = {},
): Uint8Array {
  assertInputIndex(tx, index);
  if (!Array.isArray(prevouts)) {
    throw new TypeError(`Invalid prevouts: expected an array, got ${describeType(prevouts)}`);
  }
  if (prevouts.length !== tx.inputsLength) {
    throw new RangeError(
      `Invalid prevouts: expected ${tx.inputsLength} entries, got ${prevouts.length}`,
    );
  }
  prevouts.forEach((p, i) => {
    assertBytes(p?.script, `prevouts[${i}].script`);
    assertSats(p.amountSats, `prevouts[${i}].amountSats`);
  });
  assertInteger(hashType, "hashType", 0, 0xff);
  if (!TAPROOT_HASH_TYPES.has(hashType)) {
    throw new RangeError(`Invalid hashType: 0x${hashType.toString(16)} is not a BIP341 hash type`);
  }
  return tx.preimageWitnessV1(
    index,
    prevouts.map((p) => p.script),
    hashType,
    prevouts.map((p) => p.amountSats),
    -1,
    options.leaf?.leafScript,
    options.leaf?.leafVersion ?? TAPSCRIPT_LEAF_VERSION,
    options.annex,
  );
}
