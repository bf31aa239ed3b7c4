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
 *   which the `Transaction` object does not expose, without decoding twice;
 * - add new records (signatures) to a PSBT scure already accepted, leaving
 *   every byte that was there as it was, and compare two PSBTs as sent.
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

/** A record to add to an input map: {@linkcode insertInputRecords}. */
export interface NewInputRecord {
  /** Input index (the map after the global map and `input` input maps). */
  input: number;
  /** Key type. */
  keyType: number;
  /** Key data after the type. */
  keyData: Uint8Array;
  /** Value bytes. */
  value: Uint8Array;
}

/**
 * `bytes` with each record appended to its input map, before the map's 0x00
 * terminator; every other byte is kept. BIP174 leaves the order of keys in
 * a map to the writer.
 *
 * Why not scure: adding a signature through `updateInput` re-validates every
 * field and `toPSBT` re-encodes the whole PSBT, which was a third of the
 * HSM's signing time; this only frames new records (tests check the result
 * parses with scure into what `updateInput` would have made).
 *
 * @param bytes a PSBT scure accepted
 * @param records the records to add
 * @throws RangeError when the PSBT does not frame, an input map does not exist,
 *   or a record's key is already in its map (BIP174 forbids duplicate keys)
 */
export function insertInputRecords(
  bytes: Uint8Array,
  records: readonly NewInputRecord[],
): Uint8Array {
  const split = splitPsbtMaps(bytes);
  if (!split.ok) throw new RangeError(`Cannot add PSBT records: PSBT framing: ${split.problem}`);
  const inputs = inputCountOf(split.maps[0]!);
  const byMap = new Map<number, Uint8Array[]>();
  for (const r of records) {
    const map = split.maps[1 + r.input];
    if (!Number.isSafeInteger(r.input) || r.input < 0 || r.input >= inputs || map === undefined) {
      throw new RangeError(`Cannot add PSBT records: there is no input ${r.input}`);
    }
    const key = concat([compactSize(r.keyType), r.keyData]);
    const pending = byMap.get(1 + r.input) ?? [];
    const clash = map.entries.some((e) => e.keyType === r.keyType && equal(e.keyData, r.keyData)) ||
      pending.some((p) => equal(keyOfRecord(p), key));
    if (clash) throw new RangeError(`Cannot add PSBT records: input ${r.input} has that key`);
    pending.push(concat([compactSize(key.length), key, compactSize(r.value.length), r.value]));
    byMap.set(1 + r.input, pending);
  }
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const [index, added] of [...byMap].sort((a, b) => a[0] - b[0])) {
    const terminator = split.maps[index]!.end - 1;
    parts.push(bytes.subarray(from, terminator), ...added);
    from = terminator;
  }
  parts.push(bytes.subarray(from));
  return concat(parts);
}

/** PSBT_GLOBAL_INPUT_COUNT (v2), else the input count of PSBT_GLOBAL_UNSIGNED_TX (v0); 0 if unreadable. */
function inputCountOf(global: RawMap): number {
  const count = global.entries.find((e) => e.keyType === 0x04 && e.keyData.length === 0);
  if (count !== undefined) return readCompactSizeValue(count.value) ?? 0;
  const unsigned = global.entries.find((e) => e.keyType === 0x00 && e.keyData.length === 0);
  if (unsigned === undefined) return 0;
  // nVersion (4 bytes), then the input count: PSBTs carry no segwit marker here (BIP174).
  const n = new Cursor(unsigned.value, 4).compactSize();
  return n === null || !Number.isSafeInteger(n) ? 0 : n;
}

function keyOfRecord(record: Uint8Array): Uint8Array {
  const c = new Cursor(record, 0);
  const len = c.compactSize()!;
  return c.take(len)!;
}

function compactSize(n: number): Uint8Array {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >>> 8);
  return Uint8Array.of(0xfe, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
