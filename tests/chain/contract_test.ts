/**
 * One contract table run against every `ChainBackend` adapter, each over a
 * real `HttpClient` and a loopback peer speaking the upstream's documented
 * format (Esplora REST; Core JSON-RPC 1.0 and 2.0).
 */
import assert from "node:assert/strict";
import type { ChainBackend } from "../../src/chain/backend.ts";
import {
  AppError,
  UnavailableError,
  UpstreamError,
  ValidationError,
} from "../../src/errors/app_error.ts";
import {
  type ChainState,
  loadRecordedBlock,
  PEER_GENESIS,
  type PeerNetwork,
} from "../_peers/chain_state.ts";
import {
  BIG_TXID,
  bitcoindHarness,
  contractState,
  esploraHarness,
  type Harness,
  HARNESS_NOW_MS,
  TIP,
} from "./_harness.ts";

const block = await loadRecordedBlock();
const [CONFIRMED, MEMPOOL, FRESH] = block.tx as [
  (typeof block.tx)[0],
  (typeof block.tx)[0],
  (typeof block.tx)[0],
];
const RECORDED_BLOCK = { height: block.height, hash: block.hash };
const TESTNET_ADDRESS = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx";

type Kind = Harness["kind"];
type ErrorClass = abstract new (...args: never[]) => Error;
type Expectation =
  | { value: unknown }
  | { error: ErrorClass; status?: number; detail?: RegExp };

interface Row {
  name: string;
  setup?: (state: ChainState) => void;
  call: (backend: ChainBackend) => Promise<unknown>;
  expect: Expectation | ((kind: Kind) => Expectation);
  /** Requests that must (not) have reached the peer, by kind. */
  requests?: (requests: string[], kind: Kind) => void;
}

function onNetwork(network: PeerNetwork): (s: ChainState) => void {
  return (s) => {
    s.network = network;
    s.tip = { height: 0, hash: PEER_GENESIS[network] };
  };
}

const rejectMinRelay = (s: ChainState) =>
  s.rejections.set(FRESH.txid, {
    rejectReason: "min relay fee not met",
    code: -26,
    message: "min relay fee not met, 100 < 155",
  });

/** The port declares the snapshot optional (see backend.ts); both adapters have it. */
function snapshotOf(b: ChainBackend) {
  assert.ok(b.getMempoolSnapshot !== undefined, `${b.kind} has no getMempoolSnapshot()`);
  return b.getMempoolSnapshot();
}

/** Header time of the block at `height` on the peers' chain. */
const blockTime = (height: number) => 1_700_000_000 + height * 600;

const ROWS: Row[] = [
  // Network detection
  ...(["mainnet", "testnet4", "signet", "regtest"] as const).map((network): Row => ({
    name: `getNetwork() detects ${network}`,
    setup: onNetwork(network),
    call: (b) => b.getNetwork(),
    expect: { value: network },
  })),
  {
    name: "getNetwork() refuses testnet3",
    setup: onNetwork("testnet3"),
    call: (b) => b.getNetwork(),
    expect: { error: UpstreamError, status: 502, detail: /testnet3, which is not supported/ },
  },
  // Tip
  {
    name: "getTip() returns the best block's height and hash",
    call: (b) => b.getTip(),
    expect: { value: TIP },
  },
  // Fee estimates: Esplora sends sat/vB (2.5, 1.234), Core BTC/kvB (0.00002500, 0.00001234).
  {
    name: "estimateFee(2) converts 2.5 sat/vB or 0.000025 BTC/kvB to 2500 sat/kvB",
    call: (b) => b.estimateFee(2),
    expect: { value: { satPerKvb: 2500, targetBlocks: 2 } },
  },
  {
    name: "estimateFee(6) converts 1.234 sat/vB or 0.00001234 BTC/kvB to 1234 sat/kvB",
    call: (b) => b.estimateFee(6),
    expect: { value: { satPerKvb: 1234, targetBlocks: 6 } },
  },
  {
    name: "estimateFee(1) answers with the 2-block estimate",
    call: (b) => b.estimateFee(1),
    expect: { value: { satPerKvb: 2500, targetBlocks: 2 } },
  },
  {
    name: "estimateFee(144) returns the 144-block estimate",
    call: (b) => b.estimateFee(144),
    expect: { value: { satPerKvb: 1000, targetBlocks: 144 } },
  },
  {
    name: "estimateFee() without estimates is UnavailableError",
    setup: (s) => s.feeRatesSatPerKvb.clear(),
    call: (b) => b.estimateFee(6),
    expect: { error: UnavailableError, status: 503 },
  },
  {
    name: "estimateFee(0) is a RangeError before any request",
    call: (b) => b.estimateFee(0),
    expect: { error: RangeError },
    requests: (r) => assert.deepEqual(r, []),
  },
  // Mempool snapshot (CONTRACT_MEMPOOL, CONTRACT_BLOCK_MEDIANS in _harness.ts)
  {
    name: "getMempoolSnapshot() gives totals, electrs buckets, the projected and recent medians",
    call: snapshotOf,
    expect: {
      value: {
        timestampSec: Math.floor(HARNESS_NOW_MS / 1000),
        height: TIP.height,
        lastBlockTimeSec: blockTime(TIP.height),
        mempoolCount: 6,
        mempoolVsize: 240_350,
        mempoolTotalFeeSat: 4_931_500,
        // The 200 vB tx at 50 and the 150 vB tx at 10 join the big ones paying the same rate.
        histogram: [[50, 60_200], [20, 60_000], [10, 60_150], [2, 60_000]],
        // Middle of the 240,350 vB mempool (less than a block): the 20 sat/vB bucket.
        nextBlockMedianFeeSatVb: 20,
        recentBlockMedianFeesSatVb: [12, 9, 15, 7, 30, 11],
      },
    },
  },
  {
    name: "getMempoolSnapshot() of an empty mempool has no histogram and no projected median",
    setup: (s) => {
      s.mempoolEntries = [];
    },
    call: snapshotOf,
    expect: {
      value: {
        timestampSec: Math.floor(HARNESS_NOW_MS / 1000),
        height: TIP.height,
        lastBlockTimeSec: blockTime(TIP.height),
        mempoolCount: 0,
        mempoolVsize: 0,
        mempoolTotalFeeSat: 0,
        histogram: [],
        nextBlockMedianFeeSatVb: null,
        recentBlockMedianFeesSatVb: [12, 9, 15, 7, 30, 11],
      },
    },
  },
  {
    name: "getMempoolSnapshot() on a chain of only its genesis block has one recent median",
    setup: onNetwork("regtest"),
    call: async (b) => {
      const s = await snapshotOf(b);
      return [s.height, s.lastBlockTimeSec, s.recentBlockMedianFeesSatVb];
    },
    expect: { value: [0, blockTime(0), [12]] },
  },
  // UTXOs
  {
    name: "getAddressUtxos() returns a confirmed output with exact sats and confirmations",
    call: (b) => b.getAddressUtxos(CONFIRMED.vout[0]!.scriptPubKey.address!),
    expect: (kind) => ({
      value: [{
        txid: CONFIRMED.txid,
        vout: 0,
        valueSats: 436_956n,
        confirmations: TIP.height - block.height + 1,
        ...(kind === "bitcoind" ? { scriptPubKeyHex: CONFIRMED.vout[0]!.scriptPubKey.hex } : {}),
      }],
    }),
  },
  {
    name: "getAddressUtxos() converts 1 sat, 1234567.89012345 BTC and 20999999.9769 BTC exactly",
    call: async (b) =>
      (await b.getAddressUtxos(FRESH.vout[0]!.scriptPubKey.address!)).map((u) => [
        u.txid,
        u.vout,
        u.valueSats,
        u.confirmations,
      ]),
    expect: {
      value: [
        [BIG_TXID, 0, 1n, 1],
        [BIG_TXID, 1, 123_456_789_012_345n, 1],
        [BIG_TXID, 2, 2_099_999_997_690_000n, 1],
      ],
    },
  },
  {
    name:
      "getAddressUtxos() includes mempool outputs with 0 confirmations (Esplora) or omits them (Core)",
    call: (b) => b.getAddressUtxos(MEMPOOL.vout[0]!.scriptPubKey.address!),
    expect: (kind) => ({
      value: kind === "esplora"
        ? [{ txid: MEMPOOL.txid, vout: 0, valueSats: 214_378n, confirmations: 0 }]
        : [],
    }),
  },
  {
    name: "getAddressUtxos() of an address with nothing returns []",
    call: (b) => b.getAddressUtxos(FRESH.vout[1]!.scriptPubKey.address!),
    expect: { value: [] },
  },
  {
    name: "getAddressUtxos() of another network's address is a 422",
    call: (b) => b.getAddressUtxos(TESTNET_ADDRESS),
    expect: {
      error: ValidationError,
      status: 422,
      detail: /^Address rejected by the chain backend/,
    },
  },
  {
    name: "getAddressUtxos() refuses descriptor syntax before any request",
    call: (b) => b.getAddressUtxos(`${FRESH.vout[1]!.scriptPubKey.address!}),addr(x`),
    expect: { error: RangeError },
    requests: (r) => assert.deepEqual(r, []),
  },
  // Transactions
  {
    name: "getTransaction() of a confirmed transaction gives height, hash and confirmations",
    call: (b) => b.getTransaction(CONFIRMED.txid),
    expect: {
      value: {
        txid: CONFIRMED.txid,
        hex: CONFIRMED.hex,
        status: {
          state: "confirmed",
          blockHeight: RECORDED_BLOCK.height,
          blockHash: RECORDED_BLOCK.hash,
          confirmations: 11,
        },
      },
    },
  },
  {
    name: "getTransaction() of a mempool transaction is unconfirmed",
    call: (b) => b.getTransaction(MEMPOOL.txid),
    expect: { value: { txid: MEMPOOL.txid, hex: MEMPOOL.hex, status: { state: "unconfirmed" } } },
  },
  {
    name: "getTransaction() of an unknown txid is null",
    call: (b) => b.getTransaction(FRESH.txid),
    expect: { value: null },
  },
  {
    name: "getTransaction() of a malformed txid is a RangeError before any request",
    call: (b) => b.getTransaction("../blocks/tip/hash"),
    expect: { error: RangeError },
    requests: (r) => assert.deepEqual(r, []),
  },
  // Broadcast
  {
    name: "broadcast() of an acceptable transaction returns its txid and relays it once",
    call: (b) => b.broadcast(FRESH.hex),
    expect: { value: { txid: FRESH.txid } },
    requests: (r, kind) =>
      assert.deepEqual(
        r,
        kind === "esplora"
          ? ["esplora POST /tx"]
          : ["bitcoind testmempoolaccept", "bitcoind sendrawtransaction"],
      ),
  },
  {
    name: "broadcast() accepts uppercase hex",
    call: (b) => b.broadcast(FRESH.hex.toUpperCase()),
    expect: { value: { txid: FRESH.txid } },
  },
  {
    name: "broadcast() refused by policy is a 422 naming the reason",
    setup: rejectMinRelay,
    call: (b) => b.broadcast(FRESH.hex),
    expect: {
      error: ValidationError,
      status: 422,
      detail: /^Transaction rejected by the network: min relay fee not met/,
    },
    requests: (r, kind) =>
      assert.deepEqual(
        r,
        kind === "esplora" ? ["esplora POST /tx"] : ["bitcoind testmempoolaccept"],
      ),
  },
  {
    name: "broadcast() with missing inputs is a 422",
    setup: (s) =>
      s.rejections.set(FRESH.txid, {
        rejectReason: "missing-inputs",
        code: -25,
        message: "bad-txns-inputs-missingorspent",
      }),
    call: (b) => b.broadcast(FRESH.hex),
    expect: { error: ValidationError, status: 422, detail: /missing/ },
  },
  {
    name: "broadcast() of a confirmed transaction returns its txid",
    call: (b) => b.broadcast(CONFIRMED.hex),
    expect: { value: { txid: CONFIRMED.txid } },
  },
  {
    name: "broadcast() of a transaction already in the mempool returns its txid",
    call: (b) => b.broadcast(MEMPOOL.hex),
    expect: { value: { txid: MEMPOOL.txid } },
  },
  {
    name: "broadcast() of bytes that are not a transaction is a 422 before any request",
    call: (b) => b.broadcast("0200000000"),
    expect: { error: ValidationError, status: 422 },
    requests: (r) => assert.deepEqual(r, []),
  },
  {
    name: "broadcast() of non-hex is a RangeError",
    call: (b) => b.broadcast("not hex"),
    expect: { error: RangeError },
  },
];

const HARNESSES: { label: string; make: (state: ChainState) => Harness }[] = [
  { label: "EsploraBackend", make: (s) => esploraHarness(s) },
  { label: "BitcoindBackend (JSON-RPC 1.0)", make: (s) => bitcoindHarness(s) },
  {
    label: "BitcoindBackend (JSON-RPC 2.0)",
    make: (s) => bitcoindHarness(s, { backend: { jsonRpcVersion: "2.0" } }),
  },
];

for (const { label, make: makeHarness } of HARNESSES) {
  for (const row of ROWS) {
    Deno.test(`${label}: ${row.name}`, async () => {
      const state = contractState(block);
      row.setup?.(state);
      await using h = makeHarness(state);
      const expectation = typeof row.expect === "function" ? row.expect(h.kind) : row.expect;
      if ("value" in expectation) {
        assert.deepEqual(await row.call(h.backend), expectation.value);
      } else {
        const err = await row.call(h.backend).then(
          (v) => assert.fail(`expected ${expectation.error.name}, got ${JSON.stringify(v)}`),
          (e: unknown) => e,
        );
        assert.ok(err instanceof expectation.error, `got ${String(err)}`);
        if (expectation.status !== undefined) {
          assert.ok(err instanceof AppError);
          assert.equal(err.status, expectation.status);
        }
        if (expectation.detail !== undefined) {
          assert.match((err as Error).message, expectation.detail);
        }
      }
      row.requests?.(state.requests, h.kind);
    });
  }
}
