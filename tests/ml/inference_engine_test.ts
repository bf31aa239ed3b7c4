/**
 * InferenceEngine on real onnxruntime-web sessions: many concurrent callers
 * across versions (an onnxruntime-web session is not reentrant: concurrent
 * run() calls on one session corrupt its WASM memory, so the engine must keep
 * one run in flight per session), each caller its own row, and coalescing.
 */
import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { toyModel } from "../_helpers/ml_models.ts";
import { ValidationError } from "../../src/errors/mod.ts";
import { treeEnsembleToOnnx } from "../../src/ml/train/tree_ensemble.ts";
import { OrtRuntime } from "../../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../../src/ml/inference_engine.ts";

const runtime = OrtRuntime.create({ numThreads: 1 });

Deno.test("InferenceEngine: 512 concurrent single-row callers over two versions each get their own answer, coalesced", async () => {
  const engine = await InferenceEngine.create(
    runtime,
    [toyModel("toy", "1.0.0", 0), toyModel("toy", "1.1.0", 100)],
    { maxBatch: 64, maxWaitMicros: 0 },
  );
  try {
    const calls = Array.from({ length: 512 }, (_, i) => {
      const version = i % 2 === 0 ? "1.0.0" : "1.1.0";
      const row = Float32Array.of((i % 3) / 2, (i % 5) / 4);
      return { version, row, answer: engine.predict("toy", version, row) };
    });
    for (const { version, row, answer } of calls) {
      const offset = version === "1.0.0" ? 0 : 100;
      const want = [offset + (row[0]! <= 0.5 ? 1 : 2), offset + (row[1]! <= 0.5 ? 10 : 20)];
      assert.deepEqual([...await answer], want);
    }
    for (const version of ["1.0.0", "1.1.0"]) {
      const stats = engine.batchStats("toy", version)!;
      assert.equal(stats.rows, 256);
      assert.ok(stats.runs <= 8, `256 same-tick rows in batches of 64: ${stats.runs} runs`);
    }
  } finally {
    await engine.close();
  }
});

Deno.test("InferenceEngine: a request larger than maxBatch is split and answered in order", async () => {
  const engine = await InferenceEngine.create(runtime, [toyModel("toy", "1.0.0", 0)], {
    maxBatch: 4,
    maxWaitMicros: 0,
  });
  try {
    const rows = Float32Array.from({ length: 2 * 10 }, (_, i) => (i % 2 === 0 ? (i / 20) : 1));
    const outputs = await engine.predict("toy", "1.0.0", rows);
    const want = Array.from({ length: 10 }, (_, r) => [rows[2 * r]! <= 0.5 ? 1 : 2, 20]).flat();
    assert.deepEqual([...outputs], want);
    assert.deepEqual(engine.batchStats("toy", "1.0.0"), { runs: 3, rows: 10 });
  } finally {
    await engine.close();
  }
});

Deno.test("InferenceEngine: a row whose output overflows is a 422 for its caller alone, not for those who shared the run", async () => {
  // exp(1) * x1: finite for ordinary x1, Infinity for x1 near float32's maximum.
  const { card } = toyModel("scaled", "1.0.0", 0);
  const bytes = treeEnsembleToOnnx({
    nFeatures: 2,
    nTargets: 2,
    base: [1, 0],
    trees: [0, 1].map((target) => ({ target, nodes: [{ kind: "leaf" as const, value: 0 }] })),
    post: "exp",
    scaleBy: { feature: 1, min: 1 },
  }, { inputName: "x", outputName: "y" });
  const engine = await InferenceEngine.create(
    runtime,
    [{ card: { ...card, sha256: hex.encode(sha256(bytes)) }, bytes }],
    { maxBatch: 64, maxWaitMicros: 0 },
  );
  try {
    const [before, bad, after] = await Promise.allSettled([
      engine.predict("scaled", "1.0.0", Float32Array.of(0, 2)),
      engine.predict("scaled", "1.0.0", Float32Array.of(0, 3e38)),
      engine.predict("scaled", "1.0.0", Float32Array.of(0, 3)),
    ]);
    assert.deepEqual(engine.batchStats("scaled", "1.0.0"), { runs: 1, rows: 3 });
    assert.equal(before.status, "fulfilled");
    assert.ok(
      Math.abs((before as PromiseFulfilledResult<Float32Array>).value[0]! - 2 * Math.E) < 1e-5,
    );
    assert.equal(after.status, "fulfilled");
    assert.equal(bad.status, "rejected");
    const err = (bad as PromiseRejectedResult).reason;
    assert.ok(err instanceof ValidationError && err.status === 422, String(err));
    assert.match(err.message, /row 0 is outside what model scaled-1\.0\.0 can answer/);
  } finally {
    await engine.close();
  }
});
