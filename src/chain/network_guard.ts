/**
 * Wraps a `ChainBackend` so nothing reaches it until its network has been
 * confirmed to be the configured one: a mainnet edge pointed at a testnet node
 * (or the reverse) must not fetch UTXOs or broadcast. A mismatch is fatal;
 * an unreachable backend is re-checked on the next call.
 *
 * @module
 */
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import { UnavailableError } from "../errors/mod.ts";
import type { MempoolSnapshot } from "./mempool_snapshot.ts";
import type {
  BroadcastResult,
  ChainBackend,
  ChainTip,
  FeeEstimate,
  MempoolAcceptResult,
  TxInfo,
  Utxo,
} from "./backend.ts";

/** The backend follows another network than configured. */
export class ChainNetworkMismatchError extends Error {
  /**
   * @param configured `BITCOIN_NETWORK`
   * @param actual what the backend reports
   */
  constructor(configured: BitcoinNetwork, actual: BitcoinNetwork) {
    super(`The chain backend follows ${actual}, but BITCOIN_NETWORK is ${configured}`);
    this.name = "ChainNetworkMismatchError";
  }
}

/** A `ChainBackend` that verifies the backend's network before first use. */
export class NetworkCheckedBackend implements ChainBackend {
  readonly #inner: ChainBackend;
  readonly #network: BitcoinNetwork;
  #verified: Promise<void> | undefined;
  #mismatch: ChainNetworkMismatchError | undefined;

  /**
   * @param inner the adapter
   * @param network the configured network
   */
  constructor(inner: ChainBackend, network: BitcoinNetwork) {
    this.#inner = inner;
    this.#network = network;
    if (inner.getUtxosOfScripts !== undefined) {
      this.getUtxosOfScripts = async (scripts) => {
        await this.verify();
        return await inner.getUtxosOfScripts!(scripts);
      };
    }
    if (inner.testMempoolAccept !== undefined) {
      this.testMempoolAccept = async (rawTxHex: string): Promise<MempoolAcceptResult> => {
        await this.verify();
        return await inner.testMempoolAccept!(rawTxHex);
      };
    }
  }

  /** Which adapter is wrapped. */
  get kind(): ChainBackend["kind"] {
    return this.#inner.kind;
  }

  /**
   * Confirm the backend's network (once; retried after a failure).
   *
   * @throws ChainNetworkMismatchError when it follows another network
   * @throws UnavailableError while it cannot be asked
   */
  verify(): Promise<void> {
    if (this.#mismatch !== undefined) return Promise.reject(this.#mismatch);
    this.#verified ??= this.#inner.getNetwork().then((actual) => {
      if (actual !== this.#network) {
        this.#mismatch = new ChainNetworkMismatchError(this.#network, actual);
        throw this.#mismatch;
      }
    }).catch((err) => {
      this.#verified = undefined;
      if (err instanceof ChainNetworkMismatchError) throw err;
      throw new UnavailableError("The chain backend's network could not be verified yet", {
        cause: err,
      });
    });
    return this.#verified;
  }

  /** Optional: many scripts' UTXOs in one request (Bitcoin Core). */
  getUtxosOfScripts?: NonNullable<ChainBackend["getUtxosOfScripts"]>;

  /** Optional: Bitcoin Core's mempool acceptance test. */
  testMempoolAccept?: (rawTxHex: string) => Promise<MempoolAcceptResult>;

  async getNetwork(): Promise<BitcoinNetwork> {
    await this.verify();
    return this.#network;
  }
  async getTip(): Promise<ChainTip> {
    await this.verify();
    return await this.#inner.getTip();
  }
  async getMempoolSnapshot(): Promise<MempoolSnapshot> {
    await this.verify();
    return await this.#inner.getMempoolSnapshot();
  }
  async estimateFee(targetBlocks: number): Promise<FeeEstimate> {
    await this.verify();
    return await this.#inner.estimateFee(targetBlocks);
  }
  async getAddressUtxos(address: string): Promise<Utxo[]> {
    await this.verify();
    return await this.#inner.getAddressUtxos(address);
  }
  async getTransaction(txid: string): Promise<TxInfo | null> {
    await this.verify();
    return await this.#inner.getTransaction(txid);
  }
  async broadcast(rawTxHex: string): Promise<BroadcastResult> {
    await this.verify();
    return await this.#inner.broadcast(rawTxHex);
  }
}
