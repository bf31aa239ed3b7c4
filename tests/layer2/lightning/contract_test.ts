/**
 * One contract table for every `LightningBackend` adapter: LND REST against
 * the LND test peer and clnrest against the CLN test peer, each peer
 * validating every request and reply against the official schema files
 * (LND swagger, CLN JSON schemas). A schema violation fails the case.
 *
 * The same table runs against a real node when `LND_TEST_URL`
 * (`LND_TEST_MACAROON_FILE`, `LND_TEST_CERT_FILE`) or `CLN_TEST_URL`
 * (`CLN_TEST_RUNE_FILE`, optional `CLN_TEST_CERT_FILE`) is set; cases that
 * need to steer the network (settle our invoice, decide a payment's fate)
 * run only against the peers.
 */
import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import type { LightningBackend } from "../../../src/layer2/lightning/backend.ts";
import { decodeBolt11 } from "../../../src/layer2/lightning/bolt11.ts";
import { HttpClient } from "../../../src/net/http_client.ts";
import { pinnedTlsTransport } from "../../../src/net/pinned_tls_transport.ts";
import { LndRestBackend } from "../../../src/layer2/lightning/lnd_rest.ts";
import { ClnRestBackend } from "../../../src/layer2/lightning/cln_rest.ts";
import { encodeBolt11 } from "../../_helpers/bolt11_encode.ts";
import { createLnNode, type LnNode, newPreimage } from "../../_peers/ln_node_state.ts";
import { lndHarness } from "../../_peers/lnd_peer.ts";
import { clnHarness } from "../../_peers/cln_peer.ts";

/** One adapter under test. */
interface Subject extends AsyncDisposable {
  backend: LightningBackend;
  /** The simulated node behind a test peer; null against a real node. */
  node: LnNode | null;
  /** Schema violations the peer recorded (always empty for a real node). */
  violations(): string[];
  /** How many invoice watch calls (stream or long-poll) the peer has received. */
  watchCalls(): number;
}

interface Target {
  name: string;
  start(): Promise<Subject>;
}

const TARGETS: Target[] = [
  {
    name: "lnd (peer)",
    async start() {
      const node = createLnNode("regtest");
      const h = await lndHarness(node);
      return {
        backend: h.backend,
        node,
        violations: () => h.peer.violations,
        watchCalls: () =>
          h.peer.calls.filter((c) => c.operationId === "Lightning_SubscribeInvoices").length,
        [Symbol.asyncDispose]: () => h[Symbol.asyncDispose](),
      };
    },
  },
  {
    name: "cln (peer)",
    start() {
      const node = createLnNode("regtest");
      const h = clnHarness(node);
      return Promise.resolve({
        backend: h.backend,
        node,
        violations: () => h.peer.violations,
        watchCalls: () => h.peer.calls.filter((c) => c.command === "waitanyinvoice").length,
        [Symbol.asyncDispose]: () => h[Symbol.asyncDispose](),
      });
    },
  },
  ...liveTargets(),
];

/** A case; `steers` cases need the simulated node. */
interface Case {
  name: string;
  steers?: boolean;
  run(s: Subject): Promise<void>;
}

const CASES: Case[] = [
  {
    name: "getInfo() names the node, its network and chain sync",
    async run(s) {
      const info = await s.backend.getInfo();
      assert.match(info.pubkey, /^0[23][0-9a-f]{64}$/);
      assert.equal(typeof info.syncedToChain, "boolean");
      assert.ok(info.blockHeight > 0);
      if (s.node !== null) {
        assert.equal(info.pubkey, s.node.state.info.pubkey);
        assert.equal(info.network, "regtest");
        assert.equal(info.blockHeight, s.node.state.info.blockHeight);
      }
    },
  },
  {
    name: "getBalances() and listChannels() report amounts as exact bigints",
    async run(s) {
      const b = await s.backend.getBalances();
      assert.equal(typeof b.onchain.confirmedSat, "bigint");
      assert.equal(typeof b.channels.localMsat, "bigint");
      const channels = await s.backend.listChannels();
      for (const c of channels) {
        assert.match(c.channelPoint, /^[0-9a-f]{64}:\d+$/);
        assert.ok(c.localBalanceMsat + c.remoteBalanceMsat <= c.capacitySat * 1000n);
      }
      if (s.node !== null) {
        assert.equal(b.onchain.confirmedSat, s.node.state.onchain.confirmedSat);
        assert.equal(b.channels.localMsat, s.node.state.channels[0]!.localMsat);
        assert.equal(channels.length, 1);
        assert.equal(channels[0]!.channelPoint, s.node.state.channels[0]!.channelPoint);
        assert.equal(channels[0]!.state, "active");
        assert.equal(channels[0]!.shortChannelId, "700x1x0");
        assert.equal(channels[0]!.capacitySat, 1_000_000n);
      }
    },
  },
  {
    name: "createInvoice() returns a BOLT11 of this node that getInvoice() and listInvoices() find",
    async run(s) {
      const inv = await s.backend.createInvoice({
        amountMsat: 12_345_000n,
        description: "contract",
        expirySeconds: 600,
        label: `contract-${crypto.randomUUID()}`,
      });
      const decoded = decodeBolt11(inv.bolt11);
      assert.equal(decoded.paymentHash, inv.paymentHash);
      assert.equal(decoded.amountMsat, 12_345_000n);
      assert.equal(decoded.description, "contract");
      assert.equal(decoded.payeePubkey, (await s.backend.getInfo()).pubkey);
      assert.equal(inv.state, "open");
      const got = await s.backend.getInvoice(inv.paymentHash);
      assert.equal(got?.bolt11, inv.bolt11);
      assert.equal(got?.amountMsat, 12_345_000n);
      const listed = await s.backend.listInvoices({ limit: 50 });
      assert.ok(listed.some((i) => i.paymentHash === inv.paymentHash));
      assert.equal(await s.backend.getInvoice("00".repeat(32)), null);
    },
  },
  {
    name: "an any-amount invoice has no amount",
    async run(s) {
      const inv = await s.backend.createInvoice({
        amountMsat: null,
        description: "tips",
        expirySeconds: 600,
        label: `contract-${crypto.randomUUID()}`,
      });
      assert.equal(inv.amountMsat, null);
      assert.equal(decodeBolt11(inv.bolt11).amountMsat, null);
    },
  },
  {
    name: "a settled invoice reads settled with the amount received, and the watch reports it",
    steers: true,
    async run(s) {
      const inv = await s.backend.createInvoice({
        amountMsat: 2_000n,
        description: "watched",
        expirySeconds: 600,
        label: `contract-${crypto.randomUUID()}`,
      });
      const abort = new AbortController();
      const seen = (async () => {
        for await (const update of s.backend.watchInvoices(abort.signal)) {
          if (update.paymentHash === inv.paymentHash && update.state === "settled") return update;
        }
        return null;
      })();
      // The watch must be listening before the settlement happens (however slow the machine).
      const until = Date.now() + 20_000;
      while (s.watchCalls() === 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(s.watchCalls() > 0, "the watch never reached the node");
      await new Promise((r) => setTimeout(r, 50));
      s.node!.settleInvoice(inv.paymentHash);
      // Bounded: a missed update must fail the case, not hang the run.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), 20_000));
      const update = await Promise.race([seen, timeout]).finally(() => {
        clearTimeout(timer);
        abort.abort();
      });
      assert.equal(update?.amountReceivedMsat, 2_000n);
      const got = await s.backend.getInvoice(inv.paymentHash);
      assert.equal(got?.state, "settled");
      assert.equal(got?.amountReceivedMsat, 2_000n);
      assert.ok(got?.settledAt instanceof Date);
    },
  },
  {
    name: "payInvoice() succeeds with the preimage of the hash; getPayment() agrees; one attempt",
    steers: true,
    async run(s) {
      const { bolt11, paymentHash, preimage } = foreignInvoice(s.node!, 50_000n);
      s.node!.state.outcomes.set(paymentHash, { outcome: "succeed", preimage, feeMsat: 7n });
      const result = await s.backend.payInvoice({ bolt11, maxFeeMsat: 1_000n, timeoutSeconds: 5 });
      assert.equal(result.status, "succeeded");
      assert.ok(result.status === "succeeded");
      assert.equal(result.preimage, preimage);
      assert.equal(hex.encode(sha256(hex.decode(result.preimage))), paymentHash);
      assert.equal(result.feeMsat, 7n);
      assert.equal(result.amountMsat, 50_000n);
      const again = await s.backend.getPayment(paymentHash);
      assert.equal(again?.status, "succeeded");
      assert.equal(s.node!.state.payAttempts.get(paymentHash), 1);
    },
  },
  {
    name: "payInvoice() reports a failure as failed, with a reason",
    steers: true,
    async run(s) {
      const { bolt11, paymentHash } = foreignInvoice(s.node!, 10_000n);
      s.node!.state.outcomes.set(paymentHash, { outcome: "fail", reason: "no_route" });
      const result = await s.backend.payInvoice({ bolt11, maxFeeMsat: 100n, timeoutSeconds: 5 });
      assert.equal(result.status, "failed");
      assert.ok(result.status === "failed" && result.reason.length > 0);
      assert.equal((await s.backend.getPayment(paymentHash))?.status, "failed");
    },
  },
  {
    name: "a payment still in flight is pending, never failed",
    steers: true,
    async run(s) {
      const { bolt11, paymentHash, preimage } = foreignInvoice(s.node!, 10_000n);
      s.node!.state.outcomes.set(paymentHash, { outcome: "hang" });
      let result;
      try {
        result = await s.backend.payInvoice({ bolt11, maxFeeMsat: 100n, timeoutSeconds: 1 });
      } catch {
        result = null; // no answer: the caller treats it as pending and asks getPayment
      }
      assert.notEqual(result?.status, "failed");
      assert.equal((await s.backend.getPayment(paymentHash))?.status, "pending");
      s.node!.resolvePayment(paymentHash, { outcome: "succeed", preimage, feeMsat: 1n });
      assert.equal((await s.backend.getPayment(paymentHash))?.status, "succeeded");
      assert.equal(s.node!.state.payAttempts.get(paymentHash), 1);
    },
  },
  {
    name: "getPayment() is null for a hash the node never paid",
    async run(s) {
      assert.equal(
        await s.backend.getPayment(hex.encode(crypto.getRandomValues(new Uint8Array(32)))),
        null,
      );
    },
  },
];

for (const target of TARGETS) {
  for (const c of CASES) {
    const live = target.name.endsWith("(live)");
    Deno.test({
      name: `${target.name}: ${c.name}`,
      ignore: live && c.steers === true,
      sanitizeOps: false,
      sanitizeResources: false,
      async fn() {
        await using s = await target.start();
        await c.run(s);
        assert.deepEqual(s.violations(), [], "the peer saw no schema violation");
      },
    });
  }
}

/** An invoice of another node, for ours to pay. */
function foreignInvoice(node: LnNode, amountMsat: bigint) {
  const { preimage, paymentHash } = newPreimage();
  const bolt11 = encodeBolt11({
    network: node.state.info.network,
    amountMsat,
    paymentHash,
    paymentSecret: hex.encode(crypto.getRandomValues(new Uint8Array(32))),
    description: "contract payee",
    nodeKey: crypto.getRandomValues(new Uint8Array(32)),
  });
  return { bolt11, paymentHash, preimage };
}

/** Real nodes named by the environment (skipped when unset). */
function liveTargets(): Target[] {
  const env = (name: string) => Deno.env.get(name) || undefined;
  const out: Target[] = [];
  const lnd = env("LND_TEST_URL");
  if (lnd !== undefined) {
    out.push({
      name: "lnd (live)",
      async start() {
        const macaroon = await Deno.readFile(env("LND_TEST_MACAROON_FILE")!);
        const certPem = await Deno.readTextFile(env("LND_TEST_CERT_FILE")!);
        const client = new HttpClient({
          ...LIVE_CLIENT,
          name: "lnd",
          baseUrl: lnd,
          headers: { "Grpc-Metadata-macaroon": hex.encode(macaroon) },
        }, { transport: pinnedTlsTransport({ certPem }) });
        return liveSubject(new LndRestBackend(client), client);
      },
    });
  }
  const cln = env("CLN_TEST_URL");
  if (cln !== undefined) {
    out.push({
      name: "cln (live)",
      async start() {
        const rune = (await Deno.readTextFile(env("CLN_TEST_RUNE_FILE")!)).trim();
        const certFile = env("CLN_TEST_CERT_FILE");
        const transport = certFile === undefined
          ? undefined
          : pinnedTlsTransport({ certPem: await Deno.readTextFile(certFile) });
        const client = new HttpClient(
          { ...LIVE_CLIENT, name: "cln", baseUrl: cln, headers: { Rune: rune } },
          transport === undefined ? {} : { transport },
        );
        return liveSubject(new ClnRestBackend(client), client);
      },
    });
  }
  return out;
}

const LIVE_CLIENT = {
  timeoutMs: 15_000,
  maxResponseBytes: 32 * 1024 * 1024,
  retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 1_000 },
  breaker: {
    consecutiveFailures: 100,
    failureRate: 1,
    windowMs: 60_000,
    minRequests: 1_000,
    openMs: 1_000,
  },
};

function liveSubject(backend: LightningBackend, client: HttpClient): Subject {
  return {
    backend,
    node: null,
    violations: () => [],
    watchCalls: () => 0,
    [Symbol.asyncDispose]: () => Promise.resolve(client.close()),
  };
}
