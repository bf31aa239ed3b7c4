/**
 * The in-memory chain both chain test peers serve (`esplora_peer.ts`,
 * `bitcoind_peer.ts`), so one contract table can run against both adapters.
 * Amounts are kept in sats and fee rates in sat/kvB; each peer renders them
 * in its own wire units. Nothing here imports `src/`: the peers are an
 * independent reading of the upstream formats.
 *
 * @module
 */
import { Address, NETWORK, OutScript, TEST_NETWORK, Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";

/** Networks a peer can pretend to follow (testnet3 included, to test its refusal). */
export type PeerNetwork = "mainnet" | "testnet3" | "testnet4" | "signet" | "regtest";

/** Genesis block hashes (display order), written out independently of `src/chain`. */
export const PEER_GENESIS: Readonly<Record<PeerNetwork, string>> = {
  mainnet: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
  testnet3: "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
  testnet4: "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
  signet: "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
  regtest: "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
};

/** A block on the peer's chain. */
export interface PeerBlock {
  height: number;
  hash: string;
}

/** A transaction the peer knows; no `block` means it is in the mempool. */
export interface PeerTx {
  hex: string;
  block?: PeerBlock;
}

/** An unspent output; no `block` means it is unconfirmed. */
export interface PeerUtxo {
  address: string;
  txid: string;
  vout: number;
  valueSats: bigint;
  scriptPubKeyHex: string;
  block?: PeerBlock;
}

/** Why the peer's mempool refuses a transaction, in both vocabularies. */
export interface PeerRejection {
  /** `testmempoolaccept`'s `reject-reason`, e.g. `min relay fee not met`. */
  rejectReason: string;
  /** `sendrawtransaction`'s RPC error code, e.g. -26. */
  code: number;
  /** `sendrawtransaction`'s error message. */
  message: string;
}

/**
 * One mempool transaction as the fee statistics see it (`GET /mempool`,
 * `getrawmempool true`): only its size and fee matter, so it need not decode.
 */
export interface PeerMempoolEntry {
  txid: string;
  vsize: number;
  feeSats: bigint;
}

/** The whole state. Tests mutate it directly between calls. */
export interface ChainState {
  network: PeerNetwork;
  tip: PeerBlock;
  /** Known transactions by txid. */
  txs: Map<string, PeerTx>;
  utxos: PeerUtxo[];
  /** Fee estimates: confirmation target → sat/kvB. */
  feeRatesSatPerKvb: Map<number, number>;
  /** Mempool refusals by txid. */
  rejections: Map<string, PeerRejection>;
  /** Fee reported by `testmempoolaccept` per txid (default 1000 sats). */
  feesSats: Map<string, bigint>;
  /** Txids accepted by a broadcast, in order. */
  broadcasts: string[];
  /**
   * The mempool's fee statistics, served by `GET /mempool`, mempool.space's
   * `/v1/fees/mempool-blocks` and Core's `getmempoolinfo` / `getrawmempool true`.
   * Kept apart from `txs` so the contract transactions need no made-up fees.
   */
  mempoolEntries: PeerMempoolEntry[];
  /**
   * Median fee rate (whole sat/vB) of the blocks from the tip down, newest
   * first: `getblockstats` `feerate_percentiles[2]` and mempool.space's
   * `extras.medianFee`. Heights past the end read as 0 (empty blocks).
   */
  blockMedianFeesSatVb: number[];
  /** Every request the peers served, e.g. `esplora GET /blocks/tip/hash`, `bitcoind getblockchaininfo`. */
  requests: string[];
}

/**
 * A fresh state: regtest-like defaults with the tip at height 0 on `network`.
 *
 * @param init fields to set
 */
export function createChainState(init: Partial<ChainState> = {}): ChainState {
  const network = init.network ?? "regtest";
  return {
    network,
    tip: init.tip ?? { height: 0, hash: PEER_GENESIS[network] },
    txs: init.txs ?? new Map(),
    utxos: init.utxos ?? [],
    feeRatesSatPerKvb: init.feeRatesSatPerKvb ?? new Map(),
    rejections: init.rejections ?? new Map(),
    feesSats: init.feesSats ?? new Map(),
    broadcasts: init.broadcasts ?? [],
    mempoolEntries: init.mempoolEntries ?? [],
    blockMedianFeesSatVb: init.blockMedianFeesSatVb ?? [],
    requests: init.requests ?? [],
  };
}

/** Ids and size of a decoded transaction. */
export interface DecodedTx {
  txid: string;
  wtxid: string;
  vsize: number;
  weight: number;
  size: number;
  version: number;
  locktime: number;
  outputs: { valueSats: bigint; scriptHex: string }[];
  inputs: { txid: string; vout: number; sequence: number; scriptSigHex: string }[];
}

/**
 * Decode a raw transaction, or `null` when the bytes are not one.
 *
 * @param rawHex hex
 */
export function decodePeerTx(rawHex: string): DecodedTx | null {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(rawHex)) return null;
  try {
    const tx = Transaction.fromRaw(hex.decode(rawHex.toLowerCase()), {
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
      allowUnknownVersion: true,
      disableScriptCheck: true,
    });
    const outputs = [];
    for (let i = 0; i < tx.outputsLength; i++) {
      const o = tx.getOutput(i);
      outputs.push({
        valueSats: o.amount ?? 0n,
        scriptHex: hex.encode(o.script ?? new Uint8Array()),
      });
    }
    const inputs = [];
    for (let i = 0; i < tx.inputsLength; i++) {
      const input = tx.getInput(i);
      inputs.push({
        txid: hex.encode(input.txid ?? new Uint8Array(32)),
        vout: input.index ?? 0,
        sequence: input.sequence ?? 0xffffffff,
        scriptSigHex: hex.encode(input.finalScriptSig ?? new Uint8Array()),
      });
    }
    return {
      txid: tx.id,
      // wtxid: double SHA-256 of the full serialisation (witness included), shown reversed.
      wtxid: hex.encode(sha256(sha256(hex.decode(rawHex.toLowerCase()))).reverse()),
      vsize: tx.vsize,
      weight: tx.weight,
      size: rawHex.length / 2,
      version: tx.version,
      locktime: tx.lockTime,
      outputs,
      inputs,
    };
  } catch {
    return null;
  }
}

/**
 * The block at `height` on the peer's chain: genesis, the tip, or a block a
 * transaction or UTXO sits in.
 *
 * @param state the chain
 * @param height a height
 */
export function blockAt(state: ChainState, height: number): PeerBlock | undefined {
  return knownBlocks(state).find((b) => b.height === height);
}

/**
 * The block with `hash`, if the peer's chain has it.
 *
 * @param state the chain
 * @param hash a block hash
 */
export function blockByHash(state: ChainState, hash: string): PeerBlock | undefined {
  return knownBlocks(state).find((b) => b.hash === hash);
}

function knownBlocks(state: ChainState): PeerBlock[] {
  const blocks: PeerBlock[] = [{ height: 0, hash: PEER_GENESIS[state.network] }, state.tip];
  for (const tx of state.txs.values()) if (tx.block !== undefined) blocks.push(tx.block);
  for (const u of state.utxos) if (u.block !== undefined) blocks.push(u.block);
  return blocks.filter((b) => b.height <= state.tip.height);
}

/**
 * Whether `address` is valid on the peer's network.
 *
 * @param state the chain
 * @param address the address
 */
export function isAddressForPeer(state: ChainState, address: string): boolean {
  const params = state.network === "mainnet"
    ? NETWORK
    : state.network === "regtest"
    ? { ...TEST_NETWORK, bech32: "bcrt" }
    : TEST_NETWORK;
  try {
    OutScript.encode(Address(params).decode(address));
    return true;
  } catch {
    return false;
  }
}

/** What the peer's mempool makes of a raw transaction. */
export type MempoolVerdict =
  | { kind: "malformed" }
  | { kind: "confirmed"; tx: DecodedTx }
  | { kind: "in-mempool"; tx: DecodedTx }
  | { kind: "rejected"; tx: DecodedTx; rejection: PeerRejection }
  | { kind: "acceptable"; tx: DecodedTx; feeSats: bigint };

/**
 * Judge a raw transaction without changing the state.
 *
 * @param state the chain
 * @param rawHex the transaction
 */
export function judgeTx(state: ChainState, rawHex: string): MempoolVerdict {
  const tx = decodePeerTx(rawHex);
  if (tx === null) return { kind: "malformed" };
  const known = state.txs.get(tx.txid);
  if (known?.block !== undefined) return { kind: "confirmed", tx };
  if (known !== undefined) return { kind: "in-mempool", tx };
  const rejection = state.rejections.get(tx.txid);
  if (rejection !== undefined) return { kind: "rejected", tx, rejection };
  return { kind: "acceptable", tx, feeSats: state.feesSats.get(tx.txid) ?? 1000n };
}

/**
 * Put an acceptable transaction into the mempool and the broadcast log.
 *
 * @param state the chain
 * @param rawHex the transaction
 * @param txid its id
 */
export function acceptTx(state: ChainState, rawHex: string, txid: string): void {
  state.txs.set(txid, { hex: rawHex.toLowerCase() });
  state.broadcasts.push(txid);
}

/**
 * The header time the peers give the block at `height` (Unix seconds).
 *
 * @param height a height
 */
export function blockTimeAt(height: number): number {
  return 1_700_000_000 + height * 600;
}

/**
 * Median fee rate of the block at `height` (sat/vB), from `blockMedianFeesSatVb`.
 *
 * @param state the chain
 * @param height a height at or below the tip
 */
export function blockMedianAt(state: ChainState, height: number): number {
  return state.blockMedianFeesSatVb[state.tip.height - height] ?? 0;
}

/**
 * The mempool's entries from the highest fee rate down, each with its rate.
 *
 * @param state the chain
 */
export function mempoolByFeeRate(
  state: ChainState,
): (PeerMempoolEntry & { feeRateSatVb: number })[] {
  return state.mempoolEntries
    .map((e) => ({ ...e, feeRateSatVb: Number(e.feeSats) / e.vsize }))
    .sort((a, b) => b.feeRateSatVb - a.feeRateSatVb);
}

/** One recorded mainnet transaction from `tests/fixtures/http/bitcoind/block_739990_txs.json`. */
export interface RecordedTx {
  txid: string;
  hex: string;
  vsize: number;
  vout: { value: number; n: number; scriptPubKey: { hex: string; address?: string } }[];
}

/** The recorded block and its three transactions. */
export interface RecordedBlock {
  hash: string;
  height: number;
  tx: RecordedTx[];
}

/** Load the recorded mainnet transactions (real hex, txids and values). */
export async function loadRecordedBlock(): Promise<RecordedBlock> {
  const url = new URL("../fixtures/http/bitcoind/block_739990_txs.json", import.meta.url);
  return JSON.parse(await Deno.readTextFile(url)) as RecordedBlock;
}
