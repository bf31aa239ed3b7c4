/**
 * The seeded PRNG every trainer uses, so training is reproducible on every
 * platform (`deno task train:check` compares the output byte for byte).
 *
 * @module
 */

/**
 * A seeded 32-bit PRNG (mulberry32): the same seed gives the same numbers on every platform.
 *
 * @param seed any integer
 * @returns a function giving floats in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`Invalid seed: expected an integer, got ${String(seed)}`);
  }
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
