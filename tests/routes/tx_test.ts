import assert from "node:assert/strict";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { mainnetTxs } from "../_helpers/mainnet_txs.ts";

const [tx1] = mainnetTxs(1) as [{ txid: string; hex: string }];

dbTest("POST /v1/tx/broadcast sends once: 201, then 200 with the same record", async (db) => {
  await using t = buildTestApp(db);
  const key = await t.key("acme", ["psbt", "read"]);
  const first = await t.call("/v1/tx/broadcast", {
    key: key.secret,
    method: "POST",
    body: { hex: tx1.hex },
  });
  assert.equal(first.status, 201);
  const body = await first.json();
  assert.equal(body.txid, tx1.txid);
  assert.equal(body.state, "mempool");
  const again = await t.call("/v1/tx/broadcast", {
    key: key.secret,
    method: "POST",
    body: { hex: tx1.hex },
  });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).txid, tx1.txid);
  assert.deepEqual(t.chain.broadcasts, [tx1.txid]);
});

dbTest(
  "POST /v1/tx/broadcast answers 202 'unknown' when the backend's answer is lost",
  async (db) => {
    await using t = buildTestApp(db);
    const key = await t.key("acme", ["psbt"]);
    t.chain.scripts.push({ kind: "timeout", delivered: false });
    t.chain.lookupFails = true;
    const res = await t.call("/v1/tx/broadcast", {
      key: key.secret,
      method: "POST",
      body: { hex: tx1.hex },
    });
    assert.equal(res.status, 202);
    assert.equal((await res.json()).state, "unknown");
  },
);

dbTest("POST /v1/tx/broadcast: refused is 422 with the txid, unreachable is 503", async (db) => {
  await using t = buildTestApp(db);
  const key = await t.key("acme", ["psbt"]);
  t.chain.scripts.push({ kind: "unavailable" });
  await assertProblem(
    await t.call("/v1/tx/broadcast", { key: key.secret, method: "POST", body: { hex: tx1.hex } }),
    503,
    "unavailable",
  );
  t.chain.scripts.push({ kind: "reject", reason: "min relay fee not met" });
  const body = await assertProblem(
    await t.call("/v1/tx/broadcast", { key: key.secret, method: "POST", body: { hex: tx1.hex } }),
    422,
    "unprocessable",
  );
  assert.equal(body.txid, tx1.txid);
  await assertProblem(
    await t.call("/v1/tx/broadcast", { key: key.secret, method: "POST", body: { hex: "abcd" } }),
    422,
  );
  await assertProblem(
    await t.call("/v1/tx/broadcast", { key: key.secret, method: "POST", body: { hex: "xyz" } }),
    400,
    "validation-failed",
  );
});

dbTest("GET /v1/tx/{txid} shows status and history; other tenants get 404", async (db) => {
  await using t = buildTestApp(db);
  const key = await t.key("acme", ["psbt", "read"]);
  const other = await t.key("other", ["read"]);
  await (await t.call("/v1/tx/broadcast", {
    key: key.secret,
    method: "POST",
    body: { hex: tx1.hex },
  })).body?.cancel();
  const res = await t.call(`/v1/tx/${tx1.txid.toUpperCase()}`, { key: key.secret });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.state, "mempool");
  assert.deepEqual(body.history.map((h: { state: string }) => h.state), [
    "broadcasting",
    "mempool",
  ]);
  await assertProblem(await t.call(`/v1/tx/${tx1.txid}`, { key: other.secret }), 404, "not-found");
  await assertProblem(await t.call("/v1/tx/nothex", { key: key.secret }), 400);
});

dbTest("broadcast needs scope psbt; reading needs scope read", async (db) => {
  await using t = buildTestApp(db);
  const reader = await t.key("acme", ["read"]);
  await assertProblem(
    await t.call("/v1/tx/broadcast", {
      key: reader.secret,
      method: "POST",
      body: { hex: tx1.hex },
    }),
    403,
  );
});
