/**
 * Tree ensembles: the TypeScript reference evaluation and the ONNX graph
 * onnxruntime-web runs agree (1e-5), including ties at a threshold and NaN.
 */
import assert from "node:assert/strict";
import {
  assertTreeEnsemble,
  predictTreeEnsemble,
  type Tree,
  type TreeEnsemble,
  treeEnsembleToOnnx,
} from "../../../src/ml/train/tree_ensemble.ts";
import { float32Tensor, OrtRuntime } from "../../../src/ml/ort_runtime.ts";

/** Mulberry32: a seeded PRNG so the ensemble is the same every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomTree(rand: () => number, target: number, nFeatures: number, depth: number): Tree {
  const nodes: Tree["nodes"] = [];
  const grow = (d: number): number => {
    const at = nodes.length;
    if (d === depth) {
      nodes.push({ kind: "leaf", value: (rand() - 0.5) * 0.4 });
      return at;
    }
    nodes.push({ kind: "leaf", value: 0 }); // placeholder, replaced below
    const feature = Math.floor(rand() * nFeatures);
    const threshold = Math.fround(Math.round(rand() * 8) / 2);
    const yes = grow(d + 1);
    const no = grow(d + 1);
    nodes[at] = { kind: "split", feature, threshold, yes, no };
    return at;
  };
  grow(0);
  return { target, nodes };
}

function randomEnsemble(seed: number, post: "none" | "exp"): TreeEnsemble {
  const rand = prng(seed);
  const trees = Array.from({ length: 60 }, (_, i) => randomTree(rand, i % 3, 5, 3));
  return { nFeatures: 5, nTargets: 3, base: [0.5, -1.25, 2], trees, post };
}

const runtime = OrtRuntime.create({ numThreads: 1 });

for (const [post, scaled] of [["none", false], ["exp", false], ["exp", true]] as const) {
  Deno.test(`predictTreeEnsemble() equals onnxruntime-web's TreeEnsembleRegressor (post ${post}${scaled ? ", scaled by a feature" : ""}) within 1e-5`, async () => {
    const e = {
      ...randomEnsemble(post === "none" ? 1 : 2, post),
      ...(scaled ? { scaleBy: { feature: 2, min: 1 } } : {}),
    };
    const session = await runtime.createSession(
      treeEnsembleToOnnx(e, { inputName: "x", outputName: "y" }),
    );
    const rand = prng(3);
    const rows: number[][] = Array.from(
      { length: 200 },
      () => Array.from({ length: 5 }, () => Math.round(rand() * 16) / 4),
    );
    rows.push([NaN, NaN, NaN, NaN, NaN], [0, 0, 0, 0, 0], [4, 4, 4, 4, 4]);
    const flat = Float32Array.from(rows.flat());
    const out = await session.run({ x: float32Tensor(flat, rows.length, 5) });
    const got = out.y!.data as Float32Array;
    assert.deepEqual(out.y!.dims, [rows.length, 3]);
    rows.forEach((row, r) => {
      const want = predictTreeEnsemble(e, row);
      for (let t = 0; t < 3; t++) {
        const a = got[r * 3 + t]!;
        const b = want[t]!;
        assert.ok(
          (Number.isNaN(a) && Number.isNaN(b)) ||
            Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)),
          `row ${r} target ${t}: ${a} vs ${b}`,
        );
      }
    });
    await session.release();
  });
}

Deno.test("assertTreeEnsemble() refuses cycles, bad targets, non-float32 thresholds and bad rows", () => {
  const ok: TreeEnsemble = {
    nFeatures: 1,
    nTargets: 1,
    base: [0],
    post: "none",
    trees: [{
      target: 0,
      nodes: [{ kind: "split", feature: 0, threshold: 0.5, yes: 1, no: 2 }, {
        kind: "leaf",
        value: 1,
      }, {
        kind: "leaf",
        value: 2,
      }],
    }],
  };
  assertTreeEnsemble(ok);
  assert.deepEqual(
    [...predictTreeEnsemble(ok, [0.5])],
    [1],
    "x == threshold takes the yes branch (LEQ)",
  );
  assert.deepEqual([...predictTreeEnsemble(ok, [NaN])], [2], "NaN takes the no branch");
  const bad = (patch: (e: TreeEnsemble) => void) => {
    const e = structuredClone(ok);
    patch(e);
    return e;
  };
  assert.throws(() => assertTreeEnsemble(bad((e) => e.trees[0]!.target = 1)), RangeError);
  assert.throws(
    () => assertTreeEnsemble(bad((e) => (e.trees[0]!.nodes[0] as { yes: number }).yes = 0)),
    RangeError,
  );
  assert.throws(
    () =>
      assertTreeEnsemble(
        bad((e) => (e.trees[0]!.nodes[0] as { threshold: number }).threshold = 0.1),
      ),
    RangeError,
  );
  assert.throws(() => assertTreeEnsemble(bad((e) => e.base = [])), RangeError);
  assert.throws(() => predictTreeEnsemble(ok, [1, 2]), RangeError);
});
