/**
 * The `LightningBackend` port: what the edge needs from a team's Lightning
 * node, whatever the implementation (LND REST in `lnd_rest.ts`, Core
 * Lightning's clnrest in `cln_rest.ts`). Services depend on this file only.
 *
 * Units are in the names: `Msat` fields are millisatoshis, `Sat` fields
 * satoshis, both `bigint`. Hashes, preimages and public keys are lowercase
 * hex. Times are `Date`s.
 *
 * Error contract for adapters:
 * - the node answered and refused (bad request, no route, unknown hash…):
 *   an `AppError` subclass (`ValidationError` 422, `NotFoundError`,
 *   `ConflictError`, `UpstreamError` 502 for a node-side failure), with the
 *   node's message in `detail` only when it holds no secret;
 * - no usable answer (timeout, connection lost, 5xx, breaker open): the
 *   `HttpClient` errors (`UpstreamTimeoutError` 504, `UnavailableError` 503,
 *   `UpstreamError` 502). For `payInvoice` such an error means the outcome
 *   is unknown: the caller records the payment as pending and asks
 *   `getPayment` before any retry.
 *
 * @module
 */

/** Which implementation is behind the port. */
export type LightningBackendKind = "lnd" | "cln";

/**
 * Optional abilities. Everything not listed here every backend must do;
 * calling an operation that needs a missing feature throws
 * `UnsupportedFeatureError` (501).
 */
export type LightningFeature =
  /** Invoices whose description is given as its SHA-256 (BOLT11 `h` field). */
  | "description-hash"
  /** The node streams invoice updates (LND `/v1/invoices/subscribe`); otherwise long-polling. */
  | "invoice-stream"
  /** Force-closing a channel. */
  | "force-close";

/** The node itself. */
export interface NodeInfo {
  /** Node public key, 33-byte compressed, hex. */
  pubkey: string;
  alias: string;
  /** The Bitcoin network the node runs on. */
  network: "mainnet" | "testnet" | "testnet4" | "signet" | "regtest";
  blockHeight: number;
  /** Synced to the chain (LND `synced_to_chain`; CLN: no `warning_*_sync`). */
  syncedToChain: boolean;
  /** Implementation version string, as the node reports it. */
  version: string;
  numActiveChannels: number;
  numPendingChannels: number;
  numPeers: number;
}

/** On-chain and channel balances. */
export interface Balances {
  onchain: {
    confirmedSat: bigint;
    unconfirmedSat: bigint;
  };
  channels: {
    /** Spendable by us, summed over active channels. */
    localMsat: bigint;
    /** Receivable, summed over active channels. */
    remoteMsat: bigint;
    /** Our side of channels still opening. */
    pendingOpenLocalMsat: bigint;
  };
}

/** Lifecycle of a channel, normalised over implementations. */
export type ChannelState = "opening" | "active" | "inactive" | "closing" | "closed";

/** One channel with a peer. */
export interface Channel {
  /** Funding outpoint `txid:vout`: stable from the funding broadcast on. */
  channelPoint: string;
  /** `blockxtxxout` once confirmed, else null. */
  shortChannelId: string | null;
  peerPubkey: string;
  state: ChannelState;
  capacitySat: bigint;
  localBalanceMsat: bigint;
  remoteBalanceMsat: bigint;
  /** Not announced to the network. */
  private: boolean;
  /** We opened it. */
  initiator: boolean;
}

/** A channel to open. */
export interface OpenChannelRequest {
  /** Peer public key (hex, 33 bytes). */
  peerPubkey: string;
  /** `host:port` to connect to first, when not yet connected. */
  peerAddress?: string;
  /** Channel size. */
  amountSat: bigint;
  /** Given to the peer at opening. */
  pushMsat?: bigint;
  private?: boolean;
  /** Funding fee: an explicit rate, or a confirmation target. */
  fee?: { satPerVbyte: number } | { targetConf: number };
}

/** The funding transaction of a channel being opened. */
export interface OpenedChannel {
  fundingTxid: string;
  outputIndex: number;
  channelPoint: string;
}

/** A channel to close. */
export interface CloseChannelRequest {
  /** Funding outpoint `txid:vout`. */
  channelPoint: string;
  /** Unilateral close; needs feature `force-close`. Must be asked for explicitly. */
  force: boolean;
  /** Cooperative close fee, when not left to the node. */
  fee?: { satPerVbyte: number } | { targetConf: number };
}

/** A close that was started. */
export interface ClosedChannel {
  /** The closing transaction, when the node already knows it. */
  closingTxid: string | null;
}

/** Normalised invoice states (LND OPEN/SETTLED/CANCELED/ACCEPTED, CLN unpaid/paid/expired). */
export type InvoiceState = "open" | "settled" | "canceled" | "expired";

/** An invoice of this node. */
export interface Invoice {
  paymentHash: string;
  /** The BOLT11 text. */
  bolt11: string;
  /** Requested amount; null for an any-amount invoice. */
  amountMsat: bigint | null;
  /** What was received once settled, else null. */
  amountReceivedMsat: bigint | null;
  /** Plain description (null when a description hash was used). */
  description: string | null;
  /** Description hash (hex) when one was used. */
  descriptionHash: string | null;
  state: InvoiceState;
  createdAt: Date;
  expiresAt: Date;
  settledAt: Date | null;
  /** Known to the payee once settled (and for our own invoices, always). */
  preimage: string | null;
}

/** An invoice to create. */
export interface CreateInvoiceRequest {
  /** Null for an any-amount invoice. */
  amountMsat: bigint | null;
  /** Plain description; exclusive with `descriptionHash`. */
  description?: string;
  /** SHA-256 of a long description (hex); needs feature `description-hash`. */
  descriptionHash?: string;
  expirySeconds: number;
  /**
   * A unique label for nodes that need one (CLN `label`); LND ignores it.
   * The service makes it from its own invoice id.
   */
  label: string;
}

/** A BOLT11 invoice to pay. */
export interface PayInvoiceRequest {
  bolt11: string;
  /** Only for an any-amount invoice; must be absent otherwise. */
  amountMsat?: bigint;
  /** Most the routing may cost. */
  maxFeeMsat: bigint;
  /** Give up finding a route after this long (the node's own payment timeout). */
  timeoutSeconds: number;
}

/**
 * Where a payment stands: only `succeeded` and `failed` are final.
 */
export type PaymentResult =
  | {
    status: "succeeded";
    paymentHash: string;
    /** Checked by the caller: SHA-256(preimage) must equal the payment hash. */
    preimage: string;
    amountMsat: bigint;
    feeMsat: bigint;
  }
  | {
    status: "failed";
    paymentHash: string;
    /** The node's failure reason, normalised (e.g. `no_route`, `incorrect_payment_details`). */
    reason: string;
  }
  | { status: "pending"; paymentHash: string };

/** The port. */
export interface LightningBackend {
  readonly kind: LightningBackendKind;
  readonly features: ReadonlySet<LightningFeature>;

  getInfo(): Promise<NodeInfo>;
  getBalances(): Promise<Balances>;
  listChannels(): Promise<Channel[]>;
  openChannel(req: OpenChannelRequest): Promise<OpenedChannel>;
  closeChannel(req: CloseChannelRequest): Promise<ClosedChannel>;

  createInvoice(req: CreateInvoiceRequest): Promise<Invoice>;
  /** The invoice with this payment hash, or null when the node has none. */
  getInvoice(paymentHash: string): Promise<Invoice | null>;
  /** Newest first, at most `limit`. */
  listInvoices(opts: { limit: number }): Promise<Invoice[]>;
  /**
   * Invoice changes as they happen (settlements above all), until `signal`
   * aborts. Implementations reconnect on their own after transport errors;
   * the caller reconciles with `getInvoice` for anything missed meanwhile.
   */
  watchInvoices(signal: AbortSignal): AsyncIterable<Invoice>;

  /**
   * Pay a BOLT11 invoice and wait for the outcome (up to `timeoutSeconds`
   * plus the client's deadline). Returns `pending` when the node reports the
   * payment in flight; throws as the module doc says when the outcome is
   * unknown.
   */
  payInvoice(req: PayInvoiceRequest): Promise<PaymentResult>;
  /**
   * The node's view of its payment to this hash: the final outcome, or
   * `pending` while an attempt is in flight; null when the node never tried
   * to pay it (then, and only then, paying is safe to retry).
   */
  getPayment(paymentHash: string): Promise<PaymentResult | null>;
}
