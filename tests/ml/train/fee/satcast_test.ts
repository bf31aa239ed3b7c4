import assert from "node:assert/strict";
import {
  blockArrivals,
  parseSatcastCsv,
  SATCAST_COLUMNS,
  satcastSnapshots,
} from "../../../../src/ml/train/fee/satcast.ts";

const CSV_PATH = new URL(
  "../../../../models/data/fee/satcast_mempool_snapshots_5min_2025-03-05_2025-04-27.csv",
  import.meta.url,
);
const TEXT = await Deno.readTextFile(CSV_PATH);
const LINES = TEXT.split("\n");
const SLICE = LINES.slice(0, 61).join("\n"); // header + 60 snapshots (5 hours)

Deno.test("parseSatcastCsv() reads a slice of the committed file", () => {
  const rows = parseSatcastCsv(SLICE);
  assert.equal(rows.length, 60);
  const first = rows[0]!;
  assert.equal(first.timestampSec, 1741140733);
  assert.equal(first.height, 887040 - 680); // nextRetargetHeight - remainingBlocks
  assert.equal(first.recommended.fastestFee, 2);
  assert.equal(first.mempoolVsize, 47307478);
  assert.ok(first.projectedBlock !== null);
  assert.ok(Math.abs(first.projectedBlock.medianFeeSatVb - 1.3000820731002654) < 1e-12);
  // The bins hold vsize: they add up to mempool_vsize (sub-1 sat/vB vsize excepted).
  for (const [i, r] of rows.entries()) {
    const sum = r.histogramBins.reduce((a, b) => a + b, 0);
    assert.ok(sum <= r.mempoolVsize && r.mempoolVsize - sum < 1000, `row ${i}`);
  }
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i]!.height >= rows[i - 1]!.height);
});

Deno.test("parseSatcastCsv() keeps an empty projected block as null (data row 2014)", () => {
  const rows = parseSatcastCsv([LINES[0], ...LINES.slice(2015, 2018)].join("\n"));
  assert.equal(rows[0]!.projectedBlock, null);
  assert.ok(rows[1]!.projectedBlock !== null);
});

Deno.test("blockArrivals() and satcastSnapshots() follow height increases", () => {
  const rows = parseSatcastCsv(SLICE);
  const arrivals = blockArrivals(rows);
  assert.equal(arrivals.length, rows[rows.length - 1]!.height - rows[0]!.height);
  for (const a of arrivals) {
    const before = rows[a.rowIndex - 1]!;
    assert.ok(rows[a.rowIndex]!.height > before.height);
    assert.equal(a.preArrivalMedianSatVb, before.projectedBlock!.medianFeeSatVb);
  }
  const snaps = satcastSnapshots(rows);
  assert.equal(snaps.length, rows.length);
  assert.equal(snaps[0]!.lastBlockTimeSec, null);
  assert.deepEqual(snaps[0]!.recentBlockMedianFeesSatVb, []);
  const firstArrival = arrivals[0]!.rowIndex;
  const s = snaps[firstArrival]!;
  assert.equal(s.lastBlockTimeSec, rows[firstArrival]!.timestampSec);
  assert.equal(s.recentBlockMedianFeesSatVb[0], arrivals[0]!.preArrivalMedianSatVb);
  const last = snaps[snaps.length - 1]!;
  assert.equal(last.recentBlockMedianFeesSatVb.length, Math.min(24, arrivals.length));
  // Histogram pairs: lower edge and vsize of each non-empty bin, highest rate first.
  const total = last.histogram.reduce((a, [, v]) => a + v, 0);
  assert.equal(total, rows[rows.length - 1]!.histogramBins.reduce((a, b) => a + b, 0));
  for (let i = 1; i < last.histogram.length; i++) {
    assert.ok(last.histogram[i]![0] < last.histogram[i - 1]![0]);
  }
});

Deno.test("parseSatcastCsv() rejects malformed input", () => {
  const header = LINES[0]!;
  const row = LINES[1]!;
  assert.throws(() => parseSatcastCsv(42 as unknown as string), TypeError);
  assert.throws(() => parseSatcastCsv("timestamp,foo\n1,2"), SyntaxError);
  assert.throws(() => parseSatcastCsv(`${header}\n1,2,3`), SyntaxError);
  assert.throws(() => parseSatcastCsv(`${header}\n${row.replace(/^\d+/, "abc")}`), SyntaxError);
  assert.throws(() => parseSatcastCsv(`${header}\n${row}\n${row}`), RangeError);
  assert.ok(SATCAST_COLUMNS.every((c) => header.split(",").includes(c)));
});
