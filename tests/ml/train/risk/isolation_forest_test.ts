/**
 * Isolation forest (Liu et al. 2008): c(n), determinism from the seed, that
 * outliers score higher, float32 thresholds strictly between observed values,
 * and that the tree-ensemble form gives s = 2^(-E[h]/c(psi)).
 */
import assert from "node:assert/strict";
import { mulberry32 } from "../../../../src/ml/train/prng.ts";
import {
  averagePathLength,
  fitIsolationForest,
  isolationScore,
} from "../../../../src/ml/train/risk/isolation_forest.ts";
import { assertTreeEnsemble, predictTreeEnsemble } from "../../../../src/ml/train/tree_ensemble.ts";

const GAMMA = 0.5772156649015329;

/** Seeded 2-D Gaussian cloud (Box-Muller) around the origin. */
function cloud(n: number, seed: number): number[][] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const t = 2 * Math.PI * rand();
    return [r * Math.cos(t), r * Math.sin(t), Math.round(rand() * 3)];
  });
}

Deno.test("averagePathLength() is c(n) of Liu et al.: 0, 1, then 2H(n-1) - 2(n-1)/n", () => {
  assert.equal(averagePathLength(0), 0);
  assert.equal(averagePathLength(1), 0);
  assert.equal(averagePathLength(2), 1);
  // c(3) = 2(ln 2 + γ) - 4/3 = 1.207392...; c(256) = 2(ln 255 + γ) - 510/256 = 10.244770...
  assert.ok(Math.abs(averagePathLength(3) - (2 * (Math.log(2) + GAMMA) - 4 / 3)) < 1e-12);
  assert.ok(Math.abs(averagePathLength(3) - 1.2073921) < 1e-6);
  assert.ok(Math.abs(averagePathLength(256) - 10.2447709) < 1e-6);
  assert.ok(Math.abs(averagePathLength(128) - 8.8584305) < 1e-6);
  for (const bad of [-1, 1.5, NaN, "3"]) {
    assert.throws(() => averagePathLength(bad as number), RangeError, String(bad));
  }
});

Deno.test("fitIsolationForest() is deterministic for a seed and differs across seeds", () => {
  const rows = cloud(300, 7);
  const a = fitIsolationForest(rows, { nTrees: 20, seed: 42 });
  const b = fitIsolationForest(rows, { nTrees: 20, seed: 42 });
  const c = fitIsolationForest(rows, { nTrees: 20, seed: 43 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.ensemble.trees, c.ensemble.trees);
});

Deno.test("fitIsolationForest() gives outliers higher scores than inliers", () => {
  const rows = cloud(500, 11);
  const forest = fitIsolationForest(rows, { nTrees: 100, seed: 1 });
  assert.equal(forest.sampleSize, 256);
  assert.equal(forest.heightLimit, 8);
  const score = (x: number[]) => predictTreeEnsemble(forest.ensemble, x)[0]!;
  const inlier = score([0, 0, 1]);
  for (const outlier of [[6, 6, 1], [-8, 0, 2], [0.1, 9, 0]]) {
    assert.ok(score(outlier) > inlier + 0.15, `${outlier}: ${score(outlier)} vs ${inlier}`);
    assert.ok(score(outlier) > 0.6, `${outlier}: ${score(outlier)}`);
  }
  assert.ok(inlier < 0.5, `inlier ${inlier}`);
  // Beyond the training range on one feature a row isolates like the most extreme training rows
  // (splits are drawn inside the range): higher than an inlier, but no higher than that.
  assert.ok(score([0, 0, 40]) > inlier);
  assert.equal(score([0, 0, 40]), score([0, 0, 3]));
});

Deno.test("fitIsolationForest() ensemble: valid, float32 thresholds strictly inside the data, exp(sum) = 2^(-E[h]/c)", () => {
  const rows = cloud(200, 3);
  const forest = fitIsolationForest(rows, { nTrees: 30, sampleSize: 64, seed: 5 });
  assertTreeEnsemble(forest.ensemble);
  assert.equal(forest.ensemble.post, "exp");
  assert.deepEqual(forest.ensemble.base, [0]);
  assert.equal(forest.sampleSize, 64);
  assert.equal(forest.heightLimit, 6);
  assert.equal(forest.cPsi, averagePathLength(64));
  const f32 = rows.map((r) => Float32Array.from(r));
  for (const tree of forest.ensemble.trees) {
    for (const node of tree.nodes) {
      if (node.kind !== "split") continue;
      assert.equal(Math.fround(node.threshold), node.threshold);
      // Some training value lies at or below the threshold and some above it.
      const col = f32.map((r) => r[node.feature]!);
      assert.ok(col.some((v) => v <= node.threshold) && col.some((v) => v > node.threshold));
    }
  }
  for (const row of [...rows.slice(0, 50), [5, 5, 3], [-3, 2, 0]]) {
    const viaEnsemble = predictTreeEnsemble(forest.ensemble, row)[0]!;
    const viaPaths = isolationScore(forest, row);
    assert.ok(viaEnsemble > 0 && viaEnsemble <= 1);
    assert.ok(Math.abs(viaEnsemble - viaPaths) < 1e-5, `${row}: ${viaEnsemble} vs ${viaPaths}`);
  }
});

Deno.test("fitIsolationForest() makes a leaf of identical rows and skips constant features", () => {
  const same = Array.from({ length: 10 }, () => [1, 2]);
  const forest = fitIsolationForest(same, { nTrees: 3, seed: 1 });
  for (const t of forest.ensemble.trees) {
    assert.equal(t.nodes.length, 1);
    // Root leaf of 10 identical rows: h = 0 + c(10); score 2^(-c(10)/c(10)) = 0.5.
  }
  assert.ok(Math.abs(predictTreeEnsemble(forest.ensemble, [1, 2])[0]! - 0.5) < 1e-6);
  const constSecond = [[0, 7], [1, 7], [2, 7], [3, 7]];
  const f2 = fitIsolationForest(constSecond, { nTrees: 5, seed: 2 });
  for (const t of f2.ensemble.trees) {
    for (const n of t.nodes) if (n.kind === "split") assert.equal(n.feature, 0);
  }
});

Deno.test("fitIsolationForest() refuses bad rows and options", () => {
  const rows = cloud(10, 1);
  assert.throws(() => fitIsolationForest([] as number[][]), RangeError);
  assert.throws(() => fitIsolationForest([[1]]), RangeError);
  assert.throws(() => fitIsolationForest([[1, 2], [1]]), RangeError);
  assert.throws(() => fitIsolationForest([[1, NaN], [1, 2]]), RangeError);
  assert.throws(() => fitIsolationForest([[1, Infinity], [1, 2]]), RangeError);
  assert.throws(() => fitIsolationForest(rows, { nTrees: 0 }), RangeError);
  assert.throws(() => fitIsolationForest(rows, { sampleSize: 1 }), RangeError);
  assert.throws(() => fitIsolationForest(rows, { seed: 1.5 }), RangeError);
  assert.throws(() => mulberry32(NaN), RangeError);
});
