/**
 * The `ChainBackend` port: what the edge needs from a Bitcoin chain source
 * (tip, fee estimates, address UTXOs, transaction lookup, broadcast, mempool
 * snapshots for the fee-rate model), with
 * result types in the units of STYLE.md (`valueSats: bigint`, integer
 * `satPerKvb`). Adapters: `EsploraBackend` (Esplora REST) and
 * `BitcoindBackend` (Bitcoin Core JSON-RPC).
 *
 * Errors follow the upstream conventions of src/errors: never reached the
 * upstream → `UnavailableError` (503); outcome unknown → `UpstreamTimeoutError`
 * (504); error or unusable reply → `UpstreamError` (502); the network refused
 * the caller's transaction → `ValidationError` (422).
 *
 * @module
 */
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import type { MempoolSnapshot } from "./mempool_snapshot.ts";

export type { MempoolSnapshot } from "./mempool_snapshot.ts";

/** Which adapter implements the port. */
export type ChainBackendKind = "esplora" | "bitcoind";

/** The best block the backend knows. */
export interface ChainTip {
  /** Height of the best block. */
  height: number;
  /** Its hash, lowercase hex (display byte order). */
  hash: string;
}

/** A fee rate estimate. */
export interface FeeEstimate {
  /** Integer fee rate in sat/kvB (1 sat/vB = 1000 sat/kvB). */
  satPerKvb: number;
  /** Confirmation target the estimate is for; may differ from the one asked for. */
  targetBlocks: number;
}

/** One unspent output paying an address. */
export interface Utxo {
  /** Funding transaction id, lowercase hex. */
  txid: string;
  /** Output index. */
  vout: number;
  /** Output value. */
  valueSats: bigint;
  /** Confirmations; 0 means it is in the mempool. */
  confirmations: number;
  /** The output script, lowercase hex, when the backend reports it. */
  scriptPubKeyHex?: string;
}

/** Where a transaction is. */
export type TxStatus =
  | { state: "unconfirmed" }
  | { state: "confirmed"; blockHeight: number; blockHash: string; confirmations: number };

/** A transaction the backend knows, with its raw bytes and status. */
export interface TxInfo {
  /** Transaction id, lowercase hex. */
  txid: string;
  /** Raw transaction, lowercase hex. */
  hex: string;
  /** Mempool or confirmed at a height. */
  status: TxStatus;
}

/** A transaction handed to the network. */
export interface BroadcastResult {
  /** Its id, lowercase hex. */
  txid: string;
}

/** Bitcoin Core's `testmempoolaccept` verdict on one transaction. */
export interface MempoolAcceptResult {
  /** Whether the node's mempool would take the transaction now. */
  allowed: boolean;
  /** The node's reason when not allowed (`reject-reason`, e.g. `min relay fee not met`), sanitized. */
  rejectReason?: string;
  /** The node's longer explanation (`reject-details`, newer Core releases), sanitized. */
  rejectDetails?: string;
  /** Virtual size when allowed. */
  vsize?: number;
  /** Fee paid when allowed. */
  feesSats?: bigint;
}

/** The chain source the services depend on. */
export interface ChainBackend {
  /** Which adapter this is. */
  readonly kind: ChainBackendKind;

  /**
   * The network the backend follows; `main.ts` checks it against
   * `BITCOIN_NETWORK` at boot. testnet3 is not supported (an `UpstreamError`).
   */
  getNetwork(): Promise<BitcoinNetwork>;

  /** Height and hash of the best block. */
  getTip(): Promise<ChainTip>;

  /**
   * Fee rate to confirm within `targetBlocks` blocks.
   *
   * @param targetBlocks confirmation target, 1..1008
   * @throws UnavailableError when the backend has no estimate
   */
  estimateFee(targetBlocks: number): Promise<FeeEstimate>;

  /**
   * Unspent outputs paying `address`. Bitcoin Core reports confirmed outputs only.
   *
   * @param address an address the caller has already checked for the network
   */
  getAddressUtxos(address: string): Promise<Utxo[]>;

  /**
   * A transaction and its status, or `null` when the backend does not know it.
   *
   * @param txid lowercase hex
   */
  getTransaction(txid: string): Promise<TxInfo | null>;

  /**
   * Hand a signed transaction to the network. A transaction the network
   * already has (mempool or chain) answers with its txid, not an error.
   *
   * Outcomes: resolved → sent (or already out); `ValidationError` 422 → the
   * network refused it; `UnavailableError` 503 → it never left; anything else
   * (`UpstreamTimeoutError` 504, `UpstreamError` 502) → it may have gone out:
   * look the txid up before calling it failed.
   *
   * @param rawTxHex the signed transaction, hex
   */
  broadcast(rawTxHex: string): Promise<BroadcastResult>;

  /**
   * The mempool as the fee-rate model sees it (`feeFeatures()` in
   * src/ml/features/fee_features.ts): totals, an Esplora-style fee histogram,
   * the projected next block's median, recent blocks' medians (newest first)
   * and the tip with its header time. Both adapters implement it.
   */
  getMempoolSnapshot(): Promise<MempoolSnapshot>;

  /**
   * Unspent outputs of many scripts in one request, aligned with `scripts`.
   * Offered by Bitcoin Core, whose `scantxoutset` reads the whole UTXO set
   * once per call (minutes on mainnet) however many scripts it matches: N
   * addresses must not cost N scans. Backends without it are asked per address.
   *
   * @param scripts addresses already checked for the network, with their scriptPubKeys
   */
  getUtxosOfScripts?(
    scripts: readonly { address: string; scriptPubKeyHex: string }[],
  ): Promise<Utxo[][]>;

  /**
   * Ask the node whether its mempool would accept the transaction, without
   * relaying it. Offered by Bitcoin Core only.
   *
   * @param rawTxHex the signed transaction, hex
   */
  testMempoolAccept?(rawTxHex: string): Promise<MempoolAcceptResult>;
}
