/**
 * Key expressions of output descriptors (BIP380 §"Key Expressions"): key
 * origins, hex public keys, xpub/tpub with unhardened derivation steps and a
 * final `/*`, and the BIP32 origin each derived key gets in a PSBT (BIP174
 * `PSBT_IN_BIP32_DERIVATION`, BIP371 `PSBT_IN_TAP_BIP32_DERIVATION`). Private
 * keys are refused before anything is parsed. Private to `descriptor.ts`.
 * https://github.com/bitcoin/bips/blob/master/bip-0380.mediawiki#key-expressions
 *
 * @module
 */
import { HDKey } from "@scure/bip32";
import { createBase58check, hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { utils } from "@scure/btc-signer";
import { ValidationError } from "../errors/app_error.ts";
import type { BitcoinNetwork } from "./network.ts";
import { hash160 } from "./_signature_checks.ts";

/** BIP32 origin of a key: the master key's fingerprint and the path from it. */
export interface KeyOrigin {
  /** First 4 bytes of HASH160(master public key), big-endian, as PSBT stores it. */
  fingerprint: number;
  /** Child indexes; hardened ones have 0x80000000 added. */
  path: readonly number[];
}

/** One key expression of a parsed descriptor. */
export interface DescriptorKey {
  /** The `[fingerprint/path]` prefix, null when absent. */
  origin: KeyOrigin | null;
  /** Lowercase hex of a fixed key: 33-byte compressed, or 32-byte x-only inside `tr()`; else null. */
  pubkeyHex: string | null;
  /** The xpub/tpub as written; null for a fixed key. */
  extendedKey: string | null;
  /** Unhardened derivation steps after the extended key, the final `/*` excluded. */
  steps: readonly number[];
  /** True when the key ends in `/*`. */
  ranged: boolean;
}

/** A key origin in the shape `@scure/btc-signer` PSBT fields take. */
export interface Bip32Der {
  /** Master key fingerprint, big-endian uint32. */
  fingerprint: number;
  /** Path from the master key; hardened indexes have 0x80000000 added. */
  path: number[];
}

const HARDENED = 0x80000000;
/** Largest unhardened child index. */
export const MAX_INDEX = HARDENED - 1;
// BIP32 serializes depth in one byte.
const MAX_DEPTH = 255;
const XPUB = 0x0488b21e;
const TPUB = 0x043587cf;
const base58check = createBase58check(sha256);

/** Per key of a parsed descriptor: the HD key after its fixed steps and the root fingerprint. */
export interface KeyBase {
  /** The extended key after its fixed steps. */
  hd: HDKey;
  /** Fingerprint for origin-less keys: the extended key's own. */
  rootFingerprint: number;
}

/**
 * A 422 for a descriptor problem, with the message also as the issue at `path`.
 *
 * @param message client-safe explanation
 * @param path request field the issue names
 */
export function descriptorError(message: string, path = "descriptor"): ValidationError {
  return new ValidationError(`Invalid descriptor: ${message}`, {
    status: 422,
    issues: [{ path, message }],
  });
}

/** True when `token` decodes as a WIF key or an extended private key (any version bytes). */
function isPrivateKeyToken(token: string): boolean {
  // Recognised even with a bad checksum, so a mistyped xprv is still refused as a private key.
  if (/^[xtyzuvYZUV]prv/.test(token) && token.length >= 100) return true;
  let data: Uint8Array;
  try {
    data = base58check.decode(token);
  } catch {
    return false;
  }
  // BIP32 serialization: key data starts at byte 45; private keys are 0x00-prefixed.
  if (data.length === 78) return data[45] === 0;
  // WIF: 0x80 (mainnet) or 0xef (test networks), 32-byte key, optional 0x01 compression flag.
  const wifVersion = data[0] === 0x80 || data[0] === 0xef;
  return wifVersion && (data.length === 33 || (data.length === 34 && data[33] === 0x01));
}

/**
 * Refuse any WIF or extended private key anywhere in `body`.
 *
 * @param body descriptor text
 */
export function refusePrivateKeys(body: string): void {
  for (const token of body.split(/[^1-9A-HJ-NP-Za-km-z]+/)) {
    if (token.length >= 50 && isPrivateKeyToken(token)) {
      throw descriptorError(
        "it contains a private key; the edge never accepts private keys: send the public " +
          "descriptor (xpub/tpub or public keys) instead",
      );
    }
  }
}

/** One `/NUM` or `/NUMh` step (BIP380: `h` or `'` marks hardened). */
function parseStep(text: string, label: string): number {
  const m = /^(\d+)(h|')?$/.exec(text);
  if (m === null) {
    if (text === "") throw descriptorError(`${label}: empty derivation step (stray "/")`);
    if (/^\d+H$/.test(text)) {
      throw descriptorError(`${label}: write hardened steps with "h" or "'", not "H"`);
    }
    throw descriptorError(`${label}: invalid derivation step "${text.slice(0, 12)}"`);
  }
  const n = Number(m[1]);
  if (m[1]!.length > 10 || n > MAX_INDEX) {
    throw descriptorError(`${label}: derivation index ${m[1]!.slice(0, 12)} is above ${MAX_INDEX}`);
  }
  return m[2] === undefined ? n : n + HARDENED;
}

function parseOrigin(text: string, label: string): KeyOrigin {
  const [fp, ...steps] = text.split("/");
  if (!/^[0-9a-fA-F]{8}$/.test(fp!)) {
    throw descriptorError(`${label}: the key origin must start with an 8-hex-digit fingerprint`);
  }
  const path = steps.map((s) => {
    if (s.startsWith("*")) throw descriptorError(`${label}: "*" is not allowed in a key origin`);
    return parseStep(s, label);
  });
  return { fingerprint: Number.parseInt(fp!, 16), path };
}

function isValidPoint(bytes: Uint8Array): boolean {
  try {
    secp256k1.Point.fromBytes(bytes);
    return true;
  } catch {
    return false;
  }
}

function parseFixedKey(text: string, xonly: boolean, label: string): string {
  const key = text.toLowerCase();
  if (key.length === 130 && /^0[467]/.test(key)) {
    throw descriptorError(`${label}: uncompressed public keys are not supported`);
  }
  if (key.length === 64) {
    if (!xonly) throw descriptorError(`${label}: x-only public keys are only allowed inside tr()`);
    if (!isValidPoint(hex.decode(`02${key}`))) {
      throw descriptorError(`${label}: not a valid x-only public key`);
    }
    return key;
  }
  if (key.length !== 66 || !/^0[23]/.test(key)) {
    throw descriptorError(`${label}: a hex public key has 66 hex digits and starts with 02 or 03`);
  }
  if (!isValidPoint(hex.decode(key))) throw descriptorError(`${label}: not a valid public key`);
  // BIP386: a compressed key inside tr() stands for its x coordinate.
  return xonly ? key.slice(2) : key;
}

function parseExtendedKey(text: string, network: BitcoinNetwork, label: string): HDKey {
  let data: Uint8Array;
  try {
    data = base58check.decode(text);
  } catch {
    throw descriptorError(
      `${label}: not a hex public key or a valid xpub/tpub (bad encoding or checksum)`,
    );
  }
  if (data.length !== 78) throw descriptorError(`${label}: not a hex public key or an xpub/tpub`);
  const version = new DataView(data.buffer, data.byteOffset).getUint32(0, false);
  if (version === XPUB && network !== "mainnet") {
    throw descriptorError(`${label}: an xpub is a mainnet key; use a tpub on ${network}`);
  }
  if (version === TPUB && network === "mainnet") {
    throw descriptorError(`${label}: a tpub is a test-network key; use an xpub on mainnet`);
  }
  if (version !== XPUB && version !== TPUB) {
    throw descriptorError(
      `${label}: only xpub/tpub extended keys are accepted (ypub/zpub-style versions: write the ` +
        "script type in the descriptor and give the xpub/tpub)",
    );
  }
  try {
    return HDKey.fromExtendedKey(text, {
      public: version,
      private: version === XPUB ? 0x0488ade4 : 0x04358394,
    });
  } catch {
    throw descriptorError(`${label}: not a valid extended public key`);
  }
}

/**
 * Parse a BIP380 key expression.
 *
 * @param text the key expression, origin included
 * @param xonly true inside `tr()`, where 64-hex-digit x-only keys are allowed (BIP386)
 * @param network the configured network, to check xpub/tpub against
 * @param label how messages name the key (`key`, `key 2`)
 * @returns the key, and for extended keys the HD key after its fixed steps
 */
export function parseKey(
  text: string,
  xonly: boolean,
  network: BitcoinNetwork,
  label: string,
): { key: DescriptorKey; base: KeyBase | null } {
  let rest = text;
  let origin: KeyOrigin | null = null;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw descriptorError(`${label}: key origin "[" is not closed by "]"`);
    origin = parseOrigin(rest.slice(1, close), label);
    rest = rest.slice(close + 1);
  }
  if (rest.includes("[") || rest.includes("]")) {
    throw descriptorError(`${label}: misplaced "[" or "]" (one key origin, before the key)`);
  }
  if (rest === "") throw descriptorError(`${label}: a key is missing`);
  if (/[<>;]/.test(rest)) {
    throw descriptorError(
      `${label}: multipath keys (<a;b>) are not supported; send one descriptor per branch`,
    );
  }
  const [keyText, ...stepTexts] = rest.split("/");
  if (/^[0-9a-fA-F]+$/.test(keyText!)) {
    if (stepTexts.length > 0) {
      throw descriptorError(`${label}: derivation steps are only allowed after an xpub/tpub`);
    }
    const pubkeyHex = parseFixedKey(keyText!, xonly, label);
    return { key: { origin, pubkeyHex, extendedKey: null, steps: [], ranged: false }, base: null };
  }
  const hd = parseExtendedKey(keyText!, network, label);
  let ranged = false;
  const steps: number[] = [];
  stepTexts.forEach((s, i) => {
    if (s === "*" || s === "*h" || s === "*'") {
      if (i !== stepTexts.length - 1) throw descriptorError(`${label}: "/*" must be the last step`);
      if (s !== "*") {
        throw descriptorError(
          `${label}: hardened wildcard "/${s}" needs the private key; use "/*"`,
        );
      }
      ranged = true;
      return;
    }
    const step = parseStep(s, label);
    if (step >= HARDENED) {
      throw descriptorError(
        `${label}: hardened derivation after an xpub/tpub is impossible without the private ` +
          "key; give the xpub/tpub at the last hardened step and put those steps in the " +
          "[fingerprint/path] origin",
      );
    }
    steps.push(step);
  });
  if (hd.depth + steps.length + (ranged ? 1 : 0) > MAX_DEPTH) {
    throw descriptorError(`${label}: derivation deeper than ${MAX_DEPTH} levels`);
  }
  let base = hd;
  try {
    for (const s of steps) base = base.deriveChild(s);
  } catch {
    // BIP32: probability below 2^-127; the key expression cannot be used as written.
    throw descriptorError(`${label}: a derivation step gives an invalid key`);
  }
  return {
    key: { origin, pubkeyHex: null, extendedKey: keyText!, steps, ranged },
    // Without an origin the xpub is its own root: its fingerprint names the master key.
    base: { hd: base, rootFingerprint: hd.fingerprint },
  };
}

/**
 * The public key of `k` at `index` with its BIP32 origin (as in Bitcoin Core, a
 * key without an origin is its own root: its fingerprint, the steps as path).
 *
 * @param k the key expression
 * @param base what {@linkcode parseKey} returned for it
 * @param index child index for a ranged key; ignored otherwise
 */
export function keyAt(
  k: DescriptorKey,
  base: KeyBase | null,
  index: number,
): { pubkey: Uint8Array; der: Bip32Der } {
  if (k.pubkeyHex !== null) {
    const pubkey = hex.decode(k.pubkeyHex);
    const full = pubkey.length === 32 ? utils.concatBytes(Uint8Array.of(2), pubkey) : pubkey;
    const der = k.origin === null
      ? { fingerprint: fingerprintOf(full), path: [] }
      : { fingerprint: k.origin.fingerprint, path: [...k.origin.path] };
    return { pubkey, der };
  }
  let child = base!.hd;
  if (k.ranged) {
    try {
      child = child.deriveChild(index);
    } catch {
      throw descriptorError(`index ${index} derives an invalid key (BIP32); skip it`, "range");
    }
  }
  const tail = [...k.steps, ...(k.ranged ? [index] : [])];
  const der = k.origin === null
    ? { fingerprint: base!.rootFingerprint, path: tail }
    : { fingerprint: k.origin.fingerprint, path: [...k.origin.path, ...tail] };
  // Copied: HDKey hands out its own buffer, and the base is reused across calls.
  return { pubkey: Uint8Array.from(child.publicKey!), der };
}

function fingerprintOf(pubkey: Uint8Array): number {
  const h = hash160(pubkey);
  return new DataView(h.buffer, h.byteOffset).getUint32(0, false);
}
