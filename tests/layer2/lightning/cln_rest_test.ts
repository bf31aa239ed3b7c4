/**
 * `ClnRestBackend` against the schema-validating clnrest peer: every port
 * method, exact msat amounts, xpay/pay selection, error mapping, the
 * `waitanyinvoice` loop and payment outcomes. Every test ends by asserting
 * that the peer saw no schema violation.
 */
import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import type { Invoice } from "../../../src/layer2/lightning/backend.ts";
import { ClnRestBackend } from "../../../src/layer2/lightning/cln_rest.ts";
import {
  AppError,
  ConflictError,
  NotFoundError,
  UnsupportedFeatureError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../../src/errors/app_error.ts";
import { HttpClient } from "../../../src/net/http_client.ts";
import { encodeBolt11 } from "../../_helpers/bolt11_encode.ts";
import { type ClnHarness, clnHarness, type ClnHarnessOptions } from "../../_peers/cln_peer.ts";
import { createLnNode, type LnNode, newPreimage } from "../../_peers/ln_node_state.ts";

/** Run `fn` on a fresh node and harness; the peer must have seen no schema violation. */
async function withCln(
  fn: (h: ClnHarness) => Promise<void>,
  opts: ClnHarnessOptions & { node?: LnNode } = {},
): Promise<void> {
  const node = opts.node ?? createLnNode();
  await using h = clnHarness(node, opts);
  await fn(h);
  assert.deepEqual(h.peer.violations, [], "schema violations seen by the peer");
}

/** An invoice of some other node, payable by ours. */
function remoteInvoice(amountMsat: bigint | null = 250_000n) {
  const { preimage, paymentHash } = newPreimage();
  const bolt11 = encodeBolt11({
    network: "regtest",
    amountMsat,
    paymentHash,
    paymentSecret: hex.encode(crypto.getRandomValues(new Uint8Array(32))),
    description: "coffee",
    nodeKey: secp256k1.utils.randomSecretKey(),
  });
  return { bolt11, paymentHash, preimage };
}

/** Poll until `cond` holds (bounded, so a bug fails instead of hanging). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Only the payment call gets a short deadline (1 s + 300 ms); lookups keep the client's 2 s. */
const SHORT_PAY_DEADLINE: ClnHarnessOptions = { backend: { callTimeoutMs: 300 } };

const callsOf = (h: ClnHarness, command: string) =>
  h.peer.calls.filter((c) => c.command === command).map((c) => c.params);

Deno.test("the peer records requests and responses outside the schemas", async () => {
  const node = createLnNode();
  await using h = clnHarness(node);
  const res = await fetch(`${h.peer.url}/v1/invoice`, {
    method: "POST",
    headers: { Rune: h.peer.rune, "content-type": "application/json" },
    body: JSON.stringify({ amount_msat: "12", label: "x", description: "d", colour: "red" }),
  });
  assert.equal(res.status, 500);
  assert.equal(((await res.json()) as { code: number }).code, -32602);
  assert.equal(h.peer.violations.length, 2, h.peer.violations.join("\n"));
  h.peer.violations.length = 0;
  node.state.info.pubkey = `04${"ab".repeat(32)}`; // uncompressed-key prefix
  await assert.rejects(h.backend.getInfo(), UpstreamError);
  assert.deepEqual(h.peer.violations, ['getinfo response: /id must be a CLN "pubkey"']);
});

Deno.test("ClnRestBackend: kind cln; features force-close only", async () => {
  await withCln(({ backend }) => {
    assert.equal(backend.kind, "cln");
    assert.deepEqual([...backend.features], ["force-close"]);
    return Promise.resolve();
  });
});

Deno.test("ClnRestBackend rejects bad options with RangeError", () => {
  using client = new HttpClient({
    name: "cln",
    baseUrl: "http://127.0.0.1:9",
    timeoutMs: 1000,
    maxResponseBytes: 1024,
    retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
    breaker: { consecutiveFailures: 1, failureRate: 1, windowMs: 1, minRequests: 1, openMs: 1 },
  });
  assert.throws(() => new ClnRestBackend(client, { callTimeoutMs: 0 }), RangeError);
  assert.throws(() => new ClnRestBackend(client, { longPollSeconds: 0.5 }), RangeError);
  assert.throws(
    () => new ClnRestBackend(client, { watchBackoff: { baseDelayMs: 10, maxDelayMs: 5 } }),
    RangeError,
  );
  // deno-lint-ignore no-explicit-any -- a wrong value from untyped config
  assert.throws(() => new ClnRestBackend(client, { payCommand: "keysend" as any }), RangeError);
});

Deno.test("getInfo() maps getinfo: key, network, height, counts, sync warnings", async () => {
  await withCln(async ({ backend, node }) => {
    node.state.info.version = "v25.02";
    const info = await backend.getInfo();
    assert.deepEqual(info, {
      pubkey: node.state.info.pubkey,
      alias: "test-peer",
      network: "regtest",
      blockHeight: 800,
      syncedToChain: true,
      version: "v25.02",
      numActiveChannels: 1,
      numPendingChannels: 0,
      numPeers: 1,
    });
    node.state.info.synced = false;
    assert.equal((await backend.getInfo()).syncedToChain, false);
  });
});

Deno.test("getInfo() reads CLN's network name `bitcoin` as mainnet", async () => {
  await withCln(async ({ backend }) => {
    assert.equal((await backend.getInfo()).network, "mainnet");
  }, { node: createLnNode("mainnet") });
});

Deno.test("getBalances() sums listfunds outputs by status and channel msat by state", async () => {
  await withCln(async ({ backend, node }) => {
    const s = node.state;
    s.onchain.unconfirmedSat = 25_000n;
    const base = s.channels[0]!;
    s.channels.push(
      { ...base, channelPoint: `${"01".repeat(32)}:1`, state: "opening", shortChannelId: null },
      {
        ...base,
        channelPoint: `${"02".repeat(32)}:0`,
        state: "inactive",
        shortChannelId: "701x1x0",
      },
    );
    assert.deepEqual(await backend.getBalances(), {
      onchain: { confirmedSat: 1_000_000n, unconfirmedSat: 25_000n },
      channels: {
        localMsat: 600_000_000n,
        // total_msat minus to_us_msat: the peer's side plus the commitment fee.
        remoteMsat: 400_000_000n,
        pendingOpenLocalMsat: 600_000_000n,
      },
    });
  });
});

Deno.test("listChannels() maps listpeerchannels states and fields", async () => {
  await withCln(async ({ backend, node }) => {
    const s = node.state;
    const base = s.channels[0]!;
    const add = (state: typeof base.state, n: number, scid: string | null) =>
      s.channels.push({
        ...base,
        channelPoint: `${n.toString(16).padStart(2, "0").repeat(32)}:${n}`,
        state,
        shortChannelId: scid,
        private: n % 2 === 1,
        initiator: n % 2 === 0,
      });
    add("opening", 1, null);
    add("inactive", 2, "702x2x2");
    add("closing", 3, "703x3x3");
    add("closed", 4, "704x4x4");
    const channels = await backend.listChannels();
    assert.deepEqual(
      channels.map((c) => [c.channelPoint.slice(-2), c.state, c.shortChannelId]),
      [
        [":0", "active", "700x1x0"],
        [":1", "opening", null],
        [":2", "inactive", "702x2x2"],
        [":3", "closing", "703x3x3"],
        [":4", "closed", "704x4x4"],
      ],
    );
    assert.deepEqual(channels[0], {
      channelPoint: base.channelPoint,
      shortChannelId: "700x1x0",
      peerPubkey: base.peerPubkey,
      state: "active",
      capacitySat: 1_000_000n,
      localBalanceMsat: 600_000_000n,
      remoteBalanceMsat: 400_000_000n,
      private: false,
      initiator: true,
    });
    assert.equal(channels[1]!.private, true);
    assert.equal(channels[1]!.initiator, false);
  });
});

Deno.test("msat amounts above 2^53 stay exact through listpeerchannels", async () => {
  await withCln(async ({ backend, node }) => {
    // 100 000 BTC: 10^16 msat, above Number.MAX_SAFE_INTEGER (about 9·10^15).
    const ch = node.state.channels[0]!;
    ch.capacitySat = 10n ** 13n;
    ch.localMsat = 10n ** 16n - 7n;
    const [c] = await backend.listChannels();
    assert.equal(c!.capacitySat, 10n ** 13n);
    assert.equal(c!.localBalanceMsat, 10n ** 16n - 7n);
    assert.equal(c!.remoteBalanceMsat, 7n);
    assert.equal((await backend.getBalances()).channels.localMsat, 10n ** 16n - 7n);
  });
});

Deno.test("openChannel() sends fundchannel in sat with push_msat, announce and feerate", async () => {
  await withCln(async (h) => {
    const peer = h.node.state.channels[0]!.peerPubkey;
    const opened = await h.backend.openChannel({
      peerPubkey: peer,
      amountSat: 200_000n,
      pushMsat: 1_000n,
      private: true,
      fee: { satPerVbyte: 2.5 },
    });
    assert.match(opened.fundingTxid, /^[0-9a-f]{64}$/);
    assert.equal(opened.outputIndex, 0);
    assert.equal(opened.channelPoint, `${opened.fundingTxid}:0`);
    assert.deepEqual(callsOf(h, "fundchannel")[0], {
      id: peer,
      amount: 200_000,
      announce: false,
      push_msat: 1_000,
      feerate: "2500perkb",
    });
    const listed = (await h.backend.listChannels()).find((c) =>
      c.channelPoint === opened.channelPoint
    );
    assert.equal(listed?.state, "opening");
    assert.equal(listed?.capacitySat, 200_000n);
  });
});

Deno.test("openChannel() maps a confirmation target to CLN's named feerates", async () => {
  await withCln(async (h) => {
    const peer = h.node.state.channels[0]!.peerPubkey;
    for (const targetConf of [1, 6, 11, 12, 99, 100, 1008]) {
      await h.backend.openChannel({ peerPubkey: peer, amountSat: 10_000n, fee: { targetConf } });
    }
    assert.deepEqual(
      callsOf(h, "fundchannel").map((p) => p.feerate),
      ["urgent", "urgent", "urgent", "normal", "normal", "slow", "slow"],
    );
  });
});

Deno.test("openChannel() connects first (id@host:port) when an address is given", async () => {
  await withCln(async (h) => {
    const stranger = hex.encode(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true));
    await assert.rejects(
      h.backend.openChannel({ peerPubkey: stranger, amountSat: 50_000n }),
      (e) => e instanceof UpstreamError && /Unknown peer/.test(e.message),
    );
    await h.backend.openChannel({
      peerPubkey: stranger,
      peerAddress: "10.0.0.7:9735",
      amountSat: 50_000n,
    });
    assert.deepEqual(callsOf(h, "connect"), [{ id: `${stranger}@10.0.0.7:9735` }]);
    assert.deepEqual(h.peer.calls.slice(-2).map((c) => c.command), ["connect", "fundchannel"]);
  });
});

Deno.test("openChannel() maps fundchannel's error codes", async () => {
  await withCln(async (h) => {
    const peer = h.node.state.channels[0]!.peerPubkey;
    const open = (amountSat = 10_000n) => h.backend.openChannel({ peerPubkey: peer, amountSat });
    await assert.rejects(
      open(5_000_000n),
      (e) => e instanceof ConflictError && e.code === "insufficient-funds",
    );
    await assert.rejects(open(100n), (e) => e instanceof ValidationError && e.status === 422);
    h.peer.failNext("fundchannel", { code: 300, message: "Amount exceeded 16777215" });
    await assert.rejects(open(), (e) => e instanceof ValidationError && e.status === 422);
    h.peer.failNext("fundchannel", { code: 313, message: "min-emergency-msat" });
    await assert.rejects(open(), (e) => e instanceof ConflictError);
    h.peer.failNext("fundchannel", { code: 303, message: "Error broadcasting" });
    await assert.rejects(open(), (e) => e instanceof UpstreamError && e.status === 502);
    h.peer.failNext("fundchannel", { code: -32602, message: "amount: should be a satoshi amount" });
    await assert.rejects(open(), (e) => e instanceof ValidationError && e.status === 422);
    await assert.rejects(
      h.backend.openChannel({ peerPubkey: "02abc", amountSat: 1n }),
      RangeError,
    );
  });
});

Deno.test("closeChannel() closes by channel_id: unilateraltimeout 0 cooperatively, 1 to force", async () => {
  await withCln(async (h) => {
    const s = h.node.state;
    const base = s.channels[0]!;
    s.channels.push({ ...base, channelPoint: `${"0f".repeat(32)}:3`, shortChannelId: "705x1x3" });
    const coop = await h.backend.closeChannel({
      channelPoint: base.channelPoint,
      force: false,
      fee: { satPerVbyte: 3 },
    });
    assert.match(coop.closingTxid ?? "", /^[0-9a-f]{64}$/);
    const forced = await h.backend.closeChannel({
      channelPoint: `${"0f".repeat(32)}:3`,
      force: true,
    });
    assert.match(forced.closingTxid ?? "", /^[0-9a-f]{64}$/);
    const [first, second] = callsOf(h, "close");
    assert.deepEqual(first, {
      id: await channelIdOf(h, base.channelPoint),
      unilateraltimeout: 0,
      feerange: ["3000perkb", "3000perkb"],
    });
    assert.equal(second!.unilateraltimeout, 1);
    assert.equal(second!.feerange, undefined);
    assert.equal(s.channels[0]!.state, "closing");
    await assert.rejects(
      h.backend.closeChannel({ channelPoint: `${"ee".repeat(32)}:0`, force: false }),
      NotFoundError,
    );
    await assert.rejects(
      h.backend.closeChannel({ channelPoint: "not-an-outpoint", force: false }),
      RangeError,
    );
  });
});

/** The channel_id the peer reports for a funding outpoint. */
async function channelIdOf(h: ClnHarness, channelPoint: string): Promise<string> {
  const res = await fetch(`${h.peer.url}/v1/listpeerchannels`, {
    method: "POST",
    headers: { Rune: h.peer.rune },
  });
  const body = await res.json() as {
    channels: { funding_txid: string; funding_outnum: number; channel_id: string }[];
  };
  const c = body.channels.find((x) => `${x.funding_txid}:${x.funding_outnum}` === channelPoint);
  return c!.channel_id;
}

Deno.test("createInvoice() sends amount_msat, label, description, expiry; returns the invoice", async () => {
  await withCln(async (h) => {
    const before = Math.floor(Date.now() / 1000);
    const inv = await h.backend.createInvoice({
      amountMsat: 123_456n,
      description: "one coffee",
      expirySeconds: 900,
      label: "inv-1",
    });
    assert.deepEqual(callsOf(h, "invoice"), [{
      amount_msat: 123_456,
      label: "inv-1",
      description: "one coffee",
      expiry: 900,
    }]);
    assert.equal(inv.state, "open");
    assert.equal(inv.amountMsat, 123_456n);
    assert.equal(inv.description, "one coffee");
    assert.equal(inv.descriptionHash, null);
    assert.equal(inv.preimage, null);
    assert.ok(inv.createdAt.getTime() / 1000 >= before);
    assert.equal(inv.expiresAt.getTime() - inv.createdAt.getTime(), 900_000);
    assert.equal(h.node.state.invoices.get(inv.paymentHash)?.bolt11, inv.bolt11);

    const any = await h.backend.createInvoice({
      amountMsat: null,
      description: "tip",
      expirySeconds: 60,
      label: "inv-2",
    });
    assert.equal(callsOf(h, "invoice")[1]!.amount_msat, "any");
    assert.equal(any.amountMsat, null);
  });
});

Deno.test("createInvoice(): duplicate label is a ConflictError; a description hash is unsupported", async () => {
  await withCln(async (h) => {
    const req = { amountMsat: 1_000n, description: "x", expirySeconds: 60, label: "dup" };
    await h.backend.createInvoice(req);
    await assert.rejects(
      h.backend.createInvoice(req),
      (e) => e instanceof ConflictError && e.code === "duplicate-invoice-label",
    );
    const calls = h.peer.calls.length;
    await assert.rejects(
      h.backend.createInvoice({
        amountMsat: 1_000n,
        descriptionHash: "aa".repeat(32),
        expirySeconds: 60,
        label: "h",
      }),
      (e) => e instanceof UnsupportedFeatureError && e.status === 501,
    );
    assert.equal(h.peer.calls.length, calls, "no call for an unsupported request");
    h.peer.failNext("invoice", { code: 902, message: "None of the specified channels" });
    await assert.rejects(
      h.backend.createInvoice({ ...req, label: "other" }),
      (e) => e instanceof ValidationError && e.status === 422,
    );
  });
});

Deno.test("getInvoice() reads listinvoices by payment_hash: null, open, settled, expired", async () => {
  await withCln(async (h) => {
    assert.equal(await h.backend.getInvoice("ab".repeat(32)), null);
    const inv = await h.backend.createInvoice({
      amountMsat: null,
      description: "any",
      expirySeconds: 3600,
      label: "g1",
    });
    assert.deepEqual(callsOf(h, "listinvoices"), [{ payment_hash: "ab".repeat(32) }]);
    const open = await h.backend.getInvoice(inv.paymentHash);
    assert.deepEqual(open, inv);
    h.node.settleInvoice(inv.paymentHash, 77_000n);
    const settled = await h.backend.getInvoice(inv.paymentHash);
    const stored = h.node.state.invoices.get(inv.paymentHash)!;
    assert.equal(settled?.state, "settled");
    assert.equal(settled?.amountReceivedMsat, 77_000n);
    assert.equal(settled?.preimage, stored.preimage);
    assert.equal(settled?.settledAt?.getTime(), stored.settledAt! * 1000);
    stored.state = "expired";
    stored.settleIndex = 0;
    assert.equal((await h.backend.getInvoice(inv.paymentHash))?.state, "expired");
    await assert.rejects(h.backend.getInvoice("XYZ"), RangeError);
  });
});

Deno.test("listInvoices() returns the newest first, at most limit, skipping deleted ones", async () => {
  await withCln(async (h) => {
    assert.deepEqual(await h.backend.listInvoices({ limit: 5 }), []);
    const made: Invoice[] = [];
    for (let i = 1; i <= 11; i++) {
      made.push(
        await h.backend.createInvoice({
          amountMsat: BigInt(i * 1000),
          description: `n${i}`,
          expirySeconds: 600,
          label: `l${i}`,
        }),
      );
    }
    const hashes = (list: Invoice[]) => list.map((i) => i.paymentHash);
    const newest = [...made].reverse();
    assert.deepEqual(
      hashes(await h.backend.listInvoices({ limit: 3 })),
      hashes(newest.slice(0, 3)),
    );
    assert.deepEqual(hashes(await h.backend.listInvoices({ limit: 50 })), hashes(newest));
    // CLN deletes invoices (delinvoice): the gaps in created_index are read past.
    for (const i of [10, 9, 8, 7]) {
      h.node.state.invoices.get(made[i]!.paymentHash)!.state = "canceled";
    }
    assert.deepEqual(
      hashes(await h.backend.listInvoices({ limit: 3 })),
      hashes([made[6]!, made[5]!, made[4]!]),
    );
    for (const p of callsOf(h, "listinvoices").filter((p) => p.index !== undefined)) {
      assert.equal(p.index, "created");
      assert.ok(typeof p.start === "number" && typeof p.limit === "number");
    }
    await assert.rejects(h.backend.listInvoices({ limit: 0 }), RangeError);
  });
});

Deno.test("watchInvoices() yields settlements after its start and re-polls after timeouts", async () => {
  await withCln(async (h) => {
    const mk = (label: string) =>
      h.backend.createInvoice({
        amountMsat: 5_000n,
        description: label,
        expirySeconds: 600,
        label,
      });
    const old = await mk("old");
    const fresh = await mk("fresh");
    const later = await mk("later");
    h.node.settleInvoice(old.paymentHash);
    const abort = new AbortController();
    const seen: Invoice[] = [];
    const watching = (async () => {
      for await (const inv of h.backend.watchInvoices(abort.signal)) seen.push(inv);
    })();
    const longPolls = () => callsOf(h, "waitanyinvoice").filter((p) => p.timeout === 1);
    // At least one long poll timed out (904) and was repeated.
    await until(() => longPolls().length >= 2, "a second long poll");
    assert.ok(longPolls().every((p) => p.lastpay_index === 1), "starts after the last pay_index");
    h.node.settleInvoice(fresh.paymentHash);
    await until(() => seen.length === 1, "the first settlement");
    h.node.settleInvoice(later.paymentHash);
    await until(() => seen.length === 2, "the second settlement");
    abort.abort();
    await watching;
    assert.deepEqual(seen.map((i) => [i.paymentHash, i.state]), [
      [fresh.paymentHash, "settled"],
      [later.paymentHash, "settled"],
    ]);
    assert.equal(seen[0]!.amountReceivedMsat, 5_000n);
    // "later" can only have come from a poll after "fresh" (pay_index 2).
    assert.ok(longPolls().some((p) => p.lastpay_index === 2));
  });
});

Deno.test("watchInvoices() backs off on transport errors and recovers", async () => {
  await withCln(async (h) => {
    const inv = await h.backend.createInvoice({
      amountMsat: 9_000n,
      description: "w",
      expirySeconds: 600,
      label: "w",
    });
    h.peer.setFault("status503");
    const abort = new AbortController();
    const seen: Invoice[] = [];
    const watching = (async () => {
      for await (const i of h.backend.watchInvoices(abort.signal)) seen.push(i);
    })();
    const start = h.peer.requests;
    await until(() => h.peer.requests >= start + 3, "three failed polls");
    h.peer.setFault("ok");
    await until(() => callsOf(h, "waitanyinvoice").some((p) => p.timeout === 1), "a long poll");
    h.node.settleInvoice(inv.paymentHash);
    await until(() => seen.length === 1, "the settlement");
    abort.abort();
    await watching;
    assert.equal(seen[0]!.paymentHash, inv.paymentHash);
  }, {
    // The breaker may open meanwhile; it must let a probe through soon.
    upstream: {
      breaker: {
        consecutiveFailures: 2,
        failureRate: 1,
        windowMs: 60_000,
        minRequests: 1_000,
        openMs: 20,
      },
    },
  });
});

Deno.test("watchInvoices() ends when the signal aborts during a long poll", async () => {
  await withCln(async (h) => {
    const abort = new AbortController();
    const watching = (async () => {
      for await (const _ of h.backend.watchInvoices(abort.signal)) {
        throw new Error("nothing was settled");
      }
    })();
    await until(() => callsOf(h, "waitanyinvoice").some((p) => p.timeout === 1), "a long poll");
    abort.abort();
    await watching;
  });
});

Deno.test("payInvoice() uses xpay with invstring, maxfee, retry_for; succeeded with the fee", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice(250_000n);
    h.node.state.outcomes.set(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 7n,
    });
    const result = await h.backend.payInvoice({
      bolt11: inv.bolt11,
      maxFeeMsat: 1_000n,
      timeoutSeconds: 30,
    });
    assert.deepEqual(result, {
      status: "succeeded",
      paymentHash: inv.paymentHash,
      preimage: inv.preimage,
      amountMsat: 250_000n,
      feeMsat: 7n,
    });
    assert.deepEqual(callsOf(h, "xpay"), [{
      invstring: inv.bolt11,
      maxfee: 1_000,
      retry_for: 30,
    }]);
    assert.deepEqual(callsOf(h, "pay"), []);
    assert.deepEqual(await h.backend.getPayment(inv.paymentHash), result);
  });
});

Deno.test("payInvoice() sends amount_msat for an any-amount invoice", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice(null);
    h.node.state.outcomes.set(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 0n,
    });
    const result = await h.backend.payInvoice({
      bolt11: inv.bolt11,
      amountMsat: 42_000n,
      maxFeeMsat: 100n,
      timeoutSeconds: 5,
    });
    assert.equal(result.status === "succeeded" && result.amountMsat, 42_000n);
    assert.equal(callsOf(h, "xpay")[0]!.amount_msat, 42_000);
  });
});

Deno.test("payInvoice() falls back to pay once the node has no xpay, and remembers", async () => {
  await withCln(async (h) => {
    const a = remoteInvoice();
    const b = remoteInvoice();
    for (const inv of [a, b]) {
      h.node.state.outcomes.set(inv.paymentHash, {
        outcome: "succeed",
        preimage: inv.preimage,
        feeMsat: 3n,
      });
    }
    const req = (bolt11: string) => ({ bolt11, maxFeeMsat: 500n, timeoutSeconds: 70_000 });
    const first = await h.backend.payInvoice(req(a.bolt11));
    assert.equal(first.status, "succeeded");
    await h.backend.payInvoice(req(b.bolt11));
    assert.deepEqual(h.peer.calls.map((c) => c.command), ["xpay", "pay", "pay"]);
    // pay's retry_for is a u16.
    assert.deepEqual(callsOf(h, "pay")[0], { bolt11: a.bolt11, maxfee: 500, retry_for: 65_535 });
    assert.equal(h.node.state.payAttempts.get(a.paymentHash), 1, "paid once");
  }, { peer: { xpay: false } });
});

Deno.test("payInvoice() with payCommand pay never calls xpay", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    const result = await h.backend.payInvoice({
      bolt11: inv.bolt11,
      maxFeeMsat: 1n,
      timeoutSeconds: 5,
    });
    assert.deepEqual(result, {
      status: "failed",
      paymentHash: inv.paymentHash,
      reason: "no_route",
    });
    assert.deepEqual(h.peer.calls.map((c) => c.command), ["pay"]);
  }, { backend: { payCommand: "pay" } });
});

for (const command of ["xpay", "pay"] as const) {
  Deno.test(`payInvoice() over ${command} maps payment failures to failed results`, async () => {
    await withCln(async (h) => {
      const cases = [
        ["no_route", "no_route"],
        ["incorrect_payment_details", "incorrect_payment_details"],
        // xpay has no code of its own for a timeout: 209, "other payment error".
        ["timeout", command === "pay" ? "timeout" : "error"],
        ["error", "error"],
      ] as const;
      for (const [nodeReason, reason] of cases) {
        const inv = remoteInvoice();
        h.node.state.outcomes.set(inv.paymentHash, { outcome: "fail", reason: nodeReason });
        const result = await h.backend.payInvoice({
          bolt11: inv.bolt11,
          maxFeeMsat: 10n,
          timeoutSeconds: 5,
        });
        assert.deepEqual(
          result,
          { status: "failed", paymentHash: inv.paymentHash, reason },
          nodeReason,
        );
        assert.deepEqual(await h.backend.getPayment(inv.paymentHash), {
          status: "failed",
          paymentHash: inv.paymentHash,
          reason: "unknown",
        });
      }
    }, { backend: { payCommand: command } });
  });
}

Deno.test("payInvoice(): a fee over maxfee is refused by the node as no route", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    h.node.state.outcomes.set(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 900n,
    });
    const result = await h.backend.payInvoice({
      bolt11: inv.bolt11,
      maxFeeMsat: 100n,
      timeoutSeconds: 5,
    });
    assert.deepEqual(result, {
      status: "failed",
      paymentHash: inv.paymentHash,
      reason: "no_route",
    });
    assert.equal(h.node.state.payAttempts.get(inv.paymentHash), undefined);
  });
});

Deno.test("payInvoice() returns pending when the deadline passes with the payment in flight", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    h.node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
    const result = await h.backend.payInvoice({
      bolt11: inv.bolt11,
      maxFeeMsat: 10n,
      timeoutSeconds: 1,
    });
    assert.deepEqual(result, { status: "pending", paymentHash: inv.paymentHash });
    assert.deepEqual(await h.backend.getPayment(inv.paymentHash), result);
    h.node.resolvePayment(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 1n,
    });
    assert.equal((await h.backend.getPayment(inv.paymentHash))?.status, "succeeded");
  }, SHORT_PAY_DEADLINE);
});

Deno.test("payInvoice() rethrows the timeout when the node has no record of the payment", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    // The xpay call is swallowed on the way: the node never hears of it.
    h.peer.setFault((req) => new URL(req.url).pathname === "/v1/xpay" ? "hang" : "ok");
    await assert.rejects(
      h.backend.payInvoice({ bolt11: inv.bolt11, maxFeeMsat: 10n, timeoutSeconds: 1 }),
      UpstreamTimeoutError,
    );
    assert.deepEqual(callsOf(h, "listpays"), [{ payment_hash: inv.paymentHash }]);
    assert.equal(await h.backend.getPayment(inv.paymentHash), null);
  }, SHORT_PAY_DEADLINE);
});

Deno.test("payInvoice(): xpay giving up while a part is in flight is pending, not failed", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    h.node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
    h.node.startPayment({ paymentHash: inv.paymentHash, bolt11: inv.bolt11, amountMsat: 250_000n });
    h.peer.failNext("xpay", { code: 209, message: "Failed after 3 attempts" });
    const result = await h.backend.payInvoice({
      bolt11: inv.bolt11,
      maxFeeMsat: 10n,
      timeoutSeconds: 5,
    });
    assert.deepEqual(result, { status: "pending", paymentHash: inv.paymentHash });
  });
});

Deno.test("payInvoice() of an invoice already paid (xpay 219) returns the earlier success", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    h.node.state.outcomes.set(inv.paymentHash, {
      outcome: "succeed",
      preimage: inv.preimage,
      feeMsat: 2n,
    });
    const req = { bolt11: inv.bolt11, maxFeeMsat: 10n, timeoutSeconds: 5 };
    const first = await h.backend.payInvoice(req);
    const again = await h.backend.payInvoice(req);
    assert.deepEqual(again, first);
    assert.equal(h.node.state.payments.get(inv.paymentHash)?.status, "succeeded");
  });
});

Deno.test("payInvoice(): refused parameters are a 422; other refusals without a record stay 502", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    const req = { bolt11: inv.bolt11, maxFeeMsat: 10n, timeoutSeconds: 5 };
    h.peer.failNext("xpay", { code: -32602, message: "maxfee: should be a millisatoshi amount" });
    await assert.rejects(
      h.backend.payInvoice(req),
      (e) => e instanceof ValidationError && e.status === 422,
    );
    h.peer.failNext("xpay", { code: -1, message: "Something odd" });
    await assert.rejects(
      h.backend.payInvoice(req),
      (e) => e instanceof UpstreamError && e.status === 502 && /Something odd/.test(e.message),
    );
    h.peer.failNext("xpay", { code: 207, message: "Invoice expired" });
    assert.deepEqual(await h.backend.payInvoice(req), {
      status: "failed",
      paymentHash: inv.paymentHash,
      reason: "invoice_expired",
    });
    const calls = h.peer.calls.length;
    await assert.rejects(
      h.backend.payInvoice({ ...req, bolt11: "lnbcrt1notaninvoice" }),
      (e) => e instanceof ValidationError && e.status === 422,
    );
    assert.equal(h.peer.calls.length, calls, "an unreadable invoice is not sent");
  });
});

Deno.test("pay 201 (hash paid with another amount) is a ConflictError", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    h.peer.failNext("pay", { code: 201, message: "Already paid with this hash" });
    await assert.rejects(
      h.backend.payInvoice({ bolt11: inv.bolt11, maxFeeMsat: 10n, timeoutSeconds: 5 }),
      ConflictError,
    );
  }, { backend: { payCommand: "pay" } });
});

Deno.test("getPayment(): null for an unknown hash, pending while in flight", async () => {
  await withCln(async (h) => {
    const inv = remoteInvoice();
    assert.equal(await h.backend.getPayment(inv.paymentHash), null);
    h.node.state.outcomes.set(inv.paymentHash, { outcome: "hang" });
    h.node.startPayment({ paymentHash: inv.paymentHash, bolt11: inv.bolt11, amountMsat: 1_000n });
    assert.deepEqual(await h.backend.getPayment(inv.paymentHash), {
      status: "pending",
      paymentHash: inv.paymentHash,
    });
    await assert.rejects(h.backend.getPayment("nope"), RangeError);
  });
});

Deno.test("a refused rune is a 502 whose error never contains the rune", async () => {
  const secret = "tU4Ks8-SECRET-RUNE-dont-leak==";
  for (const headers of [{ Rune: secret }, {}] as Record<string, string>[]) {
    await withCln(async (h) => {
      const err = await h.backend.getInfo().then(() => null, (e: unknown) => e);
      assert.ok(err instanceof UpstreamError, String(err));
      assert.equal(err.status, 502);
      assert.match(err.message, /refused the rune/);
      const everything = JSON.stringify({
        message: err.message,
        extensions: err.extensions,
        cause: String(err.cause),
        stack: err.stack,
      });
      assert.ok(!everything.includes(secret), "the rune leaked into the error");
    }, { upstream: { headers } });
  }
});

Deno.test("transport answers: 200 accepted; 500 without JSON and 503 are 502s", async () => {
  await withCln(async (h) => {
    assert.equal((await h.backend.getInfo()).alias, "test-peer");
  }, { peer: { successStatus: 200 } });
  await withCln(async (h) => {
    h.peer.setFault("status500");
    await assert.rejects(
      h.backend.getInfo(),
      (e) => e instanceof UpstreamError && /HTTP 500/.test(e.message),
    );
    h.peer.setFault("status503");
    await assert.rejects(
      h.backend.listChannels(),
      (e) => e instanceof AppError && e.status === 502,
    );
  });
});

Deno.test("an unknown command on a read stays a 502 naming the command", async () => {
  await withCln(async (h) => {
    h.peer.failNext("listpays", { code: -32601, message: "Unknown command 'listpays'" });
    await assert.rejects(
      h.backend.getPayment("ab".repeat(32)),
      (e) => e instanceof UpstreamError && /"listpays" \(code -32601\)/.test(e.message),
    );
  });
});
