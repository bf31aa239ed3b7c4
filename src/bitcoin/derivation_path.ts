/**
 * BIP32 derivation paths as the signer takes them: arrays of child indexes,
 * hardened ones offset by 2^31, the form PSBT key-origin records use
 * (BIP174 PSBT_IN_BIP32_DERIVATION). Text form `m/84'/0'/0'/0/1` for
 * requests and messages.
 *
 * Spec: BIP32 "Child key derivation" (indexes are 32-bit, `i ≥ 2^31` is
 * hardened) and "Serialization format" (depth is one byte, so at most 255
 * levels), https://github.com/bitcoin/bips/blob/master/bip-0032.mediawiki
 *
 * @module
 */

/** First hardened child index (BIP32 `i ≥ 2^31`). */
export const HARDENED_OFFSET = 0x8000_0000;
/** Deepest derivation path: BIP32 serialises the depth in one byte. */
export const MAX_PATH_DEPTH = 255;

const MAX_INDEX = 0xffff_ffff;
// "m", then "/"-separated decimal indexes below 2^31, each optionally hardened with ' or h.
const SEGMENT = /^(0|[1-9][0-9]{0,9})(['hH]?)$/;

/**
 * Throw unless `path` is a BIP32 path: at most 255 integers in 0..2^32-1.
 *
 * @param path the argument
 * @param name its name in messages
 * @throws TypeError / RangeError naming what is wrong
 */
export function assertDerivationPath(
  path: unknown,
  name = "path",
): asserts path is readonly number[] {
  if (!Array.isArray(path)) {
    throw new TypeError(`Invalid ${name}: expected an array of child indexes, got ${typeOf(path)}`);
  }
  if (path.length > MAX_PATH_DEPTH) {
    throw new RangeError(`Invalid ${name}: at most ${MAX_PATH_DEPTH} levels, got ${path.length}`);
  }
  for (const [i, index] of path.entries()) {
    if (typeof index !== "number" || !Number.isInteger(index)) {
      throw new TypeError(`Invalid ${name}[${i}]: expected an integer, got ${typeOf(index)}`);
    }
    if (index < 0 || index > MAX_INDEX) {
      throw new RangeError(`Invalid ${name}[${i}]: ${index} is outside 0..${MAX_INDEX}`);
    }
  }
}

/**
 * Path in the usual text form, hardened indexes with `'`: `m/84'/0'/0'/0/1`.
 *
 * @param path child indexes
 * @throws TypeError / RangeError on a malformed path
 */
export function formatDerivationPath(path: readonly number[]): string {
  assertDerivationPath(path);
  return ["m", ...path.map((i) => i >= HARDENED_OFFSET ? `${i - HARDENED_OFFSET}'` : `${i}`)]
    .join("/");
}

/**
 * Parse `m/84'/0'/0'/0/1` (hardened with `'` or `h`; `m` alone is the root).
 *
 * @param text the path
 * @returns child indexes, hardened ones offset by {@linkcode HARDENED_OFFSET}
 * @throws TypeError when `text` is not a string
 * @throws RangeError naming the first bad segment (not starting with `m`, empty,
 *   leading zeros, an index ≥ 2^31, more than 255 levels)
 * @example
 * ```ts
 * parseDerivationPath("m/86'/0'/0'/0/3"); // [2147483734, 2147483648, 2147483648, 0, 3]
 * ```
 */
export function parseDerivationPath(text: string): number[] {
  if (typeof text !== "string") {
    throw new TypeError(`Invalid path: expected a string, got ${typeOf(text)}`);
  }
  const [root, ...segments] = text.split("/");
  if (root !== "m") throw new RangeError('Invalid path: must start with "m"');
  if (segments.length > MAX_PATH_DEPTH) {
    throw new RangeError(`Invalid path: at most ${MAX_PATH_DEPTH} levels, got ${segments.length}`);
  }
  return segments.map((segment, i) => {
    const m = SEGMENT.exec(segment);
    const index = m === null ? NaN : Number(m[1]);
    // Indexes are written below 2^31 and hardened with a marker, never as raw ≥ 2^31 numbers.
    if (m === null || index >= HARDENED_OFFSET) {
      throw new RangeError(
        `Invalid path: level ${i + 1} must be an index below 2^31 with an optional ' or h`,
      );
    }
    return m[2] === "" ? index : index + HARDENED_OFFSET;
  });
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
