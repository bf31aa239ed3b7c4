/**
 * Chain backends: the `ChainBackend` port and its Esplora REST and Bitcoin
 * Core JSON-RPC adapters. `main.ts` picks one from `CHAIN_BACKEND` and checks
 * `getNetwork()` against `BITCOIN_NETWORK` at boot.
 *
 * @module
 */
// The network type appears in the port's signatures, so it is re-exported with its source list.
export { BITCOIN_NETWORKS, type BitcoinNetwork } from "../bitcoin/network.ts";
export type {
  BroadcastResult,
  ChainBackend,
  ChainBackendKind,
  ChainTip,
  FeeEstimate,
  MempoolAcceptResult,
  TxInfo,
  TxStatus,
  Utxo,
} from "./backend.ts";
export type { MempoolSnapshot } from "./mempool_snapshot.ts";
export { EsploraBackend, type EsploraBackendOptions } from "./esplora_backend.ts";
export {
  type BitcoindAuth,
  BitcoindBackend,
  type BitcoindBackendOptions,
} from "./bitcoind_backend.ts";
