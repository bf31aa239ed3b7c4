/**
 * A loopback Esplora REST server over a {@linkcode ChainState}, answering in
 * the formats of tests/vectors/esplora/ENDPOINTS.md: single values as plain
 * text, amounts in sats, fee estimates in sat/vB keyed by target strings.
 * Error bodies follow Blockstream electrs (`src/rest.rs`): 404 "Transaction
 * not found", `{"confirmed":false}` for the status of an unknown txid, and a
 * 400 carrying bitcoind's error for a refused `POST /tx`.
 *
 * Paths are served under `/api` (as on blockstream.info) and at the root.
 * By default the peer also answers mempool.space's `/v1/fees/mempool-blocks`
 * and `/v1/blocks` (https://mempool.space/docs/api/rest); with
 * `mempoolSpaceRoutes: false` they are 404, as on Blockstream's Esplora.
 * `GET /mempool` buckets its `fee_histogram` as electrs' `make_fee_histogram`
 * does (`src/util/fees.rs`: buckets close past 50,000 vB, labelled with their
 * lowest fee rate).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import {
  acceptTx,
  blockAt,
  blockByHash,
  blockMedianAt,
  blockTimeAt,
  type ChainState,
  isAddressForPeer,
  judgeTx,
  mempoolByFeeRate,
  type PeerBlock,
} from "./chain_state.ts";

/** How a refused broadcast's 400 body is worded. */
export type EsploraErrorStyle =
  /** Current Blockstream electrs: `sendrawtransaction RPC error -26: <message>`. */
  | "code"
  /** Older electrs and mempool.space: `sendrawtransaction RPC error: {"code":-26,"message":"…"}`. */
  | "json";

/** Options of the Esplora peer. */
export interface EsploraPeerOptions {
  /** Wording of refused broadcasts (default `code`). */
  errorStyle?: EsploraErrorStyle;
  /** Serve mempool.space's `/v1/...` routes (default true); false answers them 404. */
  mempoolSpaceRoutes?: boolean;
}

/** A running chain peer. */
export interface ChainPeer extends AsyncDisposable {
  /** Base URL to configure the adapter's client with. */
  readonly url: string;
  close(): Promise<void>;
}

const HASH = /^[0-9a-f]{64}$/;

/**
 * The request handler, usable on its own (e.g. inside the fault server).
 *
 * @param state the chain to serve
 * @param options error wording
 */
export function esploraHandler(
  state: ChainState,
  options: EsploraPeerOptions = {},
): (req: Request) => Promise<Response> {
  const style = options.errorStyle ?? "code";
  const mempoolSpace = options.mempoolSpaceRoutes ?? true;
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname.replace(/^\/api(?=\/)/, "");
    state.requests.push(`esplora ${req.method} ${path}`);
    const seg = path.split("/").slice(1);
    if (req.method === "GET") {
      if (path === "/blocks/tip/height") return text(String(state.tip.height));
      if (path === "/blocks/tip/hash") return text(state.tip.hash);
      if (path === "/fee-estimates") {
        const body: Record<string, number> = {};
        for (const [target, satPerKvb] of state.feeRatesSatPerKvb) {
          body[String(target)] = satPerKvb / 1000;
        }
        return json(body);
      }
      if (path === "/mempool") return json(mempoolValue(state));
      if (mempoolSpace && path === "/v1/fees/mempool-blocks") return json(mempoolBlocks(state));
      if (mempoolSpace && path === "/v1/blocks") return json(recentBlocks(state));
      if (seg[0] === "block-height" && seg.length === 2) {
        if (!/^\d+$/.test(seg[1]!)) return text("Invalid number", 400);
        const block = blockAt(state, Number(seg[1]));
        return block === undefined ? text("Block not found", 404) : text(block.hash);
      }
      if (seg[0] === "block" && seg.length === 2) {
        if (!HASH.test(seg[1]!)) return text("Invalid hex string", 400);
        const block = blockByHash(state, seg[1]!);
        return block === undefined ? text("Block not found", 404) : json(blockValue(block));
      }
      if (seg[0] === "address" && seg.length === 3 && seg[2] === "utxo") {
        const address = decodeURIComponent(seg[1]!);
        if (!isAddressForPeer(state, address)) return text("Address on invalid network", 400);
        return json(
          state.utxos.filter((u) => u.address === address).map((u) => ({
            txid: u.txid,
            vout: u.vout,
            status: statusValue(u.block),
            value: Number(u.valueSats),
          })),
        );
      }
      if (seg[0] === "tx" && seg.length === 3 && (seg[2] === "hex" || seg[2] === "status")) {
        const txid = seg[1]!;
        if (!HASH.test(txid)) return text("Invalid hex string", 400);
        const tx = state.txs.get(txid);
        if (seg[2] === "status") return json(statusValue(tx?.block));
        return tx === undefined ? text("Transaction not found", 404) : text(tx.hex);
      }
    }
    if (req.method === "POST" && path === "/tx") {
      const body = (await req.text()).trim();
      const verdict = judgeTx(state, body);
      switch (verdict.kind) {
        case "malformed":
          return rpcError(style, -22, "TX decode failed. Make sure the tx has at least one input.");
        case "confirmed":
          return rpcError(style, -27, "Transaction outputs already in utxo set");
        case "in-mempool":
          return text(verdict.tx.txid);
        case "rejected":
          return rpcError(style, verdict.rejection.code, verdict.rejection.message);
        case "acceptable":
          acceptTx(state, body, verdict.tx.txid);
          return text(verdict.tx.txid);
      }
    }
    return text("Endpoint does not exist", 404);
  };
}

/**
 * Serve `state` on 127.0.0.1 at a free port.
 *
 * @param state the chain to serve
 * @param options error wording
 */
export function startEsploraPeer(state: ChainState, options: EsploraPeerOptions = {}): ChainPeer {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    esploraHandler(state, options),
  );
  const close = () => server.shutdown();
  return {
    url: `http://127.0.0.1:${server.addr.port}/api`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function statusValue(block: PeerBlock | undefined): Record<string, unknown> {
  if (block === undefined) return { confirmed: false };
  return {
    confirmed: true,
    block_height: block.height,
    block_hash: block.hash,
    block_time: 1_700_000_000 + block.height * 600,
  };
}

/** `GET /mempool`: totals and electrs' fee histogram. */
function mempoolValue(state: ChainState): Record<string, unknown> {
  const entries = mempoolByFeeRate(state);
  const histogram: [number, number][] = [];
  let bin = 0;
  let last = 0;
  for (const e of entries) {
    if (bin > 50_000 && last !== e.feeRateSatVb) {
      histogram.push([last, bin]);
      bin = 0;
    }
    last = e.feeRateSatVb;
    bin += e.vsize;
  }
  if (bin > 0) histogram.push([last, bin]);
  return {
    count: entries.length,
    vsize: entries.reduce((sum, e) => sum + e.vsize, 0),
    total_fee: Number(entries.reduce((sum, e) => sum + e.feeSats, 0n)),
    fee_histogram: histogram,
  };
}

/**
 * mempool.space's projected blocks: the mempool from the highest fee rate
 * down, cut into blocks of 1,000,000 vB (at most 8, the last taking the rest).
 * Simplification: `medianFee` is the rate of the transaction holding the
 * block's middle vB, and `feeRange` only its lowest and highest rates.
 */
function mempoolBlocks(state: ChainState): Record<string, unknown>[] {
  const blocks: ReturnType<typeof mempoolByFeeRate>[] = [];
  let current: ReturnType<typeof mempoolByFeeRate> = [];
  let vsize = 0;
  for (const e of mempoolByFeeRate(state)) {
    if (vsize + e.vsize > 1_000_000 && current.length > 0 && blocks.length < 7) {
      blocks.push(current);
      current = [];
      vsize = 0;
    }
    current.push(e);
    vsize += e.vsize;
  }
  if (current.length > 0) blocks.push(current);
  return blocks.map((txs) => {
    const blockVSize = txs.reduce((sum, e) => sum + e.vsize, 0);
    let depth = 0;
    const middle = txs.find((e) => (depth += e.vsize) >= blockVSize / 2)!;
    return {
      blockSize: blockVSize * 4,
      blockVSize,
      nTx: txs.length,
      totalFees: Number(txs.reduce((sum, e) => sum + e.feeSats, 0n)),
      medianFee: middle.feeRateSatVb,
      feeRange: [txs[txs.length - 1]!.feeRateSatVb, txs[0]!.feeRateSatVb],
    };
  });
}

/** mempool.space `GET /v1/blocks`: the 15 blocks from the tip down, with `extras`. */
function recentBlocks(state: ChainState): Record<string, unknown>[] {
  const out = [];
  for (let h = state.tip.height; h >= 0 && h > state.tip.height - 15; h--) {
    const known = blockAt(state, h);
    // Heights the state does not name get a stable made-up hash.
    const id = known?.hash ?? hex.encode(sha256(new TextEncoder().encode(`block ${h}`)));
    out.push({
      ...blockValue({ height: h, hash: id }),
      extras: {
        medianFee: blockMedianAt(state, h),
        feeRange: [1, blockMedianAt(state, h), 500],
        reward: 312_500_000,
        totalFees: 10_000_000,
      },
    });
  }
  return out;
}

function blockValue(block: PeerBlock): Record<string, unknown> {
  return {
    id: block.hash,
    height: block.height,
    version: 536870912,
    timestamp: blockTimeAt(block.height),
    tx_count: 1,
    size: 285,
    weight: 1140,
    merkle_root: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
    previousblockhash: block.height === 0 ? null : "00".repeat(32),
    mediantime: 1_700_000_000 + block.height * 600 - 3000,
    nonce: 2,
    bits: 545259519,
    difficulty: 4.6565423739069247e-10,
  };
}

function rpcError(style: EsploraErrorStyle, code: number, message: string): Response {
  return text(
    style === "json"
      ? `sendrawtransaction RPC error: ${JSON.stringify({ code, message })}`
      : `sendrawtransaction RPC error ${code}: ${message}`,
    400,
  );
}

function text(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain" } });
}

function json(body: unknown): Response {
  return Response.json(body);
}
