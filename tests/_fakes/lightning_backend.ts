/**
 * A `LightningBackend` straight over the simulated node (`ln_node_state.ts`),
 * for service tests of the ledger: no wire format in between, plus scripted
 * transport faults on payments (the call is lost before or after the node
 * acted). Adapter behaviour against the real wire formats is tested with the
 * LND and CLN test peers.
 */
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import type {
  Balances,
  Channel,
  ClosedChannel,
  CreateInvoiceRequest,
  Invoice,
  LightningBackend,
  LightningFeature,
  NodeInfo,
  OpenedChannel,
  PayInvoiceRequest,
  PaymentResult,
} from "../../src/layer2/lightning/backend.ts";
import { UnavailableError, UpstreamTimeoutError } from "../../src/errors/mod.ts";
import type { LnInvoice, LnNode, LnPayment } from "../_peers/ln_node_state.ts";
import { encodeBolt11 } from "../_helpers/bolt11_encode.ts";

/** What the next `payInvoice` call does on the way. */
export type PayFault =
  /** The call never reaches the node (connection refused). */
  | "unreachable"
  /** The node starts paying, then the answer is lost (timeout). */
  | "lost-answer";

/** The port over a simulated node. */
export class ScriptedLightningBackend implements LightningBackend {
  readonly kind = "lnd" as const;
  readonly features: ReadonlySet<LightningFeature> = new Set<LightningFeature>([
    "description-hash",
    "invoice-stream",
    "force-close",
  ]);
  readonly node: LnNode;
  /** Faults for the next payInvoice calls, in order. */
  readonly payFaults: PayFault[] = [];
  /** Calls that reached payInvoice (whatever happened next). */
  payCalls = 0;
  /** getPayment fails while set. */
  lookupDown = false;

  constructor(node: LnNode) {
    this.node = node;
  }

  getInfo(): Promise<NodeInfo> {
    const s = this.node.state;
    return Promise.resolve({
      pubkey: s.info.pubkey,
      alias: s.info.alias,
      network: s.info.network,
      blockHeight: s.info.blockHeight,
      syncedToChain: s.info.synced,
      version: s.info.version,
      numActiveChannels: s.channels.filter((c) => c.state === "active").length,
      numPendingChannels: s.channels.filter((c) => c.state === "opening").length,
      numPeers: s.info.numPeers,
    });
  }

  getBalances(): Promise<Balances> {
    const s = this.node.state;
    const active = s.channels.filter((c) => c.state === "active");
    return Promise.resolve({
      onchain: { confirmedSat: s.onchain.confirmedSat, unconfirmedSat: s.onchain.unconfirmedSat },
      channels: {
        localMsat: active.reduce((a, c) => a + c.localMsat, 0n),
        remoteMsat: active.reduce((a, c) => a + c.remoteMsat, 0n),
        pendingOpenLocalMsat: 0n,
      },
    });
  }

  listChannels(): Promise<Channel[]> {
    return Promise.resolve(
      this.node.state.channels.filter((c) => c.state !== "closed").map((c) => ({
        channelPoint: c.channelPoint,
        shortChannelId: c.shortChannelId,
        peerPubkey: c.peerPubkey,
        state: c.state,
        capacitySat: c.capacitySat,
        localBalanceMsat: c.localMsat,
        remoteBalanceMsat: c.remoteMsat,
        private: c.private,
        initiator: c.initiator,
      })),
    );
  }

  openChannel(): Promise<OpenedChannel> {
    return Promise.reject(new Error("not scripted"));
  }

  closeChannel(): Promise<ClosedChannel> {
    return Promise.reject(new Error("not scripted"));
  }

  createInvoice(req: CreateInvoiceRequest): Promise<Invoice> {
    const preimage = crypto.getRandomValues(new Uint8Array(32));
    const paymentHash = hex.encode(sha256(preimage));
    const paymentSecret = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
    const createdAt = Math.floor(Date.now() / 1000);
    const bolt11 = encodeBolt11({
      network: this.node.state.info.network,
      amountMsat: req.amountMsat,
      paymentHash,
      paymentSecret,
      ...(req.description === undefined ? {} : { description: req.description }),
      ...(req.descriptionHash === undefined ? {} : { descriptionHash: req.descriptionHash }),
      expirySeconds: req.expirySeconds,
      timestamp: createdAt,
      nodeKey: this.node.state.nodeKey,
    });
    const inv = this.node.addInvoice({
      paymentHash,
      preimage: hex.encode(preimage),
      paymentSecret,
      bolt11,
      amountMsat: req.amountMsat,
      receivedMsat: null,
      description: req.description ?? null,
      descriptionHash: req.descriptionHash ?? null,
      state: "open",
      createdAt,
      expirySeconds: req.expirySeconds,
      settledAt: null,
      label: req.label,
    });
    return Promise.resolve(toInvoice(inv));
  }

  getInvoice(paymentHash: string): Promise<Invoice | null> {
    const inv = this.node.state.invoices.get(paymentHash);
    return Promise.resolve(inv === undefined ? null : toInvoice(inv));
  }

  listInvoices(opts: { limit: number }): Promise<Invoice[]> {
    const all = [...this.node.state.invoices.values()].reverse().slice(0, opts.limit);
    return Promise.resolve(all.map(toInvoice));
  }

  async *watchInvoices(signal: AbortSignal): AsyncIterable<Invoice> {
    const queue: Invoice[] = [];
    let wake: (() => void) | undefined;
    const off = this.node.onInvoice((inv) => {
      queue.push(toInvoice(inv));
      wake?.();
    });
    const aborted = new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve())
    );
    try {
      while (!signal.aborted) {
        while (queue.length > 0) yield queue.shift()!;
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
      }
    } finally {
      off();
    }
  }

  payInvoice(req: PayInvoiceRequest): Promise<PaymentResult> {
    this.payCalls++;
    const fault = this.payFaults.shift();
    if (fault === "unreachable") {
      return Promise.reject(new UnavailableError("lnd POST /v2/router/send: connection refused"));
    }
    const hash = paymentHashOf(req.bolt11);
    const p = this.node.startPayment({
      paymentHash: hash,
      bolt11: req.bolt11,
      amountMsat: req.amountMsat ?? amountOf(req.bolt11),
    });
    if (fault === "lost-answer") {
      return Promise.reject(
        new UpstreamTimeoutError("lnd POST /v2/router/send: no complete answer; outcome unknown"),
      );
    }
    return Promise.resolve(toResult(p));
  }

  getPayment(paymentHash: string): Promise<PaymentResult | null> {
    if (this.lookupDown) {
      return Promise.reject(new UnavailableError("lnd GET /v2/router/track: connection refused"));
    }
    const p = this.node.state.payments.get(paymentHash);
    return Promise.resolve(p === undefined ? null : toResult(p));
  }
}

function toInvoice(i: LnInvoice): Invoice {
  return {
    paymentHash: i.paymentHash,
    bolt11: i.bolt11,
    amountMsat: i.amountMsat,
    amountReceivedMsat: i.receivedMsat,
    description: i.description,
    descriptionHash: i.descriptionHash,
    state: i.state,
    createdAt: new Date(i.createdAt * 1000),
    expiresAt: new Date((i.createdAt + i.expirySeconds) * 1000),
    settledAt: i.settledAt === null ? null : new Date(i.settledAt * 1000),
    preimage: i.preimage,
  };
}

function toResult(p: LnPayment): PaymentResult {
  switch (p.status) {
    case "succeeded":
      return {
        status: "succeeded",
        paymentHash: p.paymentHash,
        preimage: p.preimage!,
        amountMsat: p.amountMsat,
        feeMsat: p.feeMsat,
      };
    case "failed":
      return { status: "failed", paymentHash: p.paymentHash, reason: p.failureReason ?? "error" };
    default:
      return { status: "pending", paymentHash: p.paymentHash };
  }
}

/** Registered by the tests that build invoices: bolt11 → payment hash and amount. */
const known = new Map<string, { paymentHash: string; amountMsat: bigint | null }>();

/** Remember what an invoice a test made pays (the fake decodes nothing). */
export function rememberInvoice(bolt11: string, paymentHash: string, amountMsat: bigint | null) {
  known.set(bolt11, { paymentHash, amountMsat });
}

function paymentHashOf(bolt11: string): string {
  const k = known.get(bolt11);
  if (k === undefined) throw new Error("ScriptedLightningBackend: unknown invoice");
  return k.paymentHash;
}

function amountOf(bolt11: string): bigint {
  return known.get(bolt11)?.amountMsat ?? 0n;
}
