/**
 * The in-memory Lightning node both Lightning test peers serve
 * (`lnd_peer.ts` over LND REST, `cln_peer.ts` over clnrest), so one contract
 * table can run against both adapters. Amounts are millisatoshis (`bigint`);
 * each peer renders them in its own wire units. Nothing here imports `src/`:
 * the peers are an independent reading of the node APIs.
 *
 * Tests drive the "rest of the network" through it: settle one of the node's
 * invoices as if someone paid it, and decide what paying a given payment hash
 * does (succeed with a preimage and fee, fail with a reason, or stay in
 * flight until resolved).
 *
 * @module
 */
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";

/** Networks as the peers report them. */
export type LnNetwork = "mainnet" | "testnet" | "signet" | "regtest";

/** A channel of the simulated node. */
export interface LnChannel {
  /** `txid:vout`. */
  channelPoint: string;
  /** `blockxtxxout`, or null while opening. */
  shortChannelId: string | null;
  peerPubkey: string;
  state: "opening" | "active" | "inactive" | "closing" | "closed";
  capacitySat: bigint;
  localMsat: bigint;
  remoteMsat: bigint;
  private: boolean;
  initiator: boolean;
}

/** An invoice of the simulated node. */
export interface LnInvoice {
  paymentHash: string;
  preimage: string;
  paymentSecret: string;
  bolt11: string;
  amountMsat: bigint | null;
  receivedMsat: bigint | null;
  description: string | null;
  descriptionHash: string | null;
  state: "open" | "settled" | "canceled" | "expired";
  /** Unix seconds. */
  createdAt: number;
  expirySeconds: number;
  /** Unix seconds, once settled. */
  settledAt: number | null;
  /** CLN's unique label (LND: the memo is not a key). */
  label: string;
  /** 1-based creation order (LND `add_index`, CLN `created_index`). */
  addIndex: number;
  /** 1-based settlement order (LND `settle_index`, CLN `pay_index`); 0 until settled. */
  settleIndex: number;
}

/** What paying a hash does, decided by the test. */
export type PayOutcome =
  | { outcome: "succeed"; preimage: string; feeMsat: bigint }
  | { outcome: "fail"; reason: "no_route" | "incorrect_payment_details" | "timeout" | "error" }
  /** Stays in flight until the test calls `resolvePayment`. */
  | { outcome: "hang" };

/** A payment the simulated node made (or is making). */
export interface LnPayment {
  paymentHash: string;
  bolt11: string;
  amountMsat: bigint;
  status: "inflight" | "succeeded" | "failed";
  preimage: string | null;
  feeMsat: bigint;
  failureReason: string | null;
  /** Unix seconds. */
  createdAt: number;
  /** 1-based (LND `payment_index`, CLN `created_index`). */
  index: number;
}

/** The whole node. Tests read and mutate it directly between calls. */
export interface LnNodeState {
  /** The node's secret key: peers sign the BOLT11 invoices they create with it. */
  nodeKey: Uint8Array;
  info: {
    pubkey: string;
    alias: string;
    network: LnNetwork;
    blockHeight: number;
    blockHash: string;
    synced: boolean;
    version: string;
    numPeers: number;
  };
  onchain: { confirmedSat: bigint; unconfirmedSat: bigint };
  channels: LnChannel[];
  invoices: Map<string, LnInvoice>;
  payments: Map<string, LnPayment>;
  /** Every attempt to pay a hash the node started (a retry of a paid hash counts too). */
  payAttempts: Map<string, number>;
  /** What paying each hash does; default `{ outcome: "fail", reason: "no_route" }`. */
  outcomes: Map<string, PayOutcome>;
}

type Listener = (invoice: LnInvoice) => void;
type PaymentListener = (payment: LnPayment) => void;

/** The state plus the events the peers stream. */
export interface LnNode {
  state: LnNodeState;
  /** Called on every invoice change (creation, settlement, cancel). Returns an unsubscribe. */
  onInvoice(listener: Listener): () => void;
  /** Called on every payment change. Returns an unsubscribe. */
  onPayment(listener: PaymentListener): () => void;
  /** Record a new invoice (peers call it from their create-invoice handler). */
  addInvoice(invoice: Omit<LnInvoice, "addIndex" | "settleIndex">): LnInvoice;
  /** Settle an open invoice as if the network paid it (`amountMsat` for any-amount ones). */
  settleInvoice(paymentHash: string, amountMsat?: bigint): LnInvoice;
  /**
   * Start paying (peers call it from their pay handler). Counts the attempt;
   * applies the hash's outcome; an already succeeded or in-flight payment is
   * returned as it is (the node refuses to pay a hash twice).
   */
  startPayment(req: { paymentHash: string; bolt11: string; amountMsat: bigint }): LnPayment;
  /** Finish a hanging payment. */
  resolvePayment(paymentHash: string, outcome: Exclude<PayOutcome, { outcome: "hang" }>): void;
}

/** A fresh node with a random key, one active channel and some on-chain funds. */
export function createLnNode(network: LnNetwork = "regtest"): LnNode {
  const nodeKey = secp256k1.utils.randomSecretKey();
  const invoiceListeners = new Set<Listener>();
  const paymentListeners = new Set<PaymentListener>();
  const state: LnNodeState = {
    nodeKey,
    info: {
      pubkey: hex.encode(secp256k1.getPublicKey(nodeKey, true)),
      alias: "test-peer",
      network,
      blockHeight: 800,
      blockHash: "00".repeat(4) + hex.encode(crypto.getRandomValues(new Uint8Array(28))),
      synced: true,
      version: "test",
      numPeers: 1,
    },
    onchain: { confirmedSat: 1_000_000n, unconfirmedSat: 0n },
    channels: [{
      channelPoint: `${"ab".repeat(32)}:0`,
      shortChannelId: "700x1x0",
      peerPubkey: hex.encode(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true)),
      state: "active",
      capacitySat: 1_000_000n,
      localMsat: 600_000_000n,
      remoteMsat: 390_000_000n,
      private: false,
      initiator: true,
    }],
    invoices: new Map(),
    payments: new Map(),
    payAttempts: new Map(),
    outcomes: new Map(),
  };
  let settleCounter = 0;
  let paymentCounter = 0;
  const emitInvoice = (i: LnInvoice) => {
    for (const l of invoiceListeners) l(i);
  };
  const emitPayment = (p: LnPayment) => {
    for (const l of paymentListeners) l(p);
  };
  const finish = (p: LnPayment, outcome: Exclude<PayOutcome, { outcome: "hang" }>) => {
    if (outcome.outcome === "succeed") {
      if (hex.encode(sha256(hex.decode(outcome.preimage))) !== p.paymentHash) {
        throw new Error("ln_node_state: the preimage does not match the payment hash");
      }
      p.status = "succeeded";
      p.preimage = outcome.preimage;
      p.feeMsat = outcome.feeMsat;
      const ch = state.channels.find((c) => c.state === "active");
      if (ch !== undefined) {
        ch.localMsat -= p.amountMsat + outcome.feeMsat;
        ch.remoteMsat += p.amountMsat;
      }
    } else {
      p.status = "failed";
      p.failureReason = outcome.reason;
    }
    emitPayment(p);
  };
  return {
    state,
    onInvoice(listener) {
      invoiceListeners.add(listener);
      return () => invoiceListeners.delete(listener);
    },
    onPayment(listener) {
      paymentListeners.add(listener);
      return () => paymentListeners.delete(listener);
    },
    addInvoice(invoice) {
      const full = { ...invoice, addIndex: state.invoices.size + 1, settleIndex: 0 };
      state.invoices.set(full.paymentHash, full);
      emitInvoice(full);
      return full;
    },
    settleInvoice(paymentHash, amountMsat) {
      const inv = state.invoices.get(paymentHash);
      if (inv === undefined || inv.state !== "open") {
        throw new Error(`ln_node_state: no open invoice ${paymentHash}`);
      }
      const received = inv.amountMsat ?? amountMsat;
      if (received === undefined) {
        throw new Error("ln_node_state: any-amount invoice needs amountMsat");
      }
      inv.state = "settled";
      inv.receivedMsat = received;
      inv.settledAt = Math.floor(Date.now() / 1000);
      inv.settleIndex = ++settleCounter;
      emitInvoice(inv);
      return inv;
    },
    startPayment(req) {
      state.payAttempts.set(req.paymentHash, (state.payAttempts.get(req.paymentHash) ?? 0) + 1);
      const existing = state.payments.get(req.paymentHash);
      if (existing !== undefined && existing.status !== "failed") return existing;
      const p: LnPayment = {
        paymentHash: req.paymentHash,
        bolt11: req.bolt11,
        amountMsat: req.amountMsat,
        status: "inflight",
        preimage: null,
        feeMsat: 0n,
        failureReason: null,
        createdAt: Math.floor(Date.now() / 1000),
        index: ++paymentCounter,
      };
      state.payments.set(req.paymentHash, p);
      const outcome = state.outcomes.get(req.paymentHash) ??
        { outcome: "fail", reason: "no_route" } as const;
      if (outcome.outcome !== "hang") finish(p, outcome);
      else emitPayment(p);
      return p;
    },
    resolvePayment(paymentHash, outcome) {
      const p = state.payments.get(paymentHash);
      if (p === undefined || p.status !== "inflight") {
        throw new Error(`ln_node_state: no payment in flight to ${paymentHash}`);
      }
      finish(p, outcome);
    },
  };
}

/** A random preimage and its payment hash, hex. */
export function newPreimage(): { preimage: string; paymentHash: string } {
  const preimage = crypto.getRandomValues(new Uint8Array(32));
  return { preimage: hex.encode(preimage), paymentHash: hex.encode(sha256(preimage)) };
}
