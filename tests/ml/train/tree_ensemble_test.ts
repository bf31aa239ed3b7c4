/**
 * Tree ensembles: the TypeScript reference evaluation and the ONNX graph
 * onnxruntime-web runs agree (1e-5), including ties at a threshold and NaN.
 */
import assert from "node:assert/strict";
import {
  assertTreeEnsemble,
  predictTreeEnsemble,
  type TreeEnsemble,
  treeEnsembleToOnnx,
} from "../../../src/ml/train/tree_ensemble.ts";
import { float32Tensor, OrtRuntime } from "../../../src/ml/ort_runtime.ts";
import { mulberry32 } from "../../../src/ml/train/prng.ts";
import { randomTree } from "../../_helpers/ml_models.ts";

function randomEnsemble(seed: number, post: "none" | "exp"): TreeEnsemble {
  const rand = mulberry32(seed);
  const trees = Array.from({ length: 60 }, (_, i) =>
    randomTree(rand, {
      target: i % 3,
      nFeatures: 5,
      depth: 3,
      threshold: () => Math.fround(Math.round(rand() * 8) / 2),
      leaf: () => (rand() - 0.5) * 0.4,
    }));
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
    const rand = mulberry32(3);
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
