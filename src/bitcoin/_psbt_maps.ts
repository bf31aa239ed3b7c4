/**
 * BIP174 framing only: `<magic> <global-map> <input-map>* <output-map>*`, each
 * map a list of `<keylen><keytype><keydata><valuelen><value>` pairs ended by a
 * 0x00 byte (BIP174 "Specification").
 *
 * This does not decode PSBTs: `@scure/btc-signer` does. It serves two narrow
 * purposes where scure's answer is not enough:
 * - after scure rejects a PSBT, say *where* (which map, which key) the problem
 *   is, so the 422 names "input 0" instead of a library message;
 * - read the global map's PSBT_GLOBAL_XPUB version bytes (network check),
 *   which the `Transaction` object does not expose, without decoding twice.
 * Nothing this module reads is ever accepted without scure having accepted it.
 *
 * @module
 */
import { hex } from "@scure/base";

/** One key-value pair of a map. */
export interface RawEntry {
  /** Key type (CompactSize). */
  keyType: number;
  /** Key data after the type. */
  keyData: Uint8Array;
  /** Value bytes. */
  value: Uint8Array;
}

/** One map with its byte range (terminator included). */
export interface RawMap {
  /** Entries in order. */
  entries: RawEntry[];
  /** Offset of the first byte. */
  start: number;
  /** Offset after the 0x00 terminator. */
  end: number;
}

/** Result of {@linkcode splitPsbtMaps}. */
export type SplitResult =
  | { ok: true; maps: RawMap[] }
  | {
    ok: false;
    problem: "magic" | "truncated" | "duplicate-key" | "bad-length";
    mapIndex: number;
    keyHex?: string;
  };

/** The five magic bytes `psbt\xff` (BIP174 "Specification"). */
export const PSBT_MAGIC = new Uint8Array([0x70, 0x73, 0x62, 0x74, 0xff]);

class Cursor {
  readonly bytes: Uint8Array;
  pos: number;
  constructor(bytes: Uint8Array, pos: number) {
    this.bytes = bytes;
    this.pos = pos;
  }
  get done(): boolean {
    return this.pos >= this.bytes.length;
  }
  /** Read a CompactSize; null when truncated. Values above 2^53 are reported as Infinity. */
  compactSize(): number | null {
    const b0 = this.bytes[this.pos];
    if (b0 === undefined) return null;
    const width = b0 < 0xfd ? 0 : b0 === 0xfd ? 2 : b0 === 0xfe ? 4 : 8;
    if (this.pos + 1 + width > this.bytes.length) return null;
    let n = width === 0 ? b0 : 0;
    for (let i = 0; i < width; i++) n += this.bytes[this.pos + 1 + i]! * 2 ** (8 * i);
    this.pos += 1 + width;
    return Number.isSafeInteger(n) ? n : Infinity;
  }
  take(n: number): Uint8Array | null {
    if (n > this.bytes.length - this.pos) return null;
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/**
 * Split a PSBT into its maps, stopping at the first framing problem.
 *
 * @param bytes the PSBT
 * @param maxMaps stop after this many maps (1 = the global map only)
 */
export function splitPsbtMaps(bytes: Uint8Array, maxMaps = Infinity): SplitResult {
  for (let i = 0; i < PSBT_MAGIC.length; i++) {
    if (bytes[i] !== PSBT_MAGIC[i]) return { ok: false, problem: "magic", mapIndex: -1 };
  }
  const c = new Cursor(bytes, PSBT_MAGIC.length);
  const maps: RawMap[] = [];
  while (!c.done && maps.length < maxMaps) {
    const mapIndex = maps.length;
    const start = c.pos;
    const entries: RawEntry[] = [];
    const seen = new Set<string>();
    for (;;) {
      const keyLen = c.compactSize();
      if (keyLen === null) return { ok: false, problem: "truncated", mapIndex };
      if (keyLen === 0) break;
      const key = c.take(keyLen);
      if (key === null) return { ok: false, problem: "truncated", mapIndex };
      const kc = new Cursor(key, 0);
      const keyType = kc.compactSize();
      if (keyType === null || !Number.isSafeInteger(keyType)) {
        return { ok: false, problem: "bad-length", mapIndex };
      }
      const keyHex = hex.encode(key);
      // BIP174: "keys within each scope should never be duplicated" — the full key, type+data.
      if (seen.has(keyHex)) return { ok: false, problem: "duplicate-key", mapIndex, keyHex };
      seen.add(keyHex);
      const valueLen = c.compactSize();
      if (valueLen === null) return { ok: false, problem: "truncated", mapIndex };
      const value = c.take(valueLen);
      if (value === null) return { ok: false, problem: "truncated", mapIndex };
      entries.push({ keyType, keyData: key.subarray(kc.pos), value });
    }
    maps.push({ entries, start, end: c.pos });
  }
  return { ok: true, maps };
}

/**
 * Read a CompactSize that fills `bytes` exactly (a PSBTv2 count value).
 *
 * @param bytes the value
 */
export function readCompactSizeValue(bytes: Uint8Array): number | null {
  const c = new Cursor(bytes, 0);
  const n = c.compactSize();
  return c.pos === bytes.length && n !== null && Number.isSafeInteger(n) ? n : null;
}

/**
 * PSBT_GLOBAL_VERSION read from the global map: 2, or 0 when absent or unreadable.
 *
 * @param bytes a PSBT
 */
export function psbtVersionOf(bytes: Uint8Array): 0 | 2 {
  const split = splitPsbtMaps(bytes, 1);
  if (!split.ok) return 0;
  const v = split.maps[0]?.entries.find((e) => e.keyType === 0xfb && e.keyData.length === 0);
  // PSBT_GLOBAL_VERSION is a 32-bit LE integer; scure rejects every value but 0 and 2.
  return v !== undefined && v.value.length === 4 && v.value[0] === 2 ? 2 : 0;
}
