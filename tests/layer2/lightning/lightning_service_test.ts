/**
 * The payment ledger and reconciliation of `LightningService` on a real
 * database, over the simulated node: never paying twice (repeats, concurrent
 * requests, lost answers, crashes), pending instead of failed, limits before
 * the node, forward-only states, events.
 */
import assert from "node:assert/strict";
import { dbTest } from "../../_helpers/db.ts";
import { encodeBolt11 } from "../../_helpers/bolt11_encode.ts";
import { createLogger } from "../../../src/obs/logger.ts";
import { type DomainEvent, EventBus } from "../../../src/events/mod.ts";
import { LightningService } from "../../../src/layer2/lightning/lightning_service.ts";
import { PolicyViolationError, ValidationError } from "../../../src/errors/mod.ts";
import { createLnNode, type LnNode, newPreimage } from "../../_peers/ln_node_state.ts";
import { rememberInvoice, ScriptedLightningBackend } from "../../_fakes/lightning_backend.ts";
import type { Db } from "../../../src/db/db.ts";

const TENANT = "acme";

function rig(db: Db, opts: { maxPaymentSat?: bigint; maxDailySat?: bigint } = {}) {
  const node = createLnNode("regtest");
  const backend = new ScriptedLightningBackend(node);
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", sink: (_l, line) => logs.push(line) });
  const events = new EventBus(logger);
  const seen: DomainEvent[] = [];
  events.subscribe("ln.*", (e) => seen.push(e));
  let skewMs = 0;
  const service = new LightningService({
    db,
    backend,
    events,
    logger,
    network: "regtest",
    defaultLimits: {
      maxPaymentSat: opts.maxPaymentSat ?? 100_000n,
      maxDailySat: opts.maxDailySat ?? 1_000_000n,
    },
    maxPayTimeoutSeconds: 60,
    nodeDeadlineMs: 5_000,
    now: () => new Date(Date.now() + skewMs),
  });
  return {
    node,
    backend,
    service,
    events: seen,
    logs,
    /** Move the service's clock (leases, expiry) forward. */
    advance(ms: number) {
      skewMs += ms;
    },
  };
}

/** An invoice of "someone else" for the node to pay, whose outcome the test decides. */
function payee(node: LnNode, amountMsat: bigint | null, outcome: "succeed" | "fail" | "hang") {
  const { preimage, paymentHash } = newPreimage();
  const other = crypto.getRandomValues(new Uint8Array(32));
  const bolt11 = encodeBolt11({
    network: "regtest",
    amountMsat,
    paymentHash,
    paymentSecret: "11".repeat(32),
    description: "coffee",
    nodeKey: other,
  });
  rememberInvoice(bolt11, paymentHash, amountMsat);
  node.state.outcomes.set(
    paymentHash,
    outcome === "succeed"
      ? { outcome: "succeed", preimage, feeMsat: 12_000n }
      : outcome === "fail"
      ? { outcome: "fail", reason: "no_route" }
      : { outcome: "hang" },
  );
  return { bolt11, paymentHash, preimage };
}

dbTest("pay: the pending row comes first, the node pays once, repeats are answered", async (db) => {
  const r = rig(db);
  const inv = payee(r.node, 50_000_000n, "succeed");
  const first = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
  assert.equal(first.created, true);
  assert.equal(first.record.state, "succeeded");
  assert.equal(first.record.preimage, inv.preimage);
  assert.equal(first.record.feeMsat, 12_000n);
  const again = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
  assert.equal(again.created, false);
  assert.equal(again.record.state, "succeeded");
  // Still answered as paid once the invoice has expired.
  r.advance(2 * 3600 * 1000);
  assert.equal((await r.service.pay(TENANT, { bolt11: inv.bolt11 })).record.state, "succeeded");
  assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 1);
  assert.deepEqual(r.events.map((e) => e.type), ["ln.payment.pending", "ln.payment.succeeded"]);
});

dbTest("pay: concurrent requests for one hash reach the node once", async (db) => {
  const r = rig(db);
  const inv = payee(r.node, 10_000n, "succeed");
  const results = await Promise.all(
    Array.from({ length: 6 }, () => r.service.pay(TENANT, { bolt11: inv.bolt11 })),
  );
  assert.equal(r.backend.payCalls, 1);
  assert.equal(results.filter((x) => x.created).length, 1);
  assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 1);
});

dbTest(
  "pay: a lost answer is pending, never failed; after the lease it is looked up, not paid again",
  async (db) => {
    const r = rig(db);
    const inv = payee(r.node, 20_000n, "succeed");
    r.backend.payFaults.push("lost-answer");
    const first = await r.service.pay(TENANT, { bolt11: inv.bolt11, timeoutSeconds: 30 });
    assert.equal(first.record.state, "pending");
    // While the lease holds (the first call may still be running), a retry does not call the node.
    const during = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
    assert.equal(during.record.state, "pending");
    assert.equal(r.backend.payCalls, 1);
    // The lease runs out (the edge crashed, say): the retry asks the node first.
    r.advance(60_000);
    const after = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
    assert.equal(after.record.state, "succeeded");
    assert.equal(r.backend.payCalls, 1, "looked up, not paid again");
    assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 1);
  },
);

dbTest(
  "pay: a call that never reached the node is found out by the reconciler, then retried",
  async (db) => {
    const r = rig(db);
    const inv = payee(r.node, 20_000n, "succeed");
    r.backend.payFaults.push("unreachable");
    const first = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
    assert.equal(first.record.state, "pending", "unknown outcomes are pending");
    r.advance(120_000);
    const changed = await r.service.reconcile();
    assert.equal(changed.payments, 1);
    const failed = await r.service.payment(TENANT, inv.paymentHash);
    assert.equal(failed.state, "failed");
    assert.equal(failed.failureReason, "not_sent");
    const retried = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
    assert.equal(retried.record.state, "succeeded");
    assert.equal(retried.record.attempts, 2);
    assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 1);
  },
);

dbTest("pay: a failed payment keeps its reason and may be tried again", async (db) => {
  const r = rig(db);
  const inv = payee(r.node, 20_000n, "fail");
  const first = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
  assert.equal(first.record.state, "failed");
  assert.equal(first.record.failureReason, "no_route");
  r.node.state.outcomes.set(inv.paymentHash, {
    outcome: "succeed",
    preimage: inv.preimage,
    feeMsat: 1_000n,
  });
  const second = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
  assert.equal(second.record.state, "succeeded");
  assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 2);
});

dbTest(
  "pay: a hanging payment stays pending until the node settles it; reconcile moves it on",
  async (db) => {
    const r = rig(db);
    const inv = payee(r.node, 30_000n, "hang");
    const first = await r.service.pay(TENANT, { bolt11: inv.bolt11 });
    assert.equal(first.record.state, "pending");
    r.node.resolvePayment(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 5n,
    });
    r.advance(120_000);
    await r.service.reconcile();
    const done = await r.service.payment(TENANT, inv.paymentHash);
    assert.equal(done.state, "succeeded");
    // Forward only: a later "pending" from the node changes nothing.
    assert.equal((await r.service.payment(TENANT, inv.paymentHash)).state, "succeeded");
  },
);

dbTest("pay: a preimage that does not hash to the payment hash is not accepted", async (db) => {
  const r = rig(db);
  const inv = payee(r.node, 30_000n, "hang");
  await r.service.pay(TENANT, { bolt11: inv.bolt11 });
  const p = r.node.state.payments.get(inv.paymentHash)!;
  p.status = "succeeded";
  p.preimage = "00".repeat(32);
  r.advance(120_000);
  await r.service.reconcile();
  assert.equal((await r.service.payment(TENANT, inv.paymentHash)).state, "pending");
  assert.ok(r.logs.some((l) => l.includes("does not match the payment hash")));
});

dbTest("pay: limits per payment and per 24 h are checked before the node is called", async (db) => {
  const r = rig(db, { maxPaymentSat: 1_000n, maxDailySat: 1_500n });
  const big = payee(r.node, 1_000_000n, "succeed");
  await assert.rejects(
    () => r.service.pay(TENANT, { bolt11: big.bolt11 }),
    (e: unknown) => e instanceof PolicyViolationError && /per-payment limit/.test(e.message),
  );
  const a = payee(r.node, 900_000n, "succeed");
  await r.service.pay(TENANT, { bolt11: a.bolt11, maxFee: { msat: 10_000n } });
  const b = payee(r.node, 900_000n, "succeed");
  await assert.rejects(
    () => r.service.pay(TENANT, { bolt11: b.bolt11, maxFee: { msat: 10_000n } }),
    (e: unknown) => e instanceof PolicyViolationError && /last 24 hours/.test(e.message),
  );
  assert.equal(r.backend.payCalls, 1);
  // Another tenant has its own budget.
  await r.service.pay("other", { bolt11: b.bolt11, maxFee: { msat: 10_000n } });
  await r.service.setLimits(TENANT, { maxPaymentSat: 5_000n, maxDailySat: 10_000n });
  const c = payee(r.node, 2_000_000n, "succeed");
  assert.equal((await r.service.pay(TENANT, { bolt11: c.bolt11 })).record.state, "succeeded");
});

dbTest(
  "pay: expired, other-network and amount-mismatched invoices are refused with 422",
  async (db) => {
    const r = rig(db);
    const { paymentHash } = newPreimage();
    const key = crypto.getRandomValues(new Uint8Array(32));
    const expired = encodeBolt11({
      network: "regtest",
      amountMsat: 1_000n,
      paymentHash,
      paymentSecret: "22".repeat(32),
      description: "old",
      timestamp: Math.floor(Date.now() / 1000) - 7200,
      expirySeconds: 60,
      nodeKey: key,
    });
    const mainnet = encodeBolt11({
      network: "mainnet",
      amountMsat: 1_000n,
      paymentHash,
      paymentSecret: "22".repeat(32),
      description: "main",
      nodeKey: key,
    });
    const anyAmount = encodeBolt11({
      network: "regtest",
      amountMsat: null,
      paymentHash,
      paymentSecret: "22".repeat(32),
      description: "tip",
      nodeKey: key,
    });
    const fixed = encodeBolt11({
      network: "regtest",
      amountMsat: 1_000n,
      paymentHash,
      paymentSecret: "22".repeat(32),
      description: "fixed",
      nodeKey: key,
    });
    const cases: [string, Parameters<LightningService["pay"]>[1], string][] = [
      ["expired", { bolt11: expired }, "expired"],
      ["mainnet", { bolt11: mainnet }, "network-mismatch"],
      ["any amount without amount", { bolt11: anyAmount }, "amount-required"],
      ["amount differs", { bolt11: fixed, amountMsat: 5n }, "amount-mismatch"],
    ];
    for (const [label, req, reason] of cases) {
      await assert.rejects(
        () => r.service.pay(TENANT, req),
        (e: unknown) => e instanceof ValidationError && e.extensions.reason === reason,
        label,
      );
    }
    assert.equal(r.backend.payCalls, 0);
  },
);

dbTest("invoices: created on the node, settled through the watch, forward only", async (db) => {
  const r = rig(db);
  const inv = await r.service.createInvoice(TENANT, {
    amountMsat: 25_000n,
    description: "order 7",
    expirySeconds: 600,
  });
  assert.equal(inv.state, "open");
  assert.equal((await r.service.invoices(TENANT, 10)).length, 1);
  await assert.rejects(() => r.service.invoice("other", inv.paymentHash), /not found/i);
  r.node.settleInvoice(inv.paymentHash);
  const settled = await r.service.invoice(TENANT, inv.paymentHash);
  assert.equal(settled.state, "settled");
  assert.equal(settled.amountReceivedMsat, 25_000n);
  assert.equal(await r.service.applyInvoice({ ...settled, state: "open", preimage: null }), null);
  assert.deepEqual(
    r.events.filter((e) => e.type.startsWith("ln.invoice")).map((e) => e.type),
    ["ln.invoice.created", "ln.invoice.settled"],
  );
  assert.ok(r.events.every((e) => e.tenant === TENANT));
});

dbTest(
  "reconcile: channels mirrored with events; one the node no longer lists is closed",
  async (db) => {
    const r = rig(db);
    await r.service.reconcile();
    assert.deepEqual(r.events.map((e) => e.type), ["ln.channel.active"]);
    r.node.state.channels[0]!.localMsat -= 1_000n;
    await r.service.reconcile();
    assert.equal(r.events.length, 2);
    r.node.state.channels.length = 0;
    await r.service.reconcile();
    assert.equal(r.events.at(-1)?.type, "ln.channel.closed");
    assert.equal(r.events.at(-1)?.tenant, "*");
    assert.equal((await r.service.reconcile()).channels, 0);
  },
);
