/**
 * Bitcoin networks the edge serves and their address parameters for
 * `@scure/btc-signer`. testnet4 and signet share testnet's parameters
 * (`tb` bech32, version bytes 0x6f/0xc4); regtest uses `bcrt`.
 *
 * @module
 */
import { NETWORK, TEST_NETWORK } from "@scure/btc-signer";

/** Networks selectable with `BITCOIN_NETWORK`. */
export const BITCOIN_NETWORKS = ["mainnet", "testnet4", "signet", "regtest"] as const;

/** One of {@linkcode BITCOIN_NETWORKS}. */
export type BitcoinNetwork = typeof BITCOIN_NETWORKS[number];

/** Address parameters in the shape `@scure/btc-signer` takes. */
export interface NetworkParams {
  bech32: string;
  pubKeyHash: number;
  scriptHash: number;
  wif: number;
}

const REGTEST: NetworkParams = Object.freeze({ ...TEST_NETWORK, bech32: "bcrt" });

/**
 * Address parameters of `network`.
 *
 * @param network a configured network
 */
export function networkParams(network: BitcoinNetwork): NetworkParams {
  switch (network) {
    case "mainnet":
      return NETWORK;
    case "testnet4":
    case "signet":
      return TEST_NETWORK;
    case "regtest":
      return REGTEST;
  }
}
