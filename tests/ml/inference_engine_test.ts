/**
 * InferenceEngine on real onnxruntime-web sessions: many concurrent callers
 * across versions (an onnxruntime-web session is not reentrant: concurrent
 * run() calls on one session corrupt its WASM memory, so the engine must keep
 * one run in flight per session), each caller its own row, and coalescing.
 */
import assert from "node:assert/strict";
import { toyModel } from "../_helpers/ml_models.ts";
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
