/**
 * Lightning for the edge's tenants over one node (`LightningBackend`):
 * invoices, payments with a ledger that never pays twice, channels, and the
 * reconciliation that keeps the ledger in line with the node.
 *
 * Paying, in order (LNbits' `_pay_external_invoice` discipline, made
 * crash-safe):
 * 1. decode and check the invoice locally (network, expiry, amount, fee);
 * 2. in one transaction under the tenant's lock: a succeeded payment is
 *    answered as it is; a pending one is not paid again while its lease holds
 *    (another request or instance is calling the node); the tenant's limits
 *    are checked; the pending row is written with a lease;
 * 3. a pending row whose lease ran out (a crash, a lost answer) is first
 *    looked up on the node: only a node that never saw the hash is paid;
 * 4. the node's answer moves the row forward; no answer (timeout, transport
 *    error) leaves it pending for the reconciler, never failed.
 *
 * @module
 */
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Db, Queryable } from "../../db/db.ts";
import type { EventBus } from "../../events/mod.ts";
import type { Logger } from "../../obs/logger.ts";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import {
  AppError,
  NotFoundError,
  PolicyViolationError,
  UnavailableError,
  UnsupportedFeatureError,
  ValidationError,
} from "../../errors/mod.ts";
import type {
  Balances,
  Channel,
  CloseChannelRequest,
  ClosedChannel,
  Invoice,
  LightningBackend,
  NodeInfo,
  OpenChannelRequest,
  OpenedChannel,
  PaymentResult,
} from "./backend.ts";
import { decodeBolt11, type DecodedBolt11 } from "./bolt11.ts";
import { type PaymentRecord, PaymentRepo } from "./payment_repo.ts";
import { type InvoiceRecord, InvoiceRepo } from "./invoice_repo.ts";
import { ChannelRepo } from "./channel_repo.ts";
import { LimitsRepo, type SpendingLimits } from "./limits_repo.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Fee limit when a request names none: 0.5 % of the amount, at least 10 sat. */
const DEFAULT_FEE_PPM = 5_000n;
const MIN_DEFAULT_FEE_MSAT = 10_000n;
/** Node-level events (channels) carry this tenant: they concern every tenant of the node. */
export const NODE_TENANT = "*";

/** Dependencies of {@linkcode LightningService}. */
export interface LightningServiceOptions {
  db: Db;
  /** Null when no node is configured: node operations answer 503, decoding still works. */
  backend: LightningBackend | null;
  events: EventBus;
  logger: Logger;
  network: BitcoinNetwork;
  defaultLimits: SpendingLimits;
  maxPayTimeoutSeconds: number;
  /** The node client's per-call deadline: a payment's lease covers its timeout plus this. */
  nodeDeadlineMs: number;
  now?: () => Date;
}

/** A payment request. */
export interface PayRequest {
  bolt11: string;
  /** Only for an any-amount invoice. */
  amountMsat?: bigint;
  /** Fee limit: absolute, or parts per million of the amount; default 0.5 % (at least 10 sat). */
  maxFee?: { msat: bigint } | { ppm: bigint };
  timeoutSeconds?: number;
}

/** A decoded invoice and what the edge thinks of paying it. */
export interface DecodedInvoiceView extends DecodedBolt11 {
  /** The invoice is for the network this edge serves. */
  networkMatches: boolean;
}

/** Invoices, payments, channels and node state for tenants. */
export class LightningService {
  readonly #db: Db;
  readonly #backend: LightningBackend | null;
  readonly #events: EventBus;
  readonly #logger: Logger;
  readonly #network: BitcoinNetwork;
  readonly #defaults: SpendingLimits;
  readonly #maxTimeout: number;
  readonly #deadlineMs: number;
  readonly #now: () => Date;

  /** @param options database, node, events, logger, network, limits and deadlines */
  constructor(options: LightningServiceOptions) {
    this.#db = options.db;
    this.#backend = options.backend;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#network = options.network;
    this.#defaults = options.defaultLimits;
    this.#maxTimeout = options.maxPayTimeoutSeconds;
    this.#deadlineMs = options.nodeDeadlineMs;
    this.#now = options.now ?? (() => new Date());
  }

  /** Whether a node is configured. */
  get configured(): boolean {
    return this.#backend !== null;
  }

  /** Decode and verify a BOLT11 invoice locally (no node needed). */
  decode(bolt11: string): DecodedInvoiceView {
    const decoded = decodeBolt11(bolt11, { now: this.#now() });
    return { ...decoded, networkMatches: decoded.network === bolt11Network(this.#network) };
  }

  /**
   * Whether the node runs on the network this edge serves (asked at boot:
   * paying mainnet invoices from a regtest node, or the reverse, must not
   * be possible by misconfiguration).
   */
  async nodeNetworkMatches(): Promise<{ matches: boolean; nodeNetwork: string }> {
    const info = await this.#node().getInfo();
    const expected = bolt11Network(this.#network);
    const node = info.network === "testnet4" ? "testnet" : info.network;
    return { matches: node === expected, nodeNetwork: info.network };
  }

  /** The node itself. */
  async nodeInfo(): Promise<NodeInfo> {
    return await this.#node().getInfo();
  }

  /** On-chain and channel balances. */
  async balances(): Promise<Balances> {
    return await this.#node().getBalances();
  }

  /** The node's channels (and the mirror brought up to date). */
  async channels(): Promise<Channel[]> {
    const channels = await this.#node().listChannels();
    await this.#syncChannels(channels);
    return channels;
  }

  /** Open a channel. */
  async openChannel(req: OpenChannelRequest): Promise<OpenedChannel> {
    return await this.#node().openChannel(req);
  }

  /** Close a channel; a force close must be asked for explicitly. */
  async closeChannel(req: CloseChannelRequest): Promise<ClosedChannel> {
    const node = this.#node();
    if (req.force && !node.features.has("force-close")) {
      throw new UnsupportedFeatureError(`The ${node.kind} backend cannot force-close channels`);
    }
    return await node.closeChannel(req);
  }

  /**
   * Create an invoice on the node for `tenant`.
   *
   * @throws ValidationError 422 for a description hash the node cannot take
   */
  async createInvoice(
    tenant: string,
    req: {
      amountMsat: bigint | null;
      description?: string;
      descriptionHash?: string;
      expirySeconds: number;
    },
  ): Promise<InvoiceRecord> {
    const node = this.#node();
    if (req.descriptionHash !== undefined && !node.features.has("description-hash")) {
      throw new UnsupportedFeatureError(
        `The ${node.kind} backend cannot create an invoice from a description hash alone`,
      );
    }
    const invoice = await node.createInvoice({
      amountMsat: req.amountMsat,
      ...(req.description === undefined ? {} : { description: req.description }),
      ...(req.descriptionHash === undefined ? {} : { descriptionHash: req.descriptionHash }),
      expirySeconds: req.expirySeconds,
      label: `anya-${crypto.randomUUID()}`,
    });
    const record = await new InvoiceRepo(this.#db).insert(tenant, invoice);
    this.#publish("ln.invoice.created", tenant, invoiceData(record));
    return record;
  }

  /** The tenant's invoice, refreshed from the node while it is open. */
  async invoice(tenant: string, paymentHash: string): Promise<InvoiceRecord> {
    const repo = new InvoiceRepo(this.#db);
    const stored = await repo.get(tenant, paymentHash);
    if (stored === null) throw new NotFoundError("Invoice not found");
    if (stored.state !== "open" || this.#backend === null) return stored;
    try {
      const fresh = await this.#backend.getInvoice(paymentHash);
      if (fresh !== null) return (await this.applyInvoice(fresh)) ?? stored;
    } catch (err) {
      // The stored view is still an answer; the reconciler catches up later.
      this.#logger.warn("invoice refresh failed", { paymentHash, error: errorText(err) });
    }
    return stored;
  }

  /** The tenant's invoices, newest first. */
  async invoices(tenant: string, limit: number): Promise<InvoiceRecord[]> {
    return await new InvoiceRepo(this.#db).list(tenant, limit);
  }

  /**
   * Record the node's view of an invoice when it moves it forward, and
   * announce the change.
   *
   * @returns the stored invoice after the change, or null when nothing changed
   */
  async applyInvoice(invoice: Invoice): Promise<InvoiceRecord | null> {
    const updated = await new InvoiceRepo(this.#db).advance(invoice);
    if (updated !== null) {
      this.#publish(`ln.invoice.${updated.state}`, updated.tenant, invoiceData(updated));
    }
    return updated;
  }

  /** The tenant's spending limits (its own, or the defaults). */
  async limits(tenant: string): Promise<SpendingLimits> {
    return (await new LimitsRepo(this.#db).get(tenant)) ?? this.#defaults;
  }

  /** Give the tenant its own spending limits. */
  async setLimits(tenant: string, limits: SpendingLimits): Promise<SpendingLimits> {
    await new LimitsRepo(this.#db).set(tenant, limits);
    return limits;
  }

  /**
   * Pay a BOLT11 invoice for `tenant`, at most once per payment hash.
   *
   * @returns the payment record; `created` is false when the hash was paid or
   *   is being paid already
   * @throws ValidationError 422 when the invoice is bad, expired, for another
   *   network, or the amount does not fit it
   * @throws PolicyViolationError 422 when the tenant's limits do not allow it
   */
  async pay(tenant: string, req: PayRequest): Promise<{ record: PaymentRecord; created: boolean }> {
    const node = this.#node();
    const decoded = this.decode(req.bolt11);
    // A paid hash is answered as paid, even once its invoice has expired.
    const paid = await new PaymentRepo(this.#db).get(tenant, decoded.paymentHash);
    if (paid?.state === "succeeded") return { record: paid, created: false };
    const amountMsat = this.#checkPayable(decoded, req);
    const maxFeeMsat = feeLimit(amountMsat, req.maxFee);
    const timeoutSeconds = Math.min(req.timeoutSeconds ?? 60, this.#maxTimeout);
    const hash = decoded.paymentHash;
    const lease = () => new Date(this.#now().getTime() + timeoutSeconds * 1000 + this.#deadlineMs);

    const decision = await this.#db.transaction(async (tx) => {
      const repo = new PaymentRepo(tx);
      await repo.lockTenant(tenant);
      const existing = await repo.get(tenant, hash);
      if (existing?.state === "succeeded") return { kind: "done" as const, record: existing };
      if (existing?.state === "pending") {
        if (existing.leaseUntil !== null && existing.leaseUntil > this.#now()) {
          return { kind: "done" as const, record: existing };
        }
        // A lease that ran out: an earlier call crashed or lost its answer. Ask before paying.
        await repo.renewLease(tenant, hash, lease());
        return { kind: "lookup" as const, record: existing };
      }
      await this.#checkLimits(tx, tenant, amountMsat + maxFeeMsat);
      const record = await repo.startAttempt(
        { tenant, paymentHash: hash, bolt11: req.bolt11, amountMsat, maxFeeMsat },
        lease(),
      );
      return { kind: "pay" as const, record };
    });

    if (decision.kind === "done") return { record: decision.record, created: false };
    if (decision.kind === "lookup") {
      const known = await this.#lookup(node, tenant, hash);
      if (known !== "unknown-to-node") return { record: known, created: false };
    } else {
      this.#publish("ln.payment.pending", tenant, paymentData(decision.record));
    }

    let result: PaymentResult;
    try {
      result = await node.payInvoice({
        bolt11: req.bolt11,
        ...(decoded.amountMsat === null ? { amountMsat } : {}),
        maxFeeMsat,
        timeoutSeconds,
      });
    } catch (err) {
      // No answer is not a failure: the node may be paying. The reconciler asks it later.
      this.#logger.warn("payment outcome unknown; left pending", {
        paymentHash: hash,
        error: errorText(err),
      });
      const pending = await new PaymentRepo(this.#db).get(tenant, hash);
      return { record: pending!, created: decision.kind === "pay" };
    }
    const record = await this.#apply(tenant, hash, result);
    return { record, created: decision.kind === "pay" };
  }

  /** The tenant's payment, looked up on the node first when it is pending and unattended. */
  async payment(tenant: string, paymentHash: string): Promise<PaymentRecord> {
    const repo = new PaymentRepo(this.#db);
    const record = await repo.get(tenant, paymentHash);
    if (record === null) throw new NotFoundError("Payment not found");
    if (record.state !== "pending" || this.#backend === null) return record;
    try {
      const known = await this.#lookup(this.#backend, tenant, paymentHash);
      return known === "unknown-to-node" ? record : known;
    } catch (err) {
      this.#logger.warn("payment lookup failed", { paymentHash, error: errorText(err) });
      return record;
    }
  }

  /** The tenant's payments, newest first. */
  async payments(tenant: string, limit: number): Promise<PaymentRecord[]> {
    return await new PaymentRepo(this.#db).list(tenant, limit);
  }

  /**
   * Bring the ledger in line with the node: unattended pending payments,
   * open invoices, and the channel mirror. Safe to run from several
   * instances: every change is a forward-only conditional update.
   *
   * @returns how many records changed
   */
  async reconcile(): Promise<{ payments: number; invoices: number; channels: number }> {
    const node = this.#node();
    let payments = 0;
    for (const p of await new PaymentRepo(this.#db).duePending(this.#now(), 100)) {
      const before = p.state;
      const known = await this.#lookup(node, p.tenant, p.paymentHash);
      if (known === "unknown-to-node") {
        // The node never saw it: the call that wrote the row never reached the node.
        const failed = await this.#apply(p.tenant, p.paymentHash, {
          status: "failed",
          paymentHash: p.paymentHash,
          reason: "not_sent",
        });
        if (failed.state !== before) payments++;
      } else if (known.state !== before) payments++;
    }
    let invoices = 0;
    for (const inv of await new InvoiceRepo(this.#db).open(200)) {
      const fresh = await node.getInvoice(inv.paymentHash);
      if (fresh === null) continue;
      if (fresh.state === "open" && fresh.expiresAt <= this.#now()) fresh.state = "expired";
      if (await this.applyInvoice(fresh) !== null) invoices++;
    }
    const channels = await this.#syncChannels(await node.listChannels());
    return { payments, invoices, channels };
  }

  #node(): LightningBackend {
    if (this.#backend === null) {
      throw new UnavailableError("No Lightning node is configured (LIGHTNING_BACKEND)");
    }
    return this.#backend;
  }

  /** The amount to pay, after every check that needs no database. */
  #checkPayable(decoded: DecodedInvoiceView, req: PayRequest): bigint {
    if (!decoded.networkMatches) {
      throw new ValidationError(
        `Cannot pay invoice: it is for ${decoded.network}, this edge serves ${this.#network}`,
        { status: 422, extensions: { reason: "network-mismatch" } },
      );
    }
    if (decoded.expired) {
      throw new ValidationError("Cannot pay invoice: it has expired", {
        status: 422,
        extensions: { reason: "expired" },
      });
    }
    if (decoded.amountMsat === null) {
      if (req.amountMsat === undefined || req.amountMsat <= 0n) {
        throw new ValidationError(
          "Cannot pay invoice: it has no amount, so amountMsat is required",
          {
            status: 422,
            extensions: { reason: "amount-required" },
          },
        );
      }
      return req.amountMsat;
    }
    if (req.amountMsat !== undefined && req.amountMsat !== decoded.amountMsat) {
      throw new ValidationError(
        "Cannot pay invoice: amountMsat differs from the invoice's amount",
        { status: 422, extensions: { reason: "amount-mismatch" } },
      );
    }
    return decoded.amountMsat;
  }

  /** On the payment's transaction: PGlite has one session, and a second one would wait forever. */
  async #checkLimits(tx: Queryable, tenant: string, worstCaseMsat: bigint): Promise<void> {
    const limits = (await new LimitsRepo(tx).get(tenant)) ?? this.#defaults;
    const repo = new PaymentRepo(tx);
    const failures: string[] = [];
    if (worstCaseMsat > limits.maxPaymentSat * 1000n) {
      failures.push(
        `amount plus maximum fee (${
          msatText(worstCaseMsat)
        }) exceeds the per-payment limit of ${limits.maxPaymentSat} sat`,
      );
    }
    const since = new Date(this.#now().getTime() - DAY_MS);
    const committed = await repo.committedSince(tenant, since);
    if (committed + worstCaseMsat > limits.maxDailySat * 1000n) {
      failures.push(
        `it would bring the last 24 hours to ${
          msatText(committed + worstCaseMsat)
        }, over the limit of ${limits.maxDailySat} sat`,
      );
    }
    if (failures.length > 0) {
      throw new PolicyViolationError(`Payment refused by spending limits: ${failures.join("; ")}`, {
        extensions: { reasons: failures },
      });
    }
  }

  /** The node's view of a payment, applied; or `unknown-to-node` when it never saw the hash. */
  async #lookup(
    node: LightningBackend,
    tenant: string,
    paymentHash: string,
  ): Promise<PaymentRecord | "unknown-to-node"> {
    const result = await node.getPayment(paymentHash);
    if (result === null) return "unknown-to-node";
    return await this.#apply(tenant, paymentHash, result);
  }

  /** Move the payment forward by the node's result (a bad preimage keeps it pending). */
  async #apply(tenant: string, paymentHash: string, result: PaymentResult): Promise<PaymentRecord> {
    const repo = new PaymentRepo(this.#db);
    let outcome: Parameters<PaymentRepo["settle"]>[2];
    if (result.status === "succeeded") {
      if (!preimageMatches(result.preimage, paymentHash)) {
        this.#logger.error("node reported a preimage that does not match the payment hash", {
          paymentHash,
        });
        outcome = { state: "pending" };
      } else outcome = { state: "succeeded", preimage: result.preimage, feeMsat: result.feeMsat };
    } else if (result.status === "failed") {
      outcome = { state: "failed", reason: result.reason };
    } else outcome = { state: "pending" };
    const settled = await repo.settle(tenant, paymentHash, outcome);
    if (settled === null) throw new NotFoundError("Payment not found");
    if (settled.changed) {
      this.#publish(`ln.payment.${settled.record.state}`, tenant, paymentData(settled.record));
    }
    return settled.record;
  }

  async #syncChannels(channels: readonly Channel[]): Promise<number> {
    const repo = new ChannelRepo(this.#db);
    const before = new Map((await repo.all()).map((c) => [c.channelPoint, c]));
    let changed = 0;
    const seen = new Set<string>();
    for (const c of channels) {
      seen.add(c.channelPoint);
      const old = before.get(c.channelPoint);
      if (old !== undefined && sameChannel(old, c)) continue;
      await repo.upsert(c);
      changed++;
      this.#publish(`ln.channel.${c.state}`, NODE_TENANT, channelData(c));
    }
    // A channel the node no longer lists is gone: closed.
    for (const [point, old] of before) {
      if (seen.has(point) || old.state === "closed") continue;
      const closed = { ...old, state: "closed" as const };
      await repo.upsert(closed);
      changed++;
      this.#publish("ln.channel.closed", NODE_TENANT, channelData(closed));
    }
    return changed;
  }

  #publish(type: string, tenant: string, data: Record<string, unknown>): void {
    this.#events.publish({ type, tenant, at: this.#now(), data });
  }
}

/** BOLT11 network names: testnet3 and testnet4 share `lntb`. */
function bolt11Network(network: BitcoinNetwork): string {
  return network === "testnet4" ? "testnet" : network;
}

function feeLimit(amountMsat: bigint, maxFee: PayRequest["maxFee"]): bigint {
  if (maxFee === undefined) {
    const proportional = (amountMsat * DEFAULT_FEE_PPM + 999_999n) / 1_000_000n;
    return proportional > MIN_DEFAULT_FEE_MSAT ? proportional : MIN_DEFAULT_FEE_MSAT;
  }
  if ("msat" in maxFee) return maxFee.msat;
  // Rounded up: a limit in ppm must not turn a 1-msat allowance into zero.
  return (amountMsat * maxFee.ppm + 999_999n) / 1_000_000n;
}

function preimageMatches(preimage: string, paymentHash: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(preimage)) return false;
  return hex.encode(sha256(hex.decode(preimage))) === paymentHash;
}

function sameChannel(a: Channel, b: Channel): boolean {
  return a.state === b.state && a.shortChannelId === b.shortChannelId &&
    a.localBalanceMsat === b.localBalanceMsat && a.remoteBalanceMsat === b.remoteBalanceMsat &&
    a.capacitySat === b.capacitySat && a.private === b.private;
}

function msatText(msat: bigint): string {
  return msat % 1000n === 0n ? `${msat / 1000n} sat` : `${msat} msat`;
}

function errorText(err: unknown): string {
  return err instanceof AppError || err instanceof Error ? err.message : String(err);
}

function invoiceData(r: InvoiceRecord): Record<string, unknown> {
  return {
    paymentHash: r.paymentHash,
    state: r.state,
    amountMsat: r.amountMsat?.toString() ?? null,
    amountReceivedMsat: r.amountReceivedMsat?.toString() ?? null,
  };
}

function paymentData(r: PaymentRecord): Record<string, unknown> {
  return {
    paymentHash: r.paymentHash,
    state: r.state,
    amountMsat: r.amountMsat.toString(),
    feeMsat: r.feeMsat?.toString() ?? null,
    failureReason: r.failureReason,
  };
}

function channelData(c: Channel): Record<string, unknown> {
  return {
    channelPoint: c.channelPoint,
    shortChannelId: c.shortChannelId,
    state: c.state,
    capacitySat: c.capacitySat.toString(),
    localBalanceMsat: c.localBalanceMsat.toString(),
    remoteBalanceMsat: c.remoteBalanceMsat.toString(),
  };
}
