/**
 * `LightningBackend` over LND's REST gateway.
 *
 * API: https://lightning.engineering/api-docs/api/lnd/ (REST mappings in
 * `lnrpc/lightning.yaml` and `lnrpc/routerrpc/router.yaml`, bodies in the
 * swagger files next to them). Wire rules and error translation live in
 * `_lnd_wire.ts`.
 *
 * Credentials and TLS are the client's business: the composition root gives
 * the `HttpClient` the `Grpc-Metadata-macaroon` header and a transport that
 * pins the node's certificate, so this adapter never sees the macaroon.
 *
 * @module
 */
import { hex } from "@scure/base";
import type { z } from "zod";
import {
  AppError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../errors/app_error.ts";
import type { HttpClient } from "../../net/http_client.ts";
import type { RequestOptions, UpstreamResponse, UpstreamStream } from "../../net/types.ts";
import type {
  Balances,
  Channel,
  CloseChannelRequest,
  ClosedChannel,
  CreateInvoiceRequest,
  Invoice,
  LightningBackend,
  LightningFeature,
  NodeInfo,
  OpenChannelRequest,
  OpenedChannel,
  PayInvoiceRequest,
  PaymentResult,
} from "./backend.ts";
import {
  AddInvoiceResponse,
  ChannelBalanceResponse,
  ChannelPointResponse,
  CloseStatusUpdate,
  encodeBase64,
  encodeBase64UrlPadded,
  errorFromBody,
  errorFromStatus,
  GetInfoResponse,
  HASH_HEX,
  isNotFound,
  ListChannelsResponse,
  ListInvoiceResponse,
  LnrpcInvoice,
  LnrpcPayment,
  parseLndReply,
  parseStreamRecord,
  PendingChannelsResponse,
  PUBKEY_HEX,
  type StreamRecord,
  toChannels,
  toInvoice,
  toNodeInfo,
  toPaymentResult,
  txidFromBytes,
  unexpected,
  WalletBalanceResponse,
} from "./_lnd_wire.ts";

/** Tuning of {@linkcode LndRestBackend}; every field has a default. */
export interface LndRestOptions {
  /**
   * How long `payInvoice` follows the payment beyond its `timeoutSeconds`
   * before answering `pending` (default 30 s): LND stops *starting*
   * attempts at the timeout, but HTLCs already sent settle or fail later.
   */
  payGraceMs?: number;
  /**
   * Deadline for the invoice stream's response head (default 10 min). LND
   * sends the head with the first update only, so on a quiet node the
   * stream is reopened this often.
   */
  watchHeadTimeoutMs?: number;
  /** Back-off between invoice stream reconnects: first wait and cap (default 500 ms, 30 s). */
  watchBackoff?: { baseMs: number; maxMs: number };
  /** Clock in epoch milliseconds (invoice expiry). */
  now?: () => number;
}

/** LND answers its own failures with HTTP 500 and an `rpcStatus` body: read it rather than throw. */
const LND_ERROR_STATUSES = [500] as const;
const FEATURES: ReadonlySet<LightningFeature> = new Set<LightningFeature>([
  "description-hash",
  "invoice-stream",
  "force-close",
]);
const OUTPOINT = /^([0-9a-f]{64}):(\d{1,10})$/;
const BOLT11 = /^ln[a-z0-9]{1,7200}$/i;
const MAX_INT32 = 2 ** 31 - 1;

/**
 * LND REST adapter (LND ≥ 0.18: `SendPaymentV2`/`TrackPaymentV2` from the
 * router sub-server, amounts in msat where LND offers them).
 *
 * @example
 * ```ts
 * const lnd = new LndRestBackend(client);
 * const invoice = await lnd.createInvoice({ amountMsat: 5_000n, description: "coffee", expirySeconds: 600, label: "inv-1" });
 * ```
 */
export class LndRestBackend implements LightningBackend {
  /** This adapter's kind. */
  readonly kind = "lnd" as const;
  /** LND supports description hashes, an invoice stream and force-closes. */
  readonly features: ReadonlySet<LightningFeature> = FEATURES;
  readonly #client: HttpClient;
  readonly #payGraceMs: number;
  readonly #watchHeadTimeoutMs: number;
  readonly #watchBackoff: { baseMs: number; maxMs: number };
  readonly #now: () => number;

  /**
   * Build the adapter over the node's client.
   *
   * @param client the LND `HttpClient` (base URL of the REST gateway, macaroon header, pinned TLS)
   * @param options timing knobs
   */
  constructor(client: HttpClient, options: LndRestOptions = {}) {
    this.#client = client;
    this.#payGraceMs = options.payGraceMs ?? 30_000;
    this.#watchHeadTimeoutMs = options.watchHeadTimeoutMs ?? 600_000;
    this.#watchBackoff = options.watchBackoff ?? { baseMs: 500, maxMs: 30_000 };
    this.#now = options.now ?? Date.now;
  }

  /** `GET /v1/getinfo`. */
  async getInfo(): Promise<NodeInfo> {
    const res = await this.#call({ method: "GET", path: "/v1/getinfo", route: "/v1/getinfo" });
    return toNodeInfo(parseLndReply(GetInfoResponse, res.json(), "GET /v1/getinfo"));
  }

  /** `GET /v1/balance/blockchain` and `GET /v1/balance/channels`. */
  async getBalances(): Promise<Balances> {
    const [wallet, channels] = await Promise.all([
      this.#call({
        method: "GET",
        path: "/v1/balance/blockchain",
        route: "/v1/balance/blockchain",
      }),
      this.#call({ method: "GET", path: "/v1/balance/channels", route: "/v1/balance/channels" }),
    ]);
    const w = parseLndReply(WalletBalanceResponse, wallet.json(), "GET /v1/balance/blockchain");
    const c = parseLndReply(ChannelBalanceResponse, channels.json(), "GET /v1/balance/channels");
    return {
      onchain: { confirmedSat: w.confirmed_balance, unconfirmedSat: w.unconfirmed_balance },
      channels: {
        localMsat: c.local_balance.msat,
        remoteMsat: c.remote_balance.msat,
        pendingOpenLocalMsat: c.pending_open_local_balance.msat,
      },
    };
  }

  /** `GET /v1/channels` and `GET /v1/channels/pending`, merged per funding outpoint. */
  async listChannels(): Promise<Channel[]> {
    const [open, pending] = await Promise.all([
      this.#call({ method: "GET", path: "/v1/channels", route: "/v1/channels" }),
      this.#call({ method: "GET", path: "/v1/channels/pending", route: "/v1/channels/pending" }),
    ]);
    return toChannels(
      parseLndReply(ListChannelsResponse, open.json(), "GET /v1/channels"),
      parseLndReply(PendingChannelsResponse, pending.json(), "GET /v1/channels/pending"),
    );
  }

  /**
   * Connect to the peer when an address is given (`POST /v1/peers`; "already
   * connected" is fine), then `POST /v1/channels` (`OpenChannelSync`: answers
   * once the funding transaction is published).
   *
   * @param req peer, size, push amount, privacy and funding fee
   */
  async openChannel(req: OpenChannelRequest): Promise<OpenedChannel> {
    if (typeof req.peerPubkey !== "string" || !PUBKEY_HEX.test(req.peerPubkey)) {
      throw new RangeError("Invalid peerPubkey: expected a 33-byte compressed public key, hex");
    }
    assertPositive(req.amountSat, "amountSat");
    if (req.pushMsat !== undefined && (req.pushMsat < 0n || req.pushMsat % 1000n !== 0n)) {
      throw new ValidationError(
        "LND pushes whole satoshis only: pushMsat must be a multiple of 1000",
        {
          status: 422,
        },
      );
    }
    if (req.peerAddress !== undefined) await this.#connectPeer(req.peerPubkey, req.peerAddress);
    const body: Record<string, unknown> = {
      node_pubkey: encodeBase64(hex.decode(req.peerPubkey)),
      local_funding_amount: String(req.amountSat),
      private: req.private ?? false,
      ...feeFields(req.fee, "open"),
    };
    if (req.pushMsat !== undefined && req.pushMsat > 0n) {
      body.push_sat = String(req.pushMsat / 1000n);
    }
    const what = "POST /v1/channels";
    const res = await this.#call({
      method: "POST",
      path: "/v1/channels",
      route: "/v1/channels",
      json: body,
      idempotent: false,
    });
    const point = parseLndReply(ChannelPointResponse, res.json(), what);
    let fundingTxid: string;
    if (point.funding_txid_str !== undefined && HASH_HEX.test(point.funding_txid_str)) {
      fundingTxid = point.funding_txid_str;
    } else if (point.funding_txid_bytes !== undefined) {
      fundingTxid = txidFromBytes(point.funding_txid_bytes);
    } else throw unexpected(what);
    return {
      fundingTxid,
      outputIndex: point.output_index,
      channelPoint: `${fundingTxid}:${point.output_index}`,
    };
  }

  /**
   * `DELETE /v1/channels/{funding_txid_str}/{output_index}`: a stream of
   * close updates, of which the first (closing transaction published) is
   * the answer.
   *
   * @param req the channel, force flag and cooperative fee
   */
  async closeChannel(req: CloseChannelRequest): Promise<ClosedChannel> {
    const point = typeof req.channelPoint === "string" ? OUTPOINT.exec(req.channelPoint) : null;
    if (point === null || Number(point[2]) > 0xffffffff) {
      throw new RangeError(
        "Invalid channelPoint: expected <txid>:<vout>, txid as 64 lowercase hex",
      );
    }
    if (typeof req.force !== "boolean") throw new TypeError("Invalid force: expected a boolean");
    const query = new URLSearchParams();
    if (req.force) query.set("force", "true");
    for (const [k, v] of Object.entries(feeFields(req.fee, "close"))) query.set(k, String(v));
    const qs = query.size > 0 ? `?${query}` : "";
    const route = "/v1/channels/:funding_txid_str/:output_index";
    const what = "DELETE /v1/channels";
    using stream = await this.#client.stream({
      method: "DELETE",
      path: `/v1/channels/${point[1]}/${point[2]}${qs}`,
      route,
      expectedStatuses: LND_ERROR_STATUSES,
    });
    const first = await this.#firstRecord(stream, CloseStatusUpdate, what);
    if ("error" in first) throw errorFromStatus(first.error, what);
    const update = first.result;
    const pendingTxid = update.close_pending?.txid;
    if (pendingTxid !== undefined && pendingTxid.byteLength > 0) {
      return { closingTxid: txidFromBytes(pendingTxid) };
    }
    const closedTxid = update.chan_close?.closing_txid;
    if (closedTxid !== undefined && closedTxid.byteLength > 0) {
      return { closingTxid: txidFromBytes(closedTxid) };
    }
    return { closingTxid: null };
  }

  /**
   * `POST /v1/invoices`, then the invoice as stored (`GET /v1/invoice/…`),
   * which also carries the preimage and creation time.
   *
   * @param req amount, description or its hash, expiry (`label` is not used by LND)
   */
  async createInvoice(req: CreateInvoiceRequest): Promise<Invoice> {
    if (req.amountMsat !== null) assertPositive(req.amountMsat, "amountMsat");
    if (!Number.isSafeInteger(req.expirySeconds) || req.expirySeconds <= 0) {
      throw new RangeError(
        `Invalid expirySeconds: expected a positive integer, got ${req.expirySeconds}`,
      );
    }
    if (req.description !== undefined && req.descriptionHash !== undefined) {
      throw new ValidationError("An invoice has a description or a description hash, not both", {
        status: 422,
      });
    }
    const body: Record<string, unknown> = { expiry: String(req.expirySeconds) };
    if (req.amountMsat !== null) body.value_msat = String(req.amountMsat);
    if (req.description !== undefined) body.memo = req.description;
    if (req.descriptionHash !== undefined) {
      if (typeof req.descriptionHash !== "string" || !HASH_HEX.test(req.descriptionHash)) {
        throw new RangeError("Invalid descriptionHash: expected 64 lowercase hex characters");
      }
      body.description_hash = encodeBase64(hex.decode(req.descriptionHash));
    }
    const what = "POST /v1/invoices";
    const res = await this.#call({
      method: "POST",
      path: "/v1/invoices",
      route: "/v1/invoices",
      json: body,
      idempotent: false,
    });
    const added = parseLndReply(AddInvoiceResponse, res.json(), what);
    if (added.r_hash.byteLength !== 32) throw unexpected(what);
    const invoice = await this.getInvoice(hex.encode(added.r_hash));
    if (invoice === null) throw unexpected(what);
    return invoice;
  }

  /**
   * `GET /v1/invoice/{r_hash_str}`; LND's NotFound is null.
   *
   * @param paymentHash 64 lowercase hex
   */
  async getInvoice(paymentHash: string): Promise<Invoice | null> {
    assertHash(paymentHash, "paymentHash");
    const what = "GET /v1/invoice";
    const res = await this.#call(
      { method: "GET", path: `/v1/invoice/${paymentHash}`, route: "/v1/invoice/:r_hash_str" },
      { notFound: true },
    );
    if (res === null) return null;
    const invoice = toInvoice(parseLndReply(LnrpcInvoice, res.json(), what), this.#now());
    if (invoice.paymentHash !== paymentHash) throw unexpected(what);
    return invoice;
  }

  /**
   * `GET /v1/invoices?reversed=true&num_max_invoices=…`: the newest page,
   * which LND returns oldest first, so it is reordered.
   *
   * @param opts at most `limit` invoices
   */
  async listInvoices(opts: { limit: number }): Promise<Invoice[]> {
    if (!Number.isSafeInteger(opts?.limit) || opts.limit <= 0) {
      throw new RangeError(`Invalid limit: expected a positive integer, got ${opts?.limit}`);
    }
    const query = new URLSearchParams({ reversed: "true", num_max_invoices: String(opts.limit) });
    const res = await this.#call({
      method: "GET",
      path: `/v1/invoices?${query}`,
      route: "/v1/invoices",
    });
    const list = parseLndReply(ListInvoiceResponse, res.json(), "GET /v1/invoices");
    const now = this.#now();
    return list.invoices
      .toSorted((a, b) => (a.add_index < b.add_index ? 1 : a.add_index > b.add_index ? -1 : 0))
      .slice(0, opts.limit)
      .map((i) => toInvoice(i, now));
  }

  /**
   * `GET /v1/invoices/subscribe`: added and settled invoices as they happen.
   * After a broken or ended stream it reconnects with back-off, passing the
   * highest `add_index`/`settle_index` seen, so that LND replays what was
   * added (and, once a settlement was seen, settled) meanwhile. Settlements
   * during a gap before the first one seen are not replayed: callers still
   * reconcile with `getInvoice`, as the port says. Stops when `signal` aborts.
   *
   * @param signal ends the watch
   */
  async *watchInvoices(signal: AbortSignal): AsyncIterable<Invoice> {
    let addIndex = 0n;
    let settleIndex = 0n;
    let failures = 0;
    const what = "GET /v1/invoices/subscribe";
    while (!signal.aborted) {
      let stream: UpstreamStream | undefined;
      try {
        const query = new URLSearchParams();
        if (addIndex > 0n) query.set("add_index", String(addIndex));
        if (settleIndex > 0n) query.set("settle_index", String(settleIndex));
        stream = await this.#client.stream({
          method: "GET",
          path: `/v1/invoices/subscribe${query.size > 0 ? `?${query}` : ""}`,
          route: "/v1/invoices/subscribe",
          timeoutMs: this.#watchHeadTimeoutMs,
          expectedStatuses: LND_ERROR_STATUSES,
          signal,
        });
        if (stream.status !== 200) throw await streamError(stream, what);
        for await (const line of stream.lines()) {
          const record = parseStreamRecord(LnrpcInvoice, line, what);
          if ("error" in record) throw errorFromStatus(record.error, what);
          const inv = record.result;
          if (inv.add_index > addIndex) addIndex = inv.add_index;
          if (inv.settle_index > settleIndex) settleIndex = inv.settle_index;
          failures = 0;
          yield toInvoice(inv, this.#now());
        }
      } catch (err) {
        if (signal.aborted) return;
        // Node and transport failures are waited out; programming errors are not.
        if (!(err instanceof AppError)) throw err;
      } finally {
        stream?.close();
      }
      failures++;
      await sleep(backoff(failures, this.#watchBackoff), signal);
    }
  }

  /**
   * `POST /v2/router/send` (`SendPaymentV2`), following the update stream
   * until the payment succeeds or fails. In-flight updates are asked for
   * (`no_inflight_updates: false`): they carry the payment hash, so a
   * stream that ends, breaks or outlives `timeoutSeconds` plus the grace
   * period after one of them answers `pending` instead of "unknown".
   *
   * @param req the invoice, fee limit and payment timeout
   */
  async payInvoice(req: PayInvoiceRequest): Promise<PaymentResult> {
    if (typeof req.bolt11 !== "string" || !BOLT11.test(req.bolt11)) {
      throw new RangeError("Invalid bolt11: expected a BOLT11 invoice");
    }
    if (typeof req.maxFeeMsat !== "bigint" || req.maxFeeMsat < 0n) {
      throw new RangeError("Invalid maxFeeMsat: expected a non-negative bigint");
    }
    if (
      !Number.isInteger(req.timeoutSeconds) || req.timeoutSeconds <= 0 ||
      req.timeoutSeconds > MAX_INT32
    ) {
      throw new RangeError(
        `Invalid timeoutSeconds: expected a positive integer, got ${req.timeoutSeconds}`,
      );
    }
    if (req.amountMsat !== undefined) assertPositive(req.amountMsat, "amountMsat");
    const body: Record<string, unknown> = {
      payment_request: req.bolt11,
      fee_limit_msat: String(req.maxFeeMsat),
      timeout_seconds: req.timeoutSeconds,
      no_inflight_updates: false,
    };
    if (req.amountMsat !== undefined) body.amt_msat = String(req.amountMsat);
    const what = "POST /v2/router/send";
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException("Payment follow-up time is over", "TimeoutError")),
      req.timeoutSeconds * 1000 + this.#payGraceMs,
    );
    let inFlight: string | null = null;
    let stream: UpstreamStream | undefined;
    try {
      stream = await this.#client.stream({
        method: "POST",
        path: "/v2/router/send",
        route: "/v2/router/send",
        json: body,
        expectedStatuses: LND_ERROR_STATUSES,
        signal: deadline.signal,
      });
      if (stream.status !== 200) throw await streamError(stream, what);
      for await (const line of stream.lines()) {
        const record = parseStreamRecord(LnrpcPayment, line, what);
        if ("error" in record) throw errorFromStatus(record.error, what);
        const result = toPaymentResult(record.result);
        if (result.status !== "pending") return result;
        inFlight = result.paymentHash;
      }
      if (inFlight === null) {
        throw new UpstreamTimeoutError(
          `LND ${what}: the stream ended without an update; the outcome is unknown`,
        );
      }
      return { status: "pending", paymentHash: inFlight };
    } catch (err) {
      // Once the node reported the payment in flight, whatever breaks the
      // stream leaves it in flight as far as we know.
      if (inFlight !== null && err instanceof AppError) {
        return { status: "pending", paymentHash: inFlight };
      }
      throw err;
    } finally {
      clearTimeout(timer);
      stream?.close();
    }
  }

  /**
   * `GET /v2/router/track/{payment_hash}` (`TrackPaymentV2`), first record
   * only: LND sends the payment's current state first. In-flight updates are
   * asked for, or an in-flight payment would send nothing until it ends.
   * LND's NotFound ("payment isn't initiated") is null.
   *
   * @param paymentHash 64 lowercase hex
   */
  async getPayment(paymentHash: string): Promise<PaymentResult | null> {
    assertHash(paymentHash, "paymentHash");
    const what = "GET /v2/router/track";
    // A bytes path parameter is base64 in grpc-gateway; the URL-safe alphabet keeps "/" out.
    const encoded = encodeBase64UrlPadded(hex.decode(paymentHash));
    using stream = await this.#client.stream({
      method: "GET",
      path: `/v2/router/track/${encoded}?no_inflight_updates=false`,
      route: "/v2/router/track/:payment_hash",
      expectedStatuses: LND_ERROR_STATUSES,
    });
    if (stream.status !== 200) {
      const err = await streamError(stream, what);
      if (isNotFoundError(err)) return null;
      throw err;
    }
    const first = await this.#firstRecord(stream, LnrpcPayment, what);
    if ("error" in first) {
      if (isNotFound(first.error)) return null;
      throw errorFromStatus(first.error, what);
    }
    const result = toPaymentResult(first.result);
    if (result.paymentHash !== paymentHash) throw unexpected(what);
    return result;
  }

  /** `POST /v1/peers`; an existing connection is success. */
  async #connectPeer(pubkey: string, address: string): Promise<void> {
    if (typeof address !== "string" || !/^[^\s/]{1,255}:\d{1,5}$/.test(address)) {
      throw new RangeError("Invalid peerAddress: expected host:port");
    }
    await this.#call(
      {
        method: "POST",
        path: "/v1/peers",
        route: "/v1/peers",
        json: { addr: { pubkey, host: address }, perm: false },
        idempotent: false,
      },
      { alreadyConnectedOk: true },
    );
  }

  /**
   * One unary call: 200 is returned; LND errors (4xx and its 500 with an
   * `rpcStatus`) become `AppError`s, NotFound null when `notFound` is set.
   */
  async #call(opts: RequestOptions): Promise<UpstreamResponse>;
  async #call(opts: RequestOptions, how: { notFound: true }): Promise<UpstreamResponse | null>;
  async #call(
    opts: RequestOptions,
    how: { alreadyConnectedOk: true },
  ): Promise<UpstreamResponse | null>;
  async #call(
    opts: RequestOptions,
    how: { notFound?: boolean; alreadyConnectedOk?: boolean } = {},
  ): Promise<UpstreamResponse | null> {
    const res = await this.#client.request({ ...opts, expectedStatuses: LND_ERROR_STATUSES });
    if (res.status === 200) return res;
    const what = `${opts.method} ${opts.route}`;
    const err = errorFromBody(res.status, res.text(), what);
    if (how.notFound === true && isNotFoundError(err)) return null;
    if (how.alreadyConnectedOk === true && /already connected/i.test(res.text())) return null;
    throw err;
  }

  /** The first record of a stream; an empty stream is an unusable reply. */
  async #firstRecord<T>(
    stream: UpstreamStream,
    schema: z.ZodType<T>,
    what: string,
  ): Promise<StreamRecord<T>> {
    if (stream.status !== 200) throw await streamError(stream, what);
    for await (const line of stream.lines()) return parseStreamRecord(schema, line, what);
    throw new UpstreamError(`LND ${what}: the stream ended without an update`);
  }
}

/** The error of a stream whose head was not 200: its body is the error record. */
async function streamError(stream: UpstreamStream, what: string): Promise<AppError> {
  let text = "";
  for await (const line of stream.lines()) text += line;
  return errorFromBody(stream.status, text, what);
}

function isNotFoundError(err: AppError): boolean {
  return err.status === 404;
}

function assertHash(value: string, name: string): void {
  if (typeof value !== "string" || !HASH_HEX.test(value)) {
    throw new RangeError(`Invalid ${name}: expected 64 lowercase hex characters`);
  }
}

function assertPositive(value: bigint, name: string): void {
  if (typeof value !== "bigint" || value <= 0n) {
    throw new RangeError(`Invalid ${name}: expected a positive bigint`);
  }
}

/** Funding or closing fee as LND's fields: a whole sat/vB rate or a confirmation target. */
function feeFields(
  fee: { satPerVbyte: number } | { targetConf: number } | undefined,
  use: "open" | "close",
): Record<string, string | number> {
  if (fee === undefined) return {};
  if ("satPerVbyte" in fee) {
    if (!Number.isSafeInteger(fee.satPerVbyte) || fee.satPerVbyte <= 0) {
      throw new ValidationError(
        "LND takes whole fee rates: satPerVbyte must be a positive integer",
        {
          status: 422,
        },
      );
    }
    return { sat_per_vbyte: String(fee.satPerVbyte) };
  }
  if (!Number.isInteger(fee.targetConf) || fee.targetConf < 1 || fee.targetConf > 1008) {
    throw new RangeError(`Invalid targetConf for the ${use}: expected an integer 1..1008`);
  }
  return { target_conf: fee.targetConf };
}

function backoff(failures: number, o: { baseMs: number; maxMs: number }): number {
  const cap = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(failures - 1, 20));
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

/** Waits `ms`, or less when `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
