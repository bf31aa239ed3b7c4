/**
 * A loopback Bitcoin Core JSON-RPC server over a {@linkcode ChainState},
 * answering in the formats of tests/vectors/bitcoind/RPC.md: BTC amounts as
 * JSON numbers with 8 decimals, fee rates in BTC/kvB, hyphenated
 * `reject-reason`, `estimatesmartfee` with `errors` and no `feerate` when it
 * has no estimate.
 *
 * Transport behaviour follows Core's HTTP server: basic auth (401 with an
 * empty body otherwise), POST only; JSON-RPC 1.0 errors with HTTP 500 (404 for
 * an unknown method) and `{result:null,error}`; JSON-RPC 2.0 requests get
 * HTTP 200 and either `result` or `error` (Core ≥ 28).
 *
 * Simplifications: `getrawtransaction` gives `vin`/`vout` without `asm`,
 * `desc` or `type`; `scantxoutset` unspents carry `desc` without a checksum.
 *
 * @module
 */
import {
  acceptTx,
  blockByHash,
  blockMedianAt,
  type ChainState,
  decodePeerTx,
  isAddressForPeer,
  judgeTx,
  mempoolByFeeRate,
  type PeerNetwork,
} from "./chain_state.ts";
import type { ChainPeer } from "./esplora_peer.ts";

/** Options of the Core peer. */
export interface BitcoindPeerOptions {
  /** Accepted credentials (default `user` / `pass`); read on every request. */
  user?: string;
  password?: string;
  /** With `-txindex` (default true); without, only mempool transactions are found. */
  txindex?: boolean;
  /** `warnings` as one string (before v28) instead of an array. */
  legacyWarnings?: boolean;
  /** Answer every call with -28 "Loading block index…". */
  warmingUp?: boolean;
  /** Answer `scantxoutset start` with "Scan already in progress". */
  scanInProgress?: boolean;
  /** Methods answered with -32601 "Method not found", as on an older node. */
  unavailableMethods?: string[];
  /** `getmempoolinfo` reports `loaded: false`, as while mempool.dat is read at startup. */
  mempoolLoading?: boolean;
  /** Methods that never answer (until the client gives up or the peer closes). */
  hangMethods?: string[];
}

type Params = unknown[];
type RpcResult = { result: unknown } | { error: { code: number; message: string } };

const HASH = /^[0-9a-f]{64}$/;
const CHAIN: Record<PeerNetwork, string> = {
  mainnet: "main",
  testnet3: "test",
  testnet4: "testnet4",
  signet: "signet",
  regtest: "regtest",
};

/**
 * The request handler, usable on its own (e.g. inside the fault server).
 *
 * @param state the chain to serve
 * @param options credentials and node behaviour
 * @param released resolves when hanging calls should end (the peer is closing); until
 *   then a method in `hangMethods` never answers
 */
export function bitcoindHandler(
  state: ChainState,
  options: BitcoindPeerOptions = {},
  released: Promise<void> = new Promise(() => {}),
): (req: Request) => Promise<Response> {
  return async (req) => {
    // Read per request: a test may change the credentials, as a restart changes the cookie.
    const expected = `Basic ${btoa(`${options.user ?? "user"}:${options.password ?? "pass"}`)}`;
    if (req.headers.get("authorization") !== expected) {
      state.requests.push("bitcoind 401");
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="jsonrpc"' },
      });
    }
    if (req.method !== "POST") {
      return new Response("JSONRPC server handles only POST requests", { status: 405 });
    }
    let body: unknown;
    try {
      body = JSON.parse(await req.text());
    } catch {
      return envelope("1.0", null, { error: { code: -32700, message: "Parse error" } }, 500);
    }
    const call = body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    const version = call.jsonrpc === "2.0" ? "2.0" : "1.0";
    const id = call.id ?? null;
    if (typeof call.method !== "string") {
      return envelope(version, id, { error: { code: -32600, message: "Method must be a string" } });
    }
    if (call.params !== undefined && !Array.isArray(call.params)) {
      return envelope(version, id, {
        error: { code: -32602, message: "Params must be an array (named params not served here)" },
      });
    }
    state.requests.push(`bitcoind ${call.method}`);
    if (options.hangMethods?.includes(call.method) === true) {
      // Not req.signal: waiting on it makes Deno.serve warn about its legacy abort behaviour.
      await released;
      return new Response(null, { status: 503 });
    }
    const out = options.warmingUp === true
      ? { error: { code: -28, message: "Loading block index…" } }
      : options.unavailableMethods?.includes(call.method) === true
      ? rpcError(-32601, "Method not found")
      : dispatch(state, options, call.method, (call.params ?? []) as Params);
    return envelope(version, id, out);
  };
}

/**
 * Serve `state` on 127.0.0.1 at a free port.
 *
 * @param state the chain to serve
 * @param options credentials and node behaviour
 */
export function startBitcoindPeer(state: ChainState, options: BitcoindPeerOptions = {}): ChainPeer {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    bitcoindHandler(state, options, released),
  );
  const close = () => {
    release();
    return server.shutdown();
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function dispatch(
  state: ChainState,
  options: BitcoindPeerOptions,
  method: string,
  params: Params,
): RpcResult {
  switch (method) {
    case "getblockchaininfo":
      return {
        result: {
          chain: CHAIN[state.network],
          blocks: state.tip.height,
          headers: state.tip.height,
          bestblockhash: state.tip.hash,
          difficulty: 4.656542373906925e-10,
          time: 1_700_000_000 + state.tip.height * 600,
          mediantime: 1_700_000_000 + state.tip.height * 600 - 3000,
          verificationprogress: 1,
          initialblockdownload: false,
          chainwork: "0".repeat(60) + "0002",
          size_on_disk: 293,
          pruned: false,
          warnings: options.legacyWarnings === true ? "" : [],
        },
      };
    case "estimatesmartfee":
      return estimateSmartFee(state, params);
    case "getblockheader": {
      const hash = params[0];
      if (typeof hash !== "string" || !HASH.test(hash)) {
        return rpcError(-8, "hash must be of length 64 (not 0, for '')");
      }
      const block = blockByHash(state, hash);
      if (block === undefined) return rpcError(-5, "Block not found");
      return {
        result: {
          hash: block.hash,
          confirmations: state.tip.height - block.height + 1,
          height: block.height,
          version: 536870912,
          versionHex: "20000000",
          merkleroot: "00".repeat(32),
          time: 1_700_000_000 + block.height * 600,
          mediantime: 1_700_000_000 + block.height * 600 - 3000,
          nonce: 0,
          bits: "207fffff",
          difficulty: 4.656542373906925e-10,
          chainwork: "0".repeat(60) + "0002",
          nTx: 1,
        },
      };
    }
    case "getrawtransaction":
      return getRawTransaction(state, options, params);
    case "getmempoolinfo":
      return getMempoolInfo(state, options);
    case "getrawmempool":
      return getRawMempool(state, params);
    case "getblockstats":
      return getBlockStats(state, params);
    case "scantxoutset":
      return scanTxOutSet(state, options, params);
    case "testmempoolaccept":
      return testMempoolAccept(state, params);
    case "sendrawtransaction":
      return sendRawTransaction(state, params);
    default:
      return rpcError(-32601, "Method not found");
  }
}

function estimateSmartFee(state: ChainState, params: Params): RpcResult {
  const [target, mode = "economical"] = params;
  if (typeof target !== "number" || !Number.isInteger(target)) {
    return rpcError(-3, "JSON value of type string is not of expected type number");
  }
  if (target < 1 || target > 1008) {
    return rpcError(-8, "Invalid conf_target, must be between 1 and 1008");
  }
  if (typeof mode !== "string" || !/^(unset|economical|conservative)$/i.test(mode)) {
    return rpcError(
      -8,
      'Invalid estimate_mode parameter, must be one of: "unset", "economical", "conservative"',
    );
  }
  // Core clamps the target to at least 2 and answers for the first horizon it has data for.
  const clamped = Math.max(2, target);
  const targets = [...state.feeRatesSatPerKvb.keys()].filter((t) => t >= clamped).sort((a, b) =>
    a - b
  );
  const used = targets[0];
  if (used === undefined) {
    return { result: { errors: ["Insufficient data or no feerate found"], blocks: clamped } };
  }
  return { result: { feerate: btc(BigInt(state.feeRatesSatPerKvb.get(used)!)), blocks: used } };
}

function getRawTransaction(
  state: ChainState,
  options: BitcoindPeerOptions,
  params: Params,
): RpcResult {
  const [txid, verbosity = 0] = params;
  if (typeof txid !== "string" || !HASH.test(txid)) {
    return rpcError(
      -8,
      `txid must be of length 64 (not ${String(txid).length}, for '${String(txid)}')`,
    );
  }
  const known = state.txs.get(txid);
  const visible = known !== undefined && (known.block === undefined || options.txindex !== false);
  if (!visible) {
    return rpcError(
      -5,
      options.txindex === false
        ? "No such mempool transaction. Use -txindex or provide a block hash to enable blockchain transaction queries. Use gettransaction for wallet transactions."
        : "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
    );
  }
  if (verbosity === 0 || verbosity === false) return { result: known.hex };
  const tx = decodePeerTx(known.hex)!;
  const result: Record<string, unknown> = {
    txid: tx.txid,
    hash: tx.wtxid,
    version: tx.version,
    size: tx.size,
    vsize: tx.vsize,
    weight: tx.weight,
    locktime: tx.locktime,
    vin: tx.inputs.map((i) => ({
      txid: i.txid,
      vout: i.vout,
      scriptSig: { hex: i.scriptSigHex },
      sequence: i.sequence,
    })),
    vout: tx.outputs.map((o, n) => ({
      value: btc(o.valueSats),
      n,
      scriptPubKey: { hex: o.scriptHex },
    })),
    hex: known.hex,
  };
  if (known.block !== undefined) {
    result.blockhash = known.block.hash;
    result.confirmations = state.tip.height - known.block.height + 1;
    result.time = 1_700_000_000 + known.block.height * 600;
    result.blocktime = result.time;
  }
  return { result };
}

function getMempoolInfo(state: ChainState, options: BitcoindPeerOptions): RpcResult {
  const entries = state.mempoolEntries;
  const vsize = entries.reduce((sum, e) => sum + e.vsize, 0);
  return {
    result: {
      loaded: options.mempoolLoading !== true,
      size: entries.length,
      bytes: vsize,
      usage: vsize * 4,
      total_fee: btc(entries.reduce((sum, e) => sum + e.feeSats, 0n)),
      maxmempool: 300_000_000,
      mempoolminfee: btc(1000n),
      minrelaytxfee: btc(1000n),
      incrementalrelayfee: btc(1000n),
      unbroadcastcount: 0,
      fullrbf: true,
    },
  };
}

function getRawMempool(state: ChainState, params: Params): RpcResult {
  const [verbose = false, sequence = false] = params;
  if (typeof verbose !== "boolean" || typeof sequence !== "boolean") {
    return rpcError(-3, "JSON value of type number is not of expected type bool");
  }
  if (!verbose) return { result: state.mempoolEntries.map((e) => e.txid) };
  const result: Record<string, unknown> = {};
  for (const e of mempoolByFeeRate(state)) {
    result[e.txid] = {
      vsize: e.vsize,
      weight: e.vsize * 4,
      time: 1_700_000_000 + state.tip.height * 600,
      height: state.tip.height,
      descendantcount: 1,
      descendantsize: e.vsize,
      ancestorcount: 1,
      ancestorsize: e.vsize,
      wtxid: e.txid,
      fees: {
        base: btc(e.feeSats),
        modified: btc(e.feeSats),
        ancestor: btc(e.feeSats),
        descendant: btc(e.feeSats),
      },
      depends: [],
      spentby: [],
      "bip125-replaceable": false,
      unbroadcast: false,
    };
  }
  return { result };
}

/** `getblockstats` by height (hashes are not served here), filtered to the stats asked for. */
function getBlockStats(state: ChainState, params: Params): RpcResult {
  const [target, stats] = params;
  if (typeof target !== "number" || !Number.isInteger(target)) {
    return rpcError(-8, "hash_or_height is served by height only here");
  }
  if (target < 0) return rpcError(-8, `Target block height ${target} is negative`);
  if (target > state.tip.height) {
    return rpcError(-8, `Target block height ${target} after current tip ${state.tip.height}`);
  }
  const median = blockMedianAt(state, target);
  const all: Record<string, unknown> = {
    height: target,
    // Whole sat/vB, as Core reports them: the 10th, 25th, 50th, 75th, 90th percentiles.
    feerate_percentiles: [
      Math.max(0, median - 2),
      Math.max(0, median - 1),
      median,
      median + 3,
      median + 10,
    ],
    time: 1_700_000_000 + target * 600,
    txs: 1,
  };
  if (stats === undefined) return { result: all };
  if (!Array.isArray(stats)) return rpcError(-3, "stats must be an array");
  const result: Record<string, unknown> = {};
  for (const name of stats) {
    if (typeof name !== "string" || !(name in all)) {
      return rpcError(-8, `Invalid selected statistic '${String(name)}'`);
    }
    result[name] = all[name];
  }
  return { result };
}

function scanTxOutSet(state: ChainState, options: BitcoindPeerOptions, params: Params): RpcResult {
  const [action, scanObjects] = params;
  if (action !== "start") return rpcError(-8, "Invalid action supplied: only start is served here");
  if (options.scanInProgress === true) {
    return rpcError(-8, 'Scan already in progress, use action "abort" or "status"');
  }
  if (!Array.isArray(scanObjects)) {
    return rpcError(-8, "scanobjects argument is required for the start action");
  }
  const addresses: string[] = [];
  for (const obj of scanObjects) {
    const desc = typeof obj === "string" ? obj : (obj as { desc?: unknown })?.desc;
    const m = typeof desc === "string" ? /^addr\(([^)]*)\)(#[a-z0-9]{8})?$/.exec(desc) : null;
    if (m === null) return rpcError(-5, `'${String(desc)}' is not a valid descriptor function`);
    if (!isAddressForPeer(state, m[1]!)) return rpcError(-5, `Address is not valid`);
    addresses.push(m[1]!);
  }
  // The chainstate holds confirmed outputs only: mempool outputs are not scanned.
  const found = state.utxos.filter((u) => u.block !== undefined && addresses.includes(u.address));
  const total = found.reduce((sum, u) => sum + u.valueSats, 0n);
  return {
    result: {
      success: true,
      txouts: 1000 + found.length,
      height: state.tip.height,
      bestblock: state.tip.hash,
      unspents: found.map((u) => ({
        txid: u.txid,
        vout: u.vout,
        scriptPubKey: u.scriptPubKeyHex,
        desc: `addr(${u.address})`,
        amount: btc(u.valueSats),
        coinbase: false,
        height: u.block!.height,
        blockhash: u.block!.hash,
        confirmations: state.tip.height - u.block!.height + 1,
      })),
      total_amount: btc(total),
    },
  };
}

function testMempoolAccept(state: ChainState, params: Params): RpcResult {
  const [rawtxs] = params;
  if (!Array.isArray(rawtxs) || rawtxs.length < 1 || rawtxs.length > 25) {
    return rpcError(-8, "Array must contain between 1 and 25 transactions.");
  }
  const results = [];
  for (const raw of rawtxs) {
    const verdict = judgeTx(state, String(raw));
    if (verdict.kind === "malformed") {
      return rpcError(
        -22,
        `TX decode failed: ${String(raw).slice(0, 16)} Make sure the tx has at least one input.`,
      );
    }
    const base = { txid: verdict.tx.txid, wtxid: verdict.tx.wtxid };
    switch (verdict.kind) {
      case "confirmed":
        results.push({ ...base, allowed: false, "reject-reason": "txn-already-known" });
        break;
      case "in-mempool":
        results.push({ ...base, allowed: false, "reject-reason": "txn-already-in-mempool" });
        break;
      case "rejected":
        results.push({
          ...base,
          allowed: false,
          "reject-reason": verdict.rejection.rejectReason,
          "reject-details": `${verdict.rejection.rejectReason}, ${verdict.rejection.message}`,
        });
        break;
      case "acceptable":
        results.push({
          ...base,
          allowed: true,
          vsize: verdict.tx.vsize,
          fees: {
            base: btc(verdict.feeSats),
            "effective-feerate": btc((verdict.feeSats * 1000n) / BigInt(verdict.tx.vsize)),
            "effective-includes": [verdict.tx.wtxid],
          },
        });
    }
  }
  return { result: results };
}

function sendRawTransaction(state: ChainState, params: Params): RpcResult {
  const [raw] = params;
  const verdict = judgeTx(state, typeof raw === "string" ? raw : "");
  switch (verdict.kind) {
    case "malformed":
      return rpcError(-22, "TX decode failed. Make sure the tx has at least one input.");
    case "confirmed":
      return rpcError(-27, "Transaction outputs already in utxo set");
    case "in-mempool":
      return { result: verdict.tx.txid };
    case "rejected":
      return rpcError(verdict.rejection.code, verdict.rejection.message);
    case "acceptable":
      acceptTx(state, raw as string, verdict.tx.txid);
      return { result: verdict.tx.txid };
  }
}

function rpcError(code: number, message: string): RpcResult {
  return { error: { code, message } };
}

/** A BTC amount, serialised with exactly 8 decimals like Core's `ValueFromAmount`. */
class Btc {
  constructor(readonly sats: bigint) {}
  toJSON(): string {
    const abs = this.sats < 0n ? -this.sats : this.sats;
    const s = `${abs / 100_000_000n}.${(abs % 100_000_000n).toString().padStart(8, "0")}`;
    return `\u0000btc:${this.sats < 0n ? "-" : ""}${s}\u0000`;
  }
}

function btc(sats: bigint): Btc {
  return new Btc(sats);
}

function envelope(
  version: "1.0" | "2.0",
  id: unknown,
  out: RpcResult,
  status?: number,
): Response {
  let body: Record<string, unknown>;
  let code = 200;
  if (version === "2.0") {
    body = { jsonrpc: "2.0", ...out, id };
  } else if ("error" in out) {
    body = { result: null, error: out.error, id };
    code = out.error.code === -32601 ? 404 : out.error.code === -32600 ? 400 : 500;
  } else {
    body = { result: out.result, error: null, id };
  }
  // JSON.stringify quotes the BTC markers; unquote them so amounts are bare numbers.
  const text = JSON.stringify(body).replace(/"\\u0000btc:(-?\d+\.\d{8})\\u0000"/g, "$1");
  return new Response(text, {
    status: status ?? code,
    headers: { "content-type": "application/json" },
  });
}
