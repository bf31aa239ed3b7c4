/**
 * `LndRestBackend` against the LND test peer, over the pinned TLS transport
 * and the one HTTP client, wired as `main.ts` wires them. The peer checks
 * every request and reply against LND's swagger definitions; each test ends
 * by asserting it saw no violation.
 */
import assert from "node:assert/strict";
import { base64, hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  AppError,
  ConflictError,
  NotFoundError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../../src/errors/app_error.ts";
import type { Invoice, PaymentResult } from "../../../src/layer2/lightning/backend.ts";
import { encodeBolt11 } from "../../_helpers/bolt11_encode.ts";
import { createLnNode, newPreimage } from "../../_peers/ln_node_state.ts";
import { lndHarness, type LndHarnessOptions } from "../../_peers/lnd_peer.ts";

/** A node and the adapter against it; the peer's violations are checked on dispose. */
async function setup(opts: LndHarnessOptions = {}) {
  const node = createLnNode("regtest");
  const lnd = await lndHarness(node, opts);
  return {
    node,
    lnd,
    backend: lnd.backend,
    async [Symbol.asyncDispose]() {
      try {
        assert.deepEqual(lnd.peer.violations, [], "LND contract violations");
      } finally {
        await lnd[Symbol.asyncDispose]();
      }
    },
  };
}

/** A BOLT11 invoice of some other node (what this node pays). */
function externalInvoice(
  opts: { amountMsat?: bigint | null; network?: "regtest" | "mainnet" } = {},
) {
  const { preimage, paymentHash } = newPreimage();
  const bolt11 = encodeBolt11({
    network: opts.network ?? "regtest",
    amountMsat: opts.amountMsat === undefined ? 25_000n : opts.amountMsat,
    paymentHash,
    paymentSecret: hex.encode(crypto.getRandomValues(new Uint8Array(32))),
    description: "coffee",
    nodeKey: secp256k1.utils.randomSecretKey(),
  });
  return { bolt11, preimage, paymentHash };
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${err}`);
    return err;
  }
  assert.fail("expected a rejection");
}

const randomPubkey = () =>
  hex.encode(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true));

Deno.test("LndRestBackend.getInfo() reads the node over the pinned certificate", async () => {
  await using t = await setup();
  const info = await t.backend.getInfo();
  const s = t.node.state.info;
  assert.deepEqual(info, {
    pubkey: s.pubkey,
    alias: s.alias,
    network: "regtest",
    blockHeight: s.blockHeight,
    syncedToChain: true,
    version: s.version,
    numActiveChannels: 1,
    numPendingChannels: 0,
    numPeers: s.numPeers,
  });
  assert.equal(t.backend.kind, "lnd");
  assert.deepEqual(
    [...t.backend.features].sort(),
    ["description-hash", "force-close", "invoice-stream"],
  );
});

Deno.test("LndRestBackend works with the certificate pinned by its SHA-256 fingerprint", async () => {
  await using t = await setup({ pin: "fingerprint" });
  assert.equal((await t.backend.getInfo()).pubkey, t.node.state.info.pubkey);
});

Deno.test("LndRestBackend.getBalances() returns bigint sats and msats from LND's string amounts", async () => {
  await using t = await setup();
  t.node.state.onchain = { confirmedSat: 2_100_000_000_000_000n, unconfirmedSat: 7n };
  assert.deepEqual(await t.backend.getBalances(), {
    onchain: { confirmedSat: 2_100_000_000_000_000n, unconfirmedSat: 7n },
    channels: { localMsat: 600_000_000n, remoteMsat: 390_000_000n, pendingOpenLocalMsat: 0n },
  });
});

Deno.test("LndRestBackend.listChannels() merges open and pending channels, one per outpoint", async () => {
  await using t = await setup();
  const peer = randomPubkey();
  const base = {
    peerPubkey: peer,
    capacitySat: 500_000n,
    localMsat: 400_000_000n,
    remoteMsat: 100_000_000n,
    private: true,
    initiator: false,
  };
  t.node.state.channels.push(
    { ...base, channelPoint: `${"01".repeat(32)}:1`, shortChannelId: null, state: "opening" },
    { ...base, channelPoint: `${"02".repeat(32)}:0`, shortChannelId: "650x7x1", state: "inactive" },
    { ...base, channelPoint: `${"03".repeat(32)}:2`, shortChannelId: "660x2x0", state: "closing" },
  );
  const channels = await t.backend.listChannels();
  const byPoint = new Map(channels.map((c) => [c.channelPoint, c]));
  assert.equal(channels.length, 4, "the closing channel appears once");
  assert.deepEqual(byPoint.get(`${"ab".repeat(32)}:0`), {
    channelPoint: `${"ab".repeat(32)}:0`,
    shortChannelId: "700x1x0",
    peerPubkey: t.node.state.channels[0]!.peerPubkey,
    state: "active",
    capacitySat: 1_000_000n,
    localBalanceMsat: 600_000_000n,
    remoteBalanceMsat: 390_000_000n,
    private: false,
    initiator: true,
  });
  assert.deepEqual(byPoint.get(`${"01".repeat(32)}:1`), {
    channelPoint: `${"01".repeat(32)}:1`,
    shortChannelId: null,
    peerPubkey: peer,
    state: "opening",
    capacitySat: 500_000n,
    localBalanceMsat: 400_000_000n,
    remoteBalanceMsat: 100_000_000n,
    private: true,
    initiator: false,
  });
  assert.equal(byPoint.get(`${"02".repeat(32)}:0`)?.state, "inactive");
  assert.equal(byPoint.get(`${"02".repeat(32)}:0`)?.shortChannelId, "650x7x1");
  const closing = byPoint.get(`${"03".repeat(32)}:2`);
  assert.equal(closing?.state, "closing");
  assert.equal(closing?.shortChannelId, "660x2x0", "kept from the open list");
});

Deno.test("LndRestBackend.openChannel() connects to a new peer, opens, and reports the funding outpoint", async () => {
  await using t = await setup();
  const peer = randomPubkey();
  const opened = await t.backend.openChannel({
    peerPubkey: peer,
    peerAddress: "127.0.0.1:9735",
    amountSat: 250_000n,
    pushMsat: 10_000_000n,
    private: true,
    fee: { satPerVbyte: 5 },
  });
  const channel = t.node.state.channels.find((c) => c.peerPubkey === peer);
  assert.ok(channel !== undefined);
  // The txid LND sends as bytes is in internal order: the adapter must reverse it.
  assert.equal(opened.channelPoint, channel.channelPoint);
  assert.equal(`${opened.fundingTxid}:${opened.outputIndex}`, channel.channelPoint);
  assert.equal(channel.state, "opening");
  assert.equal(channel.capacitySat, 250_000n);
  assert.equal(channel.remoteMsat, 10_000_000n, "pushMsat went over as push_sat");
  assert.equal(channel.private, true);
  assert.equal((await t.backend.getBalances()).channels.pendingOpenLocalMsat, 240_000_000n);

  // Connecting again is fine ("already connected"); a target confirmation works too.
  await t.backend.openChannel({
    peerPubkey: peer,
    peerAddress: "127.0.0.1:9735",
    amountSat: 30_000n,
    fee: { targetConf: 6 },
  });
  const connects = t.lnd.peer.calls.filter((c) => c.operationId === "Lightning_ConnectPeer");
  assert.equal(connects.length, 2);
});

Deno.test("LndRestBackend.openChannel() refusals: offline peer, whole-sat push, whole fee rate", async () => {
  await using t = await setup();
  const offline = await rejection(
    t.backend.openChannel({ peerPubkey: randomPubkey(), amountSat: 100_000n }),
  );
  assert.ok(offline instanceof UpstreamError);
  assert.match(offline.message, /is not online/);
  const push = await rejection(
    t.backend.openChannel({ peerPubkey: randomPubkey(), amountSat: 100_000n, pushMsat: 1_500n }),
  );
  assert.ok(push instanceof ValidationError);
  assert.equal(push.status, 422);
  const fee = await rejection(
    t.backend.openChannel({
      peerPubkey: randomPubkey(),
      amountSat: 100_000n,
      fee: { satPerVbyte: 1.5 },
    }),
  );
  assert.ok(fee instanceof ValidationError);
});

Deno.test("LndRestBackend.closeChannel() returns the closing txid from the first close update", async () => {
  await using t = await setup();
  const point = `${"ab".repeat(32)}:0`;
  const closed = await t.backend.closeChannel({
    channelPoint: point,
    force: false,
    fee: { satPerVbyte: 3 },
  });
  assert.equal(closed.closingTxid, t.lnd.peer.closingTxids.get(point));
  assert.equal(t.node.state.channels[0]!.state, "closing");
  const call = t.lnd.peer.calls.find((c) => c.operationId === "Lightning_CloseChannel");
  assert.equal(call?.path, `/v1/channels/${"ab".repeat(32)}/0`);
  assert.equal(call?.query, "sat_per_vbyte=3");
});

Deno.test("LndRestBackend.closeChannel() force-closes an inactive channel; a cooperative close of it is refused", async () => {
  await using t = await setup();
  const point = `${"cd".repeat(32)}:3`;
  t.node.state.channels.push({
    channelPoint: point,
    shortChannelId: "710x4x3",
    peerPubkey: randomPubkey(),
    state: "inactive",
    capacitySat: 100_000n,
    localMsat: 50_000_000n,
    remoteMsat: 50_000_000n,
    private: false,
    initiator: true,
  });
  const coop = await rejection(t.backend.closeChannel({ channelPoint: point, force: false }));
  assert.ok(coop instanceof UpstreamError);
  assert.match(coop.message, /peer is offline/);
  const forced = await t.backend.closeChannel({ channelPoint: point, force: true });
  assert.equal(forced.closingTxid, t.lnd.peer.closingTxids.get(point));
  assert.equal(t.lnd.peer.calls.at(-1)?.query, "force=true");
});

Deno.test("LndRestBackend.closeChannel() of an unknown channel is NotFoundError", async () => {
  await using t = await setup();
  const err = await rejection(
    t.backend.closeChannel({ channelPoint: `${"ee".repeat(32)}:0`, force: false }),
  );
  assert.ok(err instanceof NotFoundError);
});

Deno.test("LndRestBackend.createInvoice() returns the stored invoice with a real BOLT11 and its preimage", async () => {
  await using t = await setup();
  const inv = await t.backend.createInvoice({
    amountMsat: 150_500n,
    description: "coffee ☕",
    expirySeconds: 600,
    label: "inv-1",
  });
  const stored = t.node.state.invoices.get(inv.paymentHash);
  assert.ok(stored !== undefined);
  assert.equal(inv.bolt11, stored.bolt11);
  assert.match(inv.bolt11, /^lnbcrt1505n1/);
  assert.equal(inv.amountMsat, 150_500n);
  assert.equal(inv.amountReceivedMsat, null);
  assert.equal(inv.description, "coffee ☕");
  assert.equal(inv.descriptionHash, null);
  assert.equal(inv.state, "open");
  assert.equal(inv.createdAt.getTime(), stored.createdAt * 1000);
  assert.equal(inv.expiresAt.getTime() - inv.createdAt.getTime(), 600_000);
  assert.equal(inv.settledAt, null);
  assert.equal(hex.encode(sha256(hex.decode(inv.preimage!))), inv.paymentHash);
});

Deno.test("LndRestBackend.createInvoice() with a description hash, and for any amount", async () => {
  await using t = await setup();
  const descriptionHash = hex.encode(sha256(new TextEncoder().encode("a long description")));
  const inv = await t.backend.createInvoice({
    amountMsat: null,
    descriptionHash,
    expirySeconds: 3600,
    label: "inv-2",
  });
  assert.equal(inv.amountMsat, null);
  assert.equal(inv.description, null);
  assert.equal(inv.descriptionHash, descriptionHash);
  assert.equal(t.node.state.invoices.get(inv.paymentHash)?.descriptionHash, descriptionHash);
  const both = await rejection(t.backend.createInvoice({
    amountMsat: 1_000n,
    description: "x",
    descriptionHash,
    expirySeconds: 60,
    label: "inv-3",
  }));
  assert.ok(both instanceof ValidationError);
});

Deno.test("LndRestBackend.getInvoice() is null for an unknown hash and reads a settled invoice", async () => {
  await using t = await setup();
  assert.equal(await t.backend.getInvoice(newPreimage().paymentHash), null);
  const inv = await t.backend.createInvoice({
    amountMsat: null,
    description: "tip",
    expirySeconds: 600,
    label: "inv-4",
  });
  t.node.settleInvoice(inv.paymentHash, 42_000n);
  const settled = await t.backend.getInvoice(inv.paymentHash);
  assert.equal(settled?.state, "settled");
  assert.equal(settled?.amountReceivedMsat, 42_000n);
  assert.equal(
    settled?.settledAt?.getTime(),
    t.node.state.invoices.get(inv.paymentHash)!.settledAt! * 1000,
  );
});

Deno.test("LndRestBackend.getInvoice() reads an invoice past its expiry as expired", async () => {
  await using t = await setup();
  const inv = await t.backend.createInvoice({
    amountMsat: 1_000n,
    description: "old",
    expirySeconds: 60,
    label: "inv-5",
  });
  t.node.state.invoices.get(inv.paymentHash)!.createdAt -= 120;
  assert.equal((await t.backend.getInvoice(inv.paymentHash))?.state, "expired");
  t.node.state.invoices.get(inv.paymentHash)!.state = "expired"; // LND cancels it: CANCELED
  assert.equal((await t.backend.getInvoice(inv.paymentHash))?.state, "expired");
});

Deno.test("LndRestBackend.listInvoices() returns the newest first, at most limit", async () => {
  await using t = await setup();
  const made: Invoice[] = [];
  for (let i = 0; i < 3; i++) {
    made.push(
      await t.backend.createInvoice({
        amountMsat: 1_000n * BigInt(i + 1),
        description: `n${i}`,
        expirySeconds: 600,
        label: `l${i}`,
      }),
    );
  }
  const listed = await t.backend.listInvoices({ limit: 2 });
  assert.deepEqual(listed.map((i) => i.paymentHash), [made[2]!.paymentHash, made[1]!.paymentHash]);
  assert.deepEqual(listed[0], made[2]);
  const call = t.lnd.peer.calls.findLast((c) => c.operationId === "Lightning_ListInvoices");
  assert.equal(call?.query, "reversed=true&num_max_invoices=2");
});

Deno.test("LndRestBackend.watchInvoices() yields additions and settlements until the signal aborts", async () => {
  await using t = await setup();
  const controller = new AbortController();
  const updates = t.backend.watchInvoices(controller.signal)[Symbol.asyncIterator]();
  const first = updates.next();
  // The subscription is open once the peer has seen it; then events flow.
  await waitFor(() =>
    t.lnd.peer.calls.some((c) => c.operationId === "Lightning_SubscribeInvoices")
  );
  const inv = await t.backend.createInvoice({
    amountMsat: 5_000n,
    description: "watched",
    expirySeconds: 600,
    label: "w1",
  });
  const added = await first;
  assert.equal(added.value?.paymentHash, inv.paymentHash);
  assert.equal(added.value?.state, "open");
  t.node.settleInvoice(inv.paymentHash);
  const settled = await updates.next();
  assert.equal(settled.value?.state, "settled");
  assert.equal(settled.value?.amountReceivedMsat, 5_000n);
  const ending = updates.next();
  controller.abort();
  assert.equal((await ending).done, true);
});

Deno.test("LndRestBackend.watchInvoices() reconnects after a dropped stream and asks LND to replay from the last add_index", async () => {
  await using t = await setup();
  t.lnd.peer.setFault((r) =>
    r.operationId === "Lightning_SubscribeInvoices" ? "dropStreams" : "ok"
  );
  const controller = new AbortController();
  const updates = t.backend.watchInvoices(controller.signal)[Symbol.asyncIterator]();
  const first = updates.next();
  await waitFor(() =>
    t.lnd.peer.calls.some((c) => c.operationId === "Lightning_SubscribeInvoices")
  );
  const a = await t.backend.createInvoice({
    amountMsat: 1_000n,
    description: "a",
    expirySeconds: 600,
    label: "a",
  });
  assert.equal((await first).value?.paymentHash, a.paymentHash);
  // The stream broke after that record. While nobody listens, another invoice is added.
  t.lnd.peer.setFault("ok");
  const b = await t.backend.createInvoice({
    amountMsat: 2_000n,
    description: "b",
    expirySeconds: 600,
    label: "b",
  });
  const replayed = await updates.next();
  assert.equal(replayed.value?.paymentHash, b.paymentHash);
  const subscribes = t.lnd.peer.calls.filter((c) =>
    c.operationId === "Lightning_SubscribeInvoices"
  );
  assert.equal(subscribes.length, 2);
  assert.equal(subscribes[0]!.query, "");
  assert.equal(subscribes[1]!.query, "add_index=1");
  // Live again after the replay.
  t.node.settleInvoice(b.paymentHash);
  assert.equal((await updates.next()).value?.state, "settled");
  controller.abort();
  assert.equal((await updates.next()).done, true);
});

Deno.test("LndRestBackend.payInvoice() succeeds with preimage, amount and fee", async () => {
  await using t = await setup();
  const ext = externalInvoice({ amountMsat: 25_000n });
  t.node.state.outcomes.set(ext.paymentHash, {
    outcome: "succeed",
    preimage: ext.preimage,
    feeMsat: 12n,
  });
  const result = await t.backend.payInvoice({
    bolt11: ext.bolt11,
    maxFeeMsat: 100n,
    timeoutSeconds: 30,
  });
  assert.deepEqual(result, {
    status: "succeeded",
    paymentHash: ext.paymentHash,
    preimage: ext.preimage,
    amountMsat: 25_000n,
    feeMsat: 12n,
  });
  assert.equal(t.node.state.payAttempts.get(ext.paymentHash), 1);
});

Deno.test("LndRestBackend.payInvoice() reports failures with LND's reason normalised", async () => {
  await using t = await setup();
  const noRoute = externalInvoice();
  assert.deepEqual(
    await t.backend.payInvoice({ bolt11: noRoute.bolt11, maxFeeMsat: 0n, timeoutSeconds: 30 }),
    { status: "failed", paymentHash: noRoute.paymentHash, reason: "no_route" },
  );
  const wrong = externalInvoice();
  t.node.state.outcomes.set(wrong.paymentHash, {
    outcome: "fail",
    reason: "incorrect_payment_details",
  });
  const result = await t.backend.payInvoice({
    bolt11: wrong.bolt11,
    maxFeeMsat: 0n,
    timeoutSeconds: 30,
  });
  assert.deepEqual(result, {
    status: "failed",
    paymentHash: wrong.paymentHash,
    reason: "incorrect_payment_details",
  });
  // A failed payment may be retried: LND starts a new attempt.
  t.node.state.outcomes.set(wrong.paymentHash, {
    outcome: "succeed",
    preimage: wrong.preimage,
    feeMsat: 0n,
  });
  const retried = await t.backend.payInvoice({
    bolt11: wrong.bolt11,
    maxFeeMsat: 0n,
    timeoutSeconds: 30,
  });
  assert.equal(retried.status, "succeeded");
});

Deno.test("LndRestBackend.payInvoice() of an any-amount invoice sends amt_msat", async () => {
  await using t = await setup();
  const ext = externalInvoice({ amountMsat: null });
  t.node.state.outcomes.set(ext.paymentHash, {
    outcome: "succeed",
    preimage: ext.preimage,
    feeMsat: 0n,
  });
  const result = await t.backend.payInvoice({
    bolt11: ext.bolt11,
    amountMsat: 7_000n,
    maxFeeMsat: 10n,
    timeoutSeconds: 30,
  });
  assert.equal(result.status === "succeeded" && result.amountMsat, 7_000n);
  // Without an amount LND refuses it (a plain error, HTTP 500, read from the body).
  const other = externalInvoice({ amountMsat: null });
  const err = await rejection(
    t.backend.payInvoice({ bolt11: other.bolt11, maxFeeMsat: 10n, timeoutSeconds: 30 }),
  );
  assert.ok(err instanceof UpstreamError);
  assert.match(err.message, /amount must be specified/);
  assert.equal(t.node.state.payAttempts.get(other.paymentHash), undefined, "never started");
});

Deno.test("LndRestBackend.payInvoice() of a hash already paid is ConflictError, and the node is not charged twice", async () => {
  await using t = await setup();
  const ext = externalInvoice();
  t.node.state.outcomes.set(ext.paymentHash, {
    outcome: "succeed",
    preimage: ext.preimage,
    feeMsat: 1n,
  });
  const req = { bolt11: ext.bolt11, maxFeeMsat: 10n, timeoutSeconds: 30 };
  assert.equal((await t.backend.payInvoice(req)).status, "succeeded");
  const local = t.node.state.channels[0]!.localMsat;
  const err = await rejection(t.backend.payInvoice(req));
  assert.ok(err instanceof ConflictError);
  assert.match(err.message, /already paid/);
  assert.equal(t.node.state.channels[0]!.localMsat, local);
  assert.equal(t.node.state.payAttempts.get(ext.paymentHash), 2);
});

Deno.test("LndRestBackend.payInvoice() answers pending when the stream drops mid-payment; getPayment() follows it", async () => {
  await using t = await setup();
  const ext = externalInvoice();
  t.node.state.outcomes.set(ext.paymentHash, { outcome: "hang" });
  t.lnd.peer.setFault((r) => r.operationId === "Router_SendPaymentV2" ? "dropStreams" : "ok");
  const result = await t.backend.payInvoice({
    bolt11: ext.bolt11,
    maxFeeMsat: 10n,
    timeoutSeconds: 30,
  });
  assert.deepEqual(result, { status: "pending", paymentHash: ext.paymentHash });
  assert.deepEqual(await t.backend.getPayment(ext.paymentHash), result);
  t.node.resolvePayment(ext.paymentHash, {
    outcome: "succeed",
    preimage: ext.preimage,
    feeMsat: 3n,
  });
  assert.deepEqual(await t.backend.getPayment(ext.paymentHash), {
    status: "succeeded",
    paymentHash: ext.paymentHash,
    preimage: ext.preimage,
    amountMsat: 25_000n,
    feeMsat: 3n,
  });
  const track = t.lnd.peer.calls.findLast((c) => c.operationId === "Router_TrackPaymentV2");
  assert.equal(track?.query, "no_inflight_updates=false");
});

Deno.test("LndRestBackend.payInvoice() answers pending when the payment outlives its timeout", async () => {
  await using t = await setup({ backend: { payGraceMs: 50 } });
  const ext = externalInvoice();
  t.node.state.outcomes.set(ext.paymentHash, { outcome: "hang" });
  const result = await t.backend.payInvoice({
    bolt11: ext.bolt11,
    maxFeeMsat: 10n,
    timeoutSeconds: 1,
  });
  assert.deepEqual(result, { status: "pending", paymentHash: ext.paymentHash });
  // A stream that ends while the payment is in flight is pending too.
  t.node.resolvePayment(ext.paymentHash, { outcome: "fail", reason: "timeout" });
  assert.deepEqual(await t.backend.getPayment(ext.paymentHash), {
    status: "failed",
    paymentHash: ext.paymentHash,
    reason: "timeout",
  });
});

Deno.test("LndRestBackend.payInvoice() with no answer at all throws: the outcome is unknown", async () => {
  await using t = await setup();
  const ext = externalInvoice();
  t.lnd.peer.setFault((r) => r.operationId === "Router_SendPaymentV2" ? "reset" : "ok");
  const err = await rejection(
    t.backend.payInvoice({ bolt11: ext.bolt11, maxFeeMsat: 10n, timeoutSeconds: 30 }),
  );
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.equal(
    t.lnd.peer.calls.filter((c) => c.operationId === "Router_SendPaymentV2").length,
    1,
    "a payment is never retried",
  );
  // Never started on the node, so getPayment says so.
  assert.equal(await t.backend.getPayment(ext.paymentHash), null);
});

Deno.test("LndRestBackend.getPayment() is null for an unknown hash and puts the hash in the path as URL-safe base64", async () => {
  await using t = await setup();
  // A hash whose standard base64 has a "/" (which would split the path) or a "+".
  let hash = newPreimage().paymentHash;
  while (!/[/+]/.test(base64.encode(hex.decode(hash)))) hash = newPreimage().paymentHash;
  assert.equal(await t.backend.getPayment(hash), null);
  const call = t.lnd.peer.calls.findLast((c) => c.operationId === "Router_TrackPaymentV2");
  assert.ok(call !== undefined);
  assert.doesNotMatch(call.path.slice("/v2/router/track/".length), /[/+]/);

  const failed = externalInvoice();
  await t.backend.payInvoice({ bolt11: failed.bolt11, maxFeeMsat: 0n, timeoutSeconds: 30 });
  const expected: PaymentResult = {
    status: "failed",
    paymentHash: failed.paymentHash,
    reason: "no_route",
  };
  assert.deepEqual(await t.backend.getPayment(failed.paymentHash), expected);
});

Deno.test("LndRestBackend translates node refusals; a wrong macaroon never shows in errors", async () => {
  const node = createLnNode("regtest");
  await using lnd = await lndHarness(node, {
    client: { headers: { "Grpc-Metadata-macaroon": "ab".repeat(40) } },
  });
  const err = await rejection(lnd.backend.getInfo());
  assert.ok(err instanceof UpstreamError);
  assert.match(err.message, /refused this service's macaroon/);
  for (const text of [err.message, JSON.stringify(err.extensions), String(err.cause)]) {
    assert.ok(!text.includes("ab".repeat(40)));
    assert.ok(!text.includes(lnd.peer.macaroonHex));
  }
  assert.deepEqual(lnd.peer.violations, []);
});

Deno.test("LndRestBackend surfaces an unavailable node as the client's 5xx error", async () => {
  await using t = await setup();
  t.lnd.peer.setFault("unavailable");
  const err = await rejection(t.backend.getInfo());
  assert.ok(err instanceof UpstreamError);
  assert.match(err.message, /503/);
  t.lnd.peer.setFault("ok");
  assert.equal((await t.backend.getInfo()).network, "regtest");
});

Deno.test("LndRestBackend wrong arguments throw RangeError or TypeError before any call", async () => {
  await using t = await setup();
  const b = t.backend;
  const cases: [string, () => Promise<unknown>][] = [
    ["getInvoice upper-case hash", () => b.getInvoice("AB".repeat(32))],
    ["getInvoice short hash", () => b.getInvoice("ab")],
    ["getPayment not hex", () => b.getPayment("zz".repeat(32))],
    ["listInvoices limit 0", () => b.listInvoices({ limit: 0 })],
    ["listInvoices fractional limit", () => b.listInvoices({ limit: 1.5 })],
    [
      "payInvoice not a BOLT11",
      () => b.payInvoice({ bolt11: "hello", maxFeeMsat: 0n, timeoutSeconds: 5 }),
    ],
    [
      "payInvoice negative fee",
      () => b.payInvoice({ bolt11: "lnbcrt1x", maxFeeMsat: -1n, timeoutSeconds: 5 }),
    ],
    [
      "payInvoice zero timeout",
      () => b.payInvoice({ bolt11: "lnbcrt1x", maxFeeMsat: 0n, timeoutSeconds: 0 }),
    ],
    ["closeChannel bad outpoint", () => b.closeChannel({ channelPoint: "abc:0", force: false })],
    ["openChannel bad pubkey", () => b.openChannel({ peerPubkey: "02ab", amountSat: 1n })],
    ["openChannel zero amount", () => b.openChannel({ peerPubkey: randomPubkey(), amountSat: 0n })],
    [
      "createInvoice zero expiry",
      () => b.createInvoice({ amountMsat: 1n, expirySeconds: 0, label: "x" }),
    ],
    [
      "createInvoice amount as number",
      () => b.createInvoice({ amountMsat: 1 as unknown as bigint, expirySeconds: 60, label: "x" }),
    ],
  ];
  const before = t.lnd.peer.calls.length;
  for (const [name, call] of cases) {
    await assert.rejects(
      call,
      (err) => err instanceof RangeError || err instanceof TypeError,
      name,
    );
  }
  assert.equal(t.lnd.peer.calls.length, before, "nothing was sent");
});

Deno.test("lnd peer: flags a request that breaks LND's swagger (an int64 sent as a JSON number)", async () => {
  await using t = await setup();
  const res = await t.lnd.client.request({
    method: "POST",
    path: "/v2/router/send",
    route: "/v2/router/send",
    json: { payment_request: "lnbcrt1x", fee_limit_msat: 5, no_inflight_updates: false },
  });
  assert.equal(res.status, 400);
  assert.equal(t.lnd.peer.violations.length, 1);
  assert.match(t.lnd.peer.violations[0]!, /fee_limit_msat must be string/);
  t.lnd.peer.violations.length = 0; // seen; the harness checks the rest
});

/** Polls a condition the test cannot await directly (the peer seeing a subscription). */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(condition(), "condition not reached");
}
