/**
 * Small helpers shared by the modules of `src/bitcoin` (private to the folder):
 * byte comparison, Bitcoin's two hash compositions, the lenient options for
 * decoding previous transactions, and the serialization sizes BIP141 weight
 * arithmetic is built from.
 *
 * @module
 */
import type { TxOpts } from "@scure/btc-signer";
import { sha256 } from "@noble/hashes/sha2.js";
import { ripemd160 } from "@noble/hashes/legacy.js";

/**
 * Byte-wise equality.
 *
 * @param a bytes
 * @param b bytes
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * RIPEMD160(SHA256(data)): P2PKH/P2WPKH key hashes and BIP16 script hashes.
 *
 * @param data bytes
 */
export function hash160(data: Uint8Array): Uint8Array {
  return ripemd160(sha256(data));
}

/**
 * SHA256(SHA256(data)): txids, wtxids and legacy/BIP143 signature hashes.
 *
 * @param data bytes
 */
export function sha256d(data: Uint8Array): Uint8Array {
  return sha256(sha256(data));
}

/**
 * `Transaction.fromRaw` options for previous transactions (PSBT_IN_NON_WITNESS_UTXO):
 * any consensus-valid transaction may be spent from, whatever scure's templates know.
 */
export const PREVIOUS_TX_OPTS: Readonly<TxOpts> = Object.freeze({
  allowUnknownOutputs: true,
  allowUnknownInputs: true,
  disableScriptCheck: true,
  allowUnknownVersion: true,
});

/**
 * Bytes of the CompactSize prefix for `n`.
 *
 * @param n a length or count
 */
export function compactSizeLength(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`Invalid length: expected a non-negative integer, got ${String(n)}`);
  }
  return n < 0xfd ? 1 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9;
}

/**
 * Bytes of the shortest push of `n` data bytes, push opcode included.
 *
 * @param n data bytes
 */
export function pushLength(n: number): number {
  return n + (n < 0x4c ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5);
}

/** Weight of one input and whether it carries a witness. */
export interface InputWeight {
  /** Weight units of the input, its witness included. */
  weight: number;
  /** True for segwit inputs. */
  witness: boolean;
}

/**
 * Weight of an input with `scriptSigBytes` of scriptSig and witness items of
 * the given sizes (null: no witness): outpoint (36), sequence (4) and the
 * scriptSig are non-witness bytes (×4), the witness stack counts once (BIP141).
 *
 * @param scriptSigBytes scriptSig length
 * @param witnessItems length of each witness stack item, or null for a legacy input
 */
export function weighInput(
  scriptSigBytes: number,
  witnessItems: readonly number[] | null,
): InputWeight {
  const base = 32 + 4 + 4 + compactSizeLength(scriptSigBytes) + scriptSigBytes;
  if (witnessItems === null) return { weight: 4 * base, witness: false };
  let witness = compactSizeLength(witnessItems.length);
  for (const item of witnessItems) witness += compactSizeLength(item) + item;
  return { weight: 4 * base + witness, witness: true };
}
