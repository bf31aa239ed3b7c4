/**
 * `getMempoolSnapshot()` beyond the contract table: the Esplora adapter's
 * mempool.space routes and their 404 fallback, Core's call sequence, exact
 * BTC conversion and pre-v22 `getmempoolinfo`, a node still loading its
 * mempool, and malformed replies (502) on every route either adapter reads.
 */
import assert from "node:assert/strict";
import { BitcoindBackend } from "../../src/chain/bitcoind_backend.ts";
import { EsploraBackend } from "../../src/chain/esplora_backend.ts";
import type { MempoolSnapshot } from "../../src/chain/mempool_snapshot.ts";
import { UnavailableError, UpstreamError } from "../../src/errors/app_error.ts";
import { feeFeatures } from "../../src/ml/features/fee_features.ts";
import { HttpClient } from "../../src/net/http_client.ts";
import { bitcoindHandler } from "../_peers/bitcoind_peer.ts";
import { type ChainState, loadRecordedBlock } from "../_peers/chain_state.ts";
import { esploraHandler } from "../_peers/esplora_peer.ts";
import { type FaultHandler, startFaultServer } from "../_peers/fault_server.ts";
import {
  bitcoindHarness,
  contractState,
  esploraHarness,
  expectError,
  HARNESS_NOW_MS,
  testUpstream,
  TIP,
} from "./_harness.ts";

const block = await loadRecordedBlock();

function withState(mutate: (s: ChainState) => void = () => {}): ChainState {
  const s = contractState(block);
  mutate(s);
  return s;
}

/** One 60,000 vB bucket holding a 40,000 vB tx at 30 and a 20,000 vB tx at 25 sat/vB. */
const ONE_BUCKET = (s: ChainState) => {
  s.mempoolEntries = [
    { txid: "aa".repeat(32), vsize: 40_000, feeSats: 1_200_000n },
    { txid: "bb".repeat(32), vsize: 20_000, feeSats: 500_000n },
  ];
};

function snapshot(b: { getMempoolSnapshot?: () => Promise<MempoolSnapshot> }) {
  assert.ok(b.getMempoolSnapshot !== undefined);
  return b.getMempoolSnapshot();
}

/** An adapter over a fault server whose handler is the real peer with some answers replaced. */
function overridden<B>(
  handler: FaultHandler,
  make: (client: HttpClient) => B,
) {
  const server = startFaultServer(handler);
  const client = new HttpClient(testUpstream("peer", server.url, { timeoutMs: 2_000 }));
  return {
    backend: make(client),
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
    },
  };
}

/** The Esplora peer, except that `path` (without `/api`) answers `reply`. */
function esploraWith(path: string, reply: () => Response): FaultHandler {
  const peer = esploraHandler(withState());
  return (req) => new URL(req.url).pathname.replace(/^\/api/, "") === path ? reply() : peer(req);
}

/** The Core peer, except that `method` answers with `result` (JSON-RPC 1.0). */
function bitcoindWith(method: string, result: (params: unknown[]) => unknown): FaultHandler {
  const peer = bitcoindHandler(withState());
  return async (req) => {
    // Read the body once and hand the peer a copy: cloning the served request
    // would touch its abort signal, which Deno.serve warns about.
    const body = await req.text();
    const call = JSON.parse(body) as { id: unknown; method: string; params: unknown[] };
    if (call.method !== method) {
      return peer(new Request(req.url, { method: req.method, headers: req.headers, body }));
    }
    return Response.json({ result: result(call.params), error: null, id: call.id });
  };
}

const newEsplora = (c: HttpClient) => new EsploraBackend(c, { now: () => HARNESS_NOW_MS });
const newBitcoind = (c: HttpClient) =>
  new BitcoindBackend(c, { user: "user", password: "pass" }, { now: () => HARNESS_NOW_MS });

Deno.test("EsploraBackend.getMempoolSnapshot() falls back to the histogram where /v1 routes are 404 (Blockstream)", async () => {
  const state = withState(ONE_BUCKET);
  await using h = esploraHarness(state, { mempoolSpaceRoutes: false });
  const s = await snapshot(h.backend);
  assert.deepEqual(s.histogram, [[25, 60_000]]);
  // The bucket's label, a lower bound: the middle vB really pays 30.
  assert.equal(s.nextBlockMedianFeeSatVb, 25);
  assert.deepEqual(s.recentBlockMedianFeesSatVb, []);
  assert.deepEqual(state.requests.filter((r) => r.includes("/v1/")).sort(), [
    "esplora GET /v1/blocks",
    "esplora GET /v1/fees/mempool-blocks",
  ]);
  assert.equal(feeFeatures(s).every(Number.isFinite), true);
});

Deno.test("EsploraBackend.getMempoolSnapshot() takes mempool.space's exact projected median over the histogram's", async () => {
  await using h = esploraHarness(withState(ONE_BUCKET));
  const s = await snapshot(h.backend);
  assert.deepEqual(s.histogram, [[25, 60_000]]);
  assert.equal(s.nextBlockMedianFeeSatVb, 30);
  assert.deepEqual(s.recentBlockMedianFeesSatVb, [12, 9, 15, 7, 30, 11]);
});

Deno.test("EsploraBackend.getMempoolSnapshot() reads the tip hash, then that block, for height and time", async () => {
  const state = withState();
  await using h = esploraHarness(state);
  const s = await snapshot(h.backend);
  assert.equal(s.height, TIP.height);
  const tipReads = state.requests.filter((r) => r.includes("/block"));
  assert.deepEqual(tipReads.filter((r) => !r.includes("/v1/")), [
    "esplora GET /blocks/tip/hash",
    `esplora GET /block/${TIP.hash}`,
  ]);
});

Deno.test("BitcoindBackend.getMempoolSnapshot() calls tip, header, mempool, then getblockstats for 6 heights", async () => {
  const state = withState();
  await using h = bitcoindHarness(state);
  await snapshot(h.backend);
  assert.deepEqual(state.requests, [
    "bitcoind getblockchaininfo",
    "bitcoind getblockheader",
    "bitcoind getmempoolinfo",
    "bitcoind getrawmempool",
    ...Array.from({ length: 6 }, () => "bitcoind getblockstats"),
  ]);
});

Deno.test("BitcoindBackend.getMempoolSnapshot() converts BTC fees exactly (0.29 BTC is 29,000,000 sats)", async () => {
  const state = withState((s) => {
    s.mempoolEntries = [
      { txid: "cc".repeat(32), vsize: 1000, feeSats: 29_000_000n },
      { txid: "dd".repeat(32), vsize: 141, feeSats: 1_410_001n },
    ];
  });
  await using h = bitcoindHarness(state);
  const s = await snapshot(h.backend);
  assert.equal(s.mempoolTotalFeeSat, 30_410_001);
  // 1,141 vB stay in one bucket, labelled with the lower rate.
  assert.deepEqual(s.histogram, [[1_410_001 / 141, 1141]]);
});

Deno.test("BitcoindBackend.getMempoolSnapshot() sums the entries' fees when getmempoolinfo has no total_fee (Core < 22)", async () => {
  await using h = overridden(
    bitcoindWith("getmempoolinfo", () => ({ loaded: true, size: 6, bytes: 240_350 })),
    newBitcoind,
  );
  assert.equal((await snapshot(h.backend)).mempoolTotalFeeSat, 4_931_500);
});

Deno.test("BitcoindBackend.getMempoolSnapshot() while the node loads its mempool is UnavailableError 503", async () => {
  await using h = bitcoindHarness(withState(), { peer: { mempoolLoading: true } });
  await expectError(snapshot(h.backend), UnavailableError, 503, /still loading its mempool/);
});

Deno.test("BitcoindBackend.getMempoolSnapshot() on a node without getblockstats is UpstreamError 502", async () => {
  await using h = bitcoindHarness(withState(), { peer: { unavailableMethods: ["getblockstats"] } });
  await expectError(
    snapshot(h.backend),
    UpstreamError,
    502,
    /does not offer the RPC "getblockstats"/,
  );
});

Deno.test("EsploraBackend.getMempoolSnapshot() refuses malformed replies with UpstreamError 502", async () => {
  const cases: [string, string, () => Response][] = [
    [
      "histogram pair of three",
      "/mempool",
      () => Response.json({ count: 1, vsize: 1, total_fee: 1, fee_histogram: [[1, 1, 1]] }),
    ],
    [
      "total_fee fractional",
      "/mempool",
      () => Response.json({ count: 1, vsize: 1, total_fee: 1.5, fee_histogram: [] }),
    ],
    [
      "count missing",
      "/mempool",
      () => Response.json({ vsize: 1, total_fee: 1, fee_histogram: [] }),
    ],
    [
      "negative histogram rate",
      "/mempool",
      () => Response.json({ count: 1, vsize: 1, total_fee: 1, fee_histogram: [[-1, 1]] }),
    ],
    ["mempool not JSON", "/mempool", () => new Response("<html>")],
    ["medianFee a string", "/v1/fees/mempool-blocks", () => Response.json([{ medianFee: "5" }])],
    ["mempool-blocks an object", "/v1/fees/mempool-blocks", () => Response.json({})],
    [
      "blocks without extras",
      "/v1/blocks",
      () => Response.json([{ id: TIP.hash, height: TIP.height }]),
    ],
    [
      "negative block median",
      "/v1/blocks",
      () => Response.json([{ id: TIP.hash, height: TIP.height, extras: { medianFee: -1 } }]),
    ],
    [
      "tip block without timestamp",
      `/block/${TIP.hash}`,
      () => Response.json({ id: TIP.hash, height: TIP.height }),
    ],
    [
      "500 on mempool-blocks is no fallback",
      "/v1/fees/mempool-blocks",
      () => new Response("boom", { status: 500 }),
    ],
    ["410 on blocks is no fallback", "/v1/blocks", () => new Response("gone", { status: 410 })],
  ];
  for (const [name, path, reply] of cases) {
    await using h = overridden(esploraWith(path, reply), newEsplora);
    const err = await expectError(snapshot(h.backend), UpstreamError, 502);
    assert.ok(!err.message.includes("127.0.0.1"), `${name}: ${err.message}`);
  }
});

Deno.test("BitcoindBackend.getMempoolSnapshot() refuses malformed replies with UpstreamError 502", async () => {
  const entry = { vsize: 100, fees: { base: 0.00001 } };
  const cases: [string, string, (params: unknown[]) => unknown][] = [
    [
      "header without time",
      "getblockheader",
      () => ({ hash: TIP.hash, height: TIP.height, confirmations: 1 }),
    ],
    [
      "header of another block",
      "getblockheader",
      () => ({ hash: "00".repeat(32), height: TIP.height, confirmations: 1, time: 1 }),
    ],
    ["mempool size a string", "getmempoolinfo", () => ({ size: "1", bytes: 1, total_fee: 0 })],
    [
      "total_fee above 21M BTC",
      "getmempoolinfo",
      () => ({ size: 1, bytes: 1, total_fee: 21_000_001 }),
    ],
    ["entry without fees", "getrawmempool", () => ({ ["ee".repeat(32)]: { vsize: 100 } })],
    [
      "entry with a negative fee",
      "getrawmempool",
      () => ({ ["ee".repeat(32)]: { vsize: 100, fees: { base: -0.0001 } } }),
    ],
    ["entry of zero vsize", "getrawmempool", () => ({ ["ee".repeat(32)]: { ...entry, vsize: 0 } })],
    ["entry keyed by a non-txid", "getrawmempool", () => ({ "not-a-txid": entry })],
    ["txid list instead of entries", "getrawmempool", () => ["ee".repeat(32)]],
    [
      "three percentiles",
      "getblockstats",
      (p) => ({ height: p[0], feerate_percentiles: [1, 2, 3] }),
    ],
    [
      "stats of another height",
      "getblockstats",
      (p) => ({ height: (p[0] as number) - 1, feerate_percentiles: [1, 2, 3, 4, 5] }),
    ],
    [
      "percentile a string",
      "getblockstats",
      (p) => ({ height: p[0], feerate_percentiles: [1, 2, "3", 4, 5] }),
    ],
  ];
  for (const [name, method, result] of cases) {
    await using h = overridden(bitcoindWith(method, result), newBitcoind);
    const err = await expectError(snapshot(h.backend), UpstreamError, 502);
    assert.ok(!err.message.includes("127.0.0.1"), `${name}: ${err.message}`);
  }
});
