/** Risk over HTTP: `risk` in `POST /v1/psbt/decode`, and `/v1/risk/policy` scopes and validation. */
import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { keyPsbt } from "../_helpers/hsm_psbt.ts";
import { dirModelFiles, loadRegistry } from "../../src/ml/registry.ts";
import { OrtRuntime } from "../../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../../src/ml/inference_engine.ts";
import { MlService } from "../../src/ml/ml_service.ts";
import { RiskService } from "../../src/ml/risk/risk_service.ts";
import { loadDenyList } from "../../src/ml/risk/deny_list_file.ts";
import { createLogger } from "../../src/obs/logger.ts";
import type { Db } from "../../src/db/mod.ts";

const MAINNET = { BITCOIN_NETWORK: "mainnet" };
const root = HDKey.fromMasterSeed(new Uint8Array(32).fill(5));
const runtime = OrtRuntime.create({ numThreads: 1 });
const models = (await loadRegistry(dirModelFiles("models"))).filter((m) =>
  m.card.name === "tx-risk"
);

async function services(db: Db) {
  const logger = createLogger({ level: "error", sink: () => {} });
  const engine = await InferenceEngine.create(runtime, models, { maxBatch: 64, maxWaitMicros: 0 });
  const ml = new MlService({ engine, db, logger });
  const risk = new RiskService({
    ml,
    denyList: await loadDenyList("models/data/risk"),
    db,
    network: "mainnet",
    feeRate: () => Promise.resolve(null),
  });
  return { ml, risk, engine };
}

dbTest(
  "POST /v1/psbt/decode carries the risk score, its reasons and deny-list hits",
  async (db) => {
    const { ml, risk, engine } = await services(db);
    await using t = buildTestApp(db, MAINNET, { ml, risk });
    const { secret } = await t.key("acme", ["psbt"]);
    const { psbt } = keyPsbt(root.publicExtendedKey, ["p2wpkh", "p2tr"], {
      payTo: "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX",
    });
    const res = await t.call("/v1/psbt/decode", { key: secret, method: "POST", body: { psbt } });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.risk.modelVersion, models.at(-1)!.card.version);
    assert.ok(body.risk.score > 0 && body.risk.score <= 1);
    assert.ok(Array.isArray(body.risk.reasons));
    assert.deepEqual(body.risk.denyListHits[0].list, "ofac");
    await engine.close();
  },
);

dbTest("/v1/risk/policy: sign scope reads, admin sets, bad values are 400 problems", async (db) => {
  const { ml, risk, engine } = await services(db);
  await using t = buildTestApp(db, MAINNET, { ml, risk });
  const signer = await t.key("acme", ["sign"]);
  const admin = await t.key("acme", ["admin"]);
  const initial = await t.call("/v1/risk/policy", { key: signer.secret });
  assert.deepEqual(await initial.json(), { refuseDenyListed: true, maxScore: null });
  await assertProblem(
    await t.call("/v1/risk/policy", {
      key: signer.secret,
      method: "PUT",
      body: { refuseDenyListed: true, maxScore: 0.7 },
    }),
    403,
  );
  for (
    const bad of [{ refuseDenyListed: true, maxScore: 1.5 }, {
      refuseDenyListed: "yes",
      maxScore: null,
    }, {}]
  ) {
    const r = await t.call("/v1/risk/policy", { key: admin.secret, method: "PUT", body: bad });
    await assertProblem(r, 400);
  }
  const ok = await t.call("/v1/risk/policy", {
    key: admin.secret,
    method: "PUT",
    body: { refuseDenyListed: true, maxScore: 0.7 },
  });
  assert.equal(ok.status, 200);
  const after = await t.call("/v1/risk/policy", { key: signer.secret });
  assert.deepEqual(await after.json(), { refuseDenyListed: true, maxScore: 0.7 });
  await engine.close();
});
