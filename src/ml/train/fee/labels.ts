/**
 * Labels for the fee-rate model: the feerate needed to confirm within N blocks.
 *
 * Proxy (see `models/data/fee/PROVENANCE.md`): for a snapshot, the minimum over
 * the next N block arrivals after it of the projected next-block median feerate
 * (mempool.space's block template) just before each arrival. A transaction
 * paying that rate would have sat in the upper half of at least one of those N
 * projected blocks. It comes from the template, not from mined blocks.
 *
 * Values are floored at {@linkcode MIN_RELAY_FEERATE_SAT_VB}: mempool.space
 * reports a median of 0 when the projected block is not full, and then any
 * relayable transaction (>= 1 sat/vB in the training period) fits.
 *
 * @module
 */
import { MIN_RELAY_FEERATE_SAT_VB } from "../../features/fee_features.ts";

/** Confirmation targets in blocks, in the model's output order. */
export const FEE_TARGETS: readonly number[] = Object.freeze([1, 3, 6, 144]);

/** One block arrival between snapshots. */
export interface BlockArrival {
  /** First snapshot index at which the block is in the chain. */
  rowIndex: number;
  /** Projected next-block median just before the arrival, sat/vB; null if unknown. */
  preArrivalMedianSatVb: number | null;
}

/**
 * Needed feerate within `targetBlocks` blocks for every snapshot.
 *
 * @param arrivals block arrivals in order (non-decreasing `rowIndex`)
 * @param options `rowCount` snapshots; `targetBlocks` N >= 1
 * @returns sat/vB per snapshot; NaN where the window runs past the data end or
 *   contains an arrival with an unknown projected median
 * @throws TypeError / RangeError on invalid arguments
 */
export function neededFeeRateLabels(
  arrivals: readonly BlockArrival[],
  options: { rowCount: number; targetBlocks: number },
): Float64Array {
  if (!Array.isArray(arrivals)) throw new TypeError("Invalid arrivals: expected an array");
  const { rowCount, targetBlocks } = options;
  if (!Number.isInteger(rowCount) || rowCount < 0) {
    throw new RangeError(`Invalid rowCount: ${String(rowCount)}`);
  }
  if (!Number.isInteger(targetBlocks) || targetBlocks < 1) {
    throw new RangeError(`Invalid targetBlocks: ${String(targetBlocks)}`);
  }
  arrivals.forEach((a, i) => {
    if (!Number.isInteger(a.rowIndex) || a.rowIndex < 0 || a.rowIndex >= rowCount) {
      throw new RangeError(`Invalid arrivals[${i}].rowIndex: ${String(a.rowIndex)}`);
    }
    if (i > 0 && a.rowIndex < arrivals[i - 1]!.rowIndex) {
      throw new RangeError(`Invalid arrivals[${i}]: rowIndex decreases`);
    }
    const v = a.preArrivalMedianSatVb;
    if (v !== null && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
      throw new RangeError(`Invalid arrivals[${i}].preArrivalMedianSatVb: ${String(v)}`);
    }
  });
  const labels = new Float64Array(rowCount).fill(Number.NaN);
  let first = 0; // first arrival strictly after row r
  for (let r = 0; r < rowCount; r++) {
    while (first < arrivals.length && arrivals[first]!.rowIndex <= r) first++;
    if (first + targetBlocks > arrivals.length) continue;
    let min = Number.POSITIVE_INFINITY;
    for (let j = first; j < first + targetBlocks; j++) {
      const v = arrivals[j]!.preArrivalMedianSatVb;
      if (v === null) {
        min = Number.NaN;
        break;
      }
      if (v < min) min = v;
    }
    labels[r] = Number.isNaN(min) ? min : Math.max(MIN_RELAY_FEERATE_SAT_VB, min);
  }
  return labels;
}
