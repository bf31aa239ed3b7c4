/**
 * Parsing of the SatCast mempool.space snapshot CSV
 * (`models/data/fee/satcast_mempool_snapshots_*.csv`, see its PROVENANCE.md)
 * into typed rows and {@linkcode MempoolSnapshot}s. Pure: text in, values out.
 *
 * Derivations:
 * - height = `difficulty_adjustment_nextRetargetHeight - difficulty_adjustment_remainingBlocks`;
 *   a height increase between two snapshots is that many block arrivals.
 * - `lastBlockTimeSec` = timestamp of the first snapshot at the current height (the
 *   arrival is seen up to 5 minutes late); null before the first observed arrival.
 * - `recentBlockMedianFeesSatVb` is a proxy: for each earlier arrival, the projected
 *   next-block median of the snapshot just before it (once per block of a multi-block
 *   jump), not the median of the mined block.
 * - `histogram` = one `[lower edge, vsize]` pair per non-empty bin: the collector summed
 *   the vsize of every `fee_histogram` pair with `lower <= feerate < upper` into a bin,
 *   so each bin's vsize pays at least its lower edge (sub-1 sat/vB pairs were dropped).
 *
 * @module
 */
import {
  FEE_HISTOGRAM_BIN_LOWER_EDGES,
  type MempoolSnapshot,
} from "../../features/fee_features.ts";
import type { BlockArrival } from "./labels.ts";

/** mempool.space `/api/v1/fees/recommended` at the snapshot, sat/vB. */
export interface RecommendedFees {
  /** Next block. */
  fastestFee: number;
  /** Within ~3 blocks. */
  halfHourFee: number;
  /** Within ~6 blocks. */
  hourFee: number;
  /** Low priority. */
  economyFee: number;
  /** Minimum relay. */
  minimumFee: number;
}

/** One parsed CSV row. */
export interface SatcastRow {
  /** Unix seconds. */
  timestampSec: number;
  /** Chain tip height (derived). */
  height: number;
  /** Projected next block (`mempool_blocks_*`); null where the CSV cell is empty. */
  projectedBlock: {
    vsize: number;
    nTx: number;
    totalFeesSat: number;
    medianFeeSatVb: number;
  } | null;
  /** mempool.space's recommendation. */
  recommended: RecommendedFees;
  /** `mempool_count`. */
  mempoolCount: number;
  /** `mempool_vsize`, vB. */
  mempoolVsize: number;
  /** `mempool_total_fee`, sat. */
  mempoolTotalFeeSat: number;
  /** vsize per histogram bin, ordered as `FEE_HISTOGRAM_BIN_LOWER_EDGES`. */
  histogramBins: Float64Array;
}

const RECOMMENDED_KEYS = [
  "fastestFee",
  "halfHourFee",
  "hourFee",
  "economyFee",
  "minimumFee",
] as const;
const PROJECTED_COLUMNS = [
  "mempool_blocks_blockVSize",
  "mempool_blocks_nTx",
  "mempool_blocks_totalFees",
  "mempool_blocks_medianFee",
] as const;

/** Column name of histogram bin `b`. */
function binColumn(b: number): string {
  const edges = FEE_HISTOGRAM_BIN_LOWER_EDGES;
  const lower = edges[b]!;
  const upper = edges[b + 1];
  return `mempool_fee_histogram_bin_${lower}_${upper === undefined ? "plus" : upper}`;
}

/** The CSV columns this parser reads. */
export const SATCAST_COLUMNS: readonly string[] = Object.freeze([
  "timestamp",
  ...PROJECTED_COLUMNS,
  ...RECOMMENDED_KEYS.map((k) => `recommended_fee_${k}`),
  "mempool_count",
  "mempool_vsize",
  "mempool_total_fee",
  "difficulty_adjustment_remainingBlocks",
  "difficulty_adjustment_nextRetargetHeight",
  ...FEE_HISTOGRAM_BIN_LOWER_EDGES.map((_, b) => binColumn(b)),
]);

/**
 * Parse the CSV text (header row + numeric rows; extra columns ignored).
 *
 * @param csvText the file's text
 * @returns rows in file order
 * @throws TypeError if `csvText` is not a string; SyntaxError on a missing column,
 *   a short row or a non-numeric cell; RangeError if timestamps do not increase or
 *   the height decreases
 */
export function parseSatcastCsv(csvText: string): SatcastRow[] {
  if (typeof csvText !== "string") {
    throw new TypeError(`Invalid csvText: expected a string, got ${typeof csvText}`);
  }
  const lines = csvText.split(/\r?\n/).filter((l) => l.length > 0);
  const header = (lines[0] ?? "").split(",").map((h) => h.trim());
  const col = new Map(header.map((h, i) => [h, i]));
  for (const name of SATCAST_COLUMNS) {
    if (!col.has(name)) throw new SyntaxError(`Cannot parse snapshot CSV: no column "${name}"`);
  }
  const at = (name: string) => col.get(name)!;
  const binIdx = FEE_HISTOGRAM_BIN_LOWER_EDGES.map((_, b) => at(binColumn(b)));
  const rows: SatcastRow[] = [];
  for (let li = 1; li < lines.length; li++) {
    const cells = lines[li]!.split(",");
    if (cells.length < header.length) {
      throw new SyntaxError(`Cannot parse snapshot CSV: line ${li + 1} has ${cells.length} cells`);
    }
    const num = (name: string): number => numberCell(cells[at(name)]!, name, li);
    const optional = (name: string): number | null => {
      const cell = cells[at(name)]!.trim();
      return cell === "" ? null : numberCell(cell, name, li);
    };
    const projected = PROJECTED_COLUMNS.map(optional);
    const histogramBins = new Float64Array(binIdx.length);
    binIdx.forEach((ci, b) => {
      histogramBins[b] = numberCell(cells[ci]!, binColumn(b), li);
    });
    const row: SatcastRow = {
      timestampSec: num("timestamp"),
      height: num("difficulty_adjustment_nextRetargetHeight") -
        num("difficulty_adjustment_remainingBlocks"),
      projectedBlock: projected.some((v) => v === null) ? null : {
        vsize: projected[0]!,
        nTx: projected[1]!,
        totalFeesSat: projected[2]!,
        medianFeeSatVb: projected[3]!,
      },
      recommended: {
        fastestFee: num("recommended_fee_fastestFee"),
        halfHourFee: num("recommended_fee_halfHourFee"),
        hourFee: num("recommended_fee_hourFee"),
        economyFee: num("recommended_fee_economyFee"),
        minimumFee: num("recommended_fee_minimumFee"),
      },
      mempoolCount: num("mempool_count"),
      mempoolVsize: num("mempool_vsize"),
      mempoolTotalFeeSat: num("mempool_total_fee"),
      histogramBins,
    };
    const prev = rows[rows.length - 1];
    if (prev !== undefined && row.timestampSec <= prev.timestampSec) {
      throw new RangeError(`Invalid snapshot CSV: timestamp does not increase at line ${li + 1}`);
    }
    if (prev !== undefined && row.height < prev.height) {
      throw new RangeError(`Invalid snapshot CSV: height decreases at line ${li + 1}`);
    }
    rows.push(row);
  }
  return rows;
}

function numberCell(cell: string, name: string, lineIndex: number): number {
  const v = Number(cell);
  if (cell.trim() === "" || !Number.isFinite(v) || v < 0) {
    throw new SyntaxError(
      `Cannot parse snapshot CSV: line ${lineIndex + 1} column "${name}" is "${cell}"`,
    );
  }
  return v;
}

/**
 * The projected next-block median just before each block arrival, one entry per
 * block (a jump of k blocks between two snapshots gives k entries with the
 * value of the snapshot before the jump).
 *
 * @param rows parsed rows
 * @returns arrivals in order: the first row index at the new height and the value
 *   (null when no projected median was known before that arrival)
 */
export function blockArrivals(rows: readonly SatcastRow[]): BlockArrival[] {
  const arrivals: BlockArrival[] = [];
  let lastKnown: number | null = null;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (i > 0) {
      const jump = row.height - rows[i - 1]!.height;
      for (let k = 0; k < jump; k++) {
        arrivals.push({ rowIndex: i, preArrivalMedianSatVb: lastKnown });
      }
    }
    // Only after the arrivals at this row: this row's projection is about its own next block.
    if (row.projectedBlock !== null) lastKnown = row.projectedBlock.medianFeeSatVb;
  }
  return arrivals;
}

/** How many recent block medians each snapshot carries (the longest feature window). */
export const RECENT_BLOCKS = 24;

/**
 * One {@linkcode MempoolSnapshot} per row, with the derivations in the module doc.
 *
 * @param rows parsed rows, in time order
 * @returns snapshots aligned with `rows`
 */
export function satcastSnapshots(rows: readonly SatcastRow[]): MempoolSnapshot[] {
  const edges = FEE_HISTOGRAM_BIN_LOWER_EDGES;
  const arrivals = blockArrivals(rows);
  const out: MempoolSnapshot[] = [];
  let next = 0; // arrivals[next] is the first arrival not yet at or before row i
  const recent: number[] = []; // newest first
  let lastBlockTimeSec: number | null = null;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    while (next < arrivals.length && arrivals[next]!.rowIndex <= i) {
      const v = arrivals[next]!.preArrivalMedianSatVb;
      if (v !== null) {
        recent.unshift(v);
        if (recent.length > RECENT_BLOCKS) recent.pop();
      }
      lastBlockTimeSec = row.timestampSec;
      next++;
    }
    const histogram: [number, number][] = [];
    for (let b = edges.length - 1; b >= 0; b--) {
      const vsize = row.histogramBins[b]!;
      if (vsize > 0) histogram.push([edges[b]!, vsize]);
    }
    out.push({
      timestampSec: row.timestampSec,
      height: row.height,
      lastBlockTimeSec,
      mempoolCount: row.mempoolCount,
      mempoolVsize: row.mempoolVsize,
      mempoolTotalFeeSat: row.mempoolTotalFeeSat,
      histogram,
      nextBlockMedianFeeSatVb: row.projectedBlock?.medianFeeSatVb ?? null,
      recentBlockMedianFeesSatVb: recent.slice(),
    });
  }
  return out;
}
