/**
 * BitcoindBackend beyond the contract table: credentials, node states, reply
 * validation, the JSON-RPC 1.0 "error on HTTP 500" convention versus the
 * breaker, and transport faults through the real HttpClient.
 */
import assert from "node:assert/strict";
import { BitcoindBackend } from "../../src/chain/bitcoind_backend.ts";
import {
  UnavailableError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../src/errors/app_error.ts";
import { HttpClient } from "../../src/net/http_client.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import { bitcoindHandler } from "../_peers/bitcoind_peer.ts";
import { type ChainState, loadRecordedBlock } from "../_peers/chain_state.ts";
import { type FaultHandler, refusedUrl, startFaultServer } from "../_peers/fault_server.ts";
import { bitcoindHarness, contractState, expectError, testUpstream } from "./_harness.ts";

const block = await loadRecordedBlock();
const [CONFIRMED, MEMPOOL, FRESH] = [block.tx[0]!, block.tx[1]!, block.tx[2]!];
const AUTH = { user: "user", password: "pass" };

/** Fault-test client settings: 200 ms deadline, 64 KiB cap, one retry, breaker at 3. */
const FAULT: Partial<UpstreamOptions> = { timeoutMs: 200, maxResponseBytes: 64 * 1024 };

function withState(mutate: (s: ChainState) => void = () => {}): ChainState {
  const s = contractState(block);
  mutate(s);
  return s;
}

function faultSetup(
  handler: FaultHandler,
  options: { upstream?: Partial<UpstreamOptions>; jsonRpcVersion?: "1.0" | "2.0" } = {},
) {
  const server = startFaultServer(handler, { dripIntervalMs: 50, oversizedBytes: 1024 * 1024 });
  const client = new HttpClient(testUpstream("bitcoind", server.url, options.upstream ?? FAULT));
  const backend = new BitcoindBackend(client, AUTH, {
    jsonRpcVersion: options.jsonRpcVersion ?? "1.0",
  });
  return {
    server,
    client,
    backend,
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
    },
  };
}

/** A handler answering every call with one JSON-RPC 1.0 result. */
function rpcResult(result: unknown, id: unknown = 1): FaultHandler {
  return () => Response.json({ result, error: null, id });
}

Deno.test("BitcoindBackend sends Basic credentials and reads a cookie file's contents", async () => {
  const state = withState();
  await using h = bitcoindHarness(state, {
    peer: { user: "__cookie__", password: "c0ffee" },
    auth: { cookie: "__cookie__:c0ffee\n" },
  });
  assert.equal(await h.backend.getNetwork(), "mainnet");
});

Deno.test("BitcoindBackend re-reads a changed cookie after a 401 and repeats the call once", async () => {
  const state = withState();
  const peer = { user: "__cookie__", password: "first" };
  let cookieOnDisk = "__cookie__:first\n";
  let reads = 0;
  const readCookie = () => {
    reads++;
    return Promise.resolve(cookieOnDisk);
  };
  await using h = bitcoindHarness(state, { peer, auth: { readCookie } });
  assert.equal(await h.backend.getNetwork(), "mainnet");
  assert.equal(reads, 1);
  // bitcoind restarted and wrote a new cookie.
  peer.password = "second";
  cookieOnDisk = "__cookie__:second\n";
  assert.deepEqual(await h.backend.getTip(), { height: 740_000, hash: state.tip.hash });
  assert.equal(reads, 2);
  assert.deepEqual(state.requests, [
    "bitcoind getblockchaininfo",
    "bitcoind 401",
    "bitcoind getblockchaininfo",
  ]);
  // Refused while the file still holds the same cookie: one re-read, no repeat.
  peer.password = "third";
  await expectError(h.backend.getTip(), UpstreamError, 502, /rejected the RPC credentials/);
  assert.equal(reads, 3);
  assert.equal(state.requests.length, 4);
});

Deno.test("BitcoindBackend: an unreadable cookie is UnavailableError, nothing sent", async () => {
  const state = withState();
  await using h = bitcoindHarness(state, {
    auth: { readCookie: () => Promise.reject(new Deno.errors.NotFound("no .cookie")) },
  });
  await expectError(h.backend.broadcast(FRESH.hex), UnavailableError, 503, /cookie/);
  assert.deepEqual(state.requests, []);
});

Deno.test("BitcoindBackend: wrong credentials are UpstreamError 'rejected the RPC credentials'", async () => {
  const state = withState();
  await using h = bitcoindHarness(state, { auth: { user: "user", password: "wrong" } });
  const err = await expectError(
    h.backend.getTip(),
    UpstreamError,
    502,
    /^bitcoind rejected the RPC credentials$/,
  );
  assert.ok(!err.message.includes("wrong"));
  assert.deepEqual(state.requests, ["bitcoind 401"]);
});

Deno.test("new BitcoindBackend() refuses credentials without a user", () => {
  using client = new HttpClient(testUpstream("bitcoind", "http://127.0.0.1:1"));
  assert.throws(() => new BitcoindBackend(client, { cookie: "no-colon" }), TypeError);
  assert.throws(() => new BitcoindBackend(client, { cookie: ":secret" }), TypeError);
});

Deno.test("BitcoindBackend keeps the credentials out of its inspectable state", () => {
  using client = new HttpClient(testUpstream("bitcoind", "http://127.0.0.1:1"));
  const backend = new BitcoindBackend(client, { user: "rpc", password: "hunter2" });
  assert.ok(!JSON.stringify(backend).includes("aHVudGVy"));
  assert.ok(!Deno.inspect(backend, { showHidden: true, depth: 5 }).includes("hunter2"));
  assert.ok(!Deno.inspect(backend, { showHidden: true, depth: 5 }).includes("cnBjOmh1bnRlcjI"));
});

Deno.test("BitcoindBackend.getNetwork() accepts warnings as a string (Core before v28)", async () => {
  await using h = bitcoindHarness(withState(), { peer: { legacyWarnings: true } });
  assert.equal(await h.backend.getNetwork(), "mainnet");
});

Deno.test("BitcoindBackend.estimateFee() reports the target Core answered for", async () => {
  await using h = bitcoindHarness(withState());
  // Core answers for the first horizon with data at or above the target.
  assert.deepEqual(await h.backend.estimateFee(7), { satPerKvb: 1000, targetBlocks: 144 });
});

Deno.test("BitcoindBackend.estimateFee() without feerate names Core's errors", async () => {
  await using h = bitcoindHarness(withState((s) => s.feeRatesSatPerKvb.clear()));
  await expectError(
    h.backend.estimateFee(6),
    UnavailableError,
    503,
    /^bitcoind has no fee estimate for 6 blocks: Insufficient data or no feerate found$/,
  );
});

Deno.test("BitcoindBackend.getTransaction() without -txindex sees the mempool only", async () => {
  await using h = bitcoindHarness(withState(), { peer: { txindex: false } });
  assert.equal(await h.backend.getTransaction(CONFIRMED.txid), null);
  assert.deepEqual((await h.backend.getTransaction(MEMPOOL.txid))?.status, {
    state: "unconfirmed",
  });
});

Deno.test("BitcoindBackend.testMempoolAccept() reports vsize and fee, or the reject reason", async () => {
  const state = withState((s) => s.feesSats.set(FRESH.txid, 15_500n));
  await using h = bitcoindHarness(state);
  const core = h.backend;
  assert.ok(core instanceof BitcoindBackend);
  assert.deepEqual(await core.testMempoolAccept(FRESH.hex), {
    allowed: true,
    vsize: 155,
    feesSats: 15_500n,
  });
  assert.deepEqual(await core.testMempoolAccept(MEMPOOL.hex), {
    allowed: false,
    rejectReason: "txn-already-in-mempool",
  });
  state.rejections.set(FRESH.txid, {
    rejectReason: "min relay fee not met",
    code: -26,
    message: "100 < 155",
  });
  assert.deepEqual(await core.testMempoolAccept(FRESH.hex), {
    allowed: false,
    rejectReason: "min relay fee not met",
    rejectDetails: "min relay fee not met, 100 < 155",
  });
  assert.ok(state.broadcasts.length === 0, "testmempoolaccept never relays");
});

Deno.test("BitcoindBackend.testMempoolAccept() treats an absent 'allowed' as not allowed", async () => {
  await using f = faultSetup(
    rpcResult([{ txid: FRESH.txid, wtxid: FRESH.txid, "package-error": "package-not-validated" }]),
  );
  assert.deepEqual(await f.backend.testMempoolAccept(FRESH.hex), {
    allowed: false,
    rejectReason: "package-not-validated",
  });
});

Deno.test("BitcoindBackend.broadcast() relays after sendrawtransaction says 'already in block chain'", async () => {
  // testmempoolaccept allows it, then sendrawtransaction finds it mined (older Core wording).
  const handler: FaultHandler = async (req) => {
    const call = await req.json() as { id: number; method: string };
    if (call.method === "testmempoolaccept") {
      return Response.json({
        result: [{
          txid: FRESH.txid,
          wtxid: FRESH.txid,
          allowed: true,
          vsize: 155,
          fees: { base: 0.00001 },
        }],
        error: null,
        id: call.id,
      });
    }
    return Response.json({
      result: null,
      error: { code: -27, message: "Transaction already in block chain" },
      id: call.id,
    }, { status: 500 });
  };
  await using f = faultSetup(handler);
  assert.deepEqual(await f.backend.broadcast(FRESH.hex), { txid: FRESH.txid });
});

Deno.test("BitcoindBackend: a node that is starting is UnavailableError 503", async () => {
  await using h = bitcoindHarness(withState(), { peer: { warmingUp: true } });
  await expectError(h.backend.getTip(), UnavailableError, 503, /^bitcoind is starting/);
});

Deno.test("BitcoindBackend.getAddressUtxos() during another scan is UnavailableError 503", async () => {
  await using h = bitcoindHarness(withState(), { peer: { scanInProgress: true } });
  await expectError(
    h.backend.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    UnavailableError,
    503,
    /already scanning/,
  );
});

Deno.test("BitcoindBackend.broadcast() on a node without testmempoolaccept sends nothing", async () => {
  const state = withState();
  await using h = bitcoindHarness(state, { peer: { unavailableMethods: ["testmempoolaccept"] } });
  await expectError(
    h.backend.broadcast(FRESH.hex),
    UpstreamError,
    502,
    /does not offer the RPC "testmempoolaccept"/,
  );
  assert.deepEqual(state.requests, ["bitcoind testmempoolaccept"]);
});

Deno.test("BitcoindBackend: JSON-RPC errors on HTTP 500 neither retry nor trip the breaker", async () => {
  const state = withState();
  await using h = bitcoindHarness(state, { upstream: FAULT });
  for (let i = 0; i < 5; i++) assert.equal(await h.backend.getTransaction(FRESH.txid), null);
  assert.equal(h.client.breakerState, "closed");
  assert.equal(state.requests.length, 5);
});

Deno.test("BitcoindBackend validates replies: wrong shapes, ids and values are UpstreamError", async () => {
  const cases: [string, FaultHandler, (b: BitcoindBackend) => Promise<unknown>][] = [
    [
      "blocks as a string",
      rpcResult({ chain: "main", blocks: "1", bestblockhash: CONFIRMED.txid }),
      (b) => b.getTip(),
    ],
    [
      "another request's id",
      rpcResult({ chain: "main", blocks: 1, bestblockhash: CONFIRMED.txid }, 999),
      (b) => b.getTip(),
    ],
    [
      "unknown chain",
      rpcResult({ chain: "liquidv1", blocks: 1, bestblockhash: CONFIRMED.txid }),
      (b) => b.getNetwork(),
    ],
    ["negative feerate", rpcResult({ feerate: -0.0001, blocks: 2 }), (b) => b.estimateFee(2)],
    [
      "amount not a number",
      rpcResult({
        success: true,
        height: 1,
        unspents: [{ txid: FRESH.txid, vout: 0, scriptPubKey: "00", amount: "1", height: 1 }],
      }),
      (b) => b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    ],
    [
      "amount above 21M BTC",
      rpcResult({
        success: true,
        height: 1,
        unspents: [{
          txid: FRESH.txid,
          vout: 0,
          scriptPubKey: "00",
          amount: 21_000_001,
          height: 1,
        }],
      }),
      (b) => b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    ],
    [
      "aborted scan",
      rpcResult({ success: false, height: 1, unspents: [] }),
      (b) => b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    ],
    [
      "another transaction",
      rpcResult({ txid: CONFIRMED.txid, hex: CONFIRMED.hex }),
      (b) => b.getTransaction(FRESH.txid),
    ],
    [
      "hex of another transaction under the right txid",
      rpcResult({ txid: FRESH.txid, hex: CONFIRMED.hex }),
      (b) => b.getTransaction(FRESH.txid),
    ],
    [
      "two verdicts for one tx",
      rpcResult([{ txid: FRESH.txid, allowed: true }, { txid: FRESH.txid, allowed: true }]),
      (b) => b.testMempoolAccept(FRESH.hex),
    ],
    ["not JSON", () => new Response("<html>busy</html>"), (b) => b.getTip()],
    [
      "HTTP 500 without a JSON-RPC error",
      () => new Response("internal error", { status: 500 }),
      (b) => b.getTip(),
    ],
    [
      "generic RPC error",
      () =>
        Response.json({ result: null, error: { code: -1, message: "boom" }, id: 1 }, {
          status: 500,
        }),
      (b) => b.getTip(),
    ],
    ["HTTP 403", () => new Response(null, { status: 403 }), (b) => b.getTip()],
  ];
  for (const [name, handler, call] of cases) {
    await using f = faultSetup(handler);
    await expectError(call(f.backend), UpstreamError, 502).catch((e) => {
      throw new Error(`${name}: ${e}`);
    });
  }
});

Deno.test("BitcoindBackend: a -22 decode error from Core is a 422", async () => {
  await using f = faultSetup(() =>
    Response.json({ result: null, error: { code: -22, message: "TX decode failed" }, id: 1 }, {
      status: 500,
    })
  );
  await expectError(f.backend.broadcast(FRESH.hex), ValidationError, 422, /TX decode failed/);
});

// Transport faults, through the real client.

Deno.test("BitcoindBackend: a 503 on a read is retried, then UpstreamError 502", async () => {
  await using f = faultSetup(bitcoindHandler(withState()));
  f.server.setMode("status503");
  await expectError(f.backend.getTip(), UpstreamError, 502);
  assert.equal(f.server.requests, 2);
});

Deno.test("BitcoindBackend: a hanging node is UpstreamTimeoutError 504", async () => {
  await using f = faultSetup(bitcoindHandler(withState()));
  f.server.setMode("hang");
  await expectError(f.backend.getTip(), UpstreamTimeoutError, 504);
});

Deno.test("BitcoindBackend: a slow drip is UpstreamTimeoutError 504", async () => {
  await using f = faultSetup(bitcoindHandler(withState()));
  f.server.setMode("slowDrip");
  await expectError(f.backend.estimateFee(6), UpstreamTimeoutError, 504);
});

Deno.test("BitcoindBackend: an oversized body is UpstreamError 502", async () => {
  // A generous deadline: a loaded machine must not turn the size cap into a timeout.
  await using f = faultSetup(bitcoindHandler(withState()), {
    upstream: { ...FAULT, timeoutMs: 10_000 },
  });
  f.server.setMode("oversized");
  await expectError(f.backend.getTip(), UpstreamError, 502, /exceeds/);
});

Deno.test("BitcoindBackend: a reset connection is UpstreamTimeoutError 504", async () => {
  await using f = faultSetup(bitcoindHandler(withState()));
  f.server.setMode("reset");
  await expectError(f.backend.getTip(), UpstreamTimeoutError, 504);
});

Deno.test("BitcoindBackend: a refused connection is UnavailableError 503", async () => {
  using client = new HttpClient(testUpstream("bitcoind", refusedUrl(), FAULT));
  const backend = new BitcoindBackend(client, AUTH);
  await expectError(backend.getTip(), UnavailableError, 503);
  await expectError(backend.broadcast(FRESH.hex), UnavailableError, 503);
});

Deno.test("BitcoindBackend: a sendrawtransaction that never answers is UpstreamTimeoutError, sent once", async () => {
  const state = withState();
  await using h = bitcoindHarness(state, {
    peer: { hangMethods: ["sendrawtransaction"] },
    upstream: FAULT,
  });
  await expectError(
    h.backend.broadcast(FRESH.hex),
    UpstreamTimeoutError,
    504,
    /outcome is unknown/,
  );
  assert.deepEqual(state.requests, ["bitcoind testmempoolaccept", "bitcoind sendrawtransaction"]);
});

Deno.test("BitcoindBackend: the breaker opens after repeated failures and then nothing is sent", async () => {
  await using f = faultSetup(bitcoindHandler(withState()));
  f.server.setMode("status503");
  await expectError(f.backend.getTip(), UpstreamError, 502);
  await expectError(f.backend.getTip(), UpstreamError, 502);
  assert.equal(f.client.breakerState, "open");
  const sent = f.server.requests;
  f.server.setMode("ok");
  await expectError(f.backend.getTip(), UnavailableError, 503, /circuit breaker is open/);
  await expectError(f.backend.broadcast(FRESH.hex), UnavailableError, 503);
  assert.equal(f.server.requests, sent);
});

Deno.test("BitcoindBackend (JSON-RPC 2.0): plain HTTP 500s count toward the breaker", async () => {
  await using f = faultSetup(bitcoindHandler(withState()), { jsonRpcVersion: "2.0" });
  f.server.setMode("status500");
  for (let i = 0; i < 3; i++) await expectError(f.backend.getTip(), UpstreamError, 502);
  assert.equal(f.client.breakerState, "open");
});

Deno.test("BitcoindBackend.getUtxosOfScripts() scans the UTXO set once for many addresses", async () => {
  const state = withState();
  await using h = bitcoindHarness(state);
  const script = (o: { scriptPubKey: { address?: string; hex: string } }) => ({
    address: o.scriptPubKey.address!,
    scriptPubKeyHex: o.scriptPubKey.hex,
  });
  const scripts = [script(FRESH.vout[1]!), script(CONFIRMED.vout[0]!), script(FRESH.vout[0]!)];
  const before = state.requests.length;
  const grouped = await h.backend.getUtxosOfScripts!(scripts);
  assert.deepEqual(state.requests.slice(before), ["bitcoind scantxoutset"]);
  assert.equal(grouped.length, 3);
  assert.deepEqual(grouped[0], []);
  // The same coins as one address at a time, each under its own script.
  assert.deepEqual(grouped[1], await h.backend.getAddressUtxos(scripts[1]!.address));
  assert.deepEqual(grouped[2], await h.backend.getAddressUtxos(scripts[2]!.address));
  assert.ok(grouped[1]!.length > 0 && grouped[2]!.length > 0);
  assert.deepEqual(await h.backend.getUtxosOfScripts!([]), []);
});
