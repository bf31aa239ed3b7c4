/**
 * `/v1/ln` over HTTP: scopes, Idempotency-Key on payments, problem+json for
 * bad input (never a 5xx), decoding without a node, 503 without a node, and
 * the status codes of the three payment states.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { encodeBolt11 } from "../_helpers/bolt11_encode.ts";
import { createLnNode, newPreimage } from "../_peers/ln_node_state.ts";
import { rememberInvoice, ScriptedLightningBackend } from "../_fakes/lightning_backend.ts";

const REGTEST = { BITCOIN_NETWORK: "regtest" };

function invoiceFor(amountMsat: bigint | null, network: "regtest" | "mainnet" = "regtest") {
  const { preimage, paymentHash } = newPreimage();
  const bolt11 = encodeBolt11({
    network,
    amountMsat,
    paymentHash,
    paymentSecret: "33".repeat(32),
    description: "lunch",
    nodeKey: crypto.getRandomValues(new Uint8Array(32)),
  });
  rememberInvoice(bolt11, paymentHash, amountMsat);
  return { bolt11, paymentHash, preimage };
}

dbTest(
  "POST /v1/ln/invoices/decode works without a node and flags network and expiry",
  async (db) => {
    await using t = buildTestApp(db, REGTEST);
    const { secret } = await t.key("acme", ["lightning:read"]);
    const inv = invoiceFor(123_000n, "mainnet");
    const res = await t.call("/v1/ln/invoices/decode", {
      key: secret,
      method: "POST",
      body: { invoice: `lightning:${inv.bolt11.toUpperCase()}` },
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.paymentHash, inv.paymentHash);
    assert.equal(body.amountMsat, "123000");
    assert.equal(body.network, "mainnet");
    assert.equal(body.networkMatches, false);
    assert.equal(body.expired, false);
    // A changed last character breaks the checksum (pick one that differs from the original).
    const swapped = inv.bolt11.slice(0, -1) + (inv.bolt11.endsWith("x") ? "y" : "x");
    for (const bad of ["lnbc1qqqq", swapped, 42, ""]) {
      const r = await t.call("/v1/ln/invoices/decode", {
        key: secret,
        method: "POST",
        body: { invoice: bad },
      });
      assert.ok(r.status === 400 || r.status === 422, `${String(bad)}: ${r.status}`);
      await assertProblem(r, r.status);
    }
  },
);

dbTest("node routes answer 503 without a node; scopes are enforced", async (db) => {
  await using t = buildTestApp(db, REGTEST);
  const reader = await t.key("acme", ["lightning:read"]);
  const writer = await t.key("acme", ["lightning:write"]);
  await assertProblem(await t.call("/v1/ln/node", { key: reader.secret }), 503, "unavailable");
  await assertProblem(await t.call("/v1/ln/balances", { key: reader.secret }), 503);
  await assertProblem(await t.call("/v1/ln/node", { key: writer.secret }), 403);
  const inv = invoiceFor(1_000n);
  await assertProblem(
    await t.call("/v1/ln/payments", {
      key: reader.secret,
      method: "POST",
      body: { invoice: inv.bolt11 },
      headers: { "Idempotency-Key": "pay-1" },
    }),
    403,
  );
});

dbTest(
  "POST /v1/ln/payments: Idempotency-Key required; 201 paid, then 200; replays",
  async (db) => {
    const node = createLnNode("regtest");
    await using t = buildTestApp(db, REGTEST, { lightning: new ScriptedLightningBackend(node) });
    const { secret } = await t.key("acme", ["lightning:read", "lightning:write"]);
    const inv = invoiceFor(21_000n);
    node.state.outcomes.set(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 3n,
    });
    const pay = (key: string | undefined) =>
      t.call("/v1/ln/payments", {
        key: secret,
        method: "POST",
        body: { invoice: inv.bolt11, maxFeePpm: 1000 },
        headers: key === undefined ? {} : { "Idempotency-Key": key },
      });
    await assertProblem(await pay(undefined), 400);
    const first = await pay("pay-a");
    assert.equal(first.status, 201);
    const body = await first.json();
    assert.equal(body.state, "succeeded");
    assert.equal(body.preimage, inv.preimage);
    assert.equal(body.feeMsat, "3");
    const replay = await pay("pay-a");
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get("Idempotency-Replayed"), "true");
    const other = await pay("pay-b");
    assert.equal(other.status, 200, "the hash is paid already: answered, not paid again");
    assert.equal(node.state.payAttempts.get(inv.paymentHash), 1);
    const got = await t.call(`/v1/ln/payments/${inv.paymentHash}`, { key: secret });
    assert.equal((await got.json()).state, "succeeded");
    const list = await (await t.call("/v1/ln/payments?limit=5", { key: secret })).json();
    assert.equal(list.payments.length, 1);
    await assertProblem(await t.call(`/v1/ln/payments/${"0".repeat(64)}`, { key: secret }), 404);
  },
);

dbTest(
  "POST /v1/ln/payments: pending is 202; bad bodies and invoices are 4xx problems",
  async (db) => {
    const node = createLnNode("regtest");
    const backend = new ScriptedLightningBackend(node);
    await using t = buildTestApp(db, REGTEST, { lightning: backend });
    const { secret } = await t.key("acme", ["lightning:write"]);
    const inv = invoiceFor(5_000n);
    backend.payFaults.push("lost-answer");
    node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
    const res = await t.call("/v1/ln/payments", {
      key: secret,
      method: "POST",
      body: { invoice: inv.bolt11 },
      headers: { "Idempotency-Key": "p-202" },
    });
    assert.equal(res.status, 202);
    assert.equal((await res.json()).state, "pending");
    const bodies: unknown[] = [
      {},
      { invoice: "bitcoin:bc1q" },
      { invoice: inv.bolt11, maxFeeMsat: "1", maxFeePpm: 1 },
      { invoice: inv.bolt11, amountMsat: "-1" },
      { invoice: inv.bolt11, extra: true },
      { invoice: invoiceFor(5_000n, "mainnet").bolt11 },
      { invoice: invoiceFor(null).bolt11 },
    ];
    for (const [i, body] of bodies.entries()) {
      const r = await t.call("/v1/ln/payments", {
        key: secret,
        method: "POST",
        body,
        headers: { "Idempotency-Key": `bad-${i}` },
      });
      assert.ok(r.status === 400 || r.status === 422, `${JSON.stringify(body)}: ${r.status}`);
      await assertProblem(r, r.status);
    }
  },
);

dbTest("invoices and limits over HTTP", async (db) => {
  const node = createLnNode("regtest");
  await using t = buildTestApp(db, REGTEST, { lightning: new ScriptedLightningBackend(node) });
  const user = await t.key("acme", ["lightning:read", "lightning:write"]);
  const admin = await t.key("acme", ["admin", "lightning:read"]);
  const created = await t.call("/v1/ln/invoices", {
    key: user.secret,
    method: "POST",
    body: { amountMsat: "42000", description: "tea", expirySeconds: 900 },
  });
  assert.equal(created.status, 201);
  const inv = await created.json();
  assert.equal(inv.state, "open");
  assert.match(inv.bolt11, /^lnbcrt/);
  node.settleInvoice(inv.paymentHash);
  const got = await (await t.call(`/v1/ln/invoices/${inv.paymentHash}`, { key: user.secret }))
    .json();
  assert.equal(got.state, "settled");
  assert.equal(got.amountReceivedMsat, "42000");
  await assertProblem(
    await t.call("/v1/ln/invoices", {
      key: user.secret,
      method: "POST",
      body: { amountMsat: "1", description: "a", descriptionHash: "00".repeat(32) },
    }),
    400,
  );
  const limits = await (await t.call("/v1/ln/limits", { key: user.secret })).json();
  assert.deepEqual(limits, { maxPaymentSat: "100000", maxDailySat: "1000000" });
  await assertProblem(
    await t.call("/v1/ln/limits", {
      key: user.secret,
      method: "PUT",
      body: { maxPaymentSat: "1", maxDailySat: "1" },
    }),
    403,
  );
  const set = await t.call("/v1/ln/limits", {
    key: admin.secret,
    method: "PUT",
    body: { maxPaymentSat: "5", maxDailySat: "50" },
  });
  assert.equal(set.status, 200);
  const after = await (await t.call("/v1/ln/limits", { key: user.secret })).json();
  assert.deepEqual(after, { maxPaymentSat: "5", maxDailySat: "50" });
  const channels = await (await t.call("/v1/ln/channels", { key: user.secret })).json();
  assert.equal(channels.channels[0].state, "active");
  assert.equal(typeof channels.channels[0].capacitySat, "string");
});

dbTest(
  "POST /v1/ln/invoices/decode under fuzzing answers 200 or a 4xx problem, never 5xx",
  async (db) => {
    await using t = buildTestApp(db, REGTEST);
    const { secret } = await t.key("acme", ["lightning:read"]);
    const valid = invoiceFor(9_000n).bolt11;
    const mutated = fc.tuple(
      fc.nat(valid.length - 1),
      fc.constantFrom(..."qpzry9x8gf2tvdw0s3jn54khce6mua7l1"),
    )
      .map(([i, ch]) => valid.slice(0, i) + ch + valid.slice(i + 1));
    const bodies = fc.oneof(
      fc.record({ invoice: fc.oneof(fc.string(), mutated, fc.constant(valid.slice(0, 40))) }),
      fc.anything(),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await t.call("/v1/ln/invoices/decode", {
          key: secret,
          method: "POST",
          body: JSON.stringify(body) ?? "null",
        });
        await res.body?.cancel();
        return res.status === 200 || (res.status >= 400 && res.status < 500);
      }),
      { numRuns: 300 },
    );
  },
);
