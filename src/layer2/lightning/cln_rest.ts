/**
 * `LightningBackend` over Core Lightning's `clnrest` plugin
 * (https://docs.corelightning.org/docs/rest). Every command is
 * `POST /v1/<command>` with its named parameters as a JSON object, authorised
 * by a `Rune` header that the composition root puts on the `HttpClient`.
 * Field names and enum values follow the command schemas of
 * ElementsProject/lightning `doc/schemas/` (copies in `tests/vectors/cln/`).
 *
 * How clnrest answers (`plugins/rest-plugin`, `handlers.rs` / `shared.rs`):
 * - success: HTTP 201 (200 from older releases) with the command's result;
 * - a command error: HTTP 500 with the JSON-RPC error `{code, message, data?}`;
 * - an unknown command: HTTP 404 with code -32601;
 * - a missing or refused rune: HTTP 403 / 401.
 *
 * Amounts are integer millisatoshis in `*_msat` fields; they are read from the
 * reply text into `bigint`, so values above 2^53 stay exact.
 *
 * @module
 */
import { z } from "zod";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import {
  AppError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  UnsupportedFeatureError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../errors/app_error.ts";
import type { HttpClient } from "../../net/http_client.ts";
import { backoffDelay, sleep } from "../../net/retry.ts";
import type { RequestOptions } from "../../net/types.ts";
import { parseReply, unexpectedReply } from "../../net/upstream_reply.ts";
import type { Logger } from "../../obs/logger.ts";
import type {
  Balances,
  Channel,
  ChannelState,
  CloseChannelRequest,
  ClosedChannel,
  CreateInvoiceRequest,
  Invoice,
  InvoiceState,
  LightningBackend,
  LightningFeature,
  NodeInfo,
  OpenChannelRequest,
  OpenedChannel,
  PayInvoiceRequest,
  PaymentResult,
} from "./backend.ts";
import { decodeBolt11, type DecodedBolt11 } from "./bolt11.ts";

/** Tuning of {@linkcode ClnRestBackend}; every field has a default. */
export interface ClnRestOptions {
  /**
   * The client's per-call deadline (`LIGHTNING_TIMEOUT_MS`, default 15 000).
   * Calls in which the node waits on purpose (a payment, a long poll, a
   * force close) get this on top of that wait.
   */
  callTimeoutMs?: number;
  /** How long one `waitanyinvoice` long poll waits on the node, in seconds (default 30). */
  longPollSeconds?: number;
  /** Back-off of `watchInvoices` after a failed poll (default 500 ms, growing to 30 s). */
  watchBackoff?: { baseDelayMs: number; maxDelayMs: number };
  /**
   * Payment command. `auto` (default) uses `xpay` and falls back to `pay`
   * for good once the node answers that it has no `xpay` (before v24.11, or
   * the plugin disabled): "unknown command" is answered before anything is
   * sent, so the fallback cannot pay twice.
   */
  payCommand?: "auto" | "xpay" | "pay";
  /** Receives a warning for every failed poll of `watchInvoices`. */
  logger?: Logger;
}

/** `getinfo` network names (`bitcoin` is mainnet). */
const NETWORKS: Readonly<Record<string, NodeInfo["network"]>> = {
  bitcoin: "mainnet",
  testnet: "testnet",
  testnet4: "testnet4",
  signet: "signet",
  regtest: "regtest",
};

/**
 * Channel states of `listpeerchannels` (its `state` enum), normalised.
 * `usable` channels are active while the peer is connected, else inactive.
 * ONCHAIN: the funding output is spent on chain; only the outputs remain to
 * be swept, so the channel itself is closed.
 */
const CHANNEL_STATES: Readonly<Record<string, ChannelState | "usable">> = {
  OPENINGD: "opening",
  CHANNELD_AWAITING_LOCKIN: "opening",
  DUALOPEND_OPEN_INIT: "opening",
  DUALOPEND_OPEN_COMMITTED: "opening",
  DUALOPEND_OPEN_COMMIT_READY: "opening",
  DUALOPEND_AWAITING_LOCKIN: "opening",
  CHANNELD_NORMAL: "usable",
  CHANNELD_AWAITING_SPLICE: "usable",
  CHANNELD_SHUTTING_DOWN: "closing",
  CLOSINGD_SIGEXCHANGE: "closing",
  CLOSINGD_COMPLETE: "closing",
  AWAITING_UNILATERAL: "closing",
  FUNDING_SPEND_SEEN: "closing",
  ONCHAIN: "closed",
};

/** `listinvoices` / `waitanyinvoice` statuses; CLN has no cancelled invoices (it deletes them). */
const INVOICE_STATES: Readonly<Record<string, InvoiceState>> = {
  unpaid: "open",
  paid: "settled",
  expired: "expired",
};

/**
 * Payment error codes (`pay`/`xpay` schemas) that end the command with a
 * known reason. Only 205 and 207 are sent before any HTLC leaves; after the
 * others a part may still be in flight, so `listpays` is asked first.
 */
const PAY_FAILURES: Readonly<Record<number, string>> = {
  203: "incorrect_payment_details",
  205: "no_route",
  206: "no_route",
  207: "invoice_expired",
  209: "error",
  210: "timeout",
};

/**
 * Named feerates and the confirmation targets CLN gives them
 * (lightning-feerates(7)), slowest first.
 */
const NAMED_FEERATES: ReadonlyArray<readonly [number, string]> = [
  [100, "slow"],
  [12, "normal"],
  [6, "urgent"],
];

const HASH_HEX = /^[0-9a-f]{64}$/;
const PUBKEY_HEX = /^0[23][0-9a-f]{64}$/;
const OUTPOINT = /^([0-9a-f]{64}):(\d{1,10})$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const msat = z.bigint().nonnegative();
const count = z.number().int().nonnegative();
const hash = z.string().regex(HASH_HEX);

const GetinfoReply = z.object({
  id: z.string().regex(PUBKEY_HEX),
  alias: z.string(),
  num_peers: count,
  num_pending_channels: count,
  num_active_channels: count,
  version: z.string(),
  blockheight: count,
  network: z.string(),
  warning_bitcoind_sync: z.string().optional(),
  warning_lightningd_sync: z.string().optional(),
});

const ListfundsReply = z.object({
  outputs: z.array(z.object({
    amount_msat: msat,
    status: z.enum(["unconfirmed", "confirmed", "spent", "immature"]),
  })),
});

const PeerChannel = z.object({
  peer_id: z.string().regex(PUBKEY_HEX),
  peer_connected: z.boolean(),
  state: z.string(),
  opener: z.enum(["local", "remote"]),
  private: z.boolean().optional(),
  short_channel_id: z.string().optional(),
  channel_id: hash.optional(),
  funding_txid: hash.optional(),
  funding_outnum: count.optional(),
  to_us_msat: msat.optional(),
  total_msat: msat.optional(),
});
type PeerChannel = z.infer<typeof PeerChannel>;
const ListpeerchannelsReply = z.object({ channels: z.array(PeerChannel) });

const FundchannelReply = z.object({ txid: hash, outnum: count });

const CloseReply = z.object({
  type: z.enum(["mutual", "unilateral", "unopened"]),
  txids: z.array(hash).optional(),
});

const InvoiceReply = z.object({
  bolt11: z.string(),
  payment_hash: hash,
  expires_at: count,
});

const ListedInvoice = z.object({
  label: z.string(),
  description: z.string().optional(),
  payment_hash: hash,
  status: z.string(),
  expires_at: count,
  amount_msat: msat.optional(),
  bolt11: z.string().optional(),
  created_index: count.optional(),
  pay_index: count.optional(),
  amount_received_msat: msat.optional(),
  paid_at: count.optional(),
  payment_preimage: hash.optional(),
});
type ListedInvoice = z.infer<typeof ListedInvoice>;
const ListinvoicesReply = z.object({ invoices: z.array(ListedInvoice) });

const XpayReply = z.object({
  payment_preimage: hash,
  amount_msat: msat,
  amount_sent_msat: msat,
});

const PayReply = z.object({
  payment_preimage: hash,
  amount_msat: msat,
  amount_sent_msat: msat,
  status: z.enum(["complete", "pending", "failed"]),
});

const ListpaysReply = z.object({
  pays: z.array(z.object({
    payment_hash: hash,
    status: z.enum(["pending", "failed", "complete"]),
    amount_msat: msat.optional(),
    amount_sent_msat: msat.optional(),
    preimage: hash.optional(),
  })),
});

const RpcErrorBody = z.object({
  code: z.number().int().nullish(),
  message: z.string().optional(),
});

/**
 * A command the node refused (HTTP 500 with a JSON-RPC error, or 404 for an
 * unknown command). Each method turns the codes its callers can act on into
 * the port's errors; any other stays a 502.
 */
class ClnCommandError extends UpstreamError {
  /** The JSON-RPC error code. */
  readonly rpcCode: number;

  constructor(command: string, rpcCode: number, nodeMessage: string) {
    super(`Core Lightning refused "${command}" (code ${rpcCode}): ${nodeMessage}`);
    this.rpcCode = rpcCode;
  }
}

/**
 * Core Lightning adapter over clnrest.
 *
 * Features: `force-close` (a `close` whose `unilateraltimeout` is 1 second).
 * Not `description-hash`: CLN's `invoice` cannot take a bare hash, only hash
 * the full description it is given (`deschashonly`). Not `invoice-stream`:
 * settlements are long-polled with `waitanyinvoice`.
 *
 * @example
 * ```ts
 * const client = new HttpClient({ ...upstream, headers: { Rune: rune } });
 * const backend = new ClnRestBackend(client, { callTimeoutMs: upstream.timeoutMs });
 * const info = await backend.getInfo();
 * ```
 */
export class ClnRestBackend implements LightningBackend {
  /** This adapter's kind. */
  readonly kind = "cln" as const;
  /** Force-closing only; see the class doc. */
  readonly features: ReadonlySet<LightningFeature> = new Set<LightningFeature>(["force-close"]);
  readonly #client: HttpClient;
  readonly #callTimeoutMs: number;
  readonly #longPollSeconds: number;
  readonly #backoff: { baseDelayMs: number; maxDelayMs: number };
  readonly #logger: Logger | undefined;
  /** Null until known (`auto`): xpay is tried first. */
  #payCommand: "xpay" | "pay" | null;

  /**
   * Build the adapter over the node's client.
   *
   * @param client the clnrest `HttpClient`, sending the `Rune` header on every call
   * @param options deadlines, long polling, back-off, payment command, logger
   */
  constructor(client: HttpClient, options: ClnRestOptions = {}) {
    this.#client = client;
    this.#callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.#longPollSeconds = options.longPollSeconds ?? 30;
    this.#backoff = options.watchBackoff ?? { baseDelayMs: 500, maxDelayMs: 30_000 };
    this.#logger = options.logger;
    const payCommand = options.payCommand ?? "auto";
    this.#payCommand = payCommand === "auto" ? null : payCommand;
    if (!(this.#callTimeoutMs > 0) || !Number.isFinite(this.#callTimeoutMs)) {
      throw new RangeError(`callTimeoutMs must be a positive number, got ${this.#callTimeoutMs}`);
    }
    if (!Number.isInteger(this.#longPollSeconds) || this.#longPollSeconds < 1) {
      throw new RangeError(
        `longPollSeconds must be a positive integer, got ${this.#longPollSeconds}`,
      );
    }
    const { baseDelayMs, maxDelayMs } = this.#backoff;
    if (!(baseDelayMs >= 0) || !(maxDelayMs >= baseDelayMs) || !Number.isFinite(maxDelayMs)) {
      throw new RangeError("watchBackoff must satisfy 0 <= baseDelayMs <= maxDelayMs");
    }
    if (!["auto", "xpay", "pay"].includes(payCommand)) {
      throw new RangeError(`payCommand must be auto, xpay or pay, got ${String(payCommand)}`);
    }
  }

  /** `getinfo`; synced when neither `warning_bitcoind_sync` nor `warning_lightningd_sync` is set. */
  async getInfo(): Promise<NodeInfo> {
    const r = parse(GetinfoReply, await this.#read("getinfo", {}), "getinfo");
    const network = NETWORKS[r.network];
    if (network === undefined) {
      throw new UpstreamError(
        `Core Lightning runs on an unsupported network: "${clean(r.network)}"`,
      );
    }
    return {
      pubkey: r.id,
      alias: r.alias,
      network,
      blockHeight: r.blockheight,
      syncedToChain: r.warning_bitcoind_sync === undefined &&
        r.warning_lightningd_sync === undefined,
      version: r.version,
      numActiveChannels: r.num_active_channels,
      numPendingChannels: r.num_pending_channels,
      numPeers: r.num_peers,
    };
  }

  /**
   * On-chain funds from `listfunds` by output status (`immature` coinbase
   * outputs count as unconfirmed: not yet spendable); channel funds from
   * `listpeerchannels` (`to_us_msat`, and `total_msat` minus it).
   */
  async getBalances(): Promise<Balances> {
    const [funds, channels] = await Promise.all([
      this.#read("listfunds", {}).then((v) => parse(ListfundsReply, v, "listfunds")),
      this.#peerChannels(),
    ]);
    const balances: Balances = {
      onchain: { confirmedSat: 0n, unconfirmedSat: 0n },
      channels: { localMsat: 0n, remoteMsat: 0n, pendingOpenLocalMsat: 0n },
    };
    for (const o of funds.outputs) {
      // On-chain outputs are whole satoshis.
      if (o.status === "confirmed") balances.onchain.confirmedSat += o.amount_msat / 1000n;
      else if (o.status !== "spent") balances.onchain.unconfirmedSat += o.amount_msat / 1000n;
    }
    for (const c of channels) {
      const state = channelState(c);
      const local = c.to_us_msat ?? 0n;
      if (state === "active") {
        balances.channels.localMsat += local;
        balances.channels.remoteMsat += (c.total_msat ?? local) - local;
      } else if (state === "opening") {
        balances.channels.pendingOpenLocalMsat += local;
      }
    }
    return balances;
  }

  /**
   * `listpeerchannels`. Channels without a funding outpoint yet (still
   * negotiating in `OPENINGD`) are left out: the port identifies channels by it.
   */
  async listChannels(): Promise<Channel[]> {
    const out: Channel[] = [];
    for (const c of await this.#peerChannels()) {
      if (c.funding_txid === undefined || c.funding_outnum === undefined) continue;
      const local = c.to_us_msat ?? 0n;
      const total = c.total_msat ?? local;
      out.push({
        channelPoint: `${c.funding_txid}:${c.funding_outnum}`,
        shortChannelId: c.short_channel_id ?? null,
        peerPubkey: c.peer_id,
        state: channelState(c),
        capacitySat: total / 1000n,
        localBalanceMsat: local,
        remoteBalanceMsat: total - local,
        private: c.private ?? false,
        initiator: c.opener === "local",
      });
    }
    return out;
  }

  /**
   * `connect` first when `peerAddress` is given (as `id@host:port`), then
   * `fundchannel`. A confirmation target maps to the named feerate whose
   * target is the latest not beyond it (`urgent` 6, `normal` 12, `slow` 100 blocks).
   *
   * @param req peer, size, push amount, privacy and funding fee
   */
  async openChannel(req: OpenChannelRequest): Promise<OpenedChannel> {
    assertPubkey(req.peerPubkey);
    assertAmount(req.amountSat, "amountSat", 1n);
    if (req.pushMsat !== undefined) assertAmount(req.pushMsat, "pushMsat", 0n);
    if (req.peerAddress !== undefined) {
      if (!/^[^\s@]+:\d{1,5}$/.test(req.peerAddress)) {
        throw new RangeError("peerAddress must be host:port");
      }
      await this.#call("connect", { id: `${req.peerPubkey}@${req.peerAddress}` }).catch(
        (err) => {
          throw refusedParams(err, "Cannot connect to the peer");
        },
      );
    }
    const params: Record<string, unknown> = {
      id: req.peerPubkey,
      amount: amountParam(req.amountSat, "sat"),
      announce: !(req.private ?? false),
    };
    if (req.pushMsat !== undefined) params.push_msat = amountParam(req.pushMsat, "msat");
    if (req.fee !== undefined) params.feerate = feerateParam(req.fee);
    let raw: unknown;
    try {
      raw = await this.#call("fundchannel", params);
    } catch (err) {
      throw fundingError(err);
    }
    const r = parse(FundchannelReply, raw, "fundchannel");
    return { fundingTxid: r.txid, outputIndex: r.outnum, channelPoint: `${r.txid}:${r.outnum}` };
  }

  /**
   * `close` by the channel's `channel_id`, looked up by funding outpoint in
   * `listpeerchannels`. A cooperative close sends `unilateraltimeout: 0` so
   * CLN never falls back to a unilateral close on its own; it returns once the
   * close is negotiated, so an offline peer ends in the client's deadline
   * with the shutdown still requested. A force close is CLN's mutual attempt
   * cut short after 1 second.
   *
   * @param req funding outpoint, force flag and cooperative fee
   */
  async closeChannel(req: CloseChannelRequest): Promise<ClosedChannel> {
    const m = OUTPOINT.exec(req.channelPoint);
    if (m === null) throw new RangeError("channelPoint must be txid:vout (lowercase hex txid)");
    const [, txid, vout] = m;
    const channel = (await this.#peerChannels()).find((c) =>
      c.funding_txid === txid && c.funding_outnum === Number(vout)
    );
    if (channel === undefined) {
      throw new NotFoundError(`No channel with funding outpoint ${req.channelPoint}`);
    }
    const id = channel.channel_id ?? channel.short_channel_id;
    if (id === undefined) throw unexpected("listpeerchannels");
    const params: Record<string, unknown> = { id, unilateraltimeout: req.force ? 1 : 0 };
    if (!req.force && req.fee !== undefined) {
      const rate = feerateParam(req.fee);
      params.feerange = [rate, rate];
    }
    let raw: unknown;
    try {
      raw = await this.#call("close", params, {
        timeoutMs: this.#callTimeoutMs + (req.force ? 1000 : 0),
      });
    } catch (err) {
      throw refusedParams(err, "Cannot close the channel");
    }
    const r = parse(CloseReply, raw, "close");
    return { closingTxid: r.txids?.[0] ?? null };
  }

  /**
   * `invoice` with `amount_msat` (or `any`), `label`, `description` and
   * `expiry`. CLN reveals the preimage only once the invoice is paid, so
   * `preimage` is null here.
   *
   * @param req amount, description, expiry and the unique label
   */
  async createInvoice(req: CreateInvoiceRequest): Promise<Invoice> {
    if (req.descriptionHash !== undefined) {
      throw new UnsupportedFeatureError(
        "Core Lightning cannot create an invoice from a description hash: it hashes the full description itself",
      );
    }
    if (req.amountMsat !== null) assertAmount(req.amountMsat, "amountMsat", 1n);
    if (!Number.isSafeInteger(req.expirySeconds) || req.expirySeconds < 1) {
      throw new RangeError(`expirySeconds must be a positive integer, got ${req.expirySeconds}`);
    }
    if (typeof req.label !== "string" || req.label.length === 0) {
      throw new RangeError("label must be a non-empty string");
    }
    const description = req.description ?? "";
    let raw: unknown;
    try {
      raw = await this.#call("invoice", {
        amount_msat: req.amountMsat === null ? "any" : amountParam(req.amountMsat, "msat"),
        label: req.label,
        description,
        expiry: req.expirySeconds,
      });
    } catch (err) {
      throw invoiceError(err, req.label);
    }
    const r = parse(InvoiceReply, raw, "invoice");
    const decoded = decodeOwn(r.bolt11, "invoice");
    if (decoded.paymentHash !== r.payment_hash) throw unexpected("invoice");
    return {
      paymentHash: r.payment_hash,
      bolt11: r.bolt11,
      amountMsat: req.amountMsat,
      amountReceivedMsat: null,
      description,
      descriptionHash: null,
      state: "open",
      createdAt: decoded.timestamp,
      expiresAt: new Date(r.expires_at * 1000),
      settledAt: null,
      preimage: null,
    };
  }

  /**
   * `listinvoices` by `payment_hash`; null when the node has none (or only a
   * BOLT12 one, which this port does not cover).
   *
   * @param paymentHash lowercase hex
   */
  async getInvoice(paymentHash: string): Promise<Invoice | null> {
    assertHash(paymentHash, "paymentHash");
    const r = parse(
      ListinvoicesReply,
      await this.#read("listinvoices", { payment_hash: paymentHash }),
      "listinvoices",
    );
    const found = r.invoices.find((i) => i.payment_hash === paymentHash && i.bolt11 !== undefined);
    return found === undefined ? null : toInvoice(found, "listinvoices");
  }

  /**
   * The newest BOLT11 invoices. CLN pages by `created_index` upwards only, so
   * the highest index is found first with one-entry probes (a doubling, then
   * a bisection: about 2·log2(n) small calls), then windows below it are
   * read until `limit` invoices are found.
   *
   * @param opts `limit`: at most this many, newest first
   */
  async listInvoices(opts: { limit: number }): Promise<Invoice[]> {
    const { limit } = opts;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`limit must be a positive integer, got ${limit}`);
    }
    const page = async (start: number, n: number) =>
      parse(
        ListinvoicesReply,
        await this.#read("listinvoices", { index: "created", start, limit: n }),
        "listinvoices",
      ).invoices;
    const top = await highestIndex(async (start) => {
      const first = (await page(start, 1))[0];
      if (first === undefined) return null;
      if (first.created_index === undefined) throw unexpected("listinvoices");
      return first.created_index;
    });
    if (top === null) return [];
    const out: Invoice[] = [];
    let end = top + 1;
    let span = limit;
    while (out.length < limit && end > 1) {
      const start = Math.max(1, end - span);
      const batch = (await page(start, end - start))
        .filter((i) => i.bolt11 !== undefined && (i.created_index ?? 0) < end)
        .sort((a, b) => (b.created_index ?? 0) - (a.created_index ?? 0));
      for (const i of batch) {
        if (out.length < limit) out.push(toInvoice(i, "listinvoices"));
      }
      end = start;
      span *= 2; // gaps (deleted invoices): look further back each round
    }
    return out;
  }

  /**
   * Settlements via `waitanyinvoice` long polls. It starts after the highest
   * `pay_index` the node already has (found with `timeout: 0` probes), so
   * only new settlements are yielded; each poll passes the last `pay_index`
   * seen, and a poll that times out (code 904) is simply repeated. Failed
   * polls are logged and retried with a growing back-off until `signal`
   * aborts.
   *
   * @param signal ends the stream
   */
  async *watchInvoices(signal: AbortSignal): AsyncIterable<Invoice> {
    let last: number | null = null;
    let failures = 0;
    while (!signal.aborted) {
      let paid: ListedInvoice | null;
      try {
        last ??= (await highestIndex((n) => this.#nextPaid(n - 1, 0, signal))) ?? 0;
        paid = await this.#waitAnyInvoice(last, this.#longPollSeconds, signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (!(err instanceof AppError)) throw err;
        failures++;
        this.#logger?.warn("Core Lightning invoice watch failed; polling again", {
          error: err.code,
          detail: err.message,
          failures,
        });
        try {
          await sleep(backoffDelay(failures, this.#backoff), signal);
        } catch {
          return;
        }
        continue;
      }
      if (paid === null) continue;
      last = Math.max(last, paid.pay_index ?? last);
      yield toInvoice(paid, "waitanyinvoice");
    }
  }

  /**
   * Pay with `xpay` (`invstring`, `maxfee`, `retry_for`) or `pay` (`bolt11`,
   * `maxfee`, `retry_for`), waiting `timeoutSeconds` plus the call deadline.
   * Definite refusals become `failed` results; where an HTLC may still be in
   * flight (xpay returns while other parts are pending) `listpays` decides.
   * Without an answer, a `listpays` showing the payment pending or complete
   * is returned; otherwise the client's error is rethrown (outcome unknown).
   *
   * @param req invoice, amount for an any-amount invoice, fee limit and timeout
   */
  async payInvoice(req: PayInvoiceRequest): Promise<PaymentResult> {
    const paymentHash = decodeBolt11(req.bolt11).paymentHash;
    assertAmount(req.maxFeeMsat, "maxFeeMsat", 0n);
    if (req.amountMsat !== undefined) assertAmount(req.amountMsat, "amountMsat", 1n);
    // pay's retry_for is a u16, xpay's a u32.
    if (!Number.isSafeInteger(req.timeoutSeconds) || req.timeoutSeconds < 1) {
      throw new RangeError(`timeoutSeconds must be a positive integer, got ${req.timeoutSeconds}`);
    }
    let command = this.#payCommand ?? "xpay";
    for (;;) {
      const params: Record<string, unknown> = {
        [command === "xpay" ? "invstring" : "bolt11"]: req.bolt11,
        maxfee: amountParam(req.maxFeeMsat, "msat"),
        retry_for: command === "pay" ? Math.min(req.timeoutSeconds, 65_535) : req.timeoutSeconds,
      };
      if (req.amountMsat !== undefined) params.amount_msat = amountParam(req.amountMsat, "msat");
      let raw: unknown;
      try {
        raw = await this.#call(command, params, {
          timeoutMs: req.timeoutSeconds * 1000 + this.#callTimeoutMs,
        });
      } catch (err) {
        if (
          command === "xpay" && this.#payCommand === null &&
          err instanceof ClnCommandError && err.rpcCode === -32601
        ) {
          this.#payCommand = command = "pay";
          continue;
        }
        return await this.#payFailed(err, paymentHash);
      }
      if (this.#payCommand === null) this.#payCommand = command;
      return paymentFromReply(command, raw, paymentHash);
    }
  }

  /**
   * `listpays` by `payment_hash`: complete if any attempt completed, pending
   * if one is in flight, null if the node never tried. CLN keeps no reason
   * for a failed payment, so `reason` is `unknown`. Between two attempts of
   * a running `xpay` every part may read failed: trust `failed` only after
   * the payment's timeout has passed.
   *
   * @param paymentHash lowercase hex
   */
  async getPayment(paymentHash: string): Promise<PaymentResult | null> {
    assertHash(paymentHash, "paymentHash");
    const r = parse(
      ListpaysReply,
      await this.#read("listpays", { payment_hash: paymentHash }),
      "listpays",
    );
    const pays = r.pays.filter((p) => p.payment_hash === paymentHash);
    if (pays.length === 0) return null;
    const done = pays.find((p) => p.status === "complete");
    if (done !== undefined) {
      if (done.preimage === undefined || done.amount_sent_msat === undefined) {
        throw unexpected("listpays");
      }
      checkPreimage(done.preimage, paymentHash, "listpays");
      const amount = done.amount_msat ?? done.amount_sent_msat;
      return {
        status: "succeeded",
        paymentHash,
        preimage: done.preimage,
        amountMsat: amount,
        feeMsat: done.amount_sent_msat - amount,
      };
    }
    if (pays.some((p) => p.status === "pending")) return { status: "pending", paymentHash };
    return { status: "failed", paymentHash, reason: "unknown" };
  }

  /** What a payment call that did not succeed means, asking `listpays` where needed. */
  async #payFailed(err: unknown, paymentHash: string): Promise<PaymentResult> {
    if (err instanceof ClnCommandError) {
      const code = err.rpcCode;
      if (code === -32602) {
        throw new ValidationError(`Cannot pay the invoice: ${err.message}`, {
          status: 422,
          cause: err,
        });
      }
      if (code === 201) {
        throw new ConflictError("This payment hash was already paid with another amount or payee", {
          cause: err,
        });
      }
      if (code === 205 || code === 207) {
        return { status: "failed", paymentHash, reason: PAY_FAILURES[code] as string };
      }
      const seen = await this.getPayment(paymentHash);
      if (seen?.status === "succeeded" || seen?.status === "pending") return seen;
      if (code === 219) {
        throw new ConflictError("Core Lightning says the invoice is already paid", { cause: err });
      }
      const reason = PAY_FAILURES[code] ?? (seen === null ? undefined : "error");
      if (reason !== undefined) return { status: "failed", paymentHash, reason };
      throw err;
    }
    if (err instanceof UpstreamTimeoutError || err instanceof UpstreamError) {
      // No usable answer: the node may be paying. Only "in flight" or "done" is news.
      let seen: PaymentResult | null;
      try {
        seen = await this.getPayment(paymentHash);
      } catch {
        throw err;
      }
      if (seen?.status === "succeeded" || seen?.status === "pending") return seen;
    }
    throw err;
  }

  async #peerChannels(): Promise<PeerChannel[]> {
    const raw = await this.#read("listpeerchannels", {});
    return parse(ListpeerchannelsReply, raw, "listpeerchannels").channels;
  }

  /** The first invoice paid after `lastpayIndex`, waiting up to `timeout` seconds; null on 904. */
  async #waitAnyInvoice(
    lastpayIndex: number,
    timeout: number,
    signal: AbortSignal,
  ): Promise<ListedInvoice | null> {
    let raw: unknown;
    try {
      raw = await this.#call("waitanyinvoice", { lastpay_index: lastpayIndex, timeout }, {
        timeoutMs: timeout * 1000 + this.#callTimeoutMs,
        signal,
      });
    } catch (err) {
      if (err instanceof ClnCommandError && err.rpcCode === 904) return null;
      throw err;
    }
    const r = parse(ListedInvoice, raw, "waitanyinvoice");
    if (r.pay_index === undefined || r.bolt11 === undefined) throw unexpected("waitanyinvoice");
    return r;
  }

  /** `pay_index` of the first invoice paid after `lastpayIndex`, or null when there is none yet. */
  async #nextPaid(
    lastpayIndex: number,
    timeout: number,
    signal: AbortSignal,
  ): Promise<number | null> {
    return (await this.#waitAnyInvoice(lastpayIndex, timeout, signal))?.pay_index ?? null;
  }

  /** A read-only command: retried by the client like any idempotent call. */
  #read(command: string, params: Record<string, unknown>): Promise<unknown> {
    return this.#call(command, params, { idempotent: true });
  }

  /** One command; resolves with its parsed result, throws the mapped error otherwise. */
  async #call(
    command: string,
    params: Record<string, unknown>,
    opts: { idempotent?: boolean; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    const route = `/v1/${command}`;
    const request: RequestOptions = {
      method: "POST",
      path: route,
      route,
      json: params,
      idempotent: opts.idempotent ?? false,
      // clnrest sends command errors as HTTP 500 with a JSON body: an answer, not an outage.
      expectedStatuses: [500],
    };
    if (opts.timeoutMs !== undefined) request.timeoutMs = opts.timeoutMs;
    if (opts.signal !== undefined) request.signal = opts.signal;
    const res = await this.#client.request(request);
    const text = res.text();
    if (res.status === 200 || res.status === 201) return parseJson(text, command);
    let body: z.infer<typeof RpcErrorBody> | undefined;
    try {
      const parsed = RpcErrorBody.safeParse(JSON.parse(text));
      if (parsed.success) body = parsed.data;
    } catch {
      // not JSON: handled by status below
    }
    if (res.status === 401 || res.status === 403) {
      // The node's wording is left out: it may describe the rune's restrictions.
      throw new UpstreamError(
        `Core Lightning refused the rune for "${command}" (HTTP ${res.status}): check the rune and its restrictions`,
      );
    }
    const message = clean(body?.message ?? "no message");
    if (res.status === 404) throw new ClnCommandError(command, body?.code ?? -32601, message);
    if (res.status === 500 && typeof body?.code === "number") {
      throw new ClnCommandError(command, body.code, message);
    }
    if (res.status === 429) {
      throw new UnavailableError("Core Lightning is rate limiting this service: retry later");
    }
    throw new UpstreamError(
      `Core Lightning answered HTTP ${res.status} for "${command}": ${message}`,
    );
  }
}

/**
 * The largest index for which `first(n)` (the index of the first entry at or
 * above `n`, or null) finds an entry: doubling, then bisection.
 */
async function highestIndex(
  first: (n: number) => Promise<number | null>,
): Promise<number | null> {
  let lo = await first(1);
  if (lo === null) return null;
  let hi: number;
  for (;;) {
    const probe = Math.max(lo + 1, lo * 2);
    const next = await first(probe);
    if (next === null) {
      hi = probe;
      break;
    }
    lo = next;
  }
  // Invariant: an entry has index lo; none has an index >= hi.
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const next = await first(mid);
    if (next === null) hi = mid;
    else lo = next;
  }
  return lo;
}

function channelState(c: PeerChannel): ChannelState {
  const state = CHANNEL_STATES[c.state];
  // A state newer than the schema we know: not usable as far as we can tell.
  if (state === undefined) return "inactive";
  if (state === "usable") return c.peer_connected ? "active" : "inactive";
  return state;
}

function toInvoice(i: ListedInvoice, command: string): Invoice {
  if (i.bolt11 === undefined) throw unexpected(command);
  const decoded = decodeOwn(i.bolt11, command);
  const state = INVOICE_STATES[i.status];
  if (state === undefined || decoded.paymentHash !== i.payment_hash) throw unexpected(command);
  const settled = state === "settled";
  if (settled && (i.paid_at === undefined || i.payment_preimage === undefined)) {
    throw unexpected(command);
  }
  if (i.payment_preimage !== undefined) checkPreimage(i.payment_preimage, i.payment_hash, command);
  return {
    paymentHash: i.payment_hash,
    bolt11: i.bolt11,
    amountMsat: i.amount_msat ?? null,
    amountReceivedMsat: i.amount_received_msat ?? null,
    description: decoded.descriptionHash === null ? (i.description ?? decoded.description) : null,
    descriptionHash: decoded.descriptionHash,
    state,
    createdAt: decoded.timestamp,
    expiresAt: new Date(i.expires_at * 1000),
    settledAt: settled && i.paid_at !== undefined ? new Date(i.paid_at * 1000) : null,
    preimage: i.payment_preimage ?? null,
  };
}

function paymentFromReply(
  command: "xpay" | "pay",
  raw: unknown,
  paymentHash: string,
): PaymentResult {
  const r = command === "xpay"
    ? { ...parse(XpayReply, raw, command), status: "complete" as const }
    : parse(PayReply, raw, command);
  if (r.status === "pending") return { status: "pending", paymentHash } as const;
  if (r.status === "failed") return { status: "failed", paymentHash, reason: "error" } as const;
  checkPreimage(r.payment_preimage, paymentHash, command);
  if (r.amount_sent_msat < r.amount_msat) throw unexpected(command);
  return {
    status: "succeeded",
    paymentHash,
    preimage: r.payment_preimage,
    amountMsat: r.amount_msat,
    feeMsat: r.amount_sent_msat - r.amount_msat,
  } as const;
}

/** A BOLT11 the node itself returned: one that does not decode is an unusable reply. */
function decodeOwn(bolt11: string, command: string): DecodedBolt11 {
  try {
    return decodeBolt11(bolt11);
  } catch (err) {
    if (err instanceof ValidationError) throw unexpected(command, err);
    throw err;
  }
}

function checkPreimage(preimage: string, paymentHash: string, command: string): void {
  if (hex.encode(sha256(hex.decode(preimage))) !== paymentHash) {
    throw new UpstreamError(
      `Core Lightning sent a preimage that does not match the payment hash in "${command}"`,
    );
  }
}

/** `fundchannel`'s codes (its schema's `errors`). */
function fundingError(err: unknown): unknown {
  if (!(err instanceof ClnCommandError)) return err;
  switch (err.rpcCode) {
    case 300:
      return new ValidationError(`Channel too large: ${err.message}`, { status: 422, cause: err });
    case 302:
      return new ValidationError(`Channel amount is dust: ${err.message}`, {
        status: 422,
        cause: err,
      });
    case 301:
    case 313:
      return new ConflictError(`Not enough on-chain funds to open the channel: ${err.message}`, {
        code: "insufficient-funds",
        cause: err,
      });
    default:
      return refusedParams(err, "Cannot open the channel");
  }
}

/** `invoice`'s codes (its schema's `errors`). */
function invoiceError(err: unknown, label: string): unknown {
  if (!(err instanceof ClnCommandError)) return err;
  switch (err.rpcCode) {
    case 900:
      return new ConflictError(`An invoice labelled "${clean(label)}" already exists`, {
        code: "duplicate-invoice-label",
        cause: err,
      });
    case 901:
      return new ConflictError("An invoice with this preimage already exists", { cause: err });
    case 902:
      return new ValidationError(`No usable private channel to expose: ${err.message}`, {
        status: 422,
        cause: err,
      });
    default:
      return refusedParams(err, "Cannot create the invoice");
  }
}

/** Invalid parameters (-32602) are the caller's; everything else stays as it is. */
function refusedParams(err: unknown, what: string): unknown {
  if (err instanceof ClnCommandError && err.rpcCode === -32602) {
    return new ValidationError(`${what}: ${err.message}`, { status: 422, cause: err });
  }
  return err;
}

/** An amount parameter: a JSON number when exact, else CLN's suffixed string form. */
function amountParam(value: bigint, unit: "msat" | "sat"): number | string {
  return value <= MAX_SAFE ? Number(value) : `${value}${unit}`;
}

function feerateParam(fee: { satPerVbyte: number } | { targetConf: number }): string {
  if ("satPerVbyte" in fee) {
    if (!Number.isFinite(fee.satPerVbyte) || fee.satPerVbyte <= 0) {
      throw new RangeError(`satPerVbyte must be a positive number, got ${fee.satPerVbyte}`);
    }
    // 1 sat/vB is 1000 sat per kvB.
    return `${Math.round(fee.satPerVbyte * 1000)}perkb`;
  }
  if (!Number.isSafeInteger(fee.targetConf) || fee.targetConf < 1) {
    throw new RangeError(`targetConf must be a positive integer, got ${fee.targetConf}`);
  }
  const named = NAMED_FEERATES.find(([blocks]) => blocks <= fee.targetConf);
  return named?.[1] ?? "urgent";
}

/** JSON with every integer `*_msat` value read as an exact `bigint`. */
function parseJson(text: string, command: string): unknown {
  const reviver = (key: string, value: unknown, context?: { source?: string }) =>
    typeof value === "number" && key.endsWith("_msat") && context?.source !== undefined &&
      /^\d+$/.test(context.source)
      ? BigInt(context.source)
      : value;
  try {
    return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
  } catch (err) {
    throw unexpected(command, err);
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown, command: string): z.infer<S> {
  return parseReply(schema, value, "Core Lightning", `"${command}"`);
}

function unexpected(command: string, cause?: unknown): UpstreamError {
  return unexpectedReply("Core Lightning", `"${command}"`, cause);
}

/** Node text made safe for a problem detail: no control characters, at most 200 characters. */
function clean(text: string): string {
  // deno-lint-ignore no-control-regex -- removing control characters is the point
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").replace(/\s+/g, " ")
    .trim();
  return flat.length <= 200 ? flat : `${flat.slice(0, 199)}…`;
}

function assertHash(value: string, name: string): void {
  if (typeof value !== "string" || !HASH_HEX.test(value)) {
    throw new RangeError(`${name} must be 64 lowercase hex characters`);
  }
}

function assertPubkey(value: string): void {
  if (typeof value !== "string" || !PUBKEY_HEX.test(value)) {
    throw new RangeError("peerPubkey must be a 33-byte compressed public key in lowercase hex");
  }
}

function assertAmount(value: bigint, name: string, min: bigint): void {
  if (typeof value !== "bigint" || value < min) {
    throw new RangeError(`${name} must be a bigint >= ${min}, got ${String(value)}`);
  }
}
