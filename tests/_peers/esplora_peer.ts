/**
 * A loopback Esplora REST server over a {@linkcode ChainState}, answering in
 * the formats of tests/vectors/esplora/ENDPOINTS.md: single values as plain
 * text, amounts in sats, fee estimates in sat/vB keyed by target strings.
 * Error bodies follow Blockstream electrs (`src/rest.rs`): 404 "Transaction
 * not found", `{"confirmed":false}` for the status of an unknown txid, and a
 * 400 carrying bitcoind's error for a refused `POST /tx`.
 *
 * Paths are served under `/api` (as on blockstream.info) and at the root.
 *
 * @module
 */
import {
  acceptTx,
  blockAt,
  blockByHash,
  type ChainState,
  isAddressForPeer,
  judgeTx,
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

function blockValue(block: PeerBlock): Record<string, unknown> {
  return {
    id: block.hash,
    height: block.height,
    version: 536870912,
    timestamp: 1_700_000_000 + block.height * 600,
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
