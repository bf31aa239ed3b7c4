/**
 * Helpers shared by the chain adapters: argument checks, genesis hashes,
 * txid computation, and the translation of "the network already has it" and
 * "the network refused it" answers.
 *
 * @module
 */
import { Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import { UpstreamError, ValidationError } from "../errors/app_error.ts";

/** Genesis block hashes of the supported networks (display byte order). */
export const GENESIS_BLOCK_HASHES: Readonly<Record<BitcoinNetwork, string>> = Object.freeze({
  mainnet: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
  testnet4: "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
  // Every signet, default or custom, shares this genesis block; only the challenge differs.
  signet: "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
  regtest: "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
});

/** testnet3's genesis hash: recognised only to say it is not supported. */
const TESTNET3_GENESIS_BLOCK_HASH =
  "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943";

/**
 * The network whose genesis block is `hash`.
 *
 * @param hash block hash at height 0, hex
 * @throws UpstreamError for testnet3 or an unknown chain
 */
export function networkFromGenesisHash(hash: string): BitcoinNetwork {
  const h = hash.toLowerCase();
  for (const [network, genesis] of Object.entries(GENESIS_BLOCK_HASHES)) {
    if (genesis === h) return network as BitcoinNetwork;
  }
  if (h === TESTNET3_GENESIS_BLOCK_HASH) throw testnet3Unsupported();
  throw new UpstreamError(
    "Chain backend follows an unknown chain: its genesis block is not mainnet, testnet4, signet or regtest",
  );
}

/** The error for a backend that follows testnet3. */
export function testnet3Unsupported(): UpstreamError {
  return new UpstreamError("Chain backend follows testnet3, which is not supported: use testnet4");
}

/** Longest upstream text (a reject reason, a node error) put into a client-visible detail. */
const MAX_UPSTREAM_TEXT = 200;

/**
 * Make upstream text safe to show in a problem detail: control characters
 * become spaces, whitespace collapses, and the result is cut to 200 characters.
 *
 * @param text text from an upstream reply
 */
export function sanitizeUpstreamText(text: string): string {
  // deno-lint-ignore no-control-regex -- removing control characters is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ")
    .replace(/\s+/g, " ").trim();
  return clean.length <= MAX_UPSTREAM_TEXT ? clean : `${clean.slice(0, MAX_UPSTREAM_TEXT - 1)}…`;
}

/** 64 lowercase hex digits: a txid or block hash. */
export const HASH_HEX = /^[0-9a-f]{64}$/;

/**
 * Check a txid argument before it goes into a URL or an RPC call.
 *
 * @param txid expected: 64 lowercase hex digits
 * @throws RangeError otherwise (callers validate client input first)
 */
export function assertTxid(txid: string): void {
  if (typeof txid !== "string" || !HASH_HEX.test(txid)) {
    throw new RangeError("Invalid txid: expected 64 lowercase hex characters");
  }
}

/**
 * Check an address argument. Only base58/bech32 characters pass, so it can
 * break out of neither a URL path segment nor Core's `addr(...)` descriptor.
 * Whether it belongs to the network is the caller's check.
 *
 * @param address the address
 * @throws RangeError when it has other characters or an implausible length
 */
export function assertAddressSyntax(address: string): void {
  if (typeof address !== "string" || !/^[a-zA-Z0-9]{14,90}$/.test(address)) {
    throw new RangeError("Invalid address: expected 14 to 90 letters and digits");
  }
}

/**
 * Check a confirmation target argument.
 *
 * @param targetBlocks expected: an integer in 1..1008 (the longest horizon Core tracks)
 * @throws RangeError otherwise
 */
export function assertTargetBlocks(targetBlocks: number): void {
  if (!Number.isSafeInteger(targetBlocks) || targetBlocks < 1 || targetBlocks > 1008) {
    throw new RangeError("Invalid confirmation target: expected an integer from 1 to 1008 blocks");
  }
}

/** A raw transaction checked and identified before it is sent. */
export interface DecodedRawTx {
  /** Lowercase hex. */
  hex: string;
  /** Its txid. */
  txid: string;
}

/**
 * Parse a signed raw transaction far enough to know its txid. The txid is
 * what an "already known" answer and an unknown outcome are resolved by, so
 * it is computed locally rather than taken from the upstream.
 *
 * @param rawTxHex the transaction, hex
 * @throws RangeError when it is not hex; ValidationError 422 when it is not a transaction
 */
export function decodeRawTx(rawTxHex: string): DecodedRawTx {
  if (
    typeof rawTxHex !== "string" || rawTxHex.length === 0 || rawTxHex.length % 2 !== 0 ||
    !/^[0-9a-fA-F]+$/.test(rawTxHex)
  ) {
    throw new RangeError("Invalid raw transaction: expected non-empty, even-length hex");
  }
  const lower = rawTxHex.toLowerCase();
  try {
    const tx = Transaction.fromRaw(hex.decode(lower), {
      // Standardness is the network's call; only the serialisation matters here.
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
      allowUnknownVersion: true,
      disableScriptCheck: true,
    });
    return { hex: lower, txid: tx.id };
  } catch (err) {
    throw new ValidationError("Invalid transaction: the raw bytes do not parse as a transaction", {
      status: 422,
      cause: err,
    });
  }
}

/**
 * Whether raw transaction hex from an upstream really is the transaction
 * `txid`, so a confused or hostile upstream cannot hand back other bytes.
 *
 * @param rawHex hex from the upstream reply
 * @param txid the txid that was asked for
 */
export function isHexOfTxid(rawHex: string, txid: string): boolean {
  try {
    return decodeRawTx(rawHex).txid === txid;
  } catch {
    return false;
  }
}

/**
 * Reasons meaning the network already has this very transaction (mempool or
 * chain), across Core versions: "Transaction already in block chain" (before
 * v28), "Transaction outputs already in utxo set" (v28+), the mempool reject
 * codes `txn-already-in-mempool`, `txn-already-known` (its outputs are in the
 * UTXO set) and `txn-same-nonwitness-data-in-mempool` (same txid, other witness).
 */
const ALREADY_KNOWN =
  /already in block ?chain|already[- ]in[- ]utxo[- ]set|txn-already-in-mempool|txn-already-known|txn-same-nonwitness-data-in-mempool/i;

/** Core's RPC_VERIFY_ALREADY_IN_CHAIN / RPC_VERIFY_ALREADY_IN_UTXO_SET. */
const ALREADY_IN_CHAIN_CODE = -27;

/**
 * Whether a rejection says the transaction is already out. Inputs that are
 * missing or spent are not in this set: that can mean "confirmed and spent"
 * or a genuine double spend, which only a txid lookup can tell apart.
 *
 * @param message the node's reason
 * @param code the node's RPC error code, when known
 */
export function isAlreadyKnown(message: string, code?: number): boolean {
  return code === ALREADY_IN_CHAIN_CODE || ALREADY_KNOWN.test(message);
}

/**
 * The 422 for a transaction the network refused.
 *
 * @param reason the node's reason (sanitized here)
 * @param cause the original error or reply
 */
export function rejectedByNetwork(reason: string, cause?: unknown): ValidationError {
  const clean = sanitizeUpstreamText(reason) || "no reason given";
  return new ValidationError(`Transaction rejected by the network: ${clean}`, {
    status: 422,
    extensions: { rejectReason: clean },
    cause,
  });
}

/**
 * The 422 for an address the backend refused (wrong network, unparsable).
 *
 * @param reason the backend's reason (sanitized here)
 * @param cause the original error or reply
 */
export function addressRejected(reason: string, cause?: unknown): ValidationError {
  return new ValidationError(
    `Address rejected by the chain backend: ${sanitizeUpstreamText(reason) || "no reason given"}`,
    { status: 422, cause },
  );
}

/**
 * Confirmations of a block at `blockHeight` when the tip is `tipHeight`. At
 * least 1: the two heights come from separate calls and the tip may lag.
 *
 * @param tipHeight height of the best block
 * @param blockHeight height of the confirming block
 */
export function confirmationsAt(tipHeight: number, blockHeight: number): number {
  return Math.max(1, tipHeight - blockHeight + 1);
}
