/**
 * BOLT11 invoice decoder: pure, no I/O. Parses the bech32 text, checks the
 * amount, the tagged fields and the signature, and recovers (or verifies) the
 * payee. Every malformed or unsafe invoice is rejected with a
 * `ValidationError` (422) whose `extensions.reason` names the condition.
 *
 * Spec: lightning/bolts `11-payment-encoding.md` @ a3772650 (tagged fields,
 * reader requirements, examples) and `09-features.md` (feature names and
 * dependencies): https://github.com/lightning/bolts/blob/master/11-payment-encoding.md
 *
 * Decisions where the spec leaves room (each also noted at its check):
 * - Signature with an `n` field: verified against `n` and must be low-S (BOLT11
 *   after lightning/bolts#1284). Without `n` the payee is recovered and a
 *   high-S signature is accepted: `s` is normalised to `n - s` and the
 *   transmitted recovery id is kept, which is how the spec's "Public-key
 *   recovery with high-S signature" example yields its signer. (libsecp256k1's
 *   raw recovery of that example, recovery id applied to the high `s`, yields
 *   a different key.)
 * - `p`, `h`, `s`, `n` of the wrong length, `f` of an unknown version and
 *   unknown tags are skipped (listed in `skippedFields`), as the spec says.
 *   `f` fields whose program is not a valid address for their version are
 *   skipped too, so `fallbackAddresses` holds only addresses we could encode.
 * - Fields the spec requires once (`p`, `s`) and single-valued fields (`d`,
 *   `h`, `n`, `x`, `c`, `9`, `m`) may not repeat: which copy counts would be
 *   ambiguous. `d` together with `h` is refused for the same reason; an
 *   invoice with neither decodes with both null.
 * - Non-minimal `x`, `c`, `9` encodings (a SHOULD) are accepted.
 * - Field data whose padding bits are not zero, or which leaves 5 or more
 *   padding bits, is refused (BIP173 `convertbits` without padding).
 * - Invoices longer than {@linkcode BOLT11_MAX_LENGTH} are refused before
 *   decoding (LND's limit: the largest QR code), amounts above the 21 million
 *   BTC supply are refused, and `c` must fit the u32 of an HTLC `cltv_expiry`.
 * - Checks run in this order: text, human-readable part, field structure,
 *   signature, then field semantics; so a forged invoice is reported as a
 *   signature failure before anything it says is interpreted.
 *
 * @module
 */

import { bech32, bech32m, createBase58check } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ValidationError } from "../../errors/app_error.ts";

/** Longest invoice text accepted: 7089 characters, the capacity of the largest QR code (as LND). */
export const BOLT11_MAX_LENGTH = 7089;

/** Networks an invoice can name, from its human-readable prefix. */
export type Bolt11Network = "mainnet" | "testnet" | "signet" | "regtest";

/** One hop of a private route (`r` field). */
export interface RouteHintHop {
  /** Node id at the start of the channel, 33-byte compressed, hex. */
  pubkey: string;
  /** `blockxtxxout`. */
  shortChannelId: string;
  /** u32, exact as a number. */
  feeBaseMsat: number;
  /** Proportional fee, parts per million. */
  feeProportionalMillionths: number;
  /** Blocks this hop adds to the HTLC expiry. */
  cltvExpiryDelta: number;
}

/** A tagged field the reader skipped, as the spec requires. */
export interface SkippedField {
  /** The tag character, e.g. `"p"` or `"2"`. */
  tag: string;
  /** Its length in 5-bit words. */
  dataLength: number;
}

/** A decoded, signature-checked BOLT11 invoice. */
export interface DecodedBolt11 {
  /** From the prefix: `lnbc`, `lntb`, `lntbs`, `lnbcrt`. */
  network: Bolt11Network;
  /** Human-readable part, lower case (`lnbc2500u`). */
  hrp: string;
  /** Null for an any-amount invoice. */
  amountMsat: bigint | null;
  /** When the invoice was created (seconds precision). */
  timestamp: Date;
  /** `x` field; 3600 when absent. */
  expirySeconds: number;
  /** `timestamp + expirySeconds`. */
  expiresAt: Date;
  /** `now >= expiresAt`: an invoice is no longer payable from its expiry instant on. */
  expired: boolean;
  /** Hex. */
  paymentHash: string;
  /** Hex. */
  paymentSecret: string;
  /** `d` field (UTF-8), or null when absent. */
  description: string | null;
  /** Hex. */
  descriptionHash: string | null;
  /** 33-byte compressed key, hex: the `n` field when present (verified), else recovered. */
  payeePubkey: string;
  /** Whether the payee came from the `n` field or from signature recovery. */
  payeeSource: "n-field" | "recovered";
  /** `c` field; 18 when absent. */
  minFinalCltvExpiry: number;
  /** Fallback on-chain addresses in the writer's order of preference. */
  fallbackAddresses: string[];
  /** One entry per `r` field, each a route of hops. */
  routeHints: RouteHintHop[][];
  /** The `9` field. */
  features: {
    /** Every set bit of the `9` field, ascending. */
    bits: number[];
    /** BOLT9 names of the set bits known in invoices, ascending by bit. */
    names: string[];
  };
  /** `m` field, hex. */
  paymentMetadata: string | null;
  /** The transmitted signature. */
  signature: {
    /** r ‖ s, 64 bytes, hex, as transmitted. */
    compact: string;
    recoveryId: number;
    highS: boolean;
  };
  /** SHA-256 of hrp ‖ data part, the signed message, hex. */
  signingHash: string;
  /** Fields skipped as the spec requires (unknown tag, wrong length, unknown fallback version). */
  skippedFields: SkippedField[];
}

/** Options of {@linkcode decodeBolt11}. */
export interface DecodeBolt11Options {
  /** Instant against which `expired` is computed; defaults to the current time. */
  now?: Date;
}

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const CHARSET_INDEX: ReadonlyMap<string, number> = new Map(
  Array.from(CHARSET, (c, i) => [c, i] as const),
);

/** Tag values (5-bit) of the fields this reader understands. */
const TAG = {
  p: 1,
  r: 3,
  "9": 5,
  x: 6,
  f: 9,
  d: 13,
  s: 16,
  n: 19,
  h: 23,
  c: 24,
  m: 27,
} as const;

/** Fields that may appear at most once (`f` and `r` may repeat). */
const SINGLE_FIELDS: ReadonlySet<number> = new Set([
  TAG.p,
  TAG.s,
  TAG.d,
  TAG.h,
  TAG.n,
  TAG.x,
  TAG.c,
  TAG["9"],
  TAG.m,
]);

const TIMESTAMP_WORDS = 7;
const SIGNATURE_WORDS = 104;
const DEFAULT_EXPIRY_SECONDS = 3600;
const DEFAULT_MIN_FINAL_CLTV_EXPIRY = 18;
/** 21 million BTC in msat: no payable amount is larger. */
const MAX_AMOUNT_MSAT = 21_000_000n * 100_000_000_000n;
/** Largest instant a `Date` holds, in seconds. */
const MAX_DATE_SECONDS = 8.64e12;
const ROUTE_HOP_BYTES = 51;

/** msat per unit of the amount, by multiplier (`p`, 0.1 msat, is handled apart). */
const MULTIPLIER_MSAT: ReadonlyMap<string, bigint> = new Map([
  ["", 100_000_000_000n],
  ["m", 100_000_000n],
  ["u", 100_000n],
  ["n", 100n],
]);

/** Longest currency prefixes first, so `bcrt` wins over `bc` and `tbs` over `tb`. */
const CURRENCIES: ReadonlyArray<readonly [string, Bolt11Network]> = [
  ["bcrt", "regtest"],
  ["bc", "mainnet"],
  ["tbs", "signet"],
  ["tb", "testnet"],
];

/** Address encodings per network, for fallback (`f`) fields. */
const ADDRESS_PARAMS: Readonly<
  Record<Bolt11Network, { segwitHrp: string; p2pkh: number; p2sh: number }>
> = {
  mainnet: { segwitHrp: "bc", p2pkh: 0x00, p2sh: 0x05 },
  testnet: { segwitHrp: "tb", p2pkh: 0x6f, p2sh: 0xc4 },
  signet: { segwitHrp: "tb", p2pkh: 0x6f, p2sh: 0xc4 },
  regtest: { segwitHrp: "bcrt", p2pkh: 0x6f, p2sh: 0xc4 },
};

/**
 * BOLT9 features offered in invoices (context `9`), by their even bit. An
 * even bit outside this table is unknown and makes the invoice unpayable.
 */
const KNOWN_FEATURES: ReadonlyMap<number, { name: string; requires?: number }> = new Map([
  [8, { name: "var_onion_optin" }],
  [14, { name: "payment_secret" }],
  [16, { name: "basic_mpp", requires: 14 }],
  [24, { name: "option_route_blinding" }],
  [48, { name: "option_payment_metadata" }],
]);

const base58check = createBase58check(sha256);
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const CURVE_ORDER = secp256k1.Point.CURVE().n;

/** One tagged field as read from the data part. */
interface RawField {
  tag: number;
  words: number[];
}

/**
 * Decode and verify a BOLT11 invoice.
 *
 * @param text the invoice, all lower or all upper case, without a `lightning:` prefix
 * @param opts `now` for the `expired` flag
 * @returns the decoded fields, with the payee verified or recovered
 * @throws {ValidationError} 422 with `extensions.reason` when the invoice is invalid
 * @throws {TypeError} when `text` is not a string or `opts.now` not a valid `Date`
 * @example
 * ```ts
 * const inv = decodeBolt11("lnbc2500u1pvjluez...", { now: new Date() });
 * if (inv.expired) throw new Error("expired");
 * ```
 */
export function decodeBolt11(text: string, opts: DecodeBolt11Options = {}): DecodedBolt11 {
  if (typeof text !== "string") {
    throw new TypeError(`decodeBolt11: text must be a string, got ${describe(text)}`);
  }
  if (typeof opts !== "object" || opts === null) {
    throw new TypeError(`decodeBolt11: opts must be an object, got ${describe(opts)}`);
  }
  const now = opts.now === undefined ? new Date() : opts.now;
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new TypeError(`decodeBolt11: opts.now must be a valid Date, got ${describe(opts.now)}`);
  }

  const { hrp, words } = parseBech32(text);
  const { network, amountMsat } = parseHrp(hrp);

  if (words.length < TIMESTAMP_WORDS + SIGNATURE_WORDS) {
    throw invalid("too-short", "Invoice is too short to hold a timestamp and a signature");
  }
  const dataWords = words.slice(0, words.length - SIGNATURE_WORDS);
  const sigBytes = wordsToBytesExact(words.slice(words.length - SIGNATURE_WORDS));
  const timestampSeconds = wordsToUint(dataWords.slice(0, TIMESTAMP_WORDS));
  const fields = splitFields(dataWords);

  const parsed = readFields(fields, network);
  const signingHash = sha256(concatBytes(asciiBytes(hrp), wordsToBytesPadded(dataWords)));
  const sig = checkSignature(sigBytes, signingHash, parsed.payeeKey);
  checkSemantics(parsed);

  const timestamp = Number(timestampSeconds);
  const expirySeconds = parsed.expirySeconds ?? DEFAULT_EXPIRY_SECONDS;
  if (timestamp + expirySeconds > MAX_DATE_SECONDS) {
    throw invalid("invalid-field", `Invalid "x" field: expiry ${expirySeconds} s is out of range`);
  }
  const expiresAt = new Date((timestamp + expirySeconds) * 1000);
  return {
    network,
    hrp,
    amountMsat,
    timestamp: new Date(timestamp * 1000),
    expirySeconds,
    expiresAt,
    expired: now.getTime() >= expiresAt.getTime(),
    paymentHash: toHex(parsed.paymentHash!),
    paymentSecret: toHex(parsed.paymentSecret!),
    description: parsed.description,
    descriptionHash: parsed.descriptionHash === null ? null : toHex(parsed.descriptionHash),
    payeePubkey: toHex(sig.payee),
    payeeSource: parsed.payeeKey === null ? "recovered" : "n-field",
    minFinalCltvExpiry: parsed.minFinalCltvExpiry ?? DEFAULT_MIN_FINAL_CLTV_EXPIRY,
    fallbackAddresses: parsed.fallbackAddresses,
    routeHints: parsed.routeHints,
    features: parsed.features,
    paymentMetadata: parsed.paymentMetadata === null ? null : toHex(parsed.paymentMetadata),
    signature: {
      compact: toHex(sigBytes.subarray(0, 64)),
      recoveryId: sig.recoveryId,
      highS: sig.highS,
    },
    signingHash: toHex(signingHash),
    skippedFields: parsed.skippedFields,
  };
}

// ---------------------------------------------------------------------------
// Text and human-readable part
// ---------------------------------------------------------------------------

/** BIP173 parsing without the 90-character limit; each failure gets its own reason. */
function parseBech32(text: string): { hrp: string; words: number[] } {
  if (text.length === 0) throw invalid("empty", "Invoice is empty");
  if (text.length > BOLT11_MAX_LENGTH) {
    throw invalid("too-long", `Invoice is longer than ${BOLT11_MAX_LENGTH} characters`);
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // BIP173: every character of a bech32 string is US-ASCII 33..126.
    if (c < 33 || c > 126) {
      throw invalid(
        "invalid-character",
        `Invoice has a character outside printable ASCII at position ${i}`,
      );
    }
  }
  const lower = text.toLowerCase();
  // BIP173: all upper case is valid (QR codes), a mix is not.
  if (lower !== text && text.toUpperCase() !== text) {
    throw invalid("mixed-case", "Invoice mixes upper and lower case");
  }
  const sep = lower.lastIndexOf("1");
  if (sep < 1) throw invalid("no-separator", 'Invoice has no bech32 separator "1" after a prefix');
  const hrp = lower.slice(0, sep);
  const data = lower.slice(sep + 1);
  if (data.length < 6) throw invalid("too-short", "Invoice data part is shorter than its checksum");
  for (let i = 0; i < data.length; i++) {
    if (!CHARSET_INDEX.has(data[i]!)) {
      throw invalid(
        "invalid-character",
        `Invoice data part has a non-bech32 character "${data[i]}" at position ${sep + 1 + i}`,
      );
    }
  }
  try {
    // Only the checksum can still fail here: every other check above is stricter than scure's.
    const { words } = bech32.decode(lower as `${string}1${string}`, false);
    return { hrp, words };
  } catch {
    throw invalid("bad-checksum", "Invoice bech32 checksum is invalid");
  }
}

function parseHrp(hrp: string): { network: Bolt11Network; amountMsat: bigint | null } {
  if (!hrp.startsWith("ln")) {
    throw invalid("unknown-prefix", `Unknown invoice prefix "${clip(hrp)}"`);
  }
  const rest = hrp.slice(2);
  const currency = CURRENCIES.find(([prefix]) => rest.startsWith(prefix));
  if (currency === undefined) {
    throw invalid("unknown-network", `Unknown currency prefix in "${clip(hrp)}"`);
  }
  const [prefix, network] = currency;
  const amountText = rest.slice(prefix.length);
  if (amountText === "") return { network, amountMsat: null };

  const match = /^([0-9]+)([a-z]?)$/.exec(amountText);
  if (match === null) {
    // An amount must start with a digit: anything else means an unknown currency (`lntbx…`).
    if (!/^[0-9]/.test(amountText)) {
      throw invalid("unknown-network", `Unknown currency prefix in "${clip(hrp)}"`);
    }
    throw invalid("invalid-amount", `Invalid amount "${clip(amountText)}"`);
  }
  const [, digits, multiplier] = match as unknown as [string, string, string];
  if (!MULTIPLIER_MSAT.has(multiplier) && multiplier !== "p") {
    throw invalid("invalid-multiplier", `Invalid amount multiplier "${multiplier}"`);
  }
  // Writers MUST NOT use leading zeros; "0" is not a positive amount either.
  if (digits.startsWith("0")) {
    throw invalid("invalid-amount", `Invalid amount "${clip(amountText)}": leading zero or zero`);
  }
  // 21M BTC is 2.1e19 pico-BTC (20 digits): longer amounts exceed it under any multiplier.
  if (digits.length > 20) throw invalid("invalid-amount", "Invalid amount: above 21 million BTC");
  const value = BigInt(digits);
  let amountMsat: bigint;
  if (multiplier === "p") {
    // 1 pico-BTC is 0.1 msat: the last digit must be 0 (spec: MUST fail otherwise).
    if (value % 10n !== 0n) {
      throw invalid(
        "sub-msat-amount",
        `Invalid amount "${clip(amountText)}": not a whole number of msat`,
      );
    }
    amountMsat = value / 10n;
  } else {
    amountMsat = value * MULTIPLIER_MSAT.get(multiplier)!;
  }
  if (amountMsat > MAX_AMOUNT_MSAT) {
    throw invalid("invalid-amount", "Invalid amount: above 21 million BTC");
  }
  return { network, amountMsat };
}

// ---------------------------------------------------------------------------
// Tagged fields
// ---------------------------------------------------------------------------

function splitFields(dataWords: number[]): RawField[] {
  const fields: RawField[] = [];
  let i = TIMESTAMP_WORDS;
  while (i < dataWords.length) {
    if (i + 3 > dataWords.length) {
      throw invalid("truncated-field", "Invoice ends inside a tagged field header");
    }
    const tag = dataWords[i]!;
    const length = dataWords[i + 1]! * 32 + dataWords[i + 2]!;
    const start = i + 3;
    if (start + length > dataWords.length) {
      throw invalid(
        "truncated-field",
        `Tagged field "${CHARSET[tag]}" runs past the end of the invoice`,
      );
    }
    fields.push({ tag, words: dataWords.slice(start, start + length) });
    i = start + length;
  }
  return fields;
}

interface ParsedFields {
  paymentHash: Uint8Array | null;
  paymentSecret: Uint8Array | null;
  description: string | null;
  descriptionHash: Uint8Array | null;
  payeeKey: Uint8Array | null;
  expirySeconds: number | null;
  minFinalCltvExpiry: number | null;
  fallbackAddresses: string[];
  routeHints: RouteHintHop[][];
  /** The `9` field. */
  features: { bits: number[]; names: string[] };
  paymentMetadata: Uint8Array | null;
  skippedFields: SkippedField[];
  /** Tags of single-valued fields seen more than once. */
  duplicates: Set<number>;
}

/** Structural reading of each field; semantic checks wait until the signature holds. */
function readFields(fields: RawField[], network: Bolt11Network): ParsedFields {
  const out: ParsedFields = {
    paymentHash: null,
    paymentSecret: null,
    description: null,
    descriptionHash: null,
    payeeKey: null,
    expirySeconds: null,
    minFinalCltvExpiry: null,
    fallbackAddresses: [],
    routeHints: [],
    features: { bits: [], names: [] },
    paymentMetadata: null,
    skippedFields: [],
    duplicates: new Set(),
  };
  const seen = new Set<number>();
  let featuresRead = false;
  const skip = (f: RawField) =>
    out.skippedFields.push({ tag: CHARSET[f.tag]!, dataLength: f.words.length });

  for (const f of fields) {
    const tag = CHARSET[f.tag]!;
    const fixedLength = FIXED_LENGTH.get(f.tag);
    // Spec: skip p, h, s (52) and n (53) of any other length; future variants may differ.
    if (fixedLength !== undefined && f.words.length !== fixedLength) {
      skip(f);
      continue;
    }
    if (SINGLE_FIELDS.has(f.tag)) {
      if (seen.has(f.tag)) out.duplicates.add(f.tag);
      seen.add(f.tag);
    }
    switch (f.tag) {
      case TAG.p:
        out.paymentHash ??= fieldBytes(f, tag);
        break;
      case TAG.s:
        out.paymentSecret ??= fieldBytes(f, tag);
        break;
      case TAG.h:
        out.descriptionHash ??= fieldBytes(f, tag);
        break;
      case TAG.d:
        out.description ??= decodeUtf8(fieldBytes(f, tag));
        break;
      case TAG.n:
        out.payeeKey ??= readPayeeKey(fieldBytes(f, tag));
        break;
      case TAG.x:
        out.expirySeconds ??= fieldUint(f, tag, Number.MAX_SAFE_INTEGER);
        break;
      case TAG.c:
        out.minFinalCltvExpiry ??= fieldUint(f, tag, 0xffff_ffff);
        break;
      case TAG.m:
        out.paymentMetadata ??= fieldBytes(f, tag);
        break;
      case TAG["9"]:
        if (!featuresRead) out.features = readFeatures(f.words);
        featuresRead = true;
        break;
      case TAG.f: {
        const address = readFallback(f.words, network);
        // Spec: skip an unknown version; we also skip programs no address can carry.
        if (address === null) skip(f);
        else out.fallbackAddresses.push(address);
        break;
      }
      case TAG.r:
        out.routeHints.push(readRouteHint(fieldBytes(f, tag)));
        break;
      default:
        // Spec: MUST skip over unknown fields.
        skip(f);
    }
  }
  return out;
}

const FIXED_LENGTH: ReadonlyMap<number, number> = new Map([
  [TAG.p, 52],
  [TAG.h, 52],
  [TAG.s, 52],
  [TAG.n, 53],
]);

function fieldBytes(f: RawField, tag: string): Uint8Array {
  const bytes = wordsToBytesStrict(f.words);
  if (bytes === null) {
    throw invalid("invalid-field", `Invalid "${tag}" field: padding bits are not zero`);
  }
  return bytes;
}

function fieldUint(f: RawField, tag: string, max: number): number {
  const value = wordsToUint(f.words);
  if (value > BigInt(max)) {
    throw invalid("invalid-field", `Invalid "${tag}" field: value is too large`);
  }
  return Number(value);
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw invalid("invalid-field", 'Invalid "d" field: description is not valid UTF-8');
  }
}

function readPayeeKey(bytes: Uint8Array): Uint8Array {
  try {
    // fromBytes checks the point is on the curve, so verify() below cannot be fed garbage.
    secp256k1.Point.fromBytes(bytes);
  } catch {
    throw invalid("invalid-payee-key", 'Invalid "n" field: not a valid secp256k1 public key');
  }
  return bytes;
}

function readFeatures(words: number[]): { bits: number[]; names: string[] } {
  const bits: number[] = [];
  const names: string[] = [];
  // Big-endian bit field: bit 0 is the lowest bit of the last word.
  for (let w = words.length - 1, base = 0; w >= 0; w--, base += 5) {
    const word = words[w]!;
    for (let b = 0; b < 5; b++) {
      if ((word >> b) & 1) bits.push(base + b);
    }
  }
  for (const bit of bits) {
    const known = KNOWN_FEATURES.get(bit - (bit % 2));
    if (known !== undefined && !names.includes(known.name)) names.push(known.name);
  }
  return { bits, names };
}

function readFallback(words: number[], network: Bolt11Network): string | null {
  if (words.length === 0) return null;
  const version = words[0]!;
  const program = wordsToBytesStrict(words.slice(1));
  if (program === null) return null;
  const params = ADDRESS_PARAMS[network];
  if (version === 17 || version === 18) {
    if (program.length !== 20) return null;
    return base58check.encode(
      concatBytes(Uint8Array.of(version === 17 ? params.p2pkh : params.p2sh), program),
    );
  }
  if (version > 16) return null;
  // BIP141/BIP350: v0 programs are 20 or 32 bytes, later versions 2..40 bytes.
  if (
    version === 0
      ? program.length !== 20 && program.length !== 32
      : program.length < 2 || program.length > 40
  ) {
    return null;
  }
  const coder = version === 0 ? bech32 : bech32m;
  return coder.encode(params.segwitHrp, [version, ...bech32.toWords(program)]);
}

function readRouteHint(bytes: Uint8Array): RouteHintHop[] {
  if (bytes.length === 0 || bytes.length % ROUTE_HOP_BYTES !== 0) {
    throw invalid(
      "invalid-field",
      `Invalid "r" field: ${bytes.length} bytes is not a whole number of hops`,
    );
  }
  const hops: RouteHintHop[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let o = 0; o < bytes.length; o += ROUTE_HOP_BYTES) {
    const pubkey = bytes.subarray(o, o + 33);
    try {
      secp256k1.Point.fromBytes(pubkey);
    } catch {
      throw invalid("invalid-field", 'Invalid "r" field: a hop has an invalid public key');
    }
    const block = (bytes[o + 33]! << 16) | (bytes[o + 34]! << 8) | bytes[o + 35]!;
    const tx = (bytes[o + 36]! << 16) | (bytes[o + 37]! << 8) | bytes[o + 38]!;
    const out = view.getUint16(o + 39);
    hops.push({
      pubkey: toHex(pubkey),
      shortChannelId: `${block}x${tx}x${out}`,
      feeBaseMsat: view.getUint32(o + 41),
      feeProportionalMillionths: view.getUint32(o + 45),
      cltvExpiryDelta: view.getUint16(o + 49),
    });
  }
  return hops;
}

// ---------------------------------------------------------------------------
// Signature and semantics
// ---------------------------------------------------------------------------

function checkSignature(
  sigBytes: Uint8Array,
  msgHash: Uint8Array,
  payeeKey: Uint8Array | null,
): { payee: Uint8Array; recoveryId: number; highS: boolean } {
  const compact = sigBytes.subarray(0, 64);
  const recoveryId = sigBytes[64]!;
  if (recoveryId > 3) {
    throw invalid("invalid-signature", `Invalid signature: recovery id ${recoveryId} is not 0..3`);
  }
  let sig: InstanceType<typeof secp256k1.Signature>;
  try {
    sig = secp256k1.Signature.fromBytes(compact, "compact");
  } catch {
    throw invalid("invalid-signature", "Invalid signature: r or s is out of range");
  }
  const highS = sig.hasHighS();

  if (payeeKey !== null) {
    // Spec (with `n`): validate against `n` instead of recovering, and the
    // signature MUST be low-S (lightning/bolts#1284, the libsecp256k1 verify rule).
    if (highS) {
      throw invalid("high-s-signature", 'Invalid signature: high-S signature with an "n" field');
    }
    if (!secp256k1.verify(compact, msgHash, payeeKey, { prehash: false })) {
      throw invalid(
        "invalid-signature",
        'Invalid signature: it does not verify against the "n" field',
      );
    }
    return { payee: payeeKey, recoveryId, highS };
  }

  // Spec (without `n`): recover, accepting high-S. The recovery id is taken to
  // describe the low-S form, so s is normalised first (see module doc).
  const normalised = highS ? new secp256k1.Signature(sig.r, CURVE_ORDER - sig.s) : sig;
  try {
    const point = normalised.addRecoveryBit(recoveryId).recoverPublicKey(msgHash);
    return { payee: point.toBytes(true), recoveryId, highS };
  } catch {
    throw invalid(
      "unrecoverable-signature",
      "Invalid signature: no public key can be recovered from it",
    );
  }
}

function checkSemantics(p: ParsedFields): void {
  if (p.duplicates.size > 0) {
    const tags = [...p.duplicates].map((t) => `"${CHARSET[t]}"`).join(", ");
    throw invalid("duplicate-field", `Invoice repeats the single-valued field ${tags}`);
  }
  if (p.paymentHash === null) {
    throw invalid("missing-payment-hash", 'Invoice has no valid "p" (payment hash) field');
  }
  // Spec: a reader MUST fail without a valid `s` field (payment secret).
  if (p.paymentSecret === null) {
    throw invalid("missing-payment-secret", 'Invoice has no valid "s" (payment secret) field');
  }
  if (p.description !== null && p.descriptionHash !== null) {
    throw invalid("conflicting-description", 'Invoice has both a "d" and an "h" field');
  }
  const bits = new Set(p.features.bits);
  // Spec: unknown odd bits are ignored, unknown even bits MUST fail the payment.
  const unknownEven = p.features.bits.filter((b) => b % 2 === 0 && !KNOWN_FEATURES.has(b));
  if (unknownEven.length > 0) {
    throw invalid(
      "unknown-required-feature",
      `Invoice requires unknown feature bit${unknownEven.length > 1 ? "s" : ""} ${
        unknownEven.join(", ")
      }`,
      { unknownBits: unknownEven },
    );
  }
  // BOLT9: a vector missing a known transitive dependency MUST NOT be paid.
  for (const [even, feature] of KNOWN_FEATURES) {
    if (feature.requires === undefined || !(bits.has(even) || bits.has(even + 1))) continue;
    if (!bits.has(feature.requires) && !bits.has(feature.requires + 1)) {
      const needed = KNOWN_FEATURES.get(feature.requires)!.name;
      throw invalid(
        "missing-feature-dependency",
        `Invoice sets feature ${feature.name} without its dependency ${needed}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function invalid(
  reason: string,
  detail: string,
  extra: Record<string, unknown> = {},
): ValidationError {
  return new ValidationError(detail, { status: 422, extensions: { reason, ...extra } });
}

/** Big-endian unsigned integer from 5-bit words. */
function wordsToUint(words: number[]): bigint {
  let v = 0n;
  for (const w of words) v = (v << 5n) | BigInt(w);
  return v;
}

/** 5-bit words to bytes, dropping 0..4 zero padding bits; null on other padding. */
function wordsToBytesStrict(words: number[]): Uint8Array | null {
  const out = new Uint8Array(Math.floor((words.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const w of words) {
    acc = ((acc << 5) | w) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  if (bits >= 5 || (acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** 5-bit words to bytes whose bit count is a multiple of 8 (the signature: 104 words). */
function wordsToBytesExact(words: number[]): Uint8Array {
  return wordsToBytesStrict(words)!;
}

/** Packs 5-bit words to bytes, zero-padding the last byte: the spec's signed message. */
function wordsToBytesPadded(words: number[]): Uint8Array {
  const out = new Uint8Array(Math.ceil((words.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const w of words) {
    acc = ((acc << 5) | w) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0) out[n] = (acc << (8 - bits)) & 0xff;
  return out;
}

function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Keeps client-supplied text short inside error details. */
function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof Date) return "an invalid Date";
  return typeof v;
}
