/**
 * Builds each chain adapter over a real `HttpClient` and its loopback peer,
 * plus the mainnet state the contract table starts from.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type BitcoindAuth,
  BitcoindBackend,
  type BitcoindBackendOptions,
} from "../../src/chain/bitcoind_backend.ts";
import type { ChainBackend } from "../../src/chain/backend.ts";
import { EsploraBackend } from "../../src/chain/esplora_backend.ts";
import { AppError } from "../../src/errors/app_error.ts";
import { HttpClient } from "../../src/net/http_client.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import { type BitcoindPeerOptions, startBitcoindPeer } from "../_peers/bitcoind_peer.ts";
import {
  type ChainState,
  createChainState,
  type PeerMempoolEntry,
  type RecordedBlock,
} from "../_peers/chain_state.ts";
import { type EsploraPeerOptions, startEsploraPeer } from "../_peers/esplora_peer.ts";

/**
 * Client settings for tests: short deadlines and backoff, one retry, and a
 * breaker that opens after 3 failures in a row and stays open for the test.
 *
 * @param name upstream name
 * @param baseUrl the peer's URL
 * @param overrides anything to change
 */
export function testUpstream(
  name: string,
  baseUrl: string,
  overrides: Partial<UpstreamOptions> = {},
): UpstreamOptions {
  return {
    name,
    baseUrl,
    timeoutMs: 2_000,
    maxResponseBytes: 256 * 1024,
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 20 },
    breaker: {
      consecutiveFailures: 3,
      failureRate: 1,
      windowMs: 60_000,
      minRequests: 1_000,
      openMs: 60_000,
    },
    ...overrides,
  };
}

/** The adapters' clock in every harness (Unix ms), so snapshots are deterministic. */
export const HARNESS_NOW_MS = 2_144_000_123_456;

/** One adapter wired to its peer. */
export interface Harness extends AsyncDisposable {
  /** Test-name prefix, e.g. `EsploraBackend`. */
  label: string;
  kind: "esplora" | "bitcoind";
  backend: ChainBackend;
  client: HttpClient;
  state: ChainState;
}

/**
 * `EsploraBackend` over an Esplora peer serving `state`.
 *
 * @param state the chain
 * @param peerOptions peer behaviour
 * @param upstream client setting overrides
 */
export function esploraHarness(
  state: ChainState,
  peerOptions: EsploraPeerOptions = {},
  upstream: Partial<UpstreamOptions> = {},
): Harness {
  const peer = startEsploraPeer(state, peerOptions);
  const client = new HttpClient(testUpstream("esplora", peer.url, upstream));
  const close = async () => {
    client.close();
    await peer.close();
  };
  return {
    label: "EsploraBackend",
    kind: "esplora",
    backend: new EsploraBackend(client, { now: () => HARNESS_NOW_MS }),
    client,
    state,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * `BitcoindBackend` over a Core peer serving `state`.
 *
 * @param state the chain
 * @param options adapter options, peer options, and credentials the adapter sends
 */
export function bitcoindHarness(
  state: ChainState,
  options: {
    backend?: BitcoindBackendOptions;
    peer?: BitcoindPeerOptions;
    auth?: BitcoindAuth;
    upstream?: Partial<UpstreamOptions>;
  } = {},
): Harness {
  const peer = startBitcoindPeer(state, options.peer);
  const client = new HttpClient(testUpstream("bitcoind", peer.url, options.upstream));
  const close = async () => {
    client.close();
    await peer.close();
  };
  const version = options.backend?.jsonRpcVersion ?? "1.0";
  return {
    label: `BitcoindBackend (JSON-RPC ${version})`,
    kind: "bitcoind",
    backend: new BitcoindBackend(
      client,
      options.auth ?? { user: "user", password: "pass" },
      { now: () => HARNESS_NOW_MS, ...options.backend },
    ),
    client,
    state,
    [Symbol.asyncDispose]: close,
  };
}

/** Tip of the contract chain: 11 blocks above the recorded block 739990. */
export const TIP = {
  height: 740_000,
  hash: "00000000000000000001c0ffee" + "0".repeat(36) + "01",
};

/**
 * The contract mempool: big transactions at 50, 20, 10 and 2 sat/vB plus a
 * small one sharing the 50 and the 10 rate, so electrs' 50,000 vB buckets
 * hold one rate each and the same-rate pairs share a bucket.
 */
export const CONTRACT_MEMPOOL: readonly PeerMempoolEntry[] = [
  [60_000, 3_000_000n],
  [200, 10_000n],
  [60_000, 1_200_000n],
  [60_000, 600_000n],
  [150, 1_500n],
  [60_000, 120_000n],
].map(([vsize, feeSats], i) => ({
  txid: (i + 1).toString(16).padStart(2, "0").repeat(32),
  vsize: vsize as number,
  feeSats: feeSats as bigint,
}));

/** Recent blocks' medians (sat/vB), tip first: two more than a snapshot carries. */
export const CONTRACT_BLOCK_MEDIANS: readonly number[] = [12, 9, 15, 7, 30, 11, 4, 8];

/** Synthetic outpoints paying the taproot address, for the BTC-amount edge cases. */
export const BIG_TXID = "ab".repeat(32);

/**
 * The contract chain on mainnet, built from the recorded block:
 * tx[0] confirmed in 739990, tx[1] in the mempool, tx[2] unknown (to broadcast);
 * UTXOs: tx[0]:0 confirmed, tx[1]:0 unconfirmed, and three synthetic ones at
 * 1 sat, 1234567.89012345 BTC and 20999999.9769 BTC confirmed at the tip.
 * Fee estimates: 2 → 2500, 6 → 1234, 144 → 1000 sat/kvB. Mempool fee data:
 * {@linkcode CONTRACT_MEMPOOL}; block medians: {@linkcode CONTRACT_BLOCK_MEDIANS}.
 *
 * @param block the recorded block
 */
export function contractState(block: RecordedBlock): ChainState {
  const [confirmed, mempool] = block.tx as [RecordedBlock["tx"][0], RecordedBlock["tx"][0]];
  const recorded = { height: block.height, hash: block.hash };
  const taproot = block.tx[2]!.vout[0]!.scriptPubKey;
  return createChainState({
    network: "mainnet",
    tip: { ...TIP },
    txs: new Map([
      [confirmed.txid, { hex: confirmed.hex, block: recorded }],
      [mempool.txid, { hex: mempool.hex }],
    ]),
    utxos: [
      {
        address: confirmed.vout[0]!.scriptPubKey.address!,
        txid: confirmed.txid,
        vout: 0,
        valueSats: 436_956n,
        scriptPubKeyHex: confirmed.vout[0]!.scriptPubKey.hex,
        block: recorded,
      },
      {
        address: mempool.vout[0]!.scriptPubKey.address!,
        txid: mempool.txid,
        vout: 0,
        valueSats: 214_378n,
        scriptPubKeyHex: mempool.vout[0]!.scriptPubKey.hex,
      },
      ...[1n, 123_456_789_012_345n, 2_099_999_997_690_000n].map((valueSats, vout) => ({
        address: taproot.address!,
        txid: BIG_TXID,
        vout,
        valueSats,
        scriptPubKeyHex: taproot.hex,
        block: { ...TIP },
      })),
    ],
    feeRatesSatPerKvb: new Map([[2, 2500], [6, 1234], [144, 1000]]),
    mempoolEntries: CONTRACT_MEMPOOL.map((e) => ({ ...e })),
    blockMedianFeesSatVb: [...CONTRACT_BLOCK_MEDIANS],
  });
}

/**
 * Await `promise`, require it to reject with `cls` (and `status` for an
 * `AppError`), and return the error.
 *
 * @param promise the call
 * @param cls expected class
 * @param status expected HTTP status
 * @param detail pattern the message must match
 */
export async function expectError<E extends Error>(
  promise: Promise<unknown>,
  cls: abstract new (...args: never[]) => E,
  status?: number,
  detail?: RegExp,
): Promise<E> {
  const err = await promise.then(
    (v) => assert.fail(`expected ${cls.name}, got ${String(JSON.stringify(v, bigints))}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  if (status !== undefined) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.status, status, err.message);
  }
  if (detail !== undefined) assert.match(err.message, detail);
  return err;
}

function bigints(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}
