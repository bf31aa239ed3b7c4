/**
 * A programmable `ChainBackend` for service tests: a map of known
 * transactions, a tip, and per-call scripted failures. Adapter behaviour
 * against real wire formats is tested separately with the test peers.
 */
import type {
  BroadcastResult,
  ChainBackend,
  ChainTip,
  FeeEstimate,
  MempoolSnapshot,
  TxInfo,
  Utxo,
} from "../../src/chain/backend.ts";
import type { BitcoinNetwork } from "../../src/bitcoin/network.ts";
import { Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";

/** What the next `broadcast` call does. */
export type BroadcastScript =
  | { kind: "accept" }
  | { kind: "reject"; reason: string }
  | { kind: "unavailable" }
  | { kind: "timeout"; delivered: boolean }
  | { kind: "error"; delivered: boolean };

/** A scripted chain backend. */
export class ScriptedChainBackend implements ChainBackend {
  readonly kind = "esplora" as const;
  network: BitcoinNetwork = "mainnet";
  tip: ChainTip = { height: 800_000, hash: "00".repeat(32) };
  feeSatPerKvb = 2_000;
  readonly known = new Map<string, TxInfo>();
  readonly utxos = new Map<string, Utxo[]>();
  readonly broadcasts: string[] = [];
  readonly scripts: BroadcastScript[] = [];
  lookupFails = false;
  /** What `getMempoolSnapshot()` answers; set it, or an `Error` to throw. */
  snapshot: MempoolSnapshot | Error = {
    timestampSec: 1_700_000_000,
    height: 800_000,
    lastBlockTimeSec: 1_699_999_700,
    mempoolCount: 3,
    mempoolVsize: 180_000,
    mempoolTotalFeeSat: 1_800_000,
    histogram: [[20, 60_000], [10, 60_000], [2, 60_000]],
    nextBlockMedianFeeSatVb: 10,
    recentBlockMedianFeesSatVb: [12, 9, 15, 7, 30, 11],
  };
  /** Called before each broadcast completes (to interleave concurrent calls). */
  broadcastDelayMs = 0;

  getNetwork(): Promise<BitcoinNetwork> {
    return Promise.resolve(this.network);
  }
  getTip(): Promise<ChainTip> {
    return Promise.resolve(this.tip);
  }
  estimateFee(targetBlocks: number): Promise<FeeEstimate> {
    return Promise.resolve({ satPerKvb: this.feeSatPerKvb, targetBlocks });
  }
  getMempoolSnapshot(): Promise<MempoolSnapshot> {
    if (this.snapshot instanceof Error) return Promise.reject(this.snapshot);
    return Promise.resolve(structuredClone(this.snapshot));
  }
  getAddressUtxos(address: string): Promise<Utxo[]> {
    return Promise.resolve(this.utxos.get(address) ?? []);
  }
  async getTransaction(txid: string): Promise<TxInfo | null> {
    if (this.lookupFails) {
      const { UpstreamTimeoutError } = await import("../../src/errors/mod.ts");
      throw new UpstreamTimeoutError("lookup timed out");
    }
    return this.known.get(txid) ?? null;
  }
  async broadcast(rawTxHex: string): Promise<BroadcastResult> {
    const { UnavailableError, UpstreamError, UpstreamTimeoutError, ValidationError } = await import(
      "../../src/errors/mod.ts"
    );
    if (this.broadcastDelayMs > 0) await new Promise((r) => setTimeout(r, this.broadcastDelayMs));
    const txid = Transaction.fromRaw(hex.decode(rawTxHex), { allowUnknownOutputs: true }).id;
    const script = this.scripts.shift() ?? { kind: "accept" };
    const deliver = () => {
      this.broadcasts.push(txid);
      this.known.set(txid, { txid, hex: rawTxHex, status: { state: "unconfirmed" } });
    };
    switch (script.kind) {
      case "accept":
        deliver();
        return { txid };
      case "reject":
        throw new ValidationError(`Transaction rejected by the network: ${script.reason}`, {
          status: 422,
        });
      case "unavailable":
        throw new UnavailableError("esplora is unavailable");
      case "timeout":
        if (script.delivered) deliver();
        throw new UpstreamTimeoutError("esplora did not answer in time");
      case "error":
        if (script.delivered) deliver();
        throw new UpstreamError("esplora answered 500");
    }
  }

  /** Mark `txid` confirmed at `height` and move the tip. */
  confirm(txid: string, height: number, tipHeight: number): void {
    const known = this.known.get(txid);
    if (known === undefined) throw new Error(`unknown tx ${txid}`);
    this.tip = { height: tipHeight, hash: "11".repeat(32) };
    this.known.set(txid, {
      ...known,
      status: {
        state: "confirmed",
        blockHeight: height,
        blockHash: "22".repeat(32),
        confirmations: tipHeight - height + 1,
      },
    });
  }
}
