/**
 * Signatures over caller-supplied 32-byte digests (the DLC oracle role and
 * other protocols that hash their own messages).
 *
 * Specs:
 * - BIP340 "Default Signing": x-only public key, the secret negated when its
 *   point has odd Y, `aux_rand` hashed into the nonce,
 *   https://github.com/bitcoin/bips/blob/master/bip-0340.mediawiki#default-signing
 * - ECDSA over secp256k1 (SEC1 §4.1.3) with RFC 6979 deterministic nonces and
 *   the BIP146 low-S form; DER per BIP66 for the encoder.
 *
 * Both come from `@noble/curves`; every signature is verified against the
 * public key before it is returned, so a fault during signing can never hand
 * out a signature that leaks the key. The derived private key is zeroed as
 * soon as the signature exists.
 *
 * Digest signing is blind: whatever the 32 bytes commit to gets signed. Keys
 * that also sign transactions must only be offered here behind a policy that
 * says so (a Bitcoin sighash is a 32-byte digest too).
 *
 * @module
 */
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import type { SigningKey } from "./key_material.ts";

/** Length of the digests signed here. */
export const DIGEST_BYTES = 32;
/** Length of BIP340 `aux_rand`. */
export const AUX_RAND_BYTES = 32;

/**
 * BIP340 Schnorr signature of `digest` by the key at `path`.
 *
 * @param key an open signing key
 * @param path derivation path (`[]` for the root or a single key)
 * @param digest the 32-byte message
 * @param auxRand 32 bytes of auxiliary randomness; fresh CSPRNG bytes when omitted
 *   (BIP340 recommends fresh randomness; fixed values only to reproduce vectors)
 * @returns the 64-byte signature, valid for the x-only key `key.publicKeyAt(path).slice(1)`
 * @throws TypeError / RangeError on wrong argument types or sizes, or a path the key cannot derive
 * @example
 * ```ts
 * const sig = signDigestSchnorr(key, [HARDENED_OFFSET + 9], attestationDigest);
 * ```
 */
export function signDigestSchnorr(
  key: SigningKey,
  path: readonly number[],
  digest: Uint8Array,
  auxRand?: Uint8Array,
): Uint8Array {
  assertKey(key, "signDigestSchnorr");
  assertBytes(digest, "digest", DIGEST_BYTES, "signDigestSchnorr");
  if (auxRand !== undefined) assertBytes(auxRand, "auxRand", AUX_RAND_BYTES, "signDigestSchnorr");
  const aux = auxRand === undefined
    ? crypto.getRandomValues(new Uint8Array(AUX_RAND_BYTES))
    : Uint8Array.from(auxRand);
  const privateKey = key.privateKeyAt(path);
  try {
    // noble's BIP340 signer verifies its own output before returning it.
    return schnorr.sign(digest, privateKey, aux);
  } finally {
    privateKey.fill(0);
    aux.fill(0);
  }
}

/**
 * ECDSA signature of `digest` by the key at `path`: RFC 6979 nonce, low-S.
 *
 * @param key an open signing key
 * @param path derivation path (`[]` for the root or a single key)
 * @param digest the 32-byte message hash (signed as is, not hashed again)
 * @returns the 64-byte compact signature r ‖ s; {@linkcode ecdsaCompactToDer} for DER
 * @throws TypeError / RangeError on wrong argument types or sizes, or a path the key cannot derive
 */
export function signDigestEcdsa(
  key: SigningKey,
  path: readonly number[],
  digest: Uint8Array,
): Uint8Array {
  assertKey(key, "signDigestEcdsa");
  assertBytes(digest, "digest", DIGEST_BYTES, "signDigestEcdsa");
  const privateKey = key.privateKeyAt(path);
  let signature: Uint8Array;
  let publicKey: Uint8Array;
  try {
    // extraEntropy false: the nonce is RFC 6979's, a function of key and digest only.
    signature = secp256k1.sign(digest, privateKey, {
      prehash: false,
      lowS: true,
      extraEntropy: false,
      format: "compact",
    });
    publicKey = secp256k1.getPublicKey(privateKey, true);
  } finally {
    privateKey.fill(0);
  }
  // Fault check: a wrong signature from a glitched computation can reveal the key.
  if (
    !secp256k1.verify(signature, digest, publicKey, { prehash: false, lowS: true })
  ) {
    throw new Error("signDigestEcdsa(): the signature failed its self-check");
  }
  return signature;
}

/**
 * DER encoding (BIP66 strict) of a 64-byte compact ECDSA signature.
 *
 * @param compact r ‖ s, 32 bytes each
 * @returns the DER signature, without a sighash byte
 * @throws TypeError / RangeError on a wrong type or size
 * @throws Error when r or s is not in 1..n-1
 */
export function ecdsaCompactToDer(compact: Uint8Array): Uint8Array {
  assertBytes(compact, "compact", 64, "ecdsaCompactToDer");
  return secp256k1.Signature.fromBytes(compact, "compact").toBytes("der");
}

function assertKey(key: unknown, fn: string): asserts key is SigningKey {
  if (
    key === null || typeof key !== "object" ||
    typeof (key as SigningKey).privateKeyAt !== "function"
  ) {
    throw new TypeError(`${fn}(): "key" must be a SigningKey`);
  }
}

function assertBytes(value: unknown, name: string, length: number, fn: string): void {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${fn}(): "${name}" must be a Uint8Array`);
  }
  if (value.length !== length) {
    throw new RangeError(`${fn}(): "${name}" must be ${length} bytes, got ${value.length}`);
  }
}
