/**
 * The pure snapshot helpers: electrs-style histogram bucketing, the projected
 * block's median, their argument checks, and the snapshot type staying the
 * fee model's.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  FEE_HISTOGRAM_BUCKET_VSIZE,
  histogramFromEntries,
  medianOfProjectedBlock,
  type MempoolFeeEntry,
} from "../../src/chain/mempool_snapshot.ts";
import { feeFeatures } from "../../src/ml/features/fee_features.ts";
import { ScriptedChainBackend } from "../_fakes/chain_backend.ts";

const entry = (feeRateSatVb: number, vsize: number): MempoolFeeEntry => ({ feeRateSatVb, vsize });

Deno.test("histogramFromEntries() of no entries is []", () => {
  assert.deepEqual(histogramFromEntries([]), []);
});

Deno.test("histogramFromEntries() closes a bucket only past 50,000 vB and at a new rate", () => {
  // 1000 vB each at 100, 99, 98, ...: the first bucket ends after 51 entries (51,000 > 50,000).
  const entries = Array.from({ length: 120 }, (_, i) => entry(100 - i * 0.5, 1000));
  assert.deepEqual(histogramFromEntries(entries), [
    [75, 51_000],
    [49.5, 51_000],
    [40.5, 18_000],
  ]);
});

Deno.test("histogramFromEntries() keeps one rate in one bucket however big it grows", () => {
  const entries = [
    ...Array.from({ length: 200 }, () => entry(5, 1000)),
    entry(4, 10),
    entry(7, 60_000),
  ];
  assert.deepEqual(histogramFromEntries(entries), [[7, 60_000], [5, 200_000], [4, 10]]);
});

Deno.test("histogramFromEntries() labels each bucket with its lowest rate", () => {
  assert.deepEqual(
    histogramFromEntries([entry(30, 40_000), entry(25, 20_000), entry(24.5, 5)]),
    [[25, 60_000], [24.5, 5]],
  );
});

Deno.test("histogramFromEntries() ignores input order, keeps the total, rates strictly descending", () => {
  const arb = fc.array(
    fc.record({
      feeRateSatVb: fc.integer({ min: 0, max: 2000 }).map((n) => n / 4),
      vsize: fc.integer({ min: 1, max: 100_000 }),
    }),
    { maxLength: 300 },
  );
  fc.assert(
    fc.property(arb, fc.integer({ min: 0, max: 1e9 }), (entries, seed) => {
      const h = histogramFromEntries(entries);
      const total = entries.reduce((s, e) => s + e.vsize, 0);
      assert.equal(h.reduce((s, [, v]) => s + v, 0), total);
      for (let i = 1; i < h.length; i++) assert.ok(h[i - 1]![0] > h[i]![0], `bucket ${i}`);
      // Every bucket but the last holds more than the bucket width.
      for (const [, v] of h.slice(0, -1)) assert.ok(v > FEE_HISTOGRAM_BUCKET_VSIZE);
      // A seeded shuffle gives the same histogram.
      const shuffled = [...entries];
      let x = seed;
      for (let i = shuffled.length - 1; i > 0; i--) {
        x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
        const j = x % (i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      assert.deepEqual(histogramFromEntries(shuffled), h);
    }),
    { seed: 20_240_601, numRuns: 200 },
  );
});

Deno.test("medianOfProjectedBlock() of an empty or zero-vsize histogram is null", () => {
  assert.equal(medianOfProjectedBlock([]), null);
  assert.equal(medianOfProjectedBlock([[5, 0], [3, 0]]), null);
});

Deno.test("medianOfProjectedBlock() reads the middle of a mempool smaller than a block", () => {
  // 240,350 vB: the middle (120,175) falls in the 20 sat/vB bucket.
  assert.equal(medianOfProjectedBlock([[50, 60_200], [20, 60_000], [10, 60_150], [2, 60_000]]), 20);
});

Deno.test("medianOfProjectedBlock() reads the middle of the first block of a deep mempool", () => {
  const histogram: [number, number][] = [[80, 300_000], [40, 300_000], [10, 5_000_000]];
  // Middle of the first 1,000,000 vB is 500,000: in the 40 bucket, whatever lies below.
  assert.equal(medianOfProjectedBlock(histogram), 40);
  // Middle of a 400,000 vB block is 200,000: in the 80 bucket.
  assert.equal(medianOfProjectedBlock(histogram, 400_000), 80);
});

Deno.test("medianOfProjectedBlock() sorts its input and takes the bucket reaching the middle exactly", () => {
  assert.equal(medianOfProjectedBlock([[2, 50], [9, 50]]), 9);
  assert.equal(medianOfProjectedBlock([[9, 50], [2, 50]]), 9);
  assert.equal(medianOfProjectedBlock([[2, 51], [9, 49]]), 2);
});

Deno.test("histogramFromEntries() and medianOfProjectedBlock() refuse wrong types and ranges", () => {
  const cases: [string, () => unknown, ErrorConstructor][] = [
    ["entries not an array", () => histogramFromEntries({} as never), TypeError],
    ["entry null", () => histogramFromEntries([null as never]), TypeError],
    [
      "rate a string",
      () => histogramFromEntries([{ feeRateSatVb: "5", vsize: 1 } as never]),
      TypeError,
    ],
    ["rate negative", () => histogramFromEntries([entry(-1, 1)]), RangeError],
    ["rate NaN", () => histogramFromEntries([entry(NaN, 1)]), RangeError],
    ["rate Infinity", () => histogramFromEntries([entry(Infinity, 1)]), RangeError],
    ["vsize 0", () => histogramFromEntries([entry(1, 0)]), RangeError],
    ["vsize fractional", () => histogramFromEntries([entry(1, 1.5)]), RangeError],
    [
      "vsize bigint",
      () => histogramFromEntries([{ feeRateSatVb: 1, vsize: 1n } as never]),
      TypeError,
    ],
    ["histogram not an array", () => medianOfProjectedBlock("[]" as never), TypeError],
    ["pair too short", () => medianOfProjectedBlock([[1] as never]), TypeError],
    ["pair not an array", () => medianOfProjectedBlock([{ 0: 1, 1: 2 } as never]), TypeError],
    ["pair rate negative", () => medianOfProjectedBlock([[-1, 5]]), RangeError],
    ["pair vsize negative", () => medianOfProjectedBlock([[1, -5]]), RangeError],
    ["pair vsize a string", () => medianOfProjectedBlock([[1, "5" as never]]), TypeError],
    ["block size 0", () => medianOfProjectedBlock([[1, 5]], 0), RangeError],
    ["block size fractional", () => medianOfProjectedBlock([[1, 5]], 0.5), RangeError],
    ["block size a string", () => medianOfProjectedBlock([[1, 5]], "1" as never), TypeError],
  ];
  for (const [name, call, cls] of cases) {
    assert.throws(call, cls, name);
  }
});

Deno.test("ScriptedChainBackend.getMempoolSnapshot() answers its settable snapshot, a copy each time", async () => {
  const chain = new ScriptedChainBackend();
  const first = await chain.getMempoolSnapshot();
  assert.equal(feeFeatures(first).every(Number.isFinite), true);
  chain.snapshot = { ...first, height: 800_001, recentBlockMedianFeesSatVb: [] };
  assert.equal((await chain.getMempoolSnapshot()).height, 800_001);
  chain.snapshot = new Error("boom");
  await assert.rejects(chain.getMempoolSnapshot(), /boom/);
});
