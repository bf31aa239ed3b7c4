/**
 * `ChainBackend` over Bitcoin Core's JSON-RPC interface.
 *
 * @module
 */
import { base64 } from "@scure/base";
import type { z } from "zod";
import { btcPerKvbToSatPerKvb, btcToSats } from "../bitcoin/amount.ts";
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import { UnavailableError, UpstreamError } from "../errors/app_error.ts";
import type { HttpClient } from "../net/http_client.ts";
import type { UpstreamResponse } from "../net/types.ts";
import { parseReply, unexpectedReply } from "../net/upstream_reply.ts";
import type {
  BroadcastResult,
  ChainBackend,
  ChainTip,
  FeeEstimate,
  MempoolAcceptResult,
  MempoolSnapshot,
  TxInfo,
  Utxo,
} from "./backend.ts";
import {
  histogramFromEntries,
  medianOfProjectedBlock,
  RECENT_BLOCK_COUNT,
} from "./mempool_snapshot.ts";
import {
  addressRejected,
  assertAddressSyntax,
  assertTargetBlocks,
  assertTxid,
  confirmationsAt,
  decodeRawTx,
  isAlreadyKnown,
  isHexOfTxid,
  rejectedByNetwork,
  sanitizeUpstreamText,
  testnet3Unsupported,
} from "./_common.ts";
import {
  BlockchainInfoSchema,
  BlockFeeStatsSchema,
  BlockHeaderSchema,
  EnvelopeSchema,
  MempoolAcceptSchema,
  MempoolInfoSchema,
  RawMempoolSchema,
  RawTxSchema,
  RPC,
  ScanSchema,
  SmartFeeSchema,
  TimedBlockHeaderSchema,
} from "./_bitcoind_rpc.ts";

/**
 * RPC credentials: `rpcuser`/`rpcpassword`; the contents of the node's
 * `.cookie` file; or a function that reads that file. bitcoind writes a new
 * cookie on every start, so with `readCookie` a 401 re-reads it and repeats
 * the call once (a 401 is answered before any method runs).
 */
export type BitcoindAuth =
  | { user: string; password: string }
  | { cookie: string }
  | { readCookie: () => Promise<string> };

/** Tuning of {@linkcode BitcoindBackend}. */
export interface BitcoindBackendOptions {
  /**
   * Deadline of `scantxoutset`, which reads the whole UTXO set (minutes on
   * mainnet). Default 120000 ms.
   */
  scanTimeoutMs?: number;
  /**
   * Envelope version. `"1.0"` works with every Core release, which answers
   * RPC errors with HTTP 500 (404 for an unknown method); those 500s are
   * declared expected so they neither retry nor trip the breaker. `"2.0"`
   * (Core ≥ 28) answers RPC errors with HTTP 200, so a real HTTP 500 still
   * counts as a server failure. Default `"1.0"`.
   */
  jsonRpcVersion?: "1.0" | "2.0";
  /** Wall clock in Unix milliseconds, for a snapshot's `timestampSec`. Default `Date.now`. */
  now?: () => number;
}

type RpcOutcome = { ok: true; result: unknown } | { ok: false; code: number; message: string };

/**
 * Bitcoin Core JSON-RPC adapter. Calls and fields follow
 * https://developer.bitcoin.org/reference/rpc/ (see tests/vectors/bitcoind/RPC.md
 * for the per-version differences handled here). Amounts are BTC and fee rates
 * BTC/kvB on the wire, converted exactly to sats and sat/kvB.
 *
 * Needs `-txindex` to find confirmed transactions by txid; without it
 * `getTransaction` sees the mempool only. `getAddressUtxos` uses
 * `scantxoutset`, which is slow on mainnet and sees confirmed outputs only.
 */
export class BitcoindBackend implements ChainBackend {
  /** This adapter's kind. */
  readonly kind = "bitcoind" as const;
  #client: HttpClient;
  #authorization: string | undefined;
  #readCookie: (() => Promise<string>) | undefined;
  #scanTimeoutMs: number;
  #jsonRpcVersion: "1.0" | "2.0";
  #now: () => number;
  #nextId = 1;

  /**
   * Build the adapter over one client for the node's RPC port.
   *
   * @param client the upstream's `HttpClient` (base URL `http://host:8332`)
   * @param auth user/password, the cookie file contents (`__cookie__:<hex>`), or a
   *   function reading that file (re-read after a 401)
   * @param options scan deadline and envelope version
   */
  constructor(client: HttpClient, auth: BitcoindAuth, options: BitcoindBackendOptions = {}) {
    this.#client = client;
    if ("readCookie" in auth) {
      this.#readCookie = auth.readCookie;
    } else {
      this.#authorization = basicAuthorization(
        "cookie" in auth ? auth.cookie : `${auth.user}:${auth.password}`,
      );
    }
    this.#scanTimeoutMs = options.scanTimeoutMs ?? 120_000;
    this.#jsonRpcVersion = options.jsonRpcVersion ?? "1.0";
    this.#now = options.now ?? Date.now;
  }

  /** `getblockchaininfo.chain`; `test` (testnet3) is refused. */
  async getNetwork(): Promise<BitcoinNetwork> {
    const info = await this.#blockchainInfo();
    switch (info.chain) {
      case "main":
        return "mainnet";
      case "testnet4":
      case "signet":
      case "regtest":
        return info.chain;
      case "test":
        throw testnet3Unsupported();
      default:
        throw new UpstreamError(
          `bitcoind follows an unknown chain: "${sanitizeUpstreamText(info.chain)}"`,
        );
    }
  }

  /** `getblockchaininfo`: `blocks` and `bestblockhash` come from one tip read. */
  async getTip(): Promise<ChainTip> {
    const info = await this.#blockchainInfo();
    return { height: info.blocks, hash: info.bestblockhash };
  }

  /**
   * `estimatesmartfee <target> "economical"`; Core clamps the target to at
   * least 2 and reports the one it used.
   *
   * @param targetBlocks confirmation target, 1..1008
   * @throws UnavailableError when the node has no estimate (no `feerate`)
   */
  async estimateFee(targetBlocks: number): Promise<FeeEstimate> {
    assertTargetBlocks(targetBlocks);
    const method = "estimatesmartfee";
    const out = await this.#call(method, [targetBlocks, "economical"], true);
    const fee = this.#parse(SmartFeeSchema, this.#result(method, out), method);
    if (fee.feerate === undefined) {
      const why = sanitizeUpstreamText((fee.errors ?? []).join("; ")) || "no reason given";
      throw new UnavailableError(`bitcoind has no fee estimate for ${targetBlocks} blocks: ${why}`);
    }
    return {
      satPerKvb: btcPerKvbToSatPerKvb(fee.feerate),
      targetBlocks: fee.blocks > 0 ? fee.blocks : targetBlocks,
    };
  }

  /**
   * `scantxoutset "start" ["addr(<address>)"]`: confirmed outputs only (the
   * chainstate has no mempool), and slow on mainnet. Not retried: a repeated
   * call would find the first scan still running.
   *
   * @param address an address for the node's network
   */
  async getAddressUtxos(address: string): Promise<Utxo[]> {
    return (await this.#scan([address])).map((u) => u.utxo);
  }

  /**
   * One `scantxoutset` over every address; the unspents are grouped back by
   * scriptPubKey.
   *
   * @param scripts addresses for the node's network with their scriptPubKeys
   */
  async getUtxosOfScripts(
    scripts: readonly { address: string; scriptPubKeyHex: string }[],
  ): Promise<Utxo[][]> {
    if (scripts.length === 0) return [];
    const bySpk = new Map<string, Utxo[]>();
    for (const { scriptPubKey, utxo } of await this.#scan(scripts.map((s) => s.address))) {
      const list = bySpk.get(scriptPubKey) ?? [];
      list.push(utxo);
      bySpk.set(scriptPubKey, list);
    }
    return scripts.map((s) => bySpk.get(s.scriptPubKeyHex.toLowerCase()) ?? []);
  }

  async #scan(addresses: readonly string[]): Promise<{ scriptPubKey: string; utxo: Utxo }[]> {
    // Each address goes inside a descriptor: the syntax check keeps `)` and `,` out.
    for (const address of addresses) assertAddressSyntax(address);
    const method = "scantxoutset";
    const out = await this.#call(
      method,
      ["start", addresses.map((a) => `addr(${a})`)],
      false,
      this.#scanTimeoutMs,
    );
    if (!out.ok && out.code === RPC.invalidParameter && /in progress/i.test(out.message)) {
      throw new UnavailableError("bitcoind is already scanning the UTXO set: retry later");
    }
    if (!out.ok && out.code === RPC.invalidAddressOrKey) throw addressRejected(out.message);
    const scan = this.#parse(ScanSchema, this.#result(method, out), method);
    if (!scan.success) throw new UpstreamError("bitcoind aborted the UTXO set scan");
    return scan.unspents.map((u) => ({
      scriptPubKey: u.scriptPubKey.toLowerCase(),
      utxo: {
        txid: u.txid,
        vout: u.vout,
        valueSats: btcToSats(u.amount),
        confirmations: confirmationsAt(scan.height, u.height),
        scriptPubKeyHex: u.scriptPubKey,
      },
    }));
  }

  /**
   * `getrawtransaction <txid> 1`, then `getblockheader` for the height when
   * confirmed. RPC error -5 (unknown to the mempool, or to the txindex) → `null`.
   * A transaction in a block that left the best chain reads as unconfirmed.
   *
   * @param txid lowercase hex
   */
  async getTransaction(txid: string): Promise<TxInfo | null> {
    assertTxid(txid);
    const method = "getrawtransaction";
    const out = await this.#call(method, [txid, 1], true);
    if (!out.ok && out.code === RPC.invalidAddressOrKey) return null;
    const tx = this.#parse(RawTxSchema, this.#result(method, out), method);
    if (tx.txid !== txid || !isHexOfTxid(tx.hex, txid)) throw this.#unexpected(method);
    if (tx.blockhash === undefined || (tx.confirmations ?? 0) < 1) {
      return { txid, hex: tx.hex, status: { state: "unconfirmed" } };
    }
    const headerOut = await this.#call("getblockheader", [tx.blockhash, true], true);
    // A -5 here means the block vanished between the calls (reorg): unconfirmed again.
    if (!headerOut.ok && headerOut.code === RPC.invalidAddressOrKey) {
      return { txid, hex: tx.hex, status: { state: "unconfirmed" } };
    }
    const header = this.#parse(
      BlockHeaderSchema,
      this.#result("getblockheader", headerOut),
      "getblockheader",
    );
    if (header.hash !== tx.blockhash) throw this.#unexpected("getblockheader");
    if (header.confirmations < 1) return { txid, hex: tx.hex, status: { state: "unconfirmed" } };
    return {
      txid,
      hex: tx.hex,
      status: {
        state: "confirmed",
        blockHeight: header.height,
        blockHash: header.hash,
        confirmations: header.confirmations,
      },
    };
  }

  /**
   * `testmempoolaccept` first; refused → 422 with the node's `reject-reason`
   * (or the txid when the reason says it is already out); allowed →
   * `sendrawtransaction`, whose "already in chain / utxo set" answers also
   * resolve to the txid.
   *
   * @param rawTxHex the signed transaction, hex
   */
  async broadcast(rawTxHex: string): Promise<BroadcastResult> {
    const tx = decodeRawTx(rawTxHex);
    const verdict = await this.testMempoolAccept(tx.hex);
    if (!verdict.allowed) {
      const reason = verdict.rejectReason ?? "not accepted";
      if (isAlreadyKnown(reason)) return { txid: tx.txid };
      throw rejectedByNetwork(verdict.rejectDetails ?? reason);
    }
    const method = "sendrawtransaction";
    const out = await this.#call(method, [tx.hex], false);
    if (!out.ok) {
      if (isAlreadyKnown(out.message, out.code)) return { txid: tx.txid };
      if (
        out.code === RPC.verifyRejected || out.code === RPC.verifyError ||
        out.code === RPC.deserialization
      ) {
        throw rejectedByNetwork(out.message);
      }
    }
    const txid = this.#result(method, out);
    if (txid !== tx.txid) throw this.#unexpected(method);
    return { txid: tx.txid };
  }

  /**
   * `testmempoolaccept [<hex>]`: would the node's mempool take it now?
   *
   * @param rawTxHex the signed transaction, hex
   * @throws ValidationError 422 when the node cannot decode it
   */
  async testMempoolAccept(rawTxHex: string): Promise<MempoolAcceptResult> {
    const tx = decodeRawTx(rawTxHex);
    const method = "testmempoolaccept";
    const out = await this.#call(method, [[tx.hex]], true);
    if (!out.ok && out.code === RPC.deserialization) throw rejectedByNetwork(out.message);
    const [entry] = this.#parse(MempoolAcceptSchema, this.#result(method, out), method);
    if (entry === undefined || entry.txid !== tx.txid) throw this.#unexpected(method);
    if (entry.allowed === true) {
      const accepted: MempoolAcceptResult = { allowed: true };
      if (entry.vsize !== undefined) accepted.vsize = entry.vsize;
      if (entry.fees !== undefined) accepted.feesSats = btcToSats(entry.fees.base);
      return accepted;
    }
    const reason = entry["reject-reason"] ?? entry["package-error"] ?? "not fully validated";
    const rejected: MempoolAcceptResult = {
      allowed: false,
      rejectReason: sanitizeUpstreamText(reason),
    };
    const details = entry["reject-details"];
    if (details !== undefined) rejected.rejectDetails = sanitizeUpstreamText(details);
    return rejected;
  }

  /**
   * A mempool snapshot from `getblockchaininfo` + `getblockheader` (tip
   * height and header `time`), `getmempoolinfo` (`size`, `bytes` = vsize,
   * `total_fee` in BTC, converted exactly), `getrawmempool true` (each
   * entry's `fees.base / vsize`, bucketed like Esplora's `fee_histogram`) and
   * `getblockstats <h> ["feerate_percentiles","height"]` for the last 6
   * blocks (the 50th percentile, sat/vB). Core projects no next block over
   * RPC, so its median comes from the histogram. Calls follow
   * https://developer.bitcoin.org/reference/rpc/ (Core 22+ for `total_fee`;
   * without it the entries' fees are summed).
   *
   * `getrawmempool true` grows with the mempool (a few hundred bytes per
   * transaction): on a busy mainnet node it needs a `CHAIN_MAX_RESPONSE_BYTES`
   * well above the default.
   *
   * @throws UnavailableError while the node is still loading its mempool
   */
  async getMempoolSnapshot(): Promise<MempoolSnapshot> {
    const info = await this.#blockchainInfo();
    const headerMethod = "getblockheader";
    const header = this.#parse(
      TimedBlockHeaderSchema,
      this.#result(headerMethod, await this.#call(headerMethod, [info.bestblockhash, true], true)),
      headerMethod,
    );
    if (header.hash !== info.bestblockhash || header.height !== info.blocks) {
      throw this.#unexpected(headerMethod);
    }

    const infoMethod = "getmempoolinfo";
    const mempool = this.#parse(
      MempoolInfoSchema,
      this.#result(infoMethod, await this.#call(infoMethod, [], true)),
      infoMethod,
    );
    if (mempool.loaded === false) {
      throw new UnavailableError("bitcoind is still loading its mempool: retry later");
    }
    const rawMethod = "getrawmempool";
    const raw = this.#parse(
      RawMempoolSchema,
      this.#result(rawMethod, await this.#call(rawMethod, [true], true)),
      rawMethod,
    );
    let feesSats = 0n;
    const entries = [];
    for (const e of Object.values(raw)) {
      // `base` is what the transaction pays; `modified` adds this node's prioritisetransaction deltas.
      const fee = btcToSats(e.fees.base);
      feesSats += fee;
      entries.push({ feeRateSatVb: Number(fee) / e.vsize, vsize: e.vsize });
    }
    const histogram = histogramFromEntries(entries);
    const totalFeeSats = mempool.total_fee === undefined ? feesSats : btcToSats(mempool.total_fee);

    const recent: number[] = [];
    const statsMethod = "getblockstats";
    for (let h = info.blocks; h >= 0 && h > info.blocks - RECENT_BLOCK_COUNT; h--) {
      const out = await this.#call(statsMethod, [h, ["feerate_percentiles", "height"]], true);
      const stats = this.#parse(BlockFeeStatsSchema, this.#result(statsMethod, out), statsMethod);
      if (stats.height !== h) throw this.#unexpected(statsMethod);
      recent.push(stats.feerate_percentiles[2]);
    }

    return {
      timestampSec: Math.floor(this.#now() / 1000),
      height: info.blocks,
      lastBlockTimeSec: header.time,
      mempoolCount: mempool.size,
      mempoolVsize: mempool.bytes,
      // At most 21M BTC in sats (< 2^53), so the number is exact.
      mempoolTotalFeeSat: Number(totalFeeSats),
      histogram,
      nextBlockMedianFeeSatVb: medianOfProjectedBlock(histogram),
      recentBlockMedianFeesSatVb: recent,
    };
  }

  async #blockchainInfo(): Promise<z.infer<typeof BlockchainInfoSchema>> {
    const method = "getblockchaininfo";
    const out = await this.#call(method, [], true);
    return this.#parse(BlockchainInfoSchema, this.#result(method, out), method);
  }

  /**
   * One JSON-RPC call. Returns the result or the node's error; transport
   * failures and unusable replies throw.
   */
  async #call(
    method: string,
    params: unknown[],
    idempotent: boolean,
    timeoutMs?: number,
  ): Promise<RpcOutcome> {
    const fresh = this.#authorization === undefined;
    this.#authorization ??= await this.#cookieAuthorization();
    let sent = await this.#post(this.#authorization, method, params, idempotent, timeoutMs);
    if (sent.res.status === 401 && this.#readCookie !== undefined && !fresh) {
      // The node may have restarted with a new cookie: read it again and repeat once.
      const previous = this.#authorization;
      this.#authorization = await this.#cookieAuthorization();
      if (this.#authorization !== previous) {
        sent = await this.#post(this.#authorization, method, params, idempotent, timeoutMs);
      }
    }
    const { res, id } = sent;
    if (res.status === 401) throw new UpstreamError("bitcoind rejected the RPC credentials");
    if (res.status === 403) {
      throw new UpstreamError("bitcoind refused this client (HTTP 403): check rpcallowip");
    }
    let body: unknown;
    try {
      body = res.json();
    } catch (err) {
      throw new UpstreamError(`bitcoind answered HTTP ${res.status} without a JSON-RPC reply`, {
        cause: err,
      });
    }
    const envelope = EnvelopeSchema.safeParse(body);
    if (!envelope.success || (envelope.data.id !== undefined && envelope.data.id !== id)) {
      throw this.#unexpected(method, envelope.error);
    }
    const { error, result } = envelope.data;
    if (error !== null && error !== undefined) {
      return { ok: false, code: error.code, message: error.message };
    }
    if (res.status !== 200) {
      throw new UpstreamError(`bitcoind answered HTTP ${res.status} for ${method}`);
    }
    return { ok: true, result };
  }

  async #post(
    authorization: string,
    method: string,
    params: unknown[],
    idempotent: boolean,
    timeoutMs: number | undefined,
  ): Promise<{ res: UpstreamResponse; id: number }> {
    const id = this.#nextId++;
    const res = await this.#client.request({
      method: "POST",
      path: "/",
      // Every call posts to `/`; the RPC method names the route in spans and metrics.
      route: `/#${method}`,
      headers: { Authorization: authorization },
      json: { jsonrpc: this.#jsonRpcVersion, id, method, params },
      idempotent,
      // JSON-RPC 1.0 errors arrive as HTTP 500: a normal answer, not a server failure.
      expectedStatuses: this.#jsonRpcVersion === "1.0" ? [500] : [],
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    return { res, id };
  }

  async #cookieAuthorization(): Promise<string> {
    if (this.#readCookie === undefined) {
      throw new TypeError("bitcoind credentials are missing");
    }
    let contents: string;
    try {
      contents = await this.#readCookie();
    } catch (err) {
      // Nothing was sent: the call can be repeated safely once the cookie is readable.
      throw new UnavailableError("bitcoind RPC cookie could not be read", { cause: err });
    }
    return basicAuthorization(contents);
  }

  /** The result of a call, or the node's error translated. */
  #result(method: string, out: RpcOutcome): unknown {
    if (out.ok) return out.result;
    if (out.code === RPC.inWarmup) {
      throw new UnavailableError(`bitcoind is starting: ${sanitizeUpstreamText(out.message)}`);
    }
    if (out.code === RPC.methodNotFound) {
      throw new UpstreamError(`bitcoind does not offer the RPC "${method}"`);
    }
    throw new UpstreamError(
      `bitcoind RPC "${method}" failed: ${sanitizeUpstreamText(out.message)} (code ${out.code})`,
    );
  }

  #parse<S extends z.ZodType>(schema: S, value: unknown, method: string): z.infer<S> {
    return parseReply(schema, value, "bitcoind", method);
  }

  #unexpected(method: string, cause?: unknown): UpstreamError {
    return unexpectedReply("bitcoind", method, cause);
  }
}

/**
 * The Basic `Authorization` value for `user:password` credentials.
 *
 * @throws TypeError when there is no `user:` part
 */
function basicAuthorization(credentials: string): string {
  const trimmed = credentials.trim();
  if (!trimmed.includes(":") || trimmed.startsWith(":")) {
    throw new TypeError("Invalid bitcoind credentials: expected user:password");
  }
  return `Basic ${base64.encode(new TextEncoder().encode(trimmed))}`;
}
