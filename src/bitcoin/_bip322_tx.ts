/**
 * The two virtual transactions of BIP-322 ("Generic Signed Message Format",
 * bitcoin/bips `bip-0322.mediawiki`, section "Full": `to_spend` and `to_sign`)
 * and the consensus serialization they are hashed and encoded with (BIP144 for
 * the witness form). Private to `src/bitcoin`; `message.ts` is the public face.
 *
 * Parsing is strict on purpose: a BIP-322 signature is a transaction the
 * verifier reconstructs and compares, so non-canonical CompactSizes, trailing
 * bytes or a witness marker with no witness (Core: "Superfluous witness
 * record") are rejected instead of being normalised away.
 *
 * @module
 */
import { Transaction } from "@scure/btc-signer";
import { sha256 } from "@noble/hashes/sha2.js";
import { PREVIOUS_TX_OPTS, sha256d } from "./_util.ts";

/** One input of a virtual transaction. */
export interface VirtualInput {
  /** Previous txid in internal byte order (as serialized, not as displayed). */
  prevTxid: Uint8Array;
  /** Previous output index. */
  prevIndex: number;
  /** The scriptSig. */
  scriptSig: Uint8Array;
  /** nSequence. */
  sequence: number;
  /** Witness stack (empty for none). */
  witness: Uint8Array[];
}

/** One output of a virtual transaction. */
export interface VirtualOutput {
  /** Value in satoshis. */
  amountSats: bigint;
  /** scriptPubKey. */
  script: Uint8Array;
}

/** A transaction in the plain form BIP-322 describes. */
export interface VirtualTx {
  /** nVersion (signed 32-bit in consensus; kept as read). */
  version: number;
  /** Inputs. */
  inputs: VirtualInput[];
  /** Outputs. */
  outputs: VirtualOutput[];
  /** nLockTime. */
  lockTime: number;
}

// BIP-322 "Full": the tag of the message hash (a BIP340 tagged hash).
const MESSAGE_TAG = new TextEncoder().encode("BIP0322-signed-message");
const MESSAGE_TAG_HASH = sha256(MESSAGE_TAG);
const OP_0 = 0x00;
const OP_RETURN = 0x6a;
const PUSH_32 = 0x20;
/** Largest witness stack or item count a parse accepts (Core's MAX_SIZE guards are far larger). */
const MAX_ITEMS = 10_000;

/**
 * `sha256(sha256(tag) || sha256(tag) || m)` with tag `BIP0322-signed-message`.
 *
 * @param message the message bytes, without length prefix or terminator
 */
export function taggedMessageHash(message: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64 + message.length);
  buf.set(MESSAGE_TAG_HASH, 0);
  buf.set(MESSAGE_TAG_HASH, 32);
  buf.set(message, 64);
  return sha256(buf);
}

/**
 * `to_spend`: version 0, one input spending `000…000:FFFFFFFF` with scriptSig
 * `OP_0 PUSH32[message_hash]` and nSequence 0, one output of value 0 paying
 * `challenge`, nLockTime 0.
 *
 * @param messageHash BIP-322 message hash
 * @param challenge the scriptPubKey being signed for
 */
export function buildToSpend(messageHash: Uint8Array, challenge: Uint8Array): VirtualTx {
  const scriptSig = new Uint8Array(34);
  scriptSig[0] = OP_0;
  scriptSig[1] = PUSH_32;
  scriptSig.set(messageHash, 2);
  return {
    version: 0,
    inputs: [{
      prevTxid: new Uint8Array(32),
      prevIndex: 0xffffffff,
      scriptSig,
      sequence: 0,
      witness: [],
    }],
    outputs: [{ amountSats: 0n, script: challenge.slice() }],
    lockTime: 0,
  };
}

/** Fields of `to_sign` the full format may set (BIP-322: "as appropriate, e.g. for time locks"). */
export interface ToSignFields {
  /** nVersion, default 0. */
  version?: number;
  /** nLockTime, default 0. */
  lockTime?: number;
  /** nSequence of the first input, default 0. */
  sequence?: number;
}

/**
 * `to_sign` with its first input spending `to_spend:0`, an empty signature and
 * the single `OP_RETURN` output of value 0.
 *
 * @param toSpendTxid txid of `to_spend`, internal byte order
 * @param fields version, lock time and first-input sequence
 */
export function buildToSign(toSpendTxid: Uint8Array, fields: ToSignFields = {}): VirtualTx {
  return {
    version: fields.version ?? 0,
    inputs: [{
      prevTxid: toSpendTxid.slice(),
      prevIndex: 0,
      scriptSig: new Uint8Array(),
      sequence: fields.sequence ?? 0,
      witness: [],
    }],
    outputs: [{ amountSats: 0n, script: Uint8Array.of(OP_RETURN) }],
    lockTime: fields.lockTime ?? 0,
  };
}

/**
 * Whether `out` is the one output BIP-322 allows in `to_sign`: value 0, `OP_RETURN`.
 *
 * @param out an output
 */
export function isToSignOutput(out: VirtualOutput): boolean {
  return out.amountSats === 0n && out.script.length === 1 && out.script[0] === OP_RETURN;
}

/**
 * Txid in internal byte order (double SHA-256 of the witness-less serialization).
 *
 * @param tx a virtual transaction
 */
export function txidOf(tx: VirtualTx): Uint8Array {
  return sha256d(serializeTx(tx, false));
}

/**
 * The displayed (reversed, hex) form of an internal-order txid.
 *
 * @param txid internal byte order
 */
export function displayTxid(txid: Uint8Array): string {
  return Array.from(txid).reverse().map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A scure `Transaction` of the same bytes, for the sighash functions of `sighash.ts`.
 *
 * @param tx a virtual transaction
 */
export function toScure(tx: VirtualTx): Transaction {
  return Transaction.fromRaw(serializeTx(tx, true), PREVIOUS_TX_OPTS);
}

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

class Writer {
  #chunks: Uint8Array[] = [];
  #length = 0;

  bytes(b: Uint8Array): void {
    this.#chunks.push(b);
    this.#length += b.length;
  }

  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n >>> 0, true);
    this.bytes(b);
  }

  u64(n: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    this.bytes(b);
  }

  compactSize(n: number): void {
    if (n < 0xfd) this.bytes(Uint8Array.of(n));
    else if (n <= 0xffff) this.bytes(Uint8Array.of(0xfd, n & 0xff, n >>> 8));
    else {
      this.bytes(Uint8Array.of(0xfe));
      this.u32(n);
    }
  }

  varBytes(b: Uint8Array): void {
    this.compactSize(b.length);
    this.bytes(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

/**
 * Consensus serialization; with `withWitness` and at least one non-empty
 * witness, the BIP144 form (marker 0x00, flag 0x01).
 *
 * @param tx a virtual transaction
 * @param withWitness include witnesses
 */
export function serializeTx(tx: VirtualTx, withWitness: boolean): Uint8Array {
  const w = new Writer();
  const segwit = withWitness && tx.inputs.some((i) => i.witness.length > 0);
  w.u32(tx.version);
  if (segwit) w.bytes(Uint8Array.of(0x00, 0x01));
  w.compactSize(tx.inputs.length);
  for (const input of tx.inputs) {
    w.bytes(input.prevTxid);
    w.u32(input.prevIndex);
    w.varBytes(input.scriptSig);
    w.u32(input.sequence);
  }
  w.compactSize(tx.outputs.length);
  for (const out of tx.outputs) {
    w.u64(out.amountSats);
    w.varBytes(out.script);
  }
  if (segwit) { for (const input of tx.inputs) writeStack(w, input.witness); }
  w.u32(tx.lockTime);
  return w.finish();
}

/**
 * The CompactSize encoding of `n` (Bitcoin's variable-length integer).
 *
 * @param n a length or count
 */
export function compactSizeBytes(n: number): Uint8Array {
  const w = new Writer();
  w.compactSize(n);
  return w.finish();
}

/**
 * A witness stack "consensus encoded as a vector of vectors of bytes" (the
 * BIP-322 simple signature before base64).
 *
 * @param stack witness items
 */
export function encodeWitness(stack: readonly Uint8Array[]): Uint8Array {
  const w = new Writer();
  writeStack(w, stack);
  return w.finish();
}

function writeStack(w: Writer, stack: readonly Uint8Array[]): void {
  w.compactSize(stack.length);
  for (const item of stack) w.varBytes(item);
}

/** Thrown for bytes that are not one canonical encoding; caught by the verifier. */
export class DecodeError extends Error {
  /**
   * Build one.
   *
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

class Reader {
  #at = 0;
  constructor(readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.#at === this.buf.length;
  }

  take(n: number): Uint8Array {
    if (n > this.buf.length - this.#at) throw new DecodeError("unexpected end of data");
    const out = this.buf.slice(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  peek(offset: number): number | undefined {
    return this.buf[this.#at + offset];
  }

  u32(): number {
    const b = this.take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }

  u64(): bigint {
    const b = this.take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  compactSize(): number {
    const first = this.take(1)[0]!;
    if (first < 0xfd) return first;
    let n: number;
    let min: number;
    if (first === 0xfd) {
      const b = this.take(2);
      n = b[0]! | (b[1]! << 8);
      min = 0xfd;
    } else if (first === 0xfe) {
      n = this.u32();
      min = 0x10000;
    } else {
      // 9-byte sizes exceed anything a transaction or witness can hold.
      throw new DecodeError("length too large");
    }
    // Core: "non-canonical ReadCompactSize()".
    if (n < min) throw new DecodeError("non-canonical length");
    return n;
  }

  varBytes(): Uint8Array {
    return this.take(this.compactSize());
  }

  count(): number {
    const n = this.compactSize();
    // Each entry takes at least one byte, so a larger count cannot be honest.
    if (n > MAX_ITEMS || n > this.buf.length - this.#at) throw new DecodeError("count too large");
    return n;
  }
}

/**
 * Decode exactly one witness stack from `bytes` (no trailing bytes).
 *
 * @param bytes an encoded witness stack
 * @throws DecodeError when `bytes` is not exactly one canonical encoding
 */
export function decodeWitness(bytes: Uint8Array): Uint8Array[] {
  const r = new Reader(bytes);
  const stack = readStack(r);
  if (!r.done) throw new DecodeError("trailing bytes after the witness stack");
  return stack;
}

function readStack(r: Reader): Uint8Array[] {
  const n = r.count();
  const stack: Uint8Array[] = [];
  for (let i = 0; i < n; i++) stack.push(r.varBytes());
  return stack;
}

/**
 * Decode exactly one transaction from `bytes`, legacy or BIP144 form.
 *
 * @param bytes a serialized transaction
 * @throws DecodeError when `bytes` is not exactly one canonical transaction
 */
export function parseTx(bytes: Uint8Array): VirtualTx {
  const r = new Reader(bytes);
  const version = r.u32() | 0;
  let segwit = false;
  if (r.peek(0) === 0x00) {
    // BIP144: marker 0x00 then flag; any flag other than 0x01 is unknown.
    if (r.peek(1) !== 0x01) throw new DecodeError("unknown transaction serialization flag");
    r.take(2);
    segwit = true;
  }
  const inputs: VirtualInput[] = [];
  const nIn = r.count();
  if (nIn === 0) throw new DecodeError("transaction has no inputs");
  for (let i = 0; i < nIn; i++) {
    const prevTxid = r.take(32);
    const prevIndex = r.u32();
    const scriptSig = r.varBytes();
    const sequence = r.u32();
    inputs.push({ prevTxid, prevIndex, scriptSig, sequence, witness: [] });
  }
  const outputs: VirtualOutput[] = [];
  const nOut = r.count();
  for (let i = 0; i < nOut; i++) {
    const amountSats = r.u64();
    outputs.push({ amountSats, script: r.varBytes() });
  }
  if (segwit) {
    for (const input of inputs) input.witness = readStack(r);
    if (inputs.every((i) => i.witness.length === 0)) {
      throw new DecodeError("witness marker without witness data");
    }
  }
  const lockTime = r.u32();
  if (!r.done) throw new DecodeError("trailing bytes after the transaction");
  return { version, inputs, outputs, lockTime };
}
