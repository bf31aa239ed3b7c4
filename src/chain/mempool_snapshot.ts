/**
 * The mempool snapshot the chain backends deliver for the fee-rate model,
 * and the pure helpers both adapters use to build one: an Esplora-style fee
 * histogram from per-transaction fee rates (Bitcoin Core has no histogram
 * RPC) and the projected next block's median from such a histogram (Blockstream's
 * Esplora has no mempool-blocks route).
 *
 * `MempoolSnapshot` is declared here, beside the port that delivers it; the
 * fee model's features (`src/ml/features/fee_features.ts`) read this type.
 *
 * @module
 */
import { describeType } from "../util/describe_type.ts";

/** A mempool snapshot: what the edge can observe at one moment. */
export interface MempoolSnapshot {
  /** Unix time of the snapshot, seconds. */
  timestampSec: number;
  /** Chain tip height. */
  height: number;
  /**
   * When the tip block arrived, Unix seconds; null if unknown. The adapters
   * report the tip's header timestamp (miner-set, within about two hours of
   * the real arrival), not the time this edge first saw the block.
   */
  lastBlockTimeSec: number | null;
  /** Number of mempool transactions. */
  mempoolCount: number;
  /** Total mempool vsize, vB. */
  mempoolVsize: number;
  /** Total mempool fees, sat. */
  mempoolTotalFeeSat: number;
  /** `[feeRateSatVb, vsize]` pairs (Esplora `GET /mempool` `fee_histogram`), any order. */
  histogram: ReadonlyArray<readonly [feeRateSatVb: number, vsize: number]>;
  /** Projected next block's median feerate, sat/vB; null if unknown. */
  nextBlockMedianFeeSatVb: number | null;
  /** Median feerates of the last blocks, newest first, sat/vB (may be empty). */
  recentBlockMedianFeesSatVb: readonly number[];
}

/** One mempool transaction's fee rate and size, the input of {@linkcode histogramFromEntries}. */
export interface MempoolFeeEntry {
  /** Fee rate, sat/vB. */
  feeRateSatVb: number;
  /** Virtual size, vB. */
  vsize: number;
}

/**
 * Smallest vsize of one histogram bucket, vB: electrs' `VSIZE_BIN_WIDTH`
 * (50,000 in both Blockstream/electrs `src/util/fees.rs` and romanz/electrs),
 * so a histogram built from Core's mempool is bucketed like Esplora's.
 */
export const FEE_HISTOGRAM_BUCKET_VSIZE = 50_000;

/** vsize of a full block (4,000,000 WU / 4), vB. */
export const PROJECTED_BLOCK_VSIZE = 1_000_000;

/**
 * How many recent blocks' median fee rates a snapshot carries. Both adapters
 * use the same count so one chain state gives one snapshot whichever backend
 * serves it (Core needs one `getblockstats` call per block).
 */
export const RECENT_BLOCK_COUNT = 6;

/**
 * Bucket per-transaction fee rates the way electrs builds Esplora's
 * `fee_histogram` (`make_fee_histogram`): walk the transactions from the
 * highest fee rate down, and close a bucket once it holds more than
 * {@linkcode FEE_HISTOGRAM_BUCKET_VSIZE} vB and the next transaction pays a
 * different rate. Each bucket is labelled with the lowest rate in it, so its
 * vsize all pays at least that rate (and less than the previous bucket's label).
 *
 * @param entries fee rate and vsize of each mempool transaction, any order
 * @returns `[feeRateSatVb, vsize]` pairs, fee rates strictly descending
 * @throws TypeError when `entries` is not an array of objects with numbers; RangeError
 *   on a negative or non-finite rate or a vsize that is not a positive integer
 */
export function histogramFromEntries(
  entries: readonly MempoolFeeEntry[],
): [feeRateSatVb: number, vsize: number][] {
  if (!Array.isArray(entries)) {
    throw new TypeError(`Invalid entries: expected an array, got ${describeType(entries)}`);
  }
  entries.forEach((e, i) => {
    if (typeof e !== "object" || e === null) {
      throw new TypeError(`Invalid entries[${i}]: expected an object, got ${describeType(e)}`);
    }
    assertFeeRate(e.feeRateSatVb, `entries[${i}].feeRateSatVb`);
    assertVsize(e.vsize, `entries[${i}].vsize`, true);
  });
  const sorted = entries.map((e) => [e.feeRateSatVb, e.vsize] as const)
    .sort((a, b) => b[0] - a[0]);
  const histogram: [number, number][] = [];
  let bucketVsize = 0;
  let lastRate = 0;
  for (const [rate, vsize] of sorted) {
    // Equal rates never straddle two buckets, so a bucket's label is a true lower bound.
    if (bucketVsize > FEE_HISTOGRAM_BUCKET_VSIZE && rate !== lastRate) {
      histogram.push([lastRate, bucketVsize]);
      bucketVsize = 0;
    }
    lastRate = rate;
    bucketVsize += vsize;
  }
  if (bucketVsize > 0) histogram.push([lastRate, bucketVsize]);
  return histogram;
}

/**
 * The projected next block's median fee rate from a fee histogram: fill a
 * block of `blockVsize` from the highest fee rate down and read the rate of
 * the bucket holding its middle vB (half of the block, or of the whole
 * mempool when it is smaller than a block). A bucket's rate is its lowest, so
 * this is a lower bound of the vsize-weighted median, coarse by one bucket;
 * mempool.space's own `medianFee` is exact per transaction.
 *
 * @param histogram `[feeRateSatVb, vsize]` pairs, any order (sorted here, descending)
 * @param blockVsize the block to fill, vB (default 1,000,000)
 * @returns sat/vB, or null for an empty mempool
 * @throws TypeError / RangeError on a malformed histogram or a block size that is
 *   not a positive integer
 */
export function medianOfProjectedBlock(
  histogram: ReadonlyArray<readonly [number, number]>,
  blockVsize: number = PROJECTED_BLOCK_VSIZE,
): number | null {
  if (!Array.isArray(histogram)) {
    throw new TypeError(`Invalid histogram: expected an array, got ${describeType(histogram)}`);
  }
  assertVsize(blockVsize, "blockVsize", true);
  histogram.forEach((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(`Invalid histogram[${i}]: expected a [feeRate, vsize] pair`);
    }
    assertFeeRate(pair[0], `histogram[${i}][0]`);
    assertVsize(pair[1], `histogram[${i}][1]`, false);
  });
  const sorted = [...histogram].sort((a, b) => b[0] - a[0]);
  const total = sorted.reduce((sum, [, vsize]) => sum + vsize, 0);
  if (total === 0) return null;
  const middle = Math.min(total, blockVsize) / 2;
  let depth = 0;
  for (const [rate, vsize] of sorted) {
    depth += vsize;
    if (depth >= middle) return rate;
  }
  // Unreachable: depth ends at total >= middle; kept for the type checker.
  return sorted[sorted.length - 1]![0];
}

function assertFeeRate(value: unknown, name: string): void {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid ${name}: expected a number, got ${describeType(value)}`);
  }
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`Invalid ${name}: expected a finite fee rate >= 0, got ${value}`);
  }
}

function assertVsize(value: unknown, name: string, positive: boolean): void {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid ${name}: expected a number, got ${describeType(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < (positive ? 1 : 0)) {
    throw new RangeError(
      `Invalid ${name}: expected an integer >= ${positive ? 1 : 0} vB, got ${value}`,
    );
  }
}
