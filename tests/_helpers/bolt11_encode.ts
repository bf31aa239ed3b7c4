/**
 * Test-only BOLT11 invoice writer: builds real, signed invoices so tests can
 * feed decoders and fake Lightning backends with invoices whose every field is
 * known. Independent of `src/` on purpose, so it cannot share a decoder's bugs.
 *
 * Spec: lightning/bolts `11-payment-encoding.md` (human-readable part, tagged
 * fields, signature over SHA-256 of hrp bytes ‖ data words packed to bytes).
 *
 * @module
 */

import { bech32 } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";

/** Networks and their BOLT11 currency prefixes. */
const HRP_PREFIX = {
  mainnet: "lnbc",
  testnet: "lntb",
  signet: "lntbs",
  regtest: "lnbcrt",
} as const;

/** The BOLT11 bech32 alphabet, to name tags by their 5-bit value. */
const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/** msat per unit of each multiplier, largest first: the first exact one is the shortest. */
const MULTIPLIERS: ReadonlyArray<readonly [string, bigint]> = [
  ["", 100_000_000_000n], // 1 BTC
  ["m", 100_000_000n],
  ["u", 100_000n],
  ["n", 100n],
];

/** One extra tagged field, appended verbatim (for tests of unknown/odd fields). */
export interface RawTaggedField {
  /** One bech32 character naming the tag, e.g. `"n"` or `"2"`. */
  tag: string;
  /** The field's 5-bit words (its data_length is their count). */
  words: number[];
}

/** What {@link encodeBolt11} writes. */
export interface EncodeBolt11Options {
  /** Picks the prefix: `lnbc`, `lntb`, `lntbs`, `lnbcrt`. */
  network: "mainnet" | "testnet" | "signet" | "regtest";
  /** Null for an any-amount invoice. */
  amountMsat: bigint | null;
  /** 32 bytes, hex. */
  paymentHash: string;
  /** 32 bytes, hex. */
  paymentSecret: string;
  /** Written as `d`; an empty string writes an empty `d` field. */
  description?: string;
  /** 32 bytes, hex; written as `h`. */
  descriptionHash?: string;
  /** Written as `x` when given. */
  expirySeconds?: number;
  /** Unix seconds; defaults to now. */
  timestamp?: number;
  /** Written as `c` when given. */
  minFinalCltvExpiry?: number;
  /** Feature bit numbers for `9`; defaults to `[8, 14]` (var_onion_optin, payment_secret); `[]` omits `9`. */
  features?: number[];
  /** 32-byte secp256k1 secret key of the payee. */
  nodeKey: Uint8Array;
  /** Also write the payee's public key as an `n` field. */
  includePayeeNodeId?: boolean;
  /** Tagged fields appended after the standard ones, verbatim. */
  extraFields?: RawTaggedField[];
  /** Write the high-S twin (s := n - s, same recovery id) of the low-S signature. */
  highS?: boolean;
  /** Leave out the `p` and/or `s` field (to test readers that must refuse that). */
  omit?: Array<"p" | "s">;
}

/**
 * Build a signed BOLT11 invoice.
 *
 * @param opts the invoice fields and the payee's secret key
 * @returns the invoice text, lower case
 */
export function encodeBolt11(opts: EncodeBolt11Options): string {
  const hrp = HRP_PREFIX[opts.network] + encodeAmount(opts.amountMsat);
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp >= 2 ** 35) {
    throw new RangeError(`timestamp must fit 35 bits, got ${timestamp}`);
  }
  const words: number[] = uintToWords(BigInt(timestamp), 7);

  const omit = new Set(opts.omit ?? []);
  const paymentHash = bytesToWords(hexBytes(opts.paymentHash, 32, "paymentHash"));
  const paymentSecret = bytesToWords(hexBytes(opts.paymentSecret, 32, "paymentSecret"));
  if (!omit.has("p")) pushField(words, "p", paymentHash);
  if (!omit.has("s")) pushField(words, "s", paymentSecret);
  if (opts.description !== undefined) {
    pushField(words, "d", bytesToWords(new TextEncoder().encode(opts.description)));
  }
  if (opts.descriptionHash !== undefined) {
    pushField(words, "h", bytesToWords(hexBytes(opts.descriptionHash, 32, "descriptionHash")));
  }
  if (opts.includePayeeNodeId) {
    pushField(words, "n", bytesToWords(secp256k1.getPublicKey(opts.nodeKey, true)));
  }
  if (opts.expirySeconds !== undefined) {
    pushField(words, "x", minimalUintWords(opts.expirySeconds, "expirySeconds"));
  }
  if (opts.minFinalCltvExpiry !== undefined) {
    pushField(words, "c", minimalUintWords(opts.minFinalCltvExpiry, "minFinalCltvExpiry"));
  }
  const features = opts.features ?? [8, 14];
  if (features.length > 0) pushField(words, "9", featureWords(features));
  for (const field of opts.extraFields ?? []) pushField(words, field.tag, field.words);

  const msgHash = sha256(concat(new TextEncoder().encode(hrp), wordsToBytesPadded(words)));
  // noble's "recovered" format is recid ‖ r ‖ s, low-S; BOLT11 wants r ‖ s ‖ recid.
  const recovered = secp256k1.sign(msgHash, opts.nodeKey, {
    prehash: false,
    format: "recovered",
  });
  const signature = new Uint8Array(65);
  signature.set(recovered.subarray(1, 65), 0);
  signature[64] = recovered[0]!;
  if (opts.highS) {
    const n = secp256k1.Point.CURVE().n;
    const s = bytesToBigInt(signature.subarray(32, 64));
    signature.set(bigIntToBytes(n - s, 32), 32);
  }
  words.push(...bytesToWords(signature));
  return bech32.encode(hrp, words, false);
}

/** Amount part of the hrp with the shortest multiplier; `p` only for sub-0.1-sat precision. */
function encodeAmount(amountMsat: bigint | null): string {
  if (amountMsat === null) return "";
  if (typeof amountMsat !== "bigint" || amountMsat <= 0n) {
    throw new RangeError(`amountMsat must be a positive bigint or null, got ${String(amountMsat)}`);
  }
  for (const [suffix, unit] of MULTIPLIERS) {
    if (amountMsat % unit === 0n) return `${amountMsat / unit}${suffix}`;
  }
  // 1 pico-BTC is 0.1 msat, so the pico count is always a multiple of 10.
  return `${amountMsat * 10n}p`;
}

function pushField(words: number[], tag: string, data: number[]): void {
  const code = CHARSET.indexOf(tag);
  if (tag.length !== 1 || code < 0) {
    throw new RangeError(`tag must be one bech32 character, got "${tag}"`);
  }
  if (data.length > 1023) throw new RangeError(`field "${tag}" too long: ${data.length} words`);
  words.push(code, data.length >> 5, data.length & 31, ...data);
}

function uintToWords(value: bigint, count: number): number[] {
  const out = new Array<number>(count);
  for (let i = count - 1; i >= 0; i--) {
    out[i] = Number(value & 31n);
    value >>= 5n;
  }
  return out;
}

/** Big-endian 5-bit words without leading zeros (0 is zero words), as the spec asks writers. */
function minimalUintWords(value: number, name: string): number[] {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
  const out: number[] = [];
  for (let v = BigInt(value); v > 0n; v >>= 5n) out.unshift(Number(v & 31n));
  return out;
}

/** Feature bits as a big-endian bit field in 5-bit words, bit 0 the last bit of the last word. */
function featureWords(bits: number[]): number[] {
  const max = Math.max(...bits);
  const count = Math.floor(max / 5) + 1;
  const out = new Array<number>(count).fill(0);
  for (const bit of bits) {
    if (!Number.isInteger(bit) || bit < 0) {
      throw new RangeError(`feature bit must be >= 0, got ${bit}`);
    }
    const idx = count - 1 - Math.floor(bit / 5);
    out[idx] = out[idx]! | (1 << (bit % 5));
  }
  return out;
}

function bytesToWords(bytes: Uint8Array): number[] {
  return bech32.toWords(bytes);
}

/** Packs 5-bit words to bytes, zero-padding the last byte (the spec's signing rule). */
function wordsToBytesPadded(words: number[]): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = ((acc << 5) | w) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
  }
  if (bits > 0) out.push((acc << (8 - bits)) & 0xff);
  return Uint8Array.from(out);
}

function hexBytes(hex: string, length: number, name: string): Uint8Array {
  if (typeof hex !== "string" || !/^[0-9a-fA-F]*$/.test(hex) || hex.length !== length * 2) {
    throw new RangeError(`${name} must be ${length} bytes of hex`);
  }
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigIntToBytes(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}
