/** MicroBatcher: coalescing, each caller its own rows, failures to every caller of the batch. */
import assert from "node:assert/strict";
import { MicroBatcher } from "../../src/ml/batcher.ts";

/** A runner that doubles each value and remembers batch sizes. */
function doubling() {
  const sizes: number[] = [];
  const run = async (rows: Float32Array, count: number) => {
    sizes.push(count);
    await new Promise((r) => setTimeout(r, 5));
    return rows.map((v) => v * 2);
  };
  return { sizes, run };
}

Deno.test("MicroBatcher runs callers of the same tick together, and those arriving during a run next", async () => {
  const { sizes, run } = doubling();
  const b = new MicroBatcher(run, (out: Float32Array) => out, {
    inWidth: 1,
    outWidth: 1,
    maxBatch: 64,
    maxWaitMicros: 0,
  });
  const outs = await Promise.all(
    Array.from({ length: 64 }, (_, i) => b.submit(Float32Array.of(i), 1)),
  );
  outs.forEach((o, i) => assert.deepEqual([...o], [i * 2], `caller ${i} gets its own row`));
  assert.deepEqual(sizes, [64]);
  // A lone caller runs at once; ten more arriving while it runs share the next run.
  const first = b.submit(Float32Array.of(100), 1);
  await new Promise((r) => setTimeout(r, 1));
  const later = Array.from({ length: 10 }, (_, i) => b.submit(Float32Array.of(i), 1));
  assert.deepEqual([...await first], [200]);
  (await Promise.all(later)).forEach((o, i) => assert.deepEqual([...o], [i * 2]));
  assert.deepEqual(sizes, [64, 1, 10]);
  assert.deepEqual(b.stats, { runs: 3, rows: 75 });
});

Deno.test("MicroBatcher waits up to maxWaitMicros when idle, and never exceeds maxBatch", async () => {
  const { sizes, run } = doubling();
  const b = new MicroBatcher(run, (out: Float32Array) => out, {
    inWidth: 2,
    outWidth: 2,
    maxBatch: 5,
    maxWaitMicros: 20_000,
  });
  const outs = await Promise.all(
    Array.from({ length: 12 }, (_, i) => b.submit(Float32Array.of(i, -i), 1)),
  );
  outs.forEach((o, i) => assert.deepEqual([...o], [i * 2, -i * 2]));
  assert.deepEqual(sizes, [5, 5, 2]);
  // A multi-row request stays whole and in order.
  const many = await b.submit(Float32Array.of(1, 2, 3, 4, 5, 6), 3);
  assert.deepEqual([...many], [2, 4, 6, 8, 10, 12]);
});

Deno.test("MicroBatcher rejects every caller of a failed batch, and later batches still run", async () => {
  let fail = true;
  const b = new MicroBatcher(
    async (rows) => {
      await new Promise((r) => setTimeout(r, 1));
      if (fail) throw new Error("boom");
      return rows;
    },
    (out) => out,
    { inWidth: 1, outWidth: 1, maxBatch: 8, maxWaitMicros: 1_000 },
  );
  const results = await Promise.allSettled([
    b.submit(Float32Array.of(1), 1),
    b.submit(Float32Array.of(2), 1),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.deepEqual([...await b.submit(Float32Array.of(3), 1)], [3]);
});

Deno.test("MicroBatcher refuses bad options and bad rows", () => {
  const run = (r: Float32Array) => Promise.resolve(r);
  assert.throws(
    () =>
      new MicroBatcher(run, (out: Float32Array) => out, {
        inWidth: 0,
        outWidth: 1,
        maxBatch: 1,
        maxWaitMicros: 0,
      }),
    RangeError,
  );
  assert.throws(
    () =>
      new MicroBatcher(run, (out: Float32Array) => out, {
        inWidth: 1,
        outWidth: 1,
        maxBatch: 1,
        maxWaitMicros: -1,
      }),
    RangeError,
  );
  const b = new MicroBatcher(run, (out: Float32Array) => out, {
    inWidth: 2,
    outWidth: 2,
    maxBatch: 2,
    maxWaitMicros: 0,
  });
  assert.throws(() => b.submit(Float32Array.of(1), 1), RangeError);
  assert.throws(() => b.submit(new Float32Array(6), 3), RangeError);
});

Deno.test("MicroBatcher fails every caller of a batch whose outputs cannot be read, and goes on", async () => {
  const b = new MicroBatcher(
    (rows: Float32Array) => Promise.resolve(rows),
    (out) => {
      if (out.some((v) => !Number.isFinite(v))) throw new Error("non-finite output");
      return out;
    },
    { inWidth: 1, outWidth: 1, maxBatch: 8, maxWaitMicros: 0 },
  );
  const results = await Promise.allSettled([
    b.submit(Float32Array.of(1), 1),
    b.submit(Float32Array.of(Infinity), 1),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  assert.deepEqual([...await b.submit(Float32Array.of(3), 1)], [3]);
});

Deno.test("MicroBatcher: checkOutputs refuses one caller's outputs without touching the others'", async () => {
  const b = new MicroBatcher((rows: Float32Array) => Promise.resolve(rows), (out) => out, {
    inWidth: 1,
    outWidth: 1,
    maxBatch: 8,
    maxWaitMicros: 0,
    checkOutputs: (o) => (o.some((v) => v < 0) ? new RangeError("negative") : undefined),
  });
  const results = await Promise.allSettled([
    b.submit(Float32Array.of(1), 1),
    b.submit(Float32Array.of(-1), 1),
    b.submit(Float32Array.of(2, 3), 2),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.deepEqual([...(results[2] as PromiseFulfilledResult<Float32Array>).value], [2, 3]);
  assert.deepEqual(b.stats, { runs: 1, rows: 4 });
});
