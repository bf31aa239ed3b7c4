/**
 * The HSM's PSBT Signer: signs every input of a PSBT that belongs to one key,
 * or nothing at all.
 *
 * Specs:
 * - BIP174 §"Signer": a signer signs the inputs its keys can sign, identified
 *   by PSBT_IN_BIP32_DERIVATION (fingerprint + path), after the checks in
 *   `src/bitcoin/signing_check.ts` (`assertSignable`),
 *   https://github.com/bitcoin/bips/blob/master/bip-0174.mediawiki#signer
 * - BIP371: taproot inputs are identified by PSBT_IN_TAP_BIP32_DERIVATION; an
 *   entry with no leaf hashes is the internal key (key path). Script paths are
 *   never signed here.
 * - ECDSA (legacy, BIP143 segwit v0, P2SH-P2WPKH): RFC 6979 nonces and low-S
 *   (BIP146) by `@noble/curves`, over the digests `@scure/btc-signer` computes.
 * - BIP341 key path: the internal secret tweaked with
 *   `t = hash_TapTweak(P ‖ merkle_root)` (`taproot_tweak_seckey`), then
 *   BIP340 over the BIP341 signature message, with fresh `aux_rand`.
 *
 * Ownership rules (an input "belongs" to the key when any holds):
 * - a PSBT_IN_BIP32_DERIVATION entry carries the key's fingerprint and the key
 *   derives that entry's public key at its path (a fingerprint match whose
 *   path derives another key is refused: the PSBT lies about our key);
 * - a PSBT_IN_TAP_BIP32_DERIVATION entry carries the key's fingerprint, has no
 *   leaf hashes, and its x-only key is both the derived key and
 *   PSBT_IN_TAP_INTERNAL_KEY;
 * - single keys also own inputs whose spent script pays their key directly
 *   (P2WPKH, P2PKH, P2SH-P2WPKH through the redeemScript, P2TR whose internal
 *   key is theirs).
 *
 * All-or-nothing: every owned input is checked (BIP174 signer checks,
 * sighash policy, key present in the script) before any private key is
 * derived; each new signature is verified against its digest and public key
 * before it is returned (a fault must not leak a key). The caller's
 * `Transaction` is never modified: `signPsbt` adds the signatures to a copy,
 * `signPsbtFields` hands them back as raw fields. The edge verifies again,
 * independently, from the PSBT.
 *
 * @module
 */
import { getInputType, OutScript, Script, SigHash, Transaction } from "@scure/btc-signer";
import { taprootTweakPrivKey } from "@scure/btc-signer/utils.js";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { base64, hex } from "@scure/base";
import { PolicyViolationError, ValidationError } from "../../errors/app_error.ts";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import { assertNetwork } from "../../bitcoin/address.ts";
import { assertSignable } from "../../bitcoin/signing_check.ts";
import { psbtPrevout } from "../../bitcoin/signatures.ts";
import {
  legacySighash,
  type PrevOut,
  segwitV0Sighash,
  TAPROOT_HASH_TYPES,
  taprootSighash,
} from "../../bitcoin/sighash.ts";
import { type PsbtResult, psbtVersionOf } from "../../bitcoin/psbt_ops.ts";
import { classifyScript } from "../../bitcoin/script_type.ts";
import type { SigningKey } from "./key_material.ts";
import { formatDerivationPath } from "../../bitcoin/derivation_path.ts";
import { bytesEqual, type Candidate, hash160, ownership } from "./_psbt_ownership.ts";
import { AUX_RAND_BYTES } from "./digest_signer.ts";

/** Signature scheme of a signed input. */
export type SignatureScheme = "ecdsa" | "schnorr";

/** One signature added by {@linkcode signPsbt}. */
export interface SignedInput {
  /** Input index. */
  input: number;
  /** ECDSA (partial_sig) or BIP340 key path (tap_key_sig). */
  scheme: SignatureScheme;
  /** The signing key: 33-byte compressed (ECDSA) or 32-byte x-only internal key (Schnorr), hex. */
  pubkeyHex: string;
  /** Derivation path of that key from the root (`[]` for a single key). */
  path: number[];
  /** Sighash type signed (0 = taproot SIGHASH_DEFAULT). */
  sighashType: number;
}

/** Options of {@linkcode signPsbt}. */
export interface SignPsbtOptions {
  /** Network the request is for; must be the key's. */
  network: BitcoinNetwork;
  /**
   * Sighash types the key's policy allows. Default: SIGHASH_ALL, plus
   * SIGHASH_DEFAULT on taproot. An input without PSBT_IN_SIGHASH_TYPE is
   * signed with ALL (ECDSA) or DEFAULT (taproot; accepted when the list
   * holds DEFAULT or ALL, which DEFAULT means).
   */
  allowedSighashTypes?: readonly number[];
  /** Demand the full previous transaction for segwit v0 inputs too (see `assertSignable`). */
  requireNonWitnessUtxo?: boolean;
  /**
   * BIP340 `aux_rand` for every Schnorr signature. Default: 32 fresh random
   * bytes per signature, as BIP340 recommends; a fixed value exists only to
   * reproduce published test vectors.
   */
  auxRand?: Uint8Array;
}

/**
 * A new input field, as the BIP174 key-value record it becomes:
 * PSBT_IN_PARTIAL_SIG (0x02, key data = the 33-byte public key) or
 * PSBT_IN_TAP_KEY_SIG (0x13, no key data).
 */
export interface NewInputField {
  /** Input index. */
  input: number;
  /** BIP174 key type. */
  keyType: typeof PSBT_IN_PARTIAL_SIG | typeof PSBT_IN_TAP_KEY_SIG;
  /** Key data after the type. */
  keyData: Uint8Array;
  /** The signature (with its sighash byte where BIP174/BIP341 put one). */
  value: Uint8Array;
}

/** BIP174 PSBT_IN_PARTIAL_SIG. */
export const PSBT_IN_PARTIAL_SIG = 0x02;
/** BIP371 PSBT_IN_TAP_KEY_SIG. */
export const PSBT_IN_TAP_KEY_SIG = 0x13;

/** What {@linkcode signPsbtFields} returns. */
export interface SignPsbtFields {
  /** The signature fields to add, in input order. */
  fields: NewInputField[];
  /** Signatures made, in input order (one per field). */
  signed: SignedInput[];
  /** Owned inputs that already carried this key's signature and were left as they were. */
  alreadySigned: number[];
}

/** What {@linkcode signPsbt} returns. */
export interface SignPsbtResult extends PsbtResult {
  /** Signatures added, in input order. */
  signed: SignedInput[];
  /** Owned inputs that already carried this key's signature and were left as they were. */
  alreadySigned: number[];
}

/** A signature to make, decided before any private key is touched. */
interface Plan {
  input: number;
  scheme: SignatureScheme;
  path: number[];
  publicKey: Uint8Array;
  sighashType: number;
}

type TxInput = ReturnType<Transaction["getInput"]>;

// Hash types whose ECDSA signatures are standard (Core's IsDefinedHashtypeSignature).
const ECDSA_HASH_TYPES: ReadonlySet<number> = new Set([0x01, 0x02, 0x03, 0x81, 0x82, 0x83]);
const SIGHASH_SINGLE = 0x03;

/**
 * Sign every input of `tx` that belongs to `key` (see the module doc), on a
 * copy. Nothing is signed unless every owned input passes every check.
 *
 * @param tx a parsed PSBT (not modified)
 * @param key the open signing key
 * @param options network, sighash policy and aux randomness
 * @returns the signed copy (same PSBT version), its base64, and what was signed
 * @throws ValidationError (422) when no input belongs to the key, a derivation
 *   with the key's fingerprint derives another key, the key is not in the
 *   input's script, the key is for another network, or a BIP174 signer check
 *   fails (`extensions.input`, `extensions.check`)
 * @throws PolicyViolationError (422) for a sighash type the policy does not allow
 * @throws TypeError / RangeError on wrong argument types
 * @throws Error when a fresh signature fails its self-check (nothing is returned)
 * @example
 * ```ts
 * const { tx } = parsePsbt(body.psbt, { network });
 * const result = signPsbt(tx, key, { network, allowedSighashTypes: policy.sighashTypes });
 * result.psbtBase64; // only now leaves the HSM
 * ```
 */
export function signPsbt(
  tx: Transaction,
  key: SigningKey,
  options: SignPsbtOptions,
): SignPsbtResult {
  const made = signPsbtFields(tx, key, options);
  const version = psbtVersionOf(tx);
  const out = Transaction.fromPSBT(tx.toPSBT(version), tx.opts);
  for (const f of made.fields) {
    out.updateInput(
      f.input,
      f.keyType === PSBT_IN_PARTIAL_SIG
        ? { partialSig: [[f.keyData, f.value]] }
        : { tapKeySig: f.value },
      true,
    );
  }
  return {
    tx: out,
    psbtVersion: version,
    psbtBase64: base64.encode(out.toPSBT(version)),
    signed: made.signed,
    alreadySigned: made.alreadySigned,
  };
}

/**
 * The signatures {@linkcode signPsbt} would add, as raw input fields, with
 * the same checks and all-or-nothing rule; `tx` is not modified. For a caller
 * that holds the PSBT's bytes and adds the records itself
 * (`insertInputRecords`), which spares re-serialising the whole PSBT.
 *
 * @param tx a parsed PSBT (not modified)
 * @param key the open signing key
 * @param options network, sighash policy and aux randomness
 * @returns the new fields and what was signed
 * @throws as {@linkcode signPsbt}
 * @example
 * ```ts
 * const parsed = parsePsbt(body.psbt, { network });
 * const { fields } = signPsbtFields(parsed.tx, key, { network });
 * const signed = insertInputRecords(parsed.bytes, fields);
 * ```
 */
export function signPsbtFields(
  tx: Transaction,
  key: SigningKey,
  options: SignPsbtOptions,
): SignPsbtFields {
  if (!(tx instanceof Transaction)) throw new TypeError('signPsbt(): "tx" must be a Transaction');
  if (key === null || typeof key !== "object" || typeof key.publicKeyAt !== "function") {
    throw new TypeError('signPsbt(): "key" must be a SigningKey');
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError('signPsbt(): "options" must be an object');
  }
  assertNetwork(options.network);
  if (options.auxRand !== undefined) {
    if (!(options.auxRand instanceof Uint8Array) || options.auxRand.length !== AUX_RAND_BYTES) {
      throw new RangeError(`signPsbt(): "options.auxRand" must be ${AUX_RAND_BYTES} bytes`);
    }
  }
  const allowed = options.allowedSighashTypes;
  if (allowed !== undefined) {
    if (!Array.isArray(allowed)) {
      throw new TypeError('signPsbt(): "options.allowedSighashTypes" must be an array');
    }
    for (const t of allowed) {
      if (!Number.isInteger(t) || t < 0 || t > 0xff) {
        throw new RangeError(
          `signPsbt(): "options.allowedSighashTypes" holds ${String(t)}, not a sighash byte`,
        );
      }
    }
  }
  if (key.network !== options.network) {
    throw new ValidationError(
      `Cannot sign PSBT: key ${key.fingerprintHex} is for ${key.network}, not ${options.network}`,
      { status: 422, extensions: { check: "network-mismatch" } },
    );
  }

  const owned = new Map<number, Candidate[]>();
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    if (isFinal(input)) continue;
    const candidates = ownership(i, input, key);
    if (candidates.length > 0) owned.set(i, candidates);
  }
  if (owned.size === 0) {
    throw new ValidationError(
      `Cannot sign PSBT: no input of this PSBT belongs to key ${key.fingerprintHex}`,
      { status: 422, extensions: { check: "no-owned-input", fingerprint: key.fingerprintHex } },
    );
  }

  const plans: Plan[] = [];
  const alreadySigned: number[] = [];
  for (const [i, candidates] of owned) {
    assertSignable(tx, i, {
      ...(options.allowedSighashTypes === undefined
        ? {}
        : { allowedSighashTypes: options.allowedSighashTypes }),
      ...(options.requireNonWitnessUtxo === undefined
        ? {}
        : { requireNonWitnessUtxo: options.requireNonWitnessUtxo }),
    });
    const found = planInput(tx, i, candidates, key, options.allowedSighashTypes);
    if (found.length === 0) alreadySigned.push(i);
    plans.push(...found);
  }

  const fields = plans.map((plan) =>
    plan.scheme === "ecdsa"
      ? signEcdsa(tx, plan, key)
      : signTaprootKeyPath(tx, plan, key, options.auxRand)
  );

  return {
    fields,
    signed: plans.map((p) => ({
      input: p.input,
      scheme: p.scheme,
      pubkeyHex: hex.encode(p.scheme === "schnorr" ? p.publicKey.subarray(1) : p.publicKey),
      path: [...p.path],
      sighashType: p.sighashType,
    })),
    alreadySigned,
  };
}

/** Turn an input's candidates into signatures to make, refusing what cannot be signed. */
function planInput(
  tx: Transaction,
  index: number,
  candidates: Candidate[],
  key: SigningKey,
  allowed: readonly number[] | undefined,
): Plan[] {
  const input = tx.getInput(index);
  const prev = psbtPrevout(input);
  // assertSignable passed, so the UTXO is known.
  if (prev === null) throw new Error(`Input ${index} lost its UTXO after the signer checks`);
  const taproot = classifyScript(prev.script) === "p2tr";
  const sighashType = input.sighashType ?? (taproot ? SigHash.DEFAULT : SigHash.ALL);
  checkSighash(tx, index, sighashType, taproot, input.sighashType === undefined, allowed);
  const plans: Plan[] = [];
  for (const c of candidates) {
    if (taproot) {
      if (input.tapKeySig !== undefined) continue;
    } else {
      if ((input.partialSig ?? []).some(([pk]) => bytesEqual(pk, c.publicKey))) continue;
      if (!scriptHasKey(input, c.publicKey)) {
        throw new ValidationError(
          `Cannot sign PSBT: input ${index} does not spend to key ${key.fingerprintHex} at ${
            formatDerivationPath(c.path)
          }`,
          { status: 422, extensions: { input: index, check: "key-not-in-script" } },
        );
      }
    }
    plans.push({
      input: index,
      scheme: taproot ? "schnorr" : "ecdsa",
      path: c.path,
      publicKey: c.publicKey,
      sighashType,
    });
  }
  return plans;
}

/** The sighash this input will be signed with must be allowed, defined and meaningful. */
function checkSighash(
  tx: Transaction,
  index: number,
  type: number,
  taproot: boolean,
  implicit: boolean,
  allowed: readonly number[] | undefined,
): void {
  const name = `0x${type.toString(16).padStart(2, "0")}`;
  if (allowed !== undefined) {
    // An implicit taproot DEFAULT commits to what ALL does, so a policy allowing ALL allows it.
    const ok = allowed.includes(type) ||
      (implicit && taproot && type === SigHash.DEFAULT && allowed.includes(SigHash.ALL));
    if (!ok) {
      throw new PolicyViolationError(
        `Cannot sign PSBT: input ${index} would be signed with sighash type ${name}, which is not allowed`,
        { extensions: { input: index, check: "sighash-not-allowed", sighashType: type } },
      );
    }
  }
  if (!(taproot ? TAPROOT_HASH_TYPES : ECDSA_HASH_TYPES).has(type)) {
    throw new ValidationError(
      `Cannot sign PSBT: input ${index} asks for sighash type ${name}, which is not defined for ${
        taproot ? "taproot" : "ECDSA"
      } signatures`,
      { status: 422, extensions: { input: index, check: "sighash-undefined", sighashType: type } },
    );
  }
  // SIGHASH_SINGLE without a matching output: BIP341 forbids it; legacy signs the constant 1,
  // which lets anyone reuse the signature for any transaction spending that coin.
  if ((type & 0x1f) === SIGHASH_SINGLE && index >= tx.outputsLength) {
    throw new ValidationError(
      `Cannot sign PSBT: input ${index} uses SIGHASH_SINGLE but output ${index} does not exist`,
      { status: 422, extensions: { input: index, check: "sighash-single-without-output" } },
    );
  }
}

/** The check `signIdx` makes, done up front: the last script pushes the key or its hash. */
function scriptHasKey(input: TxInput, publicKey: Uint8Array): boolean {
  let lastScript: Uint8Array;
  try {
    lastScript = getInputType(input).lastScript;
  } catch {
    return false;
  }
  const keyHash = hash160(publicKey);
  let ops: unknown[];
  try {
    ops = Script.decode(lastScript);
  } catch {
    return false;
  }
  return ops.some((op) =>
    op instanceof Uint8Array && (bytesEqual(op, publicKey) || bytesEqual(op, keyHash))
  );
}

/**
 * ECDSA over the legacy or BIP143 digest of the input's script (for P2WPKH,
 * BIP143's P2PKH scriptCode), RFC 6979 nonce, low-S, DER + sighash byte: what
 * `signIdx` does, without it re-deriving the public key the plan already
 * holds and `planInput` already matched to the script.
 */
function signEcdsa(tx: Transaction, plan: Plan, key: SigningKey): NewInputField {
  const input = tx.getInput(plan.input);
  const type = getInputType(input, tx.opts.allowLegacyWitnessUtxo);
  let digest: Uint8Array;
  if (type.txType === "legacy") {
    digest = legacySighash(tx, plan.input, type.lastScript, plan.sighashType);
  } else if (type.txType === "segwit") {
    const prev = psbtPrevout(input);
    if (prev === null) throw new Error(`Input ${plan.input} lost its UTXO after the signer checks`);
    const scriptCode = type.last.type === "wpkh"
      ? OutScript.encode({ type: "pkh", hash: type.last.hash })
      : type.lastScript;
    digest = segwitV0Sighash(tx, plan.input, scriptCode, prev.amountSats, plan.sighashType);
  } else {
    throw new Error(`Input ${plan.input}: ${type.txType} inputs are not signed with ECDSA`);
  }
  const privateKey = key.privateKeyAt(plan.path);
  let der: Uint8Array;
  try {
    der = secp256k1.sign(digest, privateKey, { prehash: false, lowS: true, format: "der" });
  } finally {
    privateKey.fill(0);
  }
  // A faulty ECDSA signature can leak the key: check it before it enters the PSBT.
  const opts = { prehash: false, lowS: true, format: "der" } as const;
  if (!secp256k1.verify(der, digest, plan.publicKey, opts)) throw selfCheckFailed(plan.input);
  return {
    input: plan.input,
    keyType: PSBT_IN_PARTIAL_SIG,
    keyData: plan.publicKey,
    value: Uint8Array.of(...der, plan.sighashType),
  };
}

function signTaprootKeyPath(
  tx: Transaction,
  plan: Plan,
  key: SigningKey,
  auxRand: Uint8Array | undefined,
): NewInputField {
  const input = tx.getInput(plan.input);
  const prevouts = taprootPrevouts(tx, plan.input, plan.sighashType);
  const digest = taprootSighash(tx, plan.input, prevouts, plan.sighashType);
  const outputKey = prevouts[plan.input]!.script.subarray(2);
  const internal = key.privateKeyAt(plan.path);
  let tweaked: Uint8Array | undefined;
  const aux = auxRand === undefined
    ? crypto.getRandomValues(new Uint8Array(AUX_RAND_BYTES))
    : Uint8Array.from(auxRand);
  let signature: Uint8Array;
  try {
    // BIP341 taproot_tweak_seckey: negate for odd Y, add hash_TapTweak(P ‖ merkle_root).
    tweaked = taprootTweakPrivKey(internal, input.tapMerkleRoot ?? new Uint8Array(0));
    // assertSignable matched internal key + merkle root to the output key; check the secret too.
    if (!bytesEqual(schnorr.getPublicKey(tweaked), outputKey)) {
      throw new Error(`Input ${plan.input}: tweaked key does not match the output key`);
    }
    signature = schnorr.sign(digest, tweaked, aux);
  } finally {
    internal.fill(0);
    tweaked?.fill(0);
    aux.fill(0);
  }
  if (!schnorr.verify(signature, digest, outputKey)) throw selfCheckFailed(plan.input);
  // BIP341: SIGHASH_DEFAULT signatures are 64 bytes; any other type is appended.
  const tapKeySig = plan.sighashType === SigHash.DEFAULT
    ? signature
    : Uint8Array.of(...signature, plan.sighashType);
  return {
    input: plan.input,
    keyType: PSBT_IN_TAP_KEY_SIG,
    keyData: new Uint8Array(0),
    value: tapKeySig,
  };
}

/** Spent outputs for the BIP341 message; ANYONECANPAY reads only this input's. */
function taprootPrevouts(tx: Transaction, index: number, type: number): PrevOut[] {
  const own = psbtPrevout(tx.getInput(index));
  if (own === null) throw new Error(`Input ${index} has no UTXO data`);
  const anyoneCanPay = (type & 0x80) !== 0;
  return Array.from({ length: tx.inputsLength }, (_, i) => {
    if (i === index || anyoneCanPay) return own;
    const p = psbtPrevout(tx.getInput(i));
    // assertSignable demanded every UTXO for non-ANYONECANPAY taproot signatures.
    if (p === null) throw new Error(`Input ${i} has no UTXO data`);
    return p;
  });
}

/** A fresh signature that does not verify is a fault (bad RNG, bit flip): sign nothing. */
function selfCheckFailed(input: number): Error {
  return new Error(`signPsbt(): the new signature on input ${input} failed its self-check`);
}

function isFinal(input: TxInput): boolean {
  return (input.finalScriptSig?.length ?? 0) > 0 || (input.finalScriptWitness?.length ?? 0) > 0;
}
