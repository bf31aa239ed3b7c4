import assert from "node:assert/strict";
import {
  type BlockArrival,
  FEE_TARGETS,
  neededFeeRateLabels,
} from "../../../../src/ml/train/fee/labels.ts";

// 8 snapshots; arrivals after rows 1 (one block), 3 (two blocks), 4, 6.
const ARRIVALS: BlockArrival[] = [
  { rowIndex: 2, preArrivalMedianSatVb: 5 },
  { rowIndex: 4, preArrivalMedianSatVb: 3 },
  { rowIndex: 4, preArrivalMedianSatVb: 3 },
  { rowIndex: 5, preArrivalMedianSatVb: 0.4 },
  { rowIndex: 7, preArrivalMedianSatVb: 8 },
];

Deno.test("FEE_TARGETS are 1, 3, 6 and 144 blocks", () => {
  assert.deepEqual(FEE_TARGETS, [1, 3, 6, 144]);
});

Deno.test("neededFeeRateLabels() takes the minimum over the next N arrivals after each row", () => {
  const one = neededFeeRateLabels(ARRIVALS, { rowCount: 8, targetBlocks: 1 });
  assert.deepEqual(Array.from(one), [5, 5, 3, 3, 1, 8, 8, Number.NaN]);
  const two = neededFeeRateLabels(ARRIVALS, { rowCount: 8, targetBlocks: 2 });
  assert.deepEqual(Array.from(two), [3, 3, 3, 3, 1, Number.NaN, Number.NaN, Number.NaN]);
  const three = neededFeeRateLabels(ARRIVALS, { rowCount: 8, targetBlocks: 3 });
  // Row 0: arrivals 5, 3, 3 -> 3. Row 2: 3, 3, 0.4 -> floored at 1. Row 4: only 2 left.
  assert.deepEqual(Array.from(three), [3, 3, 1, 1, Number.NaN, Number.NaN, Number.NaN, Number.NaN]);
});

Deno.test("neededFeeRateLabels() gives no label when the window holds an unknown median", () => {
  const arrivals: BlockArrival[] = [
    { rowIndex: 1, preArrivalMedianSatVb: null },
    { rowIndex: 2, preArrivalMedianSatVb: 4 },
  ];
  const labels = neededFeeRateLabels(arrivals, { rowCount: 3, targetBlocks: 1 });
  assert.deepEqual(Array.from(labels), [Number.NaN, 4, Number.NaN]);
});

Deno.test("neededFeeRateLabels() rejects wrong types and ranges", () => {
  assert.throws(
    () => neededFeeRateLabels(null as unknown as [], { rowCount: 1, targetBlocks: 1 }),
    TypeError,
  );
  assert.throws(() => neededFeeRateLabels([], { rowCount: -1, targetBlocks: 1 }), RangeError);
  assert.throws(() => neededFeeRateLabels([], { rowCount: 1, targetBlocks: 0 }), RangeError);
  assert.throws(() => neededFeeRateLabels([], { rowCount: 1, targetBlocks: 1.5 }), RangeError);
  assert.throws(
    () =>
      neededFeeRateLabels([{ rowIndex: 3, preArrivalMedianSatVb: 1 }], {
        rowCount: 2,
        targetBlocks: 1,
      }),
    RangeError,
  );
  assert.throws(
    () =>
      neededFeeRateLabels([{ rowIndex: 1, preArrivalMedianSatVb: 1 }, {
        rowIndex: 0,
        preArrivalMedianSatVb: 1,
      }], { rowCount: 2, targetBlocks: 1 }),
    RangeError,
  );
  assert.throws(
    () =>
      neededFeeRateLabels([{ rowIndex: 0, preArrivalMedianSatVb: -1 }], {
        rowCount: 2,
        targetBlocks: 1,
      }),
    RangeError,
  );
});
