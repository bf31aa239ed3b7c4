/**
 * `GET /v1/fees/estimate` on the committed fee model and a scripted chain
 * backend's mempool snapshot: the answer, the backend's estimate beside it,
 * bad targets as 400 problems, and truths from later blocks in the metrics.
 */
import assert from "node:assert/strict";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { dirModelFiles, loadRegistry } from "../../src/ml/registry.ts";
import { OrtRuntime } from "../../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../../src/ml/inference_engine.ts";
import { MlService } from "../../src/ml/ml_service.ts";
import { FeeService } from "../../src/ml/fee/fee_service.ts";
import { feeFeatures } from "../../src/ml/features/fee_features.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { ScriptedChainBackend } from "../_fakes/chain_backend.ts";

const runtime = OrtRuntime.create({ numThreads: 1 });
const models = (await loadRegistry(dirModelFiles("models"))).filter((m) =>
  m.card.name === "fee-rate"
);

dbTest(
  "GET /v1/fees/estimate answers from the model, names its version and shows the backend's estimate",
  async (db) => {
    const logger = createLogger({ level: "error", sink: () => {} });
    const engine = await InferenceEngine.create(runtime, models, {
      maxBatch: 64,
      maxWaitMicros: 0,
    });
    const ml = new MlService({ engine, db, logger });
    const chain = new ScriptedChainBackend();
    chain.feeSatPerKvb = 3_000;
    const fees = new FeeService({ ml, chain, logger });
    await using t = buildTestApp(db, {}, { ml, fees, backend: chain });
    const { secret } = await t.key("acme", ["read"]);
    const snapshot = chain.snapshot as Exclude<typeof chain.snapshot, Error>;

    const res = await t.call("/v1/fees/estimate?target=4", { key: secret });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.targetBlocks, 4);
    assert.equal(body.modelTargetBlocks, 3, "the largest model target not above the one asked");
    assert.deepEqual(body.model, { name: "fee-rate", version: models.at(-1)!.card.version });
    assert.deepEqual(body.backend, { feeRateSatVb: 3, targetBlocks: 4 });
    assert.equal(body.height, snapshot.height);
    // The route's number is the ONNX model's column for 3 blocks on these features, floored at 1.
    const direct = await engine.predict("fee-rate", body.model.version, feeFeatures(snapshot));
    assert.equal(body.feeRateSatVb, Math.max(1, Math.round(direct[1]! * 100) / 100));

    for (const bad of ["0", "1009", "abc", "2.5"]) {
      await assertProblem(await t.call(`/v1/fees/estimate?target=${bad}`, { key: secret }), 400);
    }

    // Later blocks arrive with their medians: the prediction for 1 block gets its truth.
    chain.snapshot = {
      ...snapshot,
      height: snapshot.height + 1,
      recentBlockMedianFeesSatVb: [7, ...snapshot.recentBlockMedianFeesSatVb],
    };
    assert.equal((await t.call("/v1/fees/estimate?target=1", { key: secret })).status, 200);
    const ml2 = await t.call("/v1/ml/models/fee-rate/metrics", {
      key: (await t.key("acme", ["ml"])).secret,
    });
    const metrics = await ml2.json();
    const one = metrics.versions[0].errors.find((e: { target: string }) =>
      e.target === "feerate_1_block_sat_vb"
    );
    assert.equal(
      one.count,
      1,
      "the first estimate's 1-block prediction is settled by the next block",
    );
    assert.equal(metrics.versions[0].count, 2);
    await engine.close();
  },
);

dbTest(
  "GET /v1/fees/estimate without a chain backend or without models is a 503 problem",
  async (db) => {
    const logger = createLogger({ level: "error", sink: () => {} });
    const engine = await InferenceEngine.create(runtime, models, {
      maxBatch: 64,
      maxWaitMicros: 0,
    });
    const ml = new MlService({ engine, db, logger });
    await using t = buildTestApp(db, {}, { ml, fees: new FeeService({ ml, chain: null, logger }) });
    const { secret } = await t.key("acme", ["read"]);
    await assertProblem(await t.call("/v1/fees/estimate?target=6", { key: secret }), 503);
    await using bare = buildTestApp(db);
    const k = await bare.key("acme", ["read"]);
    await assertProblem(await bare.call("/v1/fees/estimate", { key: k.secret }), 503);
    await engine.close();
  },
);
