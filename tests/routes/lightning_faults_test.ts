/**
 * Node faults through `/v1/ln`, with the real LND adapter over the one HTTP
 * client and the pinned transport, against the LND test peer: a node that is
 * starting (503), that hangs past the deadline, that resets connections, or
 * whose payment stream breaks mid-payment, or that restarts. Reads fail as clean 5xx problems
 * (never a 500), payments are pending (never failed) and never sent twice,
 * and the macaroon never reaches an answer or a log line.
 */
import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp, type TestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { encodeBolt11 } from "../_helpers/bolt11_encode.ts";
import { createLnNode, type LnNode, newPreimage } from "../_peers/ln_node_state.ts";
import {
  createLndTlsCertificate,
  type LndHarness,
  lndHarness,
  startLndPeer,
} from "../_peers/lnd_peer.ts";
import { startLightningSync } from "../../src/layer2/lightning/lightning_sync.ts";
import { createLogger } from "../../src/obs/logger.ts";

const ENV = { BITCOIN_NETWORK: "regtest", LIGHTNING_TIMEOUT_MS: "500" };
/**
 * The node client's deadline: long enough that a loaded machine does not turn
 * an answered call into a timeout; only the "hang" case waits it out.
 * (`LIGHTNING_TIMEOUT_MS` above only sizes the service's payment lease.)
 */
const CLIENT = { timeoutMs: 3_000, retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } };

interface Rig extends AsyncDisposable {
  node: LnNode;
  h: LndHarness;
  t: TestApp;
  key: string;
  answers: string[];
  pay(bolt11: string, idem: string): Promise<Response>;
  get(path: string): Promise<Response>;
  assertClean(): void;
}

async function rig(db: Parameters<typeof buildTestApp>[0]): Promise<Rig> {
  const node = createLnNode("regtest");
  const h = await lndHarness(node, {
    client: CLIENT,
  });
  const t = buildTestApp(db, ENV, { lightning: h.backend });
  const { secret } = await t.key("acme", ["lightning:read", "lightning:write"]);
  const answers: string[] = [];
  const record = async (res: Response) => {
    answers.push(`${res.status} ${await res.clone().text()}`);
    return res;
  };
  return {
    node,
    h,
    t,
    key: secret,
    answers,
    pay: async (bolt11, idem) =>
      await record(
        await t.call("/v1/ln/payments", {
          key: secret,
          method: "POST",
          body: { invoice: bolt11, timeoutSeconds: 1 },
          headers: { "Idempotency-Key": idem },
        }),
      ),
    get: async (path) => await record(await t.call(path, { key: secret })),
    assertClean() {
      for (const a of answers) {
        assert.ok(!a.startsWith("500"), a);
        assert.ok(!a.includes(h.peer.macaroonHex), `answer leaks the macaroon: ${a}`);
      }
      for (const line of t.logs) assert.ok(!line.includes(h.peer.macaroonHex), line);
      assert.deepEqual(h.peer.violations, []);
    },
    async [Symbol.asyncDispose]() {
      await t[Symbol.asyncDispose]();
      await h[Symbol.asyncDispose]();
    },
  };
}

function foreign(node: LnNode, amountMsat: bigint) {
  const { preimage, paymentHash } = newPreimage();
  const bolt11 = encodeBolt11({
    network: node.state.info.network,
    amountMsat,
    paymentHash,
    paymentSecret: hex.encode(crypto.getRandomValues(new Uint8Array(32))),
    description: "fault",
    nodeKey: crypto.getRandomValues(new Uint8Array(32)),
  });
  return { bolt11, paymentHash, preimage };
}

dbTest(
  "a starting node (503), a hanging one and a resetting one are 5xx problems on reads",
  async (db) => {
    await using r = await rig(db);
    for (const [mode, status] of [["unavailable", 502], ["hang", 504], ["reset", 504]] as const) {
      r.h.peer.setFault(mode);
      const res = await r.get("/v1/ln/node");
      assert.ok([status, 502, 503, 504].includes(res.status), `${mode}: ${res.status}`);
      await assertProblem(res, res.status);
    }
    r.h.peer.setFault("ok");
    // Decoding needs no node.
    const inv = foreign(r.node, 1_000n);
    const decoded = await r.t.call("/v1/ln/invoices/decode", {
      key: r.key,
      method: "POST",
      body: { invoice: inv.bolt11 },
    });
    assert.equal(decoded.status, 200);
    r.assertClean();
  },
);

dbTest("a payment whose answer never comes is 202 pending, then the node's outcome", async (db) => {
  await using r = await rig(db);
  const inv = foreign(r.node, 5_000n);
  r.node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
  const res = await r.pay(inv.bolt11, "hang-1");
  assert.equal(res.status, 202);
  assert.equal((await res.json()).state, "pending");
  r.node.resolvePayment(inv.paymentHash, {
    outcome: "succeed",
    preimage: inv.preimage,
    feeMsat: 2n,
  });
  const got = await (await r.get(`/v1/ln/payments/${inv.paymentHash}`)).json();
  assert.equal(got.state, "succeeded");
  assert.equal(got.preimage, inv.preimage);
  // A second request with another key is answered from the ledger.
  const again = await r.pay(inv.bolt11, "hang-2");
  assert.equal(again.status, 200);
  assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 1);
  r.assertClean();
});

dbTest(
  "a payment stream that breaks mid-payment leaves it pending, never failed or resent",
  async (db) => {
    await using r = await rig(db);
    const inv = foreign(r.node, 7_000n);
    r.node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
    r.h.peer.setFault((req) => req.path.startsWith("/v2/router/send") ? "dropStreams" : "ok");
    const res = await r.pay(inv.bolt11, "drop-1");
    assert.equal(res.status, 202, await res.clone().text());
    assert.equal((await res.json()).state, "pending");
    r.h.peer.setFault("ok");
    const retry = await r.pay(inv.bolt11, "drop-2");
    assert.equal(retry.status, 202, "the lease holds: the node is not asked to pay again");
    await retry.body?.cancel();
    r.node.resolvePayment(inv.paymentHash, { outcome: "fail", reason: "no_route" });
    const got = await (await r.get(`/v1/ln/payments/${inv.paymentHash}`)).json();
    assert.equal(got.state, "failed");
    assert.equal(r.node.state.payAttempts.get(inv.paymentHash), 1);
    r.assertClean();
  },
);

dbTest(
  "a node that refuses the call before paying (503) leaves the payment pending, then not_sent",
  async (db) => {
    await using r = await rig(db);
    const inv = foreign(r.node, 3_000n);
    r.node.state.outcomes.set(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 1n,
    });
    r.h.peer.setFault((req) => req.path.startsWith("/v2/router/send") ? "unavailable" : "ok");
    const res = await r.pay(inv.bolt11, "refused-1");
    assert.equal(res.status, 202);
    await res.body?.cancel();
    assert.equal(r.node.state.payAttempts.get(inv.paymentHash) ?? 0, 0);
    r.h.peer.setFault("ok");
    // Once the call's lease is over, the node is asked: it never saw the hash.
    const got = await (await r.get(`/v1/ln/payments/${inv.paymentHash}`)).json();
    assert.equal(
      got.state,
      "pending",
      "looked up: unknown to the node, still the edge's to decide",
    );
    // After the call's lease (timeout 1 s + deadline 0.5 s) the reconciler settles it: never sent.
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    await r.t.lightning.reconcile();
    const after = await (await r.get(`/v1/ln/payments/${inv.paymentHash}`)).json();
    assert.equal(after.state, "failed");
    assert.equal(after.failureReason, "not_sent");
    assert.equal(r.node.state.payAttempts.get(inv.paymentHash) ?? 0, 0);
    r.assertClean();
  },
);

dbTest(
  "a node restart: reads fail while it is down, then payments and invoices catch up",
  async (db) => {
    const node = createLnNode("regtest");
    const certificate = await createLndTlsCertificate();
    const macaroonHex = hex.encode(crypto.getRandomValues(new Uint8Array(48)));
    const h = await lndHarness(node, {
      peer: { certificate, macaroonHex },
      client: CLIENT,
    });
    await using t = buildTestApp(db, ENV, { lightning: h.backend });
    const settled: string[] = [];
    t.events.subscribe(
      "ln.invoice.settled",
      (e) => settled.push(String((e.data as { paymentHash: string }).paymentHash)),
    );
    const sync = startLightningSync({
      service: t.lightning,
      backend: h.backend,
      intervalMs: 200,
      logger: createLogger({ level: "error", sink: () => {} }),
    });
    let restarted: Awaited<ReturnType<typeof startLndPeer>> | undefined;
    try {
      const { secret } = await t.key("acme", ["lightning:read", "lightning:write"]);
      const created = await t.call("/v1/ln/invoices", {
        key: secret,
        method: "POST",
        body: { amountMsat: "8000", description: "across a restart" },
      });
      const invoice = await created.json();
      const inv = foreign(node, 4_000n);
      node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
      const paid = await t.call("/v1/ln/payments", {
        key: secret,
        method: "POST",
        body: { invoice: inv.bolt11, timeoutSeconds: 1 },
        headers: { "Idempotency-Key": "restart-1" },
      });
      assert.equal(paid.status, 202);
      await paid.body?.cancel();

      const port = Number(new URL(h.peer.url).port);
      await h.peer.close();
      const down = await t.call("/v1/ln/node", { key: secret });
      assert.ok(down.status >= 502 && down.status <= 504, String(down.status));
      await assertProblem(down, down.status);

      // While it was down, the network settled our invoice and finished the payment.
      node.resolvePayment(inv.paymentHash, {
        outcome: "succeed",
        preimage: inv.preimage,
        feeMsat: 1n,
      });
      node.settleInvoice(invoice.paymentHash);
      restarted = await startLndPeer(node, { certificate, macaroonHex, port });

      const deadline = Date.now() + 20_000;
      let payment: Record<string, unknown> = {};
      while (Date.now() < deadline) {
        payment = await (await t.call(`/v1/ln/payments/${inv.paymentHash}`, { key: secret }))
          .json();
        if (payment.state === "succeeded" && settled.includes(invoice.paymentHash)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(payment.state, "succeeded");
      assert.ok(
        settled.includes(invoice.paymentHash),
        "the settlement reached the ledger and events",
      );
      assert.equal(node.state.payAttempts.get(inv.paymentHash), 1);
      assert.deepEqual(restarted.violations, []);
    } finally {
      await sync.stop();
      await restarted?.close();
      await h[Symbol.asyncDispose]();
    }
  },
);
