/**
 * The inference engine against onnxruntime-web used directly, in the same run:
 * - batch 1: one caller at a time, engine.predict vs session.run (target: the
 *   engine keeps at least 90% of direct throughput);
 * - 64 concurrent single-row callers: coalesced by the engine vs 64
 *   session.run calls one after another (target: at least 5x). One after
 *   another is the only correct way without coalescing: an onnxruntime-web
 *   session is not reentrant, and concurrent run() calls on one session
 *   corrupt its WASM memory ("memory access out of bounds"), which is why the
 *   engine keeps one run in flight per session;
 * - model load: session creation from the file's bytes.
 * Each committed model is measured, and a tiny one (8 trees of depth 2): its
 * rows cost almost nothing, so it shows what the engine itself adds and saves.
 */
import { dirModelFiles, loadRegistry, type RegisteredModel } from "../src/ml/registry.ts";
import { float32Tensor, OrtRuntime } from "../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../src/ml/inference_engine.ts";
import { type TreeEnsemble, treeEnsembleToOnnx } from "../src/ml/train/tree_ensemble.ts";
import { mulberry32 } from "../src/ml/train/prng.ts";
import { randomTree } from "../tests/_helpers/ml_models.ts";
import type { ModelCard } from "../src/ml/model_card.ts";

const runtime = OrtRuntime.create({ numThreads: 1 });

function tinyModel(): RegisteredModel {
  const rand = mulberry32(7);
  const e: TreeEnsemble = {
    nFeatures: 20,
    nTargets: 4,
    base: [0, 0, 0, 0],
    trees: Array.from({ length: 8 }, (_, i) =>
      randomTree(rand, {
        target: i % 4,
        nFeatures: 20,
        depth: 2,
        threshold: () => Math.fround(rand()),
        leaf: () => rand() - 0.5,
      })),
    post: "exp",
  };
  const bytes = treeEnsembleToOnnx(e, { inputName: "features", outputName: "y" });
  const card = {
    name: "tiny",
    version: "1.0.0",
    inputs: [{ name: "features", type: "float32", shape: [-1, 20] }],
    outputs: [{ name: "y", type: "float32", shape: [-1, 4] }],
    features: Array.from({ length: 20 }, (_, i) => `f${i}`),
    targets: ["a", "b", "c", "d"],
  } as unknown as ModelCard;
  return { card, bytes };
}

// The committed models, plus a tiny one that isolates the engine's own cost from the model's.
const models = [...await loadRegistry(dirModelFiles("models")), tinyModel()];

for (const model of models) {
  const { name, version } = model.card;
  const width = model.card.inputs[0].shape[1];
  const inputName = model.card.inputs[0].name;
  const engine = await InferenceEngine.create(runtime, [model], { maxBatch: 64, maxWaitMicros: 0 });
  const direct = await runtime.createSession(model.bytes);
  const row = Float32Array.from({ length: width }, (_, i) => (i % 7) / 7);
  const tag = `${name}-${version}`;
  // Warm both paths (JIT, WASM memory growth) so the first group is not the one that pays for it.
  for (let i = 0; i < 300; i++) {
    await direct.run({ [inputName]: float32Tensor(row, 1, width) });
    await engine.predict(name, version, row);
  }

  // Paired blocks of single-row calls: on a shared machine the two groups below drift apart
  // between their runs, so the batch-1 ratio is also measured here, as the median over 40 pairs
  // of adjacent 200-call blocks (which goes first alternates) of direct time / engine time.
  const ratios: number[] = [];
  let directMs = 0;
  let engineMs = 0;
  const block = async (engineFirst: boolean) => {
    const times = { direct: 0, engine: 0 };
    for (
      const which of engineFirst ? ["engine", "direct"] as const : ["direct", "engine"] as const
    ) {
      const t0 = performance.now();
      if (which === "direct") {
        for (let i = 0; i < 200; i++) {
          await direct.run({ [inputName]: float32Tensor(row, 1, width) });
        }
      } else {
        for (let i = 0; i < 200; i++) await engine.predict(name, version, row);
      }
      times[which] = performance.now() - t0;
    }
    return times;
  };
  for (let pair = 0; pair < 40; pair++) {
    const t = await block(pair % 2 === 1);
    ratios.push(t.direct / t.engine);
    directMs += t.direct;
    engineMs += t.engine;
  }
  ratios.sort((x, y) => x - y);
  const median = (ratios[19]! + ratios[20]!) / 2;
  // deno-lint-ignore no-console -- a benchmark's report line, beside Deno's table
  console.log(
    `${tag}: batch 1, paired blocks: engine keeps ${
      (100 * median).toFixed(0)
    }% of direct throughput (median pair; quartiles ${(100 * ratios[10]!).toFixed(0)}–${
      (100 * ratios[30]!).toFixed(0)
    }%; ${(1000 * directMs / 8000).toFixed(1)} µs vs ${
      (1000 * engineMs / 8000).toFixed(1)
    } µs a call)`,
  );
  const single = { n: 5_000, warmup: 500 };
  const many = { n: 500, warmup: 50 };
  Deno.bench(
    { name: `session.run, 1 row`, group: `${tag}: batch 1`, baseline: true, ...single },
    async () => {
      await direct.run({ [inputName]: float32Tensor(row, 1, width) });
    },
  );
  Deno.bench({ name: `engine.predict, 1 row`, group: `${tag}: batch 1`, ...single }, async () => {
    await engine.predict(name, version, row);
  });
  Deno.bench(
    {
      name: "64 callers, session.run one after another",
      group: `${tag}: 64 concurrent rows`,
      baseline: true,
      ...many,
    },
    async () => {
      for (let i = 0; i < 64; i++) await direct.run({ [inputName]: float32Tensor(row, 1, width) });
    },
  );
  Deno.bench(
    { name: "64 callers, engine (coalesced)", group: `${tag}: 64 concurrent rows` },
    async () => {
      await Promise.all(Array.from({ length: 64 }, () => engine.predict(name, version, row)));
    },
  );
  Deno.bench({ name: `${tag}: create session from bytes`, group: "load" }, async () => {
    const s = await runtime.createSession(model.bytes);
    await s.release();
  });
}
