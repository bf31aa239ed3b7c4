import assert from "node:assert/strict";
import {
  binMatrix,
  fitLogQuantileGbt,
  fitQuantileGbt,
  float32Midpoint,
  pinballQuantile,
  trainQuantileGbtEnsemble,
} from "../../../../src/ml/train/fee/gbt.ts";
import { assertTreeEnsemble, predictTreeEnsemble } from "../../../../src/ml/train/tree_ensemble.ts";

/** Seeded synthetic data: y = 2 x0 + noise with spread growing with x1. */
function synthetic(n: number, seed: number) {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const x = new Float32Array(n * 2);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x0 = rand();
    const x1 = rand();
    x[i * 2] = x0;
    x[i * 2 + 1] = x1;
    y[i] = 2 * x0 + (rand() - 0.5) * (0.2 + x1);
  }
  return { x, y, rows: Array.from({ length: n }, (_, i) => i) };
}

Deno.test("float32Midpoint() is float32-exact and within [a, b)", () => {
  const pairs: [number, number][] = [[1, 2], [0.1, 0.2], [3, Math.fround(3 + 2 ** -21)], [-5, 7]];
  for (const [a0, b0] of pairs) {
    const a = Math.fround(a0);
    const b = Math.fround(b0);
    const t = float32Midpoint(a, b);
    assert.equal(Math.fround(t), t);
    assert.ok(a <= t && t < b, `${a} ${b} -> ${t}`);
  }
});

Deno.test("pinballQuantile() returns the ceil(alpha n)-th smallest value", () => {
  assert.equal(pinballQuantile(Float64Array.from([5, 1, 4, 2, 3]), 0.5), 3);
  assert.equal(pinballQuantile(Float64Array.from([5, 1, 4, 2, 3]), 0.9), 5);
  assert.equal(pinballQuantile(Float64Array.from([5, 1, 4, 2, 3]), 0.1), 1);
  assert.throws(() => pinballQuantile(new Float64Array(0), 0.5), RangeError);
});

Deno.test("fitQuantileGbt() is deterministic for a seed and differs across seeds", () => {
  const d = synthetic(600, 7);
  const m = binMatrix(d.x, { nFeatures: 2 });
  const opts = { quantile: 0.8, nTrees: 20, minLeafSize: 20, seed: 3 };
  const a = fitQuantileGbt(m, d, opts);
  const b = fitQuantileGbt(m, d, opts);
  assert.deepEqual(a, b);
  const c = fitQuantileGbt(m, d, { ...opts, seed: 4 });
  assert.notDeepEqual(a.trees, c.trees);
});

Deno.test("fitQuantileGbt() covers about alpha of held-out rows and orders the quantiles", () => {
  const train = synthetic(3000, 11);
  const test = synthetic(2000, 12);
  const m = binMatrix(train.x, { nFeatures: 2 });
  const coverage = [0.1, 0.5, 0.9].map((quantile) => {
    const fit = fitQuantileGbt(m, train, { quantile, nTrees: 80, minLeafSize: 30, seed: 1 });
    const e = {
      nFeatures: 2,
      nTargets: 1,
      base: [fit.base],
      trees: fit.trees.map((nodes) => ({ target: 0, nodes })),
      post: "none" as const,
    };
    let below = 0;
    for (let i = 0; i < 2000; i++) {
      const p = predictTreeEnsemble(e, test.x.subarray(i * 2, i * 2 + 2))[0]!;
      if (test.y[i]! <= p) below++;
    }
    return below / 2000;
  });
  assert.ok(Math.abs(coverage[0]! - 0.1) < 0.05, `q0.1 covers ${coverage[0]}`);
  assert.ok(Math.abs(coverage[1]! - 0.5) < 0.05, `q0.5 covers ${coverage[1]}`);
  assert.ok(Math.abs(coverage[2]! - 0.9) < 0.05, `q0.9 covers ${coverage[2]}`);
});

Deno.test("trainQuantileGbtEnsemble() builds a valid exp ensemble with float32 thresholds", () => {
  const d = synthetic(800, 5);
  const rates = Float64Array.from(d.y, (v) => Math.exp(v));
  const m = binMatrix(d.x, { nFeatures: 2, maxBins: 16 });
  const e = trainQuantileGbtEnsemble(m, { rates: [rates, rates], rows: d.rows }, {
    quantiles: [0.5, 0.9],
    nTrees: 10,
    minLeafSize: 20,
  });
  assertTreeEnsemble(e);
  assert.equal(e.post, "exp");
  assert.equal(e.trees.filter((t) => t.target === 1).length, 10);
  for (const t of e.trees) {
    for (const n of t.nodes) {
      if (n.kind === "split") assert.equal(Math.fround(n.threshold), n.threshold);
    }
  }
  // The 0.9 column is above the 0.5 column on most rows.
  let above = 0;
  for (let i = 0; i < 800; i++) {
    const [lo, hi] = predictTreeEnsemble(e, d.x.subarray(i * 2, i * 2 + 2));
    if (hi! >= lo!) above++;
  }
  assert.ok(above > 0.95 * 800);
  const log = fitLogQuantileGbt(m, { rates, rows: d.rows }, {
    quantile: 0.5,
    nTrees: 10,
    minLeafSize: 20,
  });
  assert.equal(log.base, e.base[0]);
});

Deno.test("binMatrix() and fitQuantileGbt() reject invalid arguments", () => {
  const d = synthetic(100, 1);
  assert.throws(() => binMatrix([1, 2] as unknown as Float32Array, { nFeatures: 1 }), TypeError);
  assert.throws(() => binMatrix(d.x, { nFeatures: 3 }), RangeError);
  assert.throws(() => binMatrix(d.x, { nFeatures: 2, maxBins: 1 }), RangeError);
  assert.throws(() => binMatrix(Float32Array.from([Number.NaN, 1]), { nFeatures: 2 }), RangeError);
  const m = binMatrix(d.x, { nFeatures: 2 });
  assert.throws(() => fitQuantileGbt(m, d, { quantile: 1 }), RangeError);
  assert.throws(() => fitQuantileGbt(m, d, { quantile: 0.5, nTrees: 0 }), RangeError);
  assert.throws(() => fitQuantileGbt(m, d, { quantile: 0.5, minLeafSize: 60 }), RangeError);
  assert.throws(
    () => fitQuantileGbt(m, { y: d.y, rows: [500] }, { quantile: 0.5, minLeafSize: 1 }),
    RangeError,
  );
});
