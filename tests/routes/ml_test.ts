/**
 * `/v1/ml` over HTTP on a real engine (onnxruntime-web sessions of toy tree
 * models) and a real database: predictions, routing and shadow, bad input as
 * problem+json 4xx, metrics with truths computed from recorded block fees.
 */
import assert from "node:assert/strict";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { toyModelsDir } from "../_helpers/ml_models.ts";
import { dirModelFiles, loadRegistry } from "../../src/ml/registry.ts";
import { OrtRuntime } from "../../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../../src/ml/inference_engine.ts";
import { MlService } from "../../src/ml/ml_service.ts";
import { createLogger } from "../../src/obs/logger.ts";
import type { Db } from "../../src/db/mod.ts";

const runtime = OrtRuntime.create({ numThreads: 1 });

async function mlFor(db: Db, versions: string[]) {
  await using models = await toyModelsDir("toy", versions);
  const engine = await InferenceEngine.create(
    runtime,
    await loadRegistry(dirModelFiles(models.dir)),
    { maxBatch: 64, maxWaitMicros: 0 },
  );
  return new MlService({ engine, db, logger: createLogger({ level: "error", sink: () => {} }) });
}

dbTest("POST /v1/ml/models/{name}/predict answers each row from the routed version", async (db) => {
  const ml = await mlFor(db, ["1.0.0", "1.1.0"]);
  await using t = buildTestApp(db, {}, { ml });
  const { secret } = await t.key("acme", ["ml"]);
  const res = await t.call("/v1/ml/models/toy/predict", {
    key: secret,
    method: "POST",
    body: { inputs: [[0, 0], [1, 1], [0.5, 0.75]] },
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  // Default routing: the newest version (offset 100) takes everything.
  assert.equal(body.version, "1.1.0");
  assert.deepEqual(body.targets, ["a", "b"]);
  assert.deepEqual(body.outputs, [[101, 110], [102, 120], [101, 120]]);
  const runtimeRes = await t.call("/v1/ml/runtime", { key: secret });
  const info = await runtimeRes.json();
  assert.equal(info.chosen.executionProvider, "wasm");
  assert.equal(info.host.wasmSimd, true);
  assert.equal(info.models.length, 2);
  await ml.engine.close();
});

dbTest(
  "predict: wrong width, non-finite float32, empty and unknown model are 4xx problems",
  async (db) => {
    const ml = await mlFor(db, ["1.0.0"]);
    await using t = buildTestApp(db, {}, { ml });
    const { secret } = await t.key("acme", ["ml"]);
    const cases: [unknown, number][] = [
      [{ inputs: [[1, 2, 3]] }, 422],
      [{ inputs: [[1e39, 0]] }, 422], // finite as a double, Infinity as float32
      [{ inputs: [] }, 400],
      [{ inputs: [["1", 0]] }, 400],
      [{ inputs: [[1, 2]], extra: true }, 400],
    ];
    for (const [body, status] of cases) {
      const r = await t.call("/v1/ml/models/toy/predict", { key: secret, method: "POST", body });
      assert.equal(r.status, status, JSON.stringify(body));
      await assertProblem(r, status);
    }
    const raw = await t.app.request("/v1/ml/models/toy/predict", {
      method: "POST",
      headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
      body: '{"inputs": [[NaN, 1]]}',
    });
    assert.equal(raw.status, 400);
    const missing = await t.call("/v1/ml/models/nope/predict", {
      key: secret,
      method: "POST",
      body: { inputs: [[0, 0]] },
    });
    await assertProblem(missing, 404);
    const noScope = await t.key("acme", ["read"]);
    const denied = await t.call("/v1/ml/models/toy/predict", {
      key: noScope.secret,
      method: "POST",
      body: { inputs: [[0, 0]] },
    });
    await assertProblem(denied, 403);
    await ml.engine.close();
  },
);

dbTest(
  "routing: admins split traffic; callers stick to a version; shadow never changes the answer",
  async (db) => {
    const ml = await mlFor(db, ["1.0.0", "2.0.0"]);
    await using t = buildTestApp(db, {}, { ml });
    const admin = await t.key("ops", ["admin", "ml"]);
    const user = await t.key("acme", ["ml"]);
    const bad = await t.call("/v1/ml/models/toy/routing", {
      key: admin.secret,
      method: "PUT",
      body: { routes: [{ version: "9.9.9", weight: 1 }] },
    });
    await assertProblem(bad, 422);
    const notAdmin = await t.call("/v1/ml/models/toy/routing", {
      key: user.secret,
      method: "PUT",
      body: { routes: [{ version: "1.0.0", weight: 1 }] },
    });
    await assertProblem(notAdmin, 403);
    // Everything to 1.0.0, with 2.0.0 in shadow.
    const put = await t.call("/v1/ml/models/toy/routing", {
      key: admin.secret,
      method: "PUT",
      body: {
        routes: [{ version: "1.0.0", weight: 1 }, { version: "2.0.0", weight: 0 }],
        shadowVersion: "2.0.0",
      },
    });
    assert.equal(put.status, 200);
    for (let i = 0; i < 5; i++) {
      const r = await t.call("/v1/ml/models/toy/predict", {
        key: user.secret,
        method: "POST",
        body: { inputs: [[0, 1]] },
      });
      const body = await r.json();
      assert.equal(body.version, "1.0.0");
      assert.deepEqual(
        body.outputs,
        [[1, 20]],
        "the answer is the routed version's, not the shadow's",
      );
    }
    await ml.drainShadows();
    const metrics = await (await t.call("/v1/ml/models/toy/metrics", { key: user.secret })).json();
    const byVersion = Object.fromEntries(
      metrics.versions.map((v: { version: string }) => [v.version, v]),
    );
    assert.equal(byVersion["1.0.0"].count, 5);
    assert.equal(byVersion["2.0.0"].count, 0);
    assert.equal(byVersion["2.0.0"].shadowCount, 5);
    const rows = await db.query<{ shadow: boolean; output: number[] }>(
      "SELECT shadow, output FROM ml_predictions WHERE version = '2.0.0'",
    );
    assert.deepEqual(rows[0]!.output, [101, 120], "the shadow's own answer is recorded");
    await ml.engine.close();
  },
);

dbTest("online accuracy: truths from later blocks give each version its error", async (db) => {
  const ml = await mlFor(db, ["1.0.0"]);
  await using t = buildTestApp(db, {}, { ml });
  const user = await t.key("acme", ["ml"]);
  // Predictions made at height 100: column a = 1 (x0 <= 0.5), column b = 20.
  await ml.predict({ tenant: "acme", keyId: "k1" }, "toy", {
    rows: [[0, 1]],
    context: { height: 100 },
  });
  await ml.predict({ tenant: "acme", keyId: "k1" }, "toy", {
    rows: [[1, 0]],
    context: { height: 101 },
  });
  const targets = [{ name: "a", blocks: 1, column: 0 }, { name: "b", blocks: 3, column: 1 }];
  // Block medians 0.5, 4, 12, 30 at heights 101..104.
  assert.equal(await ml.recordBlockFee(101, 0.5, "toy", targets), 1); // a@100: truth 0.5
  assert.equal(await ml.recordBlockFee(102, 4, "toy", targets), 1); // a@101: truth 4
  assert.equal(await ml.recordBlockFee(103, 12, "toy", targets), 1); // b@100: min(0.5, 4, 12)
  assert.equal(await ml.recordBlockFee(104, 30, "toy", targets), 1); // b@101: min(4, 12, 30)
  assert.equal(await ml.recordBlockFee(104, 30, "toy", targets), 0, "settling is idempotent");
  const metrics = await (await t.call("/v1/ml/models/toy/metrics", { key: user.secret })).json();
  const [v] = metrics.versions;
  assert.equal(v.count, 2);
  const a = v.errors.find((e: { target: string }) => e.target === "a");
  const b = v.errors.find((e: { target: string }) => e.target === "b");
  // a: predicted 1 vs 0.5 (hit, +0.5) and 2 vs 4 (miss, -2).
  assert.deepEqual([a.count, a.meanAbsoluteError, a.hitRate, a.medianOverpayment], [
    2,
    1.25,
    0.5,
    0.5,
  ]);
  // b: predicted 20 vs 0.5 (hit, +19.5) and 10 vs 4 (hit, +6).
  assert.deepEqual([b.count, b.meanAbsoluteError, b.hitRate, b.medianOverpayment], [
    2,
    12.75,
    1,
    12.75,
  ]);
  assert.equal(typeof v.latencyMsP50, "number");
  await ml.engine.close();
});

dbTest("without ML the routes answer 503 problems", async (db) => {
  await using t = buildTestApp(db);
  const { secret } = await t.key("acme", ["ml"]);
  await assertProblem(await t.call("/v1/ml/runtime", { key: secret }), 503);
});
