/**
 * EsploraBackend beyond the contract table: Esplora-specific choices, reply
 * validation, and transport faults through the real HttpClient against the
 * loopback fault server.
 */
import assert from "node:assert/strict";
import { EsploraBackend } from "../../src/chain/esplora_backend.ts";
import {
  UnavailableError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../src/errors/app_error.ts";
import { HttpClient } from "../../src/net/http_client.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import { type ChainState, loadRecordedBlock } from "../_peers/chain_state.ts";
import { esploraHandler } from "../_peers/esplora_peer.ts";
import { type FaultHandler, refusedUrl, startFaultServer } from "../_peers/fault_server.ts";
import { contractState, esploraHarness, expectError, testUpstream, TIP } from "./_harness.ts";

const block = await loadRecordedBlock();
const FRESH = block.tx[2]!;
const CONFIRMED = block.tx[0]!;

/** Fault-test client settings: 200 ms deadline, 64 KiB cap, one retry, breaker at 3. */
const FAULT: Partial<UpstreamOptions> = { timeoutMs: 200, maxResponseBytes: 64 * 1024 };

function faultSetup(handler: FaultHandler, upstream: Partial<UpstreamOptions> = FAULT) {
  const server = startFaultServer(handler, { dripIntervalMs: 50, oversizedBytes: 1024 * 1024 });
  const client = new HttpClient(testUpstream("esplora", server.url, upstream));
  const backend = new EsploraBackend(client);
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

function withState(mutate: (s: ChainState) => void = () => {}): ChainState {
  const s = contractState(block);
  mutate(s);
  return s;
}

Deno.test("EsploraBackend.estimateFee() takes the nearest lower target", async () => {
  await using h = esploraHarness(withState());
  assert.deepEqual(await h.backend.estimateFee(7), { satPerKvb: 1234, targetBlocks: 6 });
  assert.deepEqual(await h.backend.estimateFee(1008), { satPerKvb: 1000, targetBlocks: 144 });
});

Deno.test("EsploraBackend.estimateFee() rounds fractional sat/vB up to whole sat/kvB", async () => {
  await using h = esploraHarness(withState((s) => s.feeRatesSatPerKvb.set(3, 1001.5)));
  // The peer serves 1.0015 sat/vB; 1001.5 sat/kvB rounds up, never down.
  assert.deepEqual(await h.backend.estimateFee(3), { satPerKvb: 1002, targetBlocks: 3 });
});

Deno.test("EsploraBackend.getTip() reads the tip hash, then that block's height", async () => {
  const state = withState();
  await using h = esploraHarness(state);
  assert.deepEqual(await h.backend.getTip(), TIP);
  assert.deepEqual(state.requests, [
    "esplora GET /blocks/tip/hash",
    `esplora GET /block/${TIP.hash}`,
  ]);
});

Deno.test("EsploraBackend.getTransaction() asks for the hex before the status", async () => {
  const state = withState();
  await using h = esploraHarness(state);
  assert.equal(await h.backend.getTransaction(FRESH.txid), null);
  // electrs answers the status of an unknown txid with {"confirmed":false}, so hex goes first.
  assert.deepEqual(state.requests, [`esplora GET /tx/${FRESH.txid}/hex`]);
});

Deno.test("EsploraBackend.broadcast() reads refusals worded as JSON (older electrs, mempool.space)", async () => {
  const state = withState((s) =>
    s.rejections.set(FRESH.txid, {
      rejectReason: "min relay fee not met",
      code: -26,
      message: "min relay fee not met, 100 < 155",
    })
  );
  await using h = esploraHarness(state, { errorStyle: "json" });
  const err = await expectError(
    h.backend.broadcast(FRESH.hex),
    ValidationError,
    422,
    /^Transaction rejected by the network: min relay fee not met, 100 < 155$/,
  );
  assert.deepEqual(err.extensions, { rejectReason: "min relay fee not met, 100 < 155" });
  assert.deepEqual(await h.backend.broadcast(CONFIRMED.hex), { txid: CONFIRMED.txid });
});

Deno.test("EsploraBackend.broadcast() treats every 'already known' wording as sent", async () => {
  const wordings = [
    'sendrawtransaction RPC error: {"code":-27,"message":"Transaction already in block chain"}',
    "sendrawtransaction RPC error -27: Transaction outputs already in utxo set",
    'sendrawtransaction RPC error: {"code":-26,"message":"txn-already-in-mempool"}',
    "sendrawtransaction RPC error -26: txn-already-known",
    "sendrawtransaction RPC error -26: txn-same-nonwitness-data-in-mempool",
  ];
  for (const wording of wordings) {
    await using f = faultSetup(() => new Response(wording, { status: 400 }));
    assert.deepEqual(await f.backend.broadcast(FRESH.hex), { txid: FRESH.txid }, wording);
  }
});

Deno.test("EsploraBackend.broadcast() sanitizes and truncates the node's reason", async () => {
  const reason = `bad\u0000tx\n${"x".repeat(500)}`;
  await using f = faultSetup(() =>
    new Response(`sendrawtransaction RPC error -26: ${reason}`, { status: 400 })
  );
  const err = await expectError(f.backend.broadcast(FRESH.hex), ValidationError, 422);
  assert.match(err.message, /^Transaction rejected by the network: bad tx x+…$/);
  assert.ok(err.message.length < 260);
});

Deno.test("EsploraBackend.broadcast() refuses a 200 naming another txid", async () => {
  await using f = faultSetup(() => new Response(CONFIRMED.txid));
  await expectError(
    f.backend.broadcast(FRESH.hex),
    UpstreamError,
    502,
    /unexpected reply for \/tx/,
  );
});

Deno.test("EsploraBackend validates replies: wrong shapes and values are UpstreamError", async () => {
  const cases: [string, FaultHandler, (b: EsploraBackend) => Promise<unknown>][] = [
    ["fee estimate as a string", () => Response.json({ "2": "fast" }), (b) => b.estimateFee(2)],
    ["negative fee estimate", () => Response.json({ "2": -1 }), (b) => b.estimateFee(2)],
    ["tip hash not hex", () => new Response("<html>"), (b) => b.getTip()],
    [
      "genesis hash of an unknown chain",
      () => new Response("11".repeat(32)),
      (b) => b.getNetwork(),
    ],
    [
      "utxo value as float",
      (req) =>
        new URL(req.url).pathname.endsWith("/utxo")
          ? Response.json([{ txid: FRESH.txid, vout: 0, value: 1.5, status: { confirmed: false } }])
          : new Response("1"),
      (b) => b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    ],
    [
      "confirmed utxo without block height",
      () => Response.json([{ txid: FRESH.txid, vout: 0, value: 1, status: { confirmed: true } }]),
      (b) => b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    ],
    [
      "hex of another transaction",
      () => new Response(CONFIRMED.hex),
      (b) => b.getTransaction(FRESH.txid),
    ],
    [
      "hex that is no transaction",
      () => new Response("0200000000"),
      (b) => b.getTransaction(FRESH.txid),
    ],
    [
      "utxo list not JSON",
      () => new Response("not json"),
      (b) => b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    ],
    ["unexpected status", () => new Response("gone", { status: 410 }), (b) => b.getTip()],
  ];
  for (const [name, handler, call] of cases) {
    await using f = faultSetup(handler);
    const err = await expectError(call(f.backend), UpstreamError, 502);
    assert.ok(!err.message.includes("127.0.0.1"), `${name}: ${err.message}`);
  }
});

Deno.test("EsploraBackend maps HTTP 429 to UnavailableError", async () => {
  await using f = faultSetup(() => new Response("Too Many Requests", { status: 429 }), {
    ...FAULT,
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  await expectError(f.backend.getTip(), UnavailableError, 503, /rate limiting/);
});

// Transport faults, through the real client.

Deno.test("EsploraBackend: a 503 on a read is retried, then UpstreamError 502", async () => {
  await using f = faultSetup(esploraHandler(withState()));
  f.server.setMode("status503");
  await expectError(f.backend.getTip(), UpstreamError, 502);
  assert.equal(f.server.requests, 2);
});

Deno.test("EsploraBackend: a 500 is UpstreamError 502", async () => {
  await using f = faultSetup(esploraHandler(withState()));
  f.server.setMode("status500");
  await expectError(f.backend.estimateFee(6), UpstreamError, 502);
});

Deno.test("EsploraBackend: a 5xx on broadcast is not retried", async () => {
  await using f = faultSetup(esploraHandler(withState()));
  f.server.setMode("status503");
  await expectError(f.backend.broadcast(FRESH.hex), UpstreamError, 502);
  assert.equal(f.server.requests, 1);
});

Deno.test("EsploraBackend: a hanging upstream is UpstreamTimeoutError 504", async () => {
  await using f = faultSetup(esploraHandler(withState()));
  f.server.setMode("hang");
  const started = performance.now();
  await expectError(f.backend.getTip(), UpstreamTimeoutError, 504);
  assert.ok(performance.now() - started < 2_000);
});

Deno.test("EsploraBackend: a slow drip is UpstreamTimeoutError 504", async () => {
  await using f = faultSetup(esploraHandler(withState()));
  f.server.setMode("slowDrip");
  await expectError(f.backend.estimateFee(6), UpstreamTimeoutError, 504);
});

Deno.test("EsploraBackend: an oversized body is UpstreamError 502", async () => {
  // A generous deadline: a loaded machine must not turn the size cap into a timeout.
  await using f = faultSetup(esploraHandler(withState()), { ...FAULT, timeoutMs: 10_000 });
  f.server.setMode("oversized");
  await expectError(
    f.backend.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!),
    UpstreamError,
    502,
    /exceeds/,
  );
});

Deno.test("EsploraBackend: a reset connection is UpstreamTimeoutError 504", async () => {
  await using f = faultSetup(esploraHandler(withState()));
  f.server.setMode("reset");
  await expectError(f.backend.getTip(), UpstreamTimeoutError, 504);
});

Deno.test("EsploraBackend: a refused connection is UnavailableError 503, for reads and broadcast", async () => {
  using client = new HttpClient(testUpstream("esplora", refusedUrl(), FAULT));
  const backend = new EsploraBackend(client);
  await expectError(backend.getTip(), UnavailableError, 503);
  await expectError(backend.broadcast(FRESH.hex), UnavailableError, 503);
});

Deno.test("EsploraBackend: a broadcast whose answer never comes is UpstreamTimeoutError, sent once", async () => {
  for (const mode of ["hang", "reset"] as const) {
    await using f = faultSetup(esploraHandler(withState()));
    f.server.setMode(mode);
    await expectError(
      f.backend.broadcast(FRESH.hex),
      UpstreamTimeoutError,
      504,
      /outcome is unknown/,
    );
    assert.equal(f.server.requests, 1, mode);
  }
});

Deno.test("EsploraBackend: the breaker opens after repeated failures and then nothing is sent", async () => {
  await using f = faultSetup(esploraHandler(withState()));
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
