/**
 * RiskService on the committed tx-risk model and deny lists: PSBT
 * assessment, and the signing gate that can only refuse (the key holder is
 * never asked for what the tenant's risk policy forbids).
 */
import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { dbTest } from "../../_helpers/db.ts";
import { hsmKeyView, keyPsbt } from "../../_helpers/hsm_psbt.ts";
import { dirModelFiles, loadRegistry } from "../../../src/ml/registry.ts";
import { OrtRuntime } from "../../../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../../../src/ml/inference_engine.ts";
import { MlService } from "../../../src/ml/ml_service.ts";
import { RiskService } from "../../../src/ml/risk/risk_service.ts";
import { loadDenyList } from "../../../src/ml/risk/deny_list_file.ts";
import { parsePsbt } from "../../../src/bitcoin/psbt_parse.ts";
import { EdgeSignService } from "../../../src/hsm/sign_service.ts";
import type { HsmCapability, HsmKey, HsmSigner } from "../../../src/hsm/signer.ts";
import { AppError, PolicyViolationError } from "../../../src/errors/mod.ts";
import { createLogger } from "../../../src/obs/logger.ts";
import type { Db } from "../../../src/db/mod.ts";

const OFAC_ADDRESS = "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX"; // first line of the committed OFAC list
const root = HDKey.fromMasterSeed(new Uint8Array(32).fill(9));
const logger = createLogger({ level: "error", sink: () => {} });
const runtime = OrtRuntime.create({ numThreads: 1 });
const models = (await loadRegistry(dirModelFiles("models"))).filter((m) =>
  m.card.name === "tx-risk"
);
const denyList = await loadDenyList("models/data/risk");

async function riskFor(db: Db, withModel = true) {
  const engine = await InferenceEngine.create(runtime, withModel ? models : [], {
    maxBatch: 64,
    maxWaitMicros: 0,
  });
  const ml = new MlService({ engine, db, logger });
  const risk = new RiskService({
    ml,
    denyList,
    db,
    network: "mainnet",
    feeRate: () => Promise.resolve(5),
  });
  return { risk, engine };
}

/** A key holder that records whether it was asked. */
class CountingHolder implements HsmSigner {
  readonly kind = "counting";
  readonly capabilities: ReadonlySet<HsmCapability> = new Set(["ecdsa", "schnorr"]);
  calls = 0;
  constructor(readonly key: HsmKey) {}
  getKey = () => Promise.resolve(this.key);
  signPsbt(): Promise<never> {
    this.calls++;
    return Promise.reject(new Error("holder reached"));
  }
  listKeys = () => Promise.resolve([this.key]);
  createKey = () => Promise.resolve(this.key);
  rotateKey = () => Promise.resolve(this.key);
  setPolicy = () => Promise.resolve(this.key);
  setKeyStatus = () => Promise.resolve(this.key);
  signMessage = () => Promise.reject(new Error("unused"));
  signDigest = () => Promise.reject(new Error("unused"));
}

dbTest(
  "assessPsbt() scores a PSBT with the model's reasons and flags deny-listed outputs",
  async (db) => {
    const { risk, engine } = await riskFor(db);
    const caller = { tenant: "acme", keyId: "k1" };
    const normal = keyPsbt(root.publicExtendedKey, ["p2wpkh"]).psbt;
    const a = await risk.assessPsbt(caller, normal, 5);
    assert.equal(a.modelVersion, models.at(-1)!.card.version);
    assert.ok(a.score !== null && a.score > 0 && a.score <= 1, String(a.score));
    assert.deepEqual(a.denyListHits, []);
    const listed = keyPsbt(root.publicExtendedKey, ["p2wpkh"], { payTo: OFAC_ADDRESS }).psbt;
    const b = await risk.assessPsbt(caller, listed, 5);
    assert.deepEqual(b.denyListHits.map((h) => [h.output, h.address, h.list]), [[
      0,
      OFAC_ADDRESS,
      "ofac",
    ]]);
    // A fat-fingered fee scores as more unusual than the ordinary payment, and says why.
    const absurd = keyPsbt(root.publicExtendedKey, ["p2wpkh"], {
      coinSats: 50_000_000n,
      paySats: 1_000_000n,
      feeSats: 40_000_000n,
    }).psbt;
    const c = await risk.assessPsbt(caller, absurd, 5);
    assert.ok(c.score! > a.score!, `${c.score} > ${a.score}`);
    assert.ok(c.reasons.length > 0);
    await engine.close();
  },
);

dbTest(
  "the signing gate refuses deny-listed payees by default and scores above the tenant's threshold",
  async (db) => {
    const { risk, engine } = await riskFor(db);
    const key = hsmKeyView(root, "hk_" + "ab".repeat(12), "gate");
    const holder = new CountingHolder(key);
    const service = new EdgeSignService({ signer: holder, network: "mainnet", logger, risk });
    const sign = (psbt: string, tenant = "acme") =>
      service.signPsbt(tenant, {
        keyId: key.id,
        psbt,
        idempotencyKey: "gate-000001",
        apiKeyId: "k1",
      });
    const listed = keyPsbt(root.publicExtendedKey, ["p2wpkh"], { payTo: OFAC_ADDRESS }).psbt;
    await assert.rejects(
      () => sign(listed),
      (e: unknown) =>
        e instanceof PolicyViolationError && e.extensions.rule === "deny-list" &&
        /ofac list/.test(e.message),
    );
    assert.equal(holder.calls, 0, "the key holder is never asked");

    const normal = keyPsbt(root.publicExtendedKey, ["p2wpkh"]).psbt;
    await assert.rejects(() => sign(normal), /holder reached/, "no threshold: the HSM decides");
    assert.equal(holder.calls, 1);

    await risk.setPolicy("acme", { refuseDenyListed: true, maxScore: 0.01 });
    await assert.rejects(
      () => sign(normal),
      (e: unknown) =>
        e instanceof PolicyViolationError && e.extensions.rule === "max-score" &&
        Array.isArray(e.extensions.reasons),
    );
    assert.equal(holder.calls, 1);

    // Turning the gate off never signs by itself: the holder (and its policy) still decides.
    await risk.setPolicy("acme", { refuseDenyListed: false, maxScore: null });
    await assert.rejects(() => sign(listed), /holder reached/);
    assert.equal(holder.calls, 2);
    // Other tenants keep the default.
    await assert.rejects(() => sign(listed, "other"), PolicyViolationError);
    assert.equal(holder.calls, 2);
    await engine.close();
  },
);

dbTest("a score threshold without a loaded model refuses to sign (fail closed)", async (db) => {
  const { risk, engine } = await riskFor(db, false);
  await risk.setPolicy("acme", { refuseDenyListed: true, maxScore: 0.9 });
  const tx = parsePsbt(keyPsbt(root.publicExtendedKey, ["p2wpkh"]).psbt, { network: "mainnet" }).tx;
  await assert.rejects(
    () => risk.checkSigning({ tenant: "acme", keyId: "k1" }, tx),
    /no risk model is loaded/,
  );
  assert.equal((await risk.assess({ tenant: "acme", keyId: "k1" }, tx, null)).score, null);
  await engine.close();
});

dbTest(
  "assessPsbt() scores every valid BIP174/370/371 vector or refuses it as a client error, never a crash",
  async (db) => {
    const { risk, engine } = await riskFor(db);
    let scored = 0;
    for (
      const spec of [
        "bip174/bip-0174-vectors.json",
        "bip370/bip-0370-vectors.json",
        "bip371/bip-0371-vectors.json",
      ]
    ) {
      const { cases } = JSON.parse(await Deno.readTextFile(`tests/vectors/${spec}`)) as {
        cases: { description: string; valid: boolean; base64: string }[];
      };
      for (const c of cases.filter((x) => x.valid)) {
        try {
          const a = await risk.assessPsbt({ tenant: "acme", keyId: "k1" }, c.base64, null);
          assert.ok(a.score === null || (a.score > 0 && a.score <= 1), c.description);
          scored++;
        } catch (err) {
          assert.ok(
            err instanceof AppError && err.status < 500,
            `${spec}: ${c.description}: ${err}`,
          );
        }
      }
    }
    assert.ok(scored > 10, `scored ${scored}`);
    await engine.close();
  },
);
