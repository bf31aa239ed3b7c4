/**
 * Raw transaction parsing and fee/size arithmetic.
 *
 * Specs: the transaction serialization of BIP144 ("Serialization": marker
 * 0x00, flag 0x01, one witness stack per input), BIP141 §"Transaction size
 * calculations" (weight = base size × 3 + total size, vsize = ⌈weight / 4⌉,
 * txid over the serialization without witness, wtxid with it), and Bitcoin
 * Core's `CheckTransaction` context-free rules (non-empty inputs and outputs,
 * no duplicate inputs, output values and their sum within 21,000,000 BTC).
 * Decoding is `@scure/btc-signer`'s `RawTx`; a transaction that does not
 * re-encode to the same bytes (non-canonical) is refused.
 *
 * @module
 */
import { RawTx } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { ValidationError } from "../errors/app_error.ts";
import { MAX_MONEY_SATS } from "./amount.ts";
import { assertBytes, assertInteger, assertSats, describeType } from "./_assert.ts";
import { bytesEqual, sha256d } from "./_util.ts";

/** Largest raw transaction accepted, in bytes (the 4,000,000 WU block limit). */
export const MAX_RAW_TX_BYTES = 4_000_000;

/** One input of a parsed transaction. */
export interface RawTxInput {
  /** Previous txid, display (RPC) byte order. */
  txid: string;
  /** Previous output index. */
  vout: number;
  /** nSequence. */
  sequence: number;
  /** scriptSig bytes. */
  scriptSig: Uint8Array;
  /** Witness stack (empty for legacy inputs). */
  witness: Uint8Array[];
}

/** One output of a parsed transaction. */
export interface RawTxOutput {
  /** Value in satoshis. */
  valueSats: bigint;
  /** scriptPubKey. */
  script: Uint8Array;
}

/** A strictly parsed raw transaction with its sizes and ids. */
export interface ParsedRawTx {
  /** The transaction as received. */
  bytes: Uint8Array;
  /** Transaction id (without witness), display order. */
  txid: string;
  /** Witness transaction id, display order. */
  wtxid: string;
  /** nVersion. */
  version: number;
  /** nLockTime. */
  locktime: number;
  /** Inputs in order. */
  inputs: RawTxInput[];
  /** Outputs in order. */
  outputs: RawTxOutput[];
  /** Serialized size with witness. */
  size: number;
  /** Serialized size without witness. */
  strippedSize: number;
  /** Weight units (BIP141). */
  weight: number;
  /** Virtual size, ⌈weight / 4⌉. */
  vsize: number;
}

/** Fee and size of a transaction (see {@linkcode txFeeAndVsize}). */
export interface TxMetrics {
  /** sum(prevouts) − sum(outputs). */
  feeSats: bigint;
  /** Weight units. */
  weight: number;
  /** Virtual size. */
  vsize: number;
  /** Serialized size with witness. */
  size: number;
}

/**
 * Parse a raw transaction given as hex or bytes.
 *
 * @param input hex string or bytes
 * @param options size limit (default {@linkcode MAX_RAW_TX_BYTES})
 * @returns the decoded transaction with txid, wtxid, size, weight and vsize
 * @throws ValidationError (422) when it is not a valid, canonically serialized transaction
 * @example
 * ```ts
 * const tx = parseRawTx(body.hex);
 * tx.txid; tx.vsize;
 * ```
 */
export function parseRawTx(
  input: string | Uint8Array,
  options: { maxBytes?: number } = {},
): ParsedRawTx {
  const maxBytes = options.maxBytes ?? MAX_RAW_TX_BYTES;
  assertInteger(maxBytes, "maxBytes", 1, Number.MAX_SAFE_INTEGER);
  let bytes: Uint8Array;
  if (typeof input === "string") {
    const text = input.trim();
    if (text.length === 0) throw invalid("empty");
    if (text.length > maxBytes * 2) throw invalid(`larger than ${maxBytes} bytes`);
    if (!/^([0-9a-fA-F]{2})+$/.test(text)) throw invalid("not a hex string");
    bytes = hex.decode(text.toLowerCase());
  } else if (input instanceof Uint8Array) {
    if (input.length === 0) throw invalid("empty");
    if (input.length > maxBytes) throw invalid(`larger than ${maxBytes} bytes`);
    bytes = input.slice();
  } else {
    throw new TypeError(
      `Invalid input: expected a hex string or Uint8Array, got ${describeType(input)}`,
    );
  }
  let decoded: ReturnType<typeof RawTx.decode>;
  try {
    decoded = RawTx.decode(bytes);
  } catch (err) {
    throw invalid("malformed serialization", err);
  }
  // Why: a second encoding of the same transaction (e.g. non-minimal CompactSize) would hash to
  // the same txid but differ from what peers relay; refuse anything that is not canonical.
  const canonical = RawTx.encode(decoded);
  if (!bytesEqual(canonical, bytes)) throw invalid("non-canonical serialization");
  if (decoded.inputs.length === 0) throw invalid("no inputs");
  if (decoded.outputs.length === 0) throw invalid("no outputs");
  const outpoints = new Set<string>();
  for (const i of decoded.inputs) {
    const key = `${hex.encode(i.txid)}:${i.index}`;
    if (outpoints.has(key)) throw invalid(`input ${key} is spent twice`);
    outpoints.add(key);
  }
  let total = 0n;
  for (const o of decoded.outputs) {
    if (o.amount > MAX_MONEY_SATS) throw invalid("an output value is above 21,000,000 BTC");
    total += o.amount;
  }
  if (total > MAX_MONEY_SATS) throw invalid("the output values add up to more than 21,000,000 BTC");

  const stripped = decoded.segwitFlag
    ? RawTx.encode({ ...decoded, segwitFlag: false, witnesses: undefined })
    : bytes;
  const weight = stripped.length * 3 + bytes.length;
  return {
    bytes,
    txid: hex.encode(sha256d(stripped).reverse()),
    wtxid: hex.encode(sha256d(bytes).reverse()),
    version: decoded.version,
    locktime: decoded.lockTime,
    inputs: decoded.inputs.map((i, n) => ({
      txid: hex.encode(i.txid),
      vout: i.index,
      sequence: i.sequence,
      scriptSig: i.finalScriptSig,
      witness: decoded.witnesses?.[n] ?? [],
    })),
    outputs: decoded.outputs.map((o) => ({ valueSats: o.amount, script: o.script })),
    size: bytes.length,
    strippedSize: stripped.length,
    weight,
    vsize: Math.ceil(weight / 4),
  };
}

/**
 * Fee, weight, vsize and size of a raw transaction given the values of the
 * outputs it spends (in input order). The fee is exact: sum(prevouts) −
 * sum(outputs) in bigint satoshis.
 *
 * @param rawTx the serialized transaction
 * @param prevouts the spent outputs' values, one per input
 * @throws RangeError when `prevouts` does not have one entry per input
 * @throws ValidationError (422) when the transaction is malformed or spends less than it pays
 */
export function txFeeAndVsize(
  rawTx: Uint8Array,
  prevouts: readonly { valueSats: bigint }[],
): TxMetrics {
  assertBytes(rawTx, "rawTx");
  if (!Array.isArray(prevouts)) {
    throw new TypeError(`Invalid prevouts: expected an array, got ${describeType(prevouts)}`);
  }
  prevouts.forEach((p, i) => {
    if (typeof p !== "object" || p === null) {
      throw new TypeError(`Invalid prevouts[${i}]: expected an object, got ${describeType(p)}`);
    }
    assertSats(p.valueSats, `prevouts[${i}].valueSats`);
  });
  const tx = parseRawTx(rawTx);
  if (prevouts.length !== tx.inputs.length) {
    throw new RangeError(
      `Invalid prevouts: the transaction has ${tx.inputs.length} inputs, got ${prevouts.length} values`,
    );
  }
  const totalIn = prevouts.reduce((s, p) => s + p.valueSats, 0n);
  const totalOut = tx.outputs.reduce((s, o) => s + o.valueSats, 0n);
  const feeSats = totalIn - totalOut;
  if (feeSats < 0n) throw invalid(`outputs exceed inputs by ${-feeSats} sat`);
  return { feeSats, weight: tx.weight, vsize: tx.vsize, size: tx.size };
}

function invalid(reason: string, cause?: unknown): ValidationError {
  return new ValidationError(
    `Invalid transaction: ${reason}`,
    cause === undefined ? { status: 422 } : { status: 422, cause },
  );
}
