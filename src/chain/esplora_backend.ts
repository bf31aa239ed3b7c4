/**
 * `ChainBackend` over the Esplora REST API (Blockstream electrs, mempool.space).
 *
 * @module
 */
import { z } from "zod";
import { satPerVbToSatPerKvb } from "../bitcoin/amount.ts";
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import { UnavailableError, UpstreamError } from "../errors/app_error.ts";
import type { HttpClient } from "../net/http_client.ts";
import type { RequestOptions, UpstreamResponse } from "../net/types.ts";
import { parseReply, unexpectedReply } from "../net/upstream_reply.ts";
import type {
  BroadcastResult,
  ChainBackend,
  ChainTip,
  FeeEstimate,
  MempoolSnapshot,
  TxInfo,
  TxStatus,
  Utxo,
} from "./backend.ts";
import { medianOfProjectedBlock, RECENT_BLOCK_COUNT } from "./mempool_snapshot.ts";
import {
  addressRejected,
  assertAddressSyntax,
  assertTargetBlocks,
  assertTxid,
  confirmationsAt,
  decodeRawTx,
  HASH_HEX,
  isAlreadyKnown,
  isHexOfTxid,
  networkFromGenesisHash,
  rejectedByNetwork,
  sanitizeUpstreamText,
} from "./_common.ts";

const MAX_SATS = 2_100_000_000_000_000;
const height = z.number().int().min(0);
const hash = z.string().regex(HASH_HEX);

const BlockSchema = z.object({ id: hash, height });

/** A block with its header time (Unix seconds), for the snapshot's tip. */
const TimedBlockSchema = BlockSchema.extend({ timestamp: z.number().int().min(0) });

/** `GET /mempool`: totals in vB and sats, `fee_histogram` as `[sat/vB, vB]` pairs. */
const MempoolSchema = z.object({
  count: z.number().int().min(0),
  vsize: z.number().int().min(0),
  total_fee: z.number().int().min(0).max(MAX_SATS),
  fee_histogram: z.array(z.tuple([z.number().finite().min(0), z.number().int().min(0)])),
});

const feeRate = z.number().finite().min(0);

/** mempool.space `GET /v1/fees/mempool-blocks`: projected blocks, next one first. */
const MempoolBlocksSchema = z.array(z.object({ medianFee: feeRate }));

/** mempool.space `GET /v1/blocks`: recent blocks with their `extras.medianFee`. */
const RecentBlocksSchema = z.array(z.object({
  id: hash,
  height,
  extras: z.object({ medianFee: feeRate }),
}));

const FeeEstimatesSchema = z.record(
  z.string().regex(/^[1-9]\d{0,3}$/),
  z.number().finite().min(0),
);

const StatusSchema = z.union([
  z.object({ confirmed: z.literal(true), block_height: height, block_hash: hash }),
  z.object({ confirmed: z.literal(false) }),
]);

const UtxoListSchema = z.array(z.object({
  txid: hash,
  vout: z.number().int().min(0),
  value: z.number().int().min(0).max(MAX_SATS),
  status: StatusSchema,
}));

/** Raw transaction hex as `/tx/:txid/hex` sends it. */
const RAW_HEX = /^(?:[0-9a-f]{2})+$/;

/** Tuning of {@linkcode EsploraBackend}. */
export interface EsploraBackendOptions {
  /** Wall clock in Unix milliseconds, for a snapshot's `timestampSec`. Default `Date.now`. */
  now?: () => number;
}

/**
 * Esplora REST adapter. Paths follow
 * https://github.com/Blockstream/esplora/blob/master/API.md and are relative
 * to the client's base URL (e.g. `https://blockstream.info/api`). Amounts are
 * satoshis, fee rates sat/vB; single values come as plain text. The mempool
 * snapshot also reads mempool.space's additions
 * (https://mempool.space/docs/api/rest: `GET /v1/fees/mempool-blocks`,
 * `GET /v1/blocks`) when the upstream has them.
 */
export class EsploraBackend implements ChainBackend {
  /** This adapter's kind. */
  readonly kind = "esplora" as const;
  #client: HttpClient;
  #now: () => number;

  /**
   * Build the adapter over one client for the Esplora upstream.
   *
   * @param client the upstream's `HttpClient` (base URL ends before `/blocks`, `/tx`, ...)
   * @param options the clock
   */
  constructor(client: HttpClient, options: EsploraBackendOptions = {}) {
    this.#client = client;
    this.#now = options.now ?? Date.now;
  }

  /** Infer the network from the genesis block hash (`GET /block-height/0`). */
  async getNetwork(): Promise<BitcoinNetwork> {
    const genesis = await this.#hashText("/block-height/0", "/block-height/:height");
    return networkFromGenesisHash(genesis);
  }

  /** Tip hash, then that block's height, so the pair is consistent. */
  async getTip(): Promise<ChainTip> {
    const tipHash = await this.#hashText("/blocks/tip/hash", "/blocks/tip/hash");
    const res = await this.#send({
      method: "GET",
      path: `/block/${tipHash}`,
      route: "/block/:hash",
    });
    const block = this.#parse(BlockSchema, this.#json(res, "/block/:hash"), "/block/:hash");
    if (block.id !== tipHash) throw this.#unexpected("/block/:hash");
    return { height: block.height, hash: block.id };
  }

  /**
   * Fee rate from `/fee-estimates`: the entry for `targetBlocks`, else the
   * nearest lower target (a faster, dearer estimate, never a cheaper one),
   * else the lowest target offered.
   *
   * @param targetBlocks confirmation target, 1..1008
   */
  async estimateFee(targetBlocks: number): Promise<FeeEstimate> {
    assertTargetBlocks(targetBlocks);
    const route = "/fee-estimates";
    const res = await this.#send({ method: "GET", path: route, route });
    const estimates = this.#parse(FeeEstimatesSchema, this.#json(res, route), route);
    const targets = Object.keys(estimates).map(Number).sort((a, b) => a - b);
    const lower = targets.filter((t) => t <= targetBlocks);
    const chosen = lower.length > 0 ? lower[lower.length - 1] : targets[0];
    if (chosen === undefined) {
      throw new UnavailableError("Esplora has no fee estimates yet: retry later");
    }
    const satPerVb = estimates[String(chosen)] as number;
    return { satPerKvb: satPerVbToSatPerKvb(satPerVb), targetBlocks: chosen };
  }

  /**
   * Unspent outputs of `address` (`GET /address/:address/utxo`), mempool
   * outputs included with 0 confirmations.
   *
   * @param address an address for the backend's network
   */
  async getAddressUtxos(address: string): Promise<Utxo[]> {
    assertAddressSyntax(address);
    const route = "/address/:address/utxo";
    const res = await this.#send({
      method: "GET",
      path: `/address/${encodeURIComponent(address)}/utxo`,
      route,
    }, {
      400: (r) => {
        throw addressRejected(r.text());
      },
    });
    const utxos = this.#parse(UtxoListSchema, this.#json(res, route), route);
    // The tip is read after the list, so it is at least as new as every confirmation in it.
    const tipHeight = utxos.some((u) => u.status.confirmed) ? await this.#tipHeight() : 0;
    return utxos.map((u) => ({
      txid: u.txid,
      vout: u.vout,
      valueSats: BigInt(u.value),
      confirmations: u.status.confirmed ? confirmationsAt(tipHeight, u.status.block_height) : 0,
    }));
  }

  /**
   * The transaction's hex (`/tx/:txid/hex`, 404 → `null`) and status
   * (`/tx/:txid/status`). The hex is asked first because electrs answers the
   * status of an unknown txid with `{"confirmed":false}`, not 404.
   *
   * @param txid lowercase hex
   */
  async getTransaction(txid: string): Promise<TxInfo | null> {
    assertTxid(txid);
    const hexRoute = "/tx/:txid/hex";
    const hexRes = await this.#send(
      { method: "GET", path: `/tx/${txid}/hex`, route: hexRoute },
      { 404: () => null },
    );
    if (hexRes === null) return null;
    const rawHex = hexRes.text().trim();
    if (!RAW_HEX.test(rawHex) || !isHexOfTxid(rawHex, txid)) {
      throw this.#unexpected(hexRoute);
    }
    const statusRoute = "/tx/:txid/status";
    const statusRes = await this.#send({
      method: "GET",
      path: `/tx/${txid}/status`,
      route: statusRoute,
    });
    const s = this.#parse(StatusSchema, this.#json(statusRes, statusRoute), statusRoute);
    let status: TxStatus = { state: "unconfirmed" };
    if (s.confirmed) {
      const tipHeight = await this.#tipHeight();
      status = {
        state: "confirmed",
        blockHeight: s.block_height,
        blockHash: s.block_hash,
        confirmations: confirmationsAt(tipHeight, s.block_height),
      };
    }
    return { txid, hex: rawHex, status };
  }

  /**
   * `POST /tx` with the hex as a text body. Never retried by the client. A
   * 400 carries the node's reason: "already known" answers resolve to the
   * txid, anything else is a 422.
   *
   * @param rawTxHex the signed transaction, hex
   */
  async broadcast(rawTxHex: string): Promise<BroadcastResult> {
    const tx = decodeRawTx(rawTxHex);
    const route = "/tx";
    const res = await this.#send({
      method: "POST",
      path: route,
      route,
      headers: { "Content-Type": "text/plain" },
      body: tx.hex,
      idempotent: false,
    }, { 400: (r) => r });
    if (res.status === 400) {
      const rejection = parseEsploraRejection(res.text());
      if (isAlreadyKnown(rejection.message, rejection.code)) return { txid: tx.txid };
      throw rejectedByNetwork(rejection.message);
    }
    const txid = res.text().trim();
    if (txid !== tx.txid) throw this.#unexpected(route);
    return { txid };
  }

  /**
   * A mempool snapshot from `GET /mempool` (count, vsize, total_fee,
   * fee_histogram; https://github.com/Blockstream/esplora/blob/master/API.md#mempool),
   * the tip block (`/blocks/tip/hash`, then `/block/:hash` for a consistent
   * height and header `timestamp`), and on mempool.space
   * (https://mempool.space/docs/api/rest#get-mempool-blocks-fees,
   * https://mempool.space/docs/api/rest#get-blocks) the first projected
   * block's `medianFee` and the recent blocks' `extras.medianFee`. Where those
   * two routes answer 404 (Blockstream's Esplora), the projected median comes
   * from the histogram and the recent medians are empty.
   */
  async getMempoolSnapshot(): Promise<MempoolSnapshot> {
    const [tip, mempool, projected, recent] = await Promise.all([
      this.#timedTip(),
      this.#mempool(),
      this.#projectedMedian(),
      this.#recentMedians(),
    ]);
    return {
      timestampSec: Math.floor(this.#now() / 1000),
      height: tip.height,
      lastBlockTimeSec: tip.timestamp,
      mempoolCount: mempool.count,
      mempoolVsize: mempool.vsize,
      mempoolTotalFeeSat: mempool.total_fee,
      histogram: mempool.fee_histogram,
      nextBlockMedianFeeSatVb: projected ?? medianOfProjectedBlock(mempool.fee_histogram),
      recentBlockMedianFeesSatVb: recent,
    };
  }

  async #timedTip(): Promise<z.infer<typeof TimedBlockSchema>> {
    const tipHash = await this.#hashText("/blocks/tip/hash", "/blocks/tip/hash");
    const route = "/block/:hash";
    const res = await this.#send({ method: "GET", path: `/block/${tipHash}`, route });
    const block = this.#parse(TimedBlockSchema, this.#json(res, route), route);
    if (block.id !== tipHash) throw this.#unexpected(route);
    return block;
  }

  async #mempool(): Promise<z.infer<typeof MempoolSchema>> {
    const route = "/mempool";
    const res = await this.#send({ method: "GET", path: route, route });
    return this.#parse(MempoolSchema, this.#json(res, route), route);
  }

  /** The first projected block's median (mempool.space), or null where the route is missing. */
  async #projectedMedian(): Promise<number | null> {
    const route = "/v1/fees/mempool-blocks";
    const res = await this.#send({ method: "GET", path: route, route }, { 404: () => null });
    if (res === null) return null;
    const blocks = this.#parse(MempoolBlocksSchema, this.#json(res, route), route);
    // An empty mempool has no projected block: the histogram (empty too) decides.
    return blocks[0]?.medianFee ?? null;
  }

  /** Recent blocks' medians, newest first (mempool.space), or [] where the route is missing. */
  async #recentMedians(): Promise<number[]> {
    const route = "/v1/blocks";
    const res = await this.#send({ method: "GET", path: route, route }, { 404: () => null });
    if (res === null) return [];
    const blocks = this.#parse(RecentBlocksSchema, this.#json(res, route), route);
    return blocks.toSorted((a, b) => b.height - a.height).slice(0, RECENT_BLOCK_COUNT)
      .map((b) => b.extras.medianFee);
  }

  async #tipHeight(): Promise<number> {
    const route = "/blocks/tip/height";
    const res = await this.#send({ method: "GET", path: route, route });
    const text = res.text().trim();
    if (!/^\d{1,9}$/.test(text)) throw this.#unexpected(route);
    return Number(text);
  }

  async #hashText(path: string, route: string): Promise<string> {
    const res = await this.#send({ method: "GET", path, route });
    const text = res.text().trim();
    if (!HASH_HEX.test(text)) throw this.#unexpected(route);
    return text;
  }

  /**
   * Send one call; 200 passes, statuses named in `handlers` are handed to
   * them (they return a value or throw), anything else becomes an error.
   */
  async #send<T = never>(
    opts: RequestOptions,
    handlers: Partial<Record<number, (res: UpstreamResponse) => T>> = {},
  ): Promise<UpstreamResponse | T> {
    const res = await this.#client.request(opts);
    if (res.status === 200) return res;
    const handler = handlers[res.status];
    if (handler !== undefined) return handler(res);
    if (res.status === 429) {
      throw new UnavailableError("Esplora is rate limiting this service: retry later");
    }
    throw new UpstreamError(`Esplora answered HTTP ${res.status} for ${opts.route}`, {
      cause: sanitizeUpstreamText(res.text()),
    });
  }

  #json(res: UpstreamResponse | null, route: string): unknown {
    if (res === null) throw this.#unexpected(route);
    return res.json();
  }

  #parse<S extends z.ZodType>(schema: S, value: unknown, route: string): z.infer<S> {
    return parseReply(schema, value, "Esplora", route);
  }

  #unexpected(route: string, cause?: unknown): UpstreamError {
    return unexpectedReply("Esplora", route, cause);
  }
}

/** A broadcast refusal as electrs words it. */
interface EsploraRejection {
  code?: number;
  message: string;
}

/**
 * Read the node's reason out of a `POST /tx` 400 body. electrs forwards
 * bitcoind's error as `sendrawtransaction RPC error -26: <message>` (current
 * Blockstream electrs) or `sendrawtransaction RPC error: {"code":-26,"message":"…"}`
 * (older electrs, mempool.space); other 400s (bad hex) are plain text.
 *
 * @param body the 400 body
 */
function parseEsploraRejection(body: string): EsploraRejection {
  const text = body.trim();
  const json = /RPC error:\s*(\{.*\})\s*$/s.exec(text);
  if (json?.[1] !== undefined) {
    try {
      const e = z.object({ code: z.number().int(), message: z.string() }).safeParse(
        JSON.parse(json[1]),
      );
      if (e.success) return e.data;
    } catch {
      // Not JSON after all: fall through to the plain forms.
    }
  }
  const coded = /RPC error (-?\d+):\s*(.*)$/s.exec(text);
  if (coded?.[1] !== undefined && coded[2] !== undefined) {
    return { code: Number(coded[1]), message: coded[2] };
  }
  return { message: text };
}
