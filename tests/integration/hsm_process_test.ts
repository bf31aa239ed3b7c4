/**
 * The real HSM process over real mTLS, driven through the edge's routes:
 * refused certificates, signing end to end into a valid transaction, SIGKILL
 * mid-request with one signature after the retry, velocity across restarts,
 * and secrets that never show up in logs, audit rows or answers.
 */
import assert from "node:assert/strict";
import { base64, hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { dbTest } from "../_helpers/db.ts";

// The subject is the HSM and the mTLS link, not the edge's database: one kind is enough.
const PGLITE_ONLY = { kinds: ["pglite"] } as const;
import { buildTestApp, type TestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { makeTestPki } from "../_helpers/pki.ts";
import { edgeSigner, type HsmProcess, startHsm } from "../_helpers/hsm.ts";
import { keyPsbt } from "../_helpers/hsm_psbt.ts";
import { openPgliteDb } from "../../src/db/mod.ts";
import { SoftwareKeyStore } from "../../src/hsm_server/signing/sealed_key_store.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";
import { PSBT_TX_OPTS } from "../../src/bitcoin/psbt_parse.ts";
import { UnavailableError, UpstreamError, UpstreamTimeoutError } from "../../src/errors/mod.ts";

const POLICY = {
  networks: ["mainnet"],
  maxAmountPerTxSats: "200000",
  maxAmountPer24hSats: "150000",
  maxFeeSats: "10000",
  maxFeeRateSatPerVb: 100,
};

/** Rows of the stopped HSM's database (PGlite is single-process: stop it first). */
async function hsmRows<T>(hsm: HsmProcess, sql: string): Promise<T[]> {
  const db = await openPgliteDb({ dataDir: `${hsm.dataDir}/pglite` });
  try {
    return await db.query<T>(sql);
  } finally {
    await db.close();
  }
}

async function adminSetup(t: TestApp) {
  const admin = (await t.key("acme", ["admin", "sign", "psbt", "read"])).secret;
  const created = await t.call("/v1/keys", {
    key: admin,
    method: "POST",
    body: { label: "treasury", kind: "bip32" },
  });
  assert.equal(created.status, 201, await created.clone().text());
  const key = await created.json();
  const policy = await t.call(`/v1/keys/${key.id}/policy`, {
    key: admin,
    method: "PUT",
    body: { policy: POLICY },
  });
  assert.equal(policy.status, 200, await policy.clone().text());
  return { admin, key, xpub: key.versions[0].xpub as string };
}

const sign = (t: TestApp, key: string, body: unknown, idem: string) =>
  t.call("/v1/sign/psbt", { key, method: "POST", body, headers: { "Idempotency-Key": idem } });

Deno.test({
  name: "mTLS: wrong CA, expired, not yet valid, no certificate, unlisted subject are refused",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await using pki = await makeTestPki();
    await using hsm = await startHsm(pki);
    const refusedAtHandshake = [pki.wrongCaClient, pki.expiredClient, pki.notYetValidClient, null];
    for (const client of refusedAtHandshake) {
      using remote = edgeSigner(pki, hsm.url, client, {
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      });
      await assert.rejects(
        () => remote.signer.listKeys("shop"),
        // TLS 1.3 checks the client certificate after the client's first flight, so
        // the refusal can surface as a broken connection rather than a failed connect.
        (e: unknown) =>
          e instanceof UnavailableError || e instanceof UpstreamError ||
          e instanceof UpstreamTimeoutError,
      );
    }
    using intruder = edgeSigner(pki, hsm.url, pki.intruderClient);
    await assert.rejects(() => intruder.signer.listKeys("shop"), /does not accept/);
    using good = edgeSigner(pki, hsm.url);
    assert.deepEqual(await good.signer.listKeys("shop"), []);
    await hsm.kill("SIGTERM");
    const signed = await hsmRows<{ n: bigint }>(
      hsm,
      "SELECT count(*) AS n FROM audit_log WHERE action LIKE 'sign.%'",
    );
    assert.equal(signed[0]!.n, 0n);
    assert.ok(hsm.logs.some((l) => l.includes("certificate subject not on the allowlist")));
  },
});

dbTest("edge → HSM: sign through the routes, verify independently, finalize", async (db) => {
  await using pki = await makeTestPki();
  await using hsm = await startHsm(pki);
  using remote = edgeSigner(pki, hsm.url);
  await using t = buildTestApp(db, {}, { hsm: remote.signer });
  const { admin, key, xpub } = await adminSetup(t);
  assert.equal(JSON.stringify(key).includes("xprv"), false);

  const p = keyPsbt(xpub, ["p2wpkh", "p2sh-p2wpkh", "p2pkh", "p2tr"], { coinSats: 20_000n });
  const res = await sign(t, admin, { keyId: key.id, psbt: p.psbt }, "e2e-sign-000001");
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json();
  assert.equal(body.signatures.length, 4);
  const tx = Transaction.fromPSBT(base64.decode(body.psbt), PSBT_TX_OPTS);
  for (let i = 0; i < 4; i++) assert.equal(verifyInputSignatures(tx, i).status, "valid");

  const fin = await t.call("/v1/psbt/finalize", {
    key: admin,
    method: "POST",
    body: { psbt: body.psbt },
  });
  assert.equal(fin.status, 200, await fin.clone().text());
  const final = (await fin.json()).transaction;
  assert.equal(final.feeSats, String(p.feeSats));
  Transaction.fromRaw(hex.decode(final.hex), { allowUnknownOutputs: true });

  // The same Idempotency-Key replays; a policy breach is a 422 naming the rule.
  const replay = await sign(t, admin, { keyId: key.id, psbt: p.psbt }, "e2e-sign-000001");
  assert.equal(replay.status, 200);
  assert.deepEqual((await replay.json()).psbt, body.psbt);
  const big = keyPsbt(xpub, ["p2wpkh", "p2wpkh", "p2wpkh"], { paySats: 250_000n });
  const denied = await assertProblem(
    await sign(t, admin, { keyId: key.id, psbt: big.psbt }, "e2e-sign-000002"),
    422,
    "policy-violation",
  );
  assert.match(String(denied.detail), /max-amount-per-tx/);
  await assertProblem(
    await t.call("/v1/sign/psbt", {
      key: admin,
      method: "POST",
      body: { keyId: key.id, psbt: p.psbt },
    }),
    400,
  );

  await hsm.kill("SIGTERM");
  const rows = await hsmRows<{ action: string; outcome: string }>(
    hsm,
    "SELECT action, outcome FROM audit_log WHERE action LIKE 'sign.%' ORDER BY seq",
  );
  assert.deepEqual(rows.map((r) => `${r.action}:${r.outcome}`), [
    "sign.psbt:success",
    "sign.psbt:denied",
  ]);
}, PGLITE_ONLY);

dbTest("SIGKILL mid-request: the edge answers 5xx, the retry gets one signature", async (db) => {
  await using pki = await makeTestPki();
  await using hsm = await startHsm(pki);
  using remote = edgeSigner(pki, hsm.url, pki.client, {
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  await using t = buildTestApp(db, {}, { hsm: remote.signer });
  const { admin, key, xpub } = await adminSetup(t);
  const p = keyPsbt(xpub, ["p2wpkh", "p2wpkh"]);
  const body = { keyId: key.id, psbt: p.psbt };

  const inFlight = sign(t, admin, body, "kill-sign-000001");
  await new Promise((r) => setTimeout(r, 15));
  await hsm.kill("SIGKILL");
  const first = await inFlight;
  if (first.status !== 200) {
    assert.ok([502, 503, 504].includes(first.status), `status ${first.status}`);
    await first.body?.cancel();
  } else await first.body?.cancel();

  await hsm.restart();
  const retry = await sign(t, admin, body, "kill-sign-000001");
  assert.equal(retry.status, 200, await retry.clone().text());
  const again = await sign(t, admin, body, "kill-sign-000001");
  assert.equal(again.status, 200);
  await hsm.kill("SIGTERM");
  const [n] = await hsmRows<{ n: bigint }>(
    hsm,
    "SELECT count(*) AS n FROM audit_log WHERE action = 'sign.psbt' AND outcome = 'success'",
  );
  assert.equal(n!.n, 1n, "one signature, not two");
}, PGLITE_ONLY);

dbTest("velocity limits hold across an HSM restart", async (db) => {
  await using pki = await makeTestPki();
  await using hsm = await startHsm(pki);
  using remote = edgeSigner(pki, hsm.url);
  await using t = buildTestApp(db, {}, { hsm: remote.signer });
  const { admin, key, xpub } = await adminSetup(t);
  const spend = () => keyPsbt(xpub, ["p2wpkh"], { coinSats: 100_000n, paySats: 60_000n });
  assert.equal(
    (await sign(t, admin, { keyId: key.id, psbt: spend().psbt }, "vel-000001")).status,
    200,
  );
  await hsm.kill("SIGTERM");
  await hsm.restart();
  // 62,000 (with fee) already counted; another 62,000 would pass the per-tx
  // limit but cross the 150,000 a day.
  assert.equal(
    (await sign(t, admin, { keyId: key.id, psbt: spend().psbt }, "vel-000002")).status,
    200,
  );
  const denied = await assertProblem(
    await sign(t, admin, { keyId: key.id, psbt: spend().psbt }, "vel-000003"),
    422,
    "policy-violation",
  );
  assert.match(String(denied.detail), /max-amount-per-24h/);
}, PGLITE_ONLY);

dbTest("secrets: key material and the KEK never reach logs, audit rows or answers", async (db) => {
  await using pki = await makeTestPki();
  await using hsm = await startHsm(pki);
  using remote = edgeSigner(pki, hsm.url);
  await using t = buildTestApp(db, {}, { hsm: remote.signer });
  const { admin, key, xpub } = await adminSetup(t);
  const answers: string[] = [];
  const p = keyPsbt(xpub, ["p2wpkh"]);
  answers.push(await (await sign(t, admin, { keyId: key.id, psbt: p.psbt }, "canary-01")).text());
  answers.push(
    await (await sign(t, admin, { keyId: "hk_" + "0".repeat(24), psbt: p.psbt }, "canary-02"))
      .text(),
  );
  answers.push(await (await t.call(`/v1/keys/${key.id}`, { key: admin })).text());
  await hsm.kill("SIGTERM");

  const [row] = await hsmRows<{ sealed: Uint8Array }>(
    hsm,
    `SELECT sealed FROM hsm_key_versions WHERE key_id = '${key.id}' AND version = 1`,
  );
  const kek = (await Deno.readTextFile(hsm.kekFile)).trim();
  const material = await new SoftwareKeyStore(hex.decode(kek)).unseal(row!.sealed, {
    keyId: key.id,
    version: 1,
  });
  const privateKey = material.slice(32);
  const audit = await hsmRows<Record<string, unknown>>(hsm, "SELECT * FROM audit_log");
  const haystack = [
    ...hsm.logs,
    ...t.logs,
    ...answers,
    JSON.stringify(audit, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
  ].join("\n");
  for (
    const secret of [
      kek,
      hex.encode(material),
      hex.encode(privateKey),
      base64.encode(privateKey),
      base64.encode(material),
    ]
  ) {
    assert.equal(haystack.includes(secret), false, "a secret leaked");
  }
}, PGLITE_ONLY);
