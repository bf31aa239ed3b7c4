/**
 * Which keys of a {@linkcode SigningKey} own a PSBT input: the ownership
 * rules of `psbt_signer.ts` (see its module doc), split out to keep the
 * signer readable. Pure; touches public keys only.
 *
 * Specs: BIP174 PSBT_IN_BIP32_DERIVATION, BIP371 PSBT_IN_TAP_BIP32_DERIVATION
 * and PSBT_IN_TAP_INTERNAL_KEY.
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { sha256 } from "@noble/hashes/sha2.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { hex } from "@scure/base";
import { ValidationError } from "../../errors/app_error.ts";
import { psbtPrevout } from "../../bitcoin/signatures.ts";
import { classifyScript } from "../../bitcoin/script_type.ts";
import type { SigningKey } from "./key_material.ts";
import { formatDerivationPath } from "../../bitcoin/derivation_path.ts";

type TxInput = ReturnType<Transaction["getInput"]>;

/** A key that owns an input, before the input's type decides whether it is used. */
export interface Candidate {
  /** Derivation path from the key's root. */
  path: number[];
  /** The compressed public key at `path`. */
  publicKey: Uint8Array;
  /** Which rule matched: ECDSA rules apply to non-taproot spends, tap rules to taproot ones. */
  via: "ecdsa" | "taproot";
}

/**
 * The keys of `key` that own input `index`.
 *
 * @param index input index, for messages
 * @param input the input's fields
 * @param key the signing key
 * @returns one candidate per owning public key (empty: not ours)
 * @throws ValidationError (422, `check: "derivation-mismatch"`) when a record with the key's
 *   fingerprint names a public key the key does not derive there
 */
export function ownership(index: number, input: TxInput, key: SigningKey): Candidate[] {
  const prev = psbtPrevout(input);
  // Unknown UTXO: keep every match, so the input counts as ours and assertSignable names the gap.
  const taproot = prev === null ? null : classifyScript(prev.script) === "p2tr";
  const found = new Map<string, Candidate>();
  const add = (c: Candidate) => {
    if (taproot === null || taproot === (c.via === "taproot")) {
      found.set(`${c.via}:${hex.encode(c.publicKey)}`, c);
    }
  };
  for (const [pubkey, der] of input.bip32Derivation ?? []) {
    if (der.fingerprint !== key.fingerprint) continue;
    const derived = deriveOrNull(key, der.path);
    if (derived === null || !bytesEqual(derived, pubkey)) {
      throw derivationMismatch(index, key, der.path, "PSBT_IN_BIP32_DERIVATION");
    }
    add({ path: der.path, publicKey: derived, via: "ecdsa" });
  }
  for (const [xOnly, { hashes, der }] of input.tapBip32Derivation ?? []) {
    if (der.fingerprint !== key.fingerprint) continue;
    const derived = deriveOrNull(key, der.path);
    if (derived === null || !bytesEqual(derived.subarray(1), xOnly)) {
      throw derivationMismatch(index, key, der.path, "PSBT_IN_TAP_BIP32_DERIVATION");
    }
    // Leaf hashes mean a script-path key; those are never signed here.
    if (hashes.length > 0) continue;
    // BIP371: the entry without leaf hashes is the internal key; any other reading is a lie.
    if (input.tapInternalKey === undefined || !bytesEqual(input.tapInternalKey, xOnly)) {
      throw derivationMismatch(index, key, der.path, "PSBT_IN_TAP_INTERNAL_KEY");
    }
    add({ path: der.path, publicKey: derived, via: "taproot" });
  }
  if (key.kind === "single" && prev !== null) {
    const rule = singleKeyRule(input, prev.script, key.publicKey);
    if (rule !== null) add({ path: [], publicKey: key.publicKey, via: rule });
  }
  return [...found.values()];
}

/** Whether `script` (or the redeemScript / internal key it relies on) pays `publicKey` itself. */
function singleKeyRule(
  input: TxInput,
  script: Uint8Array,
  publicKey: Uint8Array,
): Candidate["via"] | null {
  const keyHash = hash160(publicKey);
  switch (classifyScript(script)) {
    case "p2wpkh":
      return bytesEqual(script.subarray(2, 22), keyHash) ? "ecdsa" : null;
    case "p2pkh":
      return bytesEqual(script.subarray(3, 23), keyHash) ? "ecdsa" : null;
    case "p2sh": {
      // P2SH-P2WPKH: the redeemScript is the v0 program of our key hash (its hash is checked later).
      const rs = input.redeemScript;
      return rs !== undefined && classifyScript(rs) === "p2wpkh" &&
          bytesEqual(rs.subarray(2, 22), keyHash)
        ? "ecdsa"
        : null;
    }
    case "p2tr":
      return input.tapInternalKey !== undefined &&
          bytesEqual(input.tapInternalKey, publicKey.subarray(1))
        ? "taproot"
        : null;
    default:
      return null;
  }
}

function derivationMismatch(
  index: number,
  key: SigningKey,
  path: readonly number[],
  field: string,
): ValidationError {
  return new ValidationError(
    `Cannot sign PSBT: input ${index} derivation does not match key ${key.fingerprintHex}: ${field} at ${
      formatDerivationPath(path)
    } names another public key`,
    { status: 422, extensions: { input: index, check: "derivation-mismatch" } },
  );
}

/** The public key at `path`, or null when the key cannot derive it (a single key's children). */
function deriveOrNull(key: SigningKey, path: readonly number[]): Uint8Array | null {
  if (key.kind === "single" && path.length > 0) return null;
  return key.publicKeyAt(path);
}

/**
 * RIPEMD160(SHA256(data)).
 *
 * @param data bytes
 */
export function hash160(data: Uint8Array): Uint8Array {
  return ripemd160(sha256(data));
}

/**
 * Byte-wise equality.
 *
 * @param a bytes
 * @param b bytes
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
