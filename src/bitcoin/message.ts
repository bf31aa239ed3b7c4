/**
 * Message signatures: BIP-322 "Generic Signed Message Format" (simple, full
 * and full proof-of-funds) and the legacy `signmessage`/`verifymessage` format
 * of Bitcoin Core, restricted to P2PKH as BIP-322 "Legacy" requires.
 *
 * Specs:
 * - BIP-322 as of bitcoin/bips `bip-0322.mediawiki` version 2.0.0 (commit
 *   927b6de9, status Complete): the tagged message hash
 *   (`BIP0322-signed-message`), `to_spend`/`to_sign`, the "Verification
 *   Process", and the signature prefixes `smp`/`ful`/`pof` ("Signers must
 *   prefix the signature with the variant"; "a verifier might assume the
 *   simple variant in the absence of a prefix", which this module does, except
 *   for P2PKH addresses, where an unprefixed 65-byte signature is the legacy
 *   format because the simple variant is not defined for them). Unprefixed
 *   signatures that are not a valid simple one are also tried as full, the
 *   form implementations before the prefixes sent.
 * - Proof of funds (`pof`): a finalized BIP174 PSBT of `to_sign` whose inputs
 *   carry their UTXOs. Every input's script is checked against the UTXO the
 *   proof itself carries; whether those UTXOs exist and are unspent needs the
 *   chain and is NOT checked here (`reason` says so on a valid proof).
 * - Legacy: `SHA256d(0x18 || "Bitcoin Signed Message:\n" || compactSize(len) || m)`,
 *   65-byte compact recoverable signature (header 27..34, +4 for a compressed
 *   key), base64; Bitcoin Core `MessageSign`/`MessageVerify`.
 *
 * Scope: P2PKH, P2SH-P2WPKH, P2WPKH and single-key taproot (key path). Other
 * scripts (P2WSH, multisig, tapscript) are "inconclusive" in BIP-322 terms for
 * a verifier without a script interpreter, and verify as `valid: false`.
 * Simple signatures exist for native segwit only: a P2SH-P2WPKH spend needs a
 * scriptSig, which the simple format cannot carry, so P2SH-P2WPKH uses full.
 *
 * @module
 */
import { Transaction } from "@scure/btc-signer";
import { taprootTweakPrivKey, taprootTweakPubkey } from "@scure/btc-signer/utils.js";
import { base64, hex } from "@scure/base";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { ValidationError } from "../errors/mod.ts";
import { assertNetwork, describeAddress, type ValidAddress } from "./address.ts";
import type { BitcoinNetwork } from "./network.ts";
import { assertBytes, describeType } from "./_assert.ts";
import { bytesEqual, hash160, sha256d } from "./_util.ts";
import { legacySighash, type PrevOut, segwitV0Sighash, taprootSighash } from "./sighash.ts";
import { p2pkhScript } from "./_signature_checks.ts";
import { PSBT_TX_OPTS } from "./psbt_parse.ts";
import {
  buildToSign,
  buildToSpend,
  compactSizeBytes,
  DecodeError,
  decodeWitness,
  displayTxid,
  encodeWitness,
  isToSignOutput,
  parseTx,
  serializeTx,
  taggedMessageHash,
  toScure,
  txidOf,
  type VirtualInput,
  type VirtualTx,
} from "./_bip322_tx.ts";
import { type Verdict, verifyToSign } from "./_bip322_verify.ts";

/** Signature formats this service produces. */
export type MessageSignatureFormat = "simple" | "full" | "legacy";

/** Result of {@linkcode verifyMessage}. */
export interface MessageVerification {
  /** True only when the signature is valid for the address and message. */
  valid: boolean;
  /** The format the signature was read as; null when none applies (empty or oversized input). */
  format: MessageSignatureFormat | "proof-of-funds" | null;
  /** Why it is not valid; on a valid proof of funds, what was not checked. Client-safe. */
  reason?: string;
}

/** Options of {@linkcode signMessage}. */
export interface SignMessageOptions {
  /** Network the address must belong to. */
  network: BitcoinNetwork;
  /** Signature format to produce. */
  format: MessageSignatureFormat;
  /** Add the BIP-322 `smp`/`ful` prefix (default true; legacy signatures have none). */
  prefixed?: boolean;
}

/** BIP-322 signature prefixes ("Signature prefix" column of the BIP's format table). */
export const BIP322_PREFIXES = { simple: "smp", full: "ful", proofOfFunds: "pof" } as const;

/** Longest signature text accepted; longer ones verify as invalid without being decoded. */
export const MAX_MESSAGE_SIGNATURE_LENGTH = 400_000;

const LEGACY_MAGIC = new TextEncoder().encode("Bitcoin Signed Message:\n");
const LEGACY_HEADER_MIN = 27;
const LEGACY_HEADER_MAX = 34;
const LEGACY_COMPRESSED_FLAG = 4;
const SIGHASH_ALL = 0x01;
const SIGHASH_DEFAULT = 0x00;
const SUPPORTED_TYPES = new Set(["p2pkh", "p2sh", "p2wpkh", "p2tr"]);
const utf8 = new TextEncoder();

/**
 * BIP-322 message hash: the BIP340 tagged hash `sha256_tag(m)` with tag
 * `BIP0322-signed-message`; a string is hashed as its UTF-8 bytes.
 *
 * @param message the message
 * @returns 32 bytes
 * @example
 * ```ts
 * hex.encode(bip322MessageHash("Hello World"));
 * // "f0eb03b1a75ac6d9847f55c624a99169b5dccba2a31f5b23bea77ba270de0a7a"
 * ```
 */
export function bip322MessageHash(message: string | Uint8Array): Uint8Array {
  return taggedMessageHash(messageBytes(message));
}

/**
 * The digest legacy `signmessage` signs:
 * `SHA256d(compactSize(24) || "Bitcoin Signed Message:\n" || compactSize(len(m)) || m)`.
 *
 * @param message the message (a string is hashed as UTF-8)
 * @returns 32 bytes
 */
export function legacyMessageHash(message: string | Uint8Array): Uint8Array {
  const m = messageBytes(message);
  const len = compactSizeBytes(m.length);
  const buf = new Uint8Array(1 + LEGACY_MAGIC.length + len.length + m.length);
  buf[0] = LEGACY_MAGIC.length;
  buf.set(LEGACY_MAGIC, 1);
  buf.set(len, 1 + LEGACY_MAGIC.length);
  buf.set(m, 1 + LEGACY_MAGIC.length + len.length);
  return sha256d(buf);
}

/**
 * Verify a message signature for `address`: BIP-322 simple (`smp` or no
 * prefix), full (`ful`), proof of funds (`pof`), or legacy `signmessage`
 * (P2PKH only, no prefix). A signature that cannot be decoded is
 * `valid: false`, never an error.
 *
 * @param address the address the signature claims (must belong to `network`)
 * @param message the signed message (UTF-8)
 * @param signature the signature text
 * @param network the configured network
 * @returns `{ valid, format, reason? }`
 * @throws ValidationError 422 when `address` is not a valid address of `network`
 * @example
 * ```ts
 * verifyMessage("bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l", "Hello World", sig, "mainnet");
 * // { valid: true, format: "simple" }
 * ```
 */
export function verifyMessage(
  address: string,
  message: string,
  signature: string,
  network: BitcoinNetwork,
): MessageVerification {
  assertString(message, "message");
  assertString(signature, "signature");
  const addr = requireAddress(address, network, "verify");
  const challenge = scriptBytes(addr);
  const read = readSignature(signature);
  if (read === null) {
    return { valid: false, format: null, reason: "signature is empty or too long" };
  }
  const { prefix, payload } = read;
  const formatGuess: ReadFormat = prefix ?? (addr.type === "p2pkh" ? "legacy" : "simple");
  if (!SUPPORTED_TYPES.has(addr.type)) {
    return {
      valid: false,
      format: formatGuess,
      reason: `inconclusive: ${addr.type} addresses are not verified by this service`,
    };
  }
  let bytes: Uint8Array;
  try {
    bytes = base64.decode(payload);
  } catch {
    return { valid: false, format: formatGuess, reason: "signature is not valid base64" };
  }
  const m = utf8.encode(message);
  if (prefix !== null) return verifyAs(prefix, addr.type, challenge, m, bytes);
  if (addr.type === "p2pkh") {
    // No simple form exists for P2PKH: 65 bytes is a legacy signature, anything else can only be
    // an unprefixed full signature from an implementation that predates the prefixes.
    return verifyAs(bytes.length === 65 ? "legacy" : "full", addr.type, challenge, m, bytes);
  }
  // Unprefixed is read as simple (BIP-322); implementations that predate the prefixes also sent
  // full signatures unprefixed, so those are accepted too. Both prove the same statement.
  const simple = verifyAs("simple", addr.type, challenge, m, bytes);
  if (simple.valid) return simple;
  const full = verifyAs("full", addr.type, challenge, m, bytes);
  return full.valid ? full : simple;
}

function verifyAs(
  format: ReadFormat,
  addressType: string,
  challenge: Uint8Array,
  message: Uint8Array,
  bytes: Uint8Array,
): MessageVerification {
  try {
    switch (format) {
      case "legacy":
        return verifyLegacy(challenge, message, bytes);
      case "simple":
        return fromVerdict(format, verifySimple(addressType, challenge, message, bytes));
      case "full":
        return fromVerdict(format, verifyFull(challenge, message, bytes));
      case "proof-of-funds": {
        const verdict = verifyProofOfFunds(challenge, message, bytes);
        return verdict.state === "valid"
          ? {
            valid: true,
            format,
            reason: "scripts verified against the UTXOs the proof carries; " +
              "their existence and unspent state were not checked",
          }
          : fromVerdict(format, verdict);
      }
    }
  } catch (err) {
    if (err instanceof DecodeError) {
      return { valid: false, format, reason: `cannot decode signature: ${err.message}` };
    }
    throw err;
  }
}

/**
 * Sign `message` for `address` with `privateKey` (used inside the HSM only).
 * Taproot addresses are BIP86 single-key outputs: `privateKey` is the internal
 * key and the output key is tweaked with no script tree. ECDSA signatures are
 * RFC 6979 deterministic and low-S; every signature is verified before it is
 * returned.
 *
 * @param privateKey 32-byte secp256k1 secret key
 * @param address the address to sign for; `privateKey` must control it
 * @param message the message (UTF-8)
 * @param options network, format (`simple`, `full`, `legacy`) and prefixing
 * @returns the signature text (base64, with the BIP-322 prefix unless `prefixed: false`)
 * @throws ValidationError 422 for an invalid or other-network address, an address the key does
 *   not control, or a format the address type cannot use
 * @example
 * ```ts
 * signMessage(key, "bc1q…", "Hello World", { network: "mainnet", format: "simple" }); // "smpAkgw…"
 * ```
 */
export function signMessage(
  privateKey: Uint8Array,
  address: string,
  message: string,
  options: SignMessageOptions,
): string {
  assertBytes(privateKey, "privateKey", 32);
  if (!secp256k1.utils.isValidSecretKey(privateKey)) {
    throw new RangeError("Invalid privateKey: not a valid secp256k1 secret key");
  }
  assertString(message, "message");
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describeType(options)}`);
  }
  assertNetwork(options.network);
  const { format } = options;
  if (format !== "simple" && format !== "full" && format !== "legacy") {
    throw new TypeError(`Invalid format: expected simple, full or legacy, got ${String(format)}`);
  }
  if (options.prefixed !== undefined && typeof options.prefixed !== "boolean") {
    throw new TypeError(
      `Invalid prefixed: expected a boolean, got ${describeType(options.prefixed)}`,
    );
  }
  const addr = requireAddress(address, options.network, "sign");
  const challenge = scriptBytes(addr);
  const key = matchKey(privateKey, addr, challenge);
  if (format === "legacy" && key.kind !== "p2pkh") {
    throw unprocessable(
      "the legacy format is restricted to P2PKH addresses (BIP-322 Legacy)",
      "format",
    );
  }
  if (format === "legacy" && options.prefixed === true) {
    throw unprocessable("legacy signatures carry no prefix", "prefixed");
  }
  if (format === "simple" && (key.kind === "p2pkh" || key.kind === "p2sh-p2wpkh")) {
    throw unprocessable(
      "the simple format is defined for native segwit addresses only; use full for " +
        (key.kind === "p2pkh" ? "P2PKH" : "P2SH-P2WPKH (its spend needs a scriptSig)"),
      "format",
    );
  }
  const m = utf8.encode(message);
  let text: string;
  if (format === "legacy") {
    text = signLegacy(privateKey, key.compressed, m);
  } else {
    const toSign = signToSign(privateKey, key, challenge, m);
    const prefix = options.prefixed === false
      ? ""
      : format === "simple"
      ? BIP322_PREFIXES.simple
      : BIP322_PREFIXES.full;
    const body = format === "simple"
      ? encodeWitness(toSign.inputs[0]!.witness)
      : serializeTx(toSign, true);
    text = prefix + base64.encode(body);
  }
  // Why: an HSM must not release a signature it cannot itself verify (bug or fault injection).
  const check = verifyMessage(address, message, text, options.network);
  if (!check.valid) throw new Error("signMessage: produced signature does not verify");
  return text;
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

type ReadFormat = MessageSignatureFormat | "proof-of-funds";

/** Split off a BIP-322 prefix (null when there is none). */
function readSignature(
  signature: string,
): { prefix: ReadFormat | null; payload: string } | null {
  if (signature.length === 0 || signature.length > MAX_MESSAGE_SIGNATURE_LENGTH) return null;
  const head = signature.slice(0, 3);
  const payload = signature.slice(3);
  if (head === BIP322_PREFIXES.simple) return { prefix: "simple", payload };
  if (head === BIP322_PREFIXES.full) return { prefix: "full", payload };
  if (head === BIP322_PREFIXES.proofOfFunds) return { prefix: "proof-of-funds", payload };
  return { prefix: null, payload: signature };
}

function fromVerdict(format: ReadFormat, verdict: Verdict): MessageVerification {
  if (verdict.state === "valid") return { valid: true, format };
  return {
    valid: false,
    format,
    reason: verdict.state === "inconclusive" ? `inconclusive: ${verdict.reason}` : verdict.reason,
  };
}

function verifySimple(
  addressType: string,
  challenge: Uint8Array,
  message: Uint8Array,
  bytes: Uint8Array,
): Verdict {
  if (addressType === "p2pkh") {
    return { state: "invalid", reason: "the simple format is not defined for P2PKH addresses" };
  }
  if (addressType === "p2sh") {
    return {
      state: "invalid",
      reason: "a simple signature cannot carry the scriptSig a P2SH address needs; use full",
    };
  }
  const witness = decodeWitness(bytes);
  const toSpend = buildToSpend(taggedMessageHash(message), challenge);
  const toSign = buildToSign(txidOf(toSpend));
  toSign.inputs[0]!.witness = witness;
  return verifyToSign(toSign, [{ script: challenge, amountSats: 0n }]);
}

function verifyFull(challenge: Uint8Array, message: Uint8Array, bytes: Uint8Array): Verdict {
  const toSign = parseTx(bytes);
  const shape = checkToSignShape(toSign, challenge, message);
  if (shape !== null) return { state: "invalid", reason: shape };
  if (toSign.inputs.length > 1) {
    return {
      state: "inconclusive",
      reason: "a full signature with additional inputs carries no UTXO data; use proof of funds",
    };
  }
  return verifyToSign(toSign, [{ script: challenge, amountSats: 0n }]);
}

/** BIP-322 "Basic validation": first input spends `to_spend:0`, one OP_RETURN output of 0. */
function checkToSignShape(
  toSign: VirtualTx,
  challenge: Uint8Array,
  message: Uint8Array,
): string | null {
  const toSpendTxid = txidOf(buildToSpend(taggedMessageHash(message), challenge));
  const first = toSign.inputs[0];
  if (first === undefined) return "to_sign has no inputs";
  if (first.prevIndex !== 0 || !bytesEqual(first.prevTxid, toSpendTxid)) {
    return "to_sign does not spend to_spend (wrong message or address)";
  }
  if (toSign.outputs.length !== 1 || !isToSignOutput(toSign.outputs[0]!)) {
    return "to_sign must have exactly one OP_RETURN output of value 0";
  }
  return null;
}

function verifyProofOfFunds(
  challenge: Uint8Array,
  message: Uint8Array,
  bytes: Uint8Array,
): Verdict {
  let psbt: Transaction;
  try {
    psbt = Transaction.fromPSBT(bytes, PSBT_TX_OPTS);
  } catch {
    throw new DecodeError("not a valid PSBT");
  }
  const toSpendTxid = txidOf(buildToSpend(taggedMessageHash(message), challenge));
  const inputs: VirtualInput[] = [];
  // BIP-322 "coins map": outpoint -> spent output, seeded with to_spend:0 and filled from every
  // UTXO the proof carries. A previous transaction carried once covers all inputs spending it.
  const coins = new Map<string, PrevOut>([[outpointKey(toSpendTxid, 0), {
    script: challenge,
    amountSats: 0n,
  }]]);
  const addCoin = (key: string, coin: PrevOut): string | null => {
    const known = coins.get(key);
    if (known === undefined) coins.set(key, coin);
    else if (!(bytesEqual(known.script, coin.script) && known.amountSats === coin.amountSats)) {
      return "the proof carries conflicting UTXO data";
    }
    return null;
  };
  for (let i = 0; i < psbt.inputsLength; i++) {
    const input = psbt.getInput(i);
    if (input.txid === undefined || input.index === undefined) {
      throw new DecodeError(`input ${i} has no outpoint`);
    }
    // BIP-322 requires a finalized PSBT: the final scriptSig/witness are what is verified.
    if (input.finalScriptSig === undefined && input.finalScriptWitness === undefined) {
      return { state: "invalid", reason: `input ${i} is not finalized` };
    }
    const prevTxid = input.txid.slice().reverse();
    inputs.push({
      prevTxid,
      prevIndex: input.index,
      scriptSig: input.finalScriptSig ?? new Uint8Array(),
      sequence: input.sequence ?? 0xffffffff,
      witness: input.finalScriptWitness ?? [],
    });
    if (input.nonWitnessUtxo !== undefined) {
      const prevTx = fromScureRaw(input.nonWitnessUtxo);
      const txid = txidOf(prevTx);
      for (const [vout, out] of prevTx.outputs.entries()) {
        const conflict = addCoin(outpointKey(txid, vout), out);
        if (conflict !== null) return { state: "invalid", reason: `input ${i}: ${conflict}` };
      }
    }
    if (input.witnessUtxo !== undefined) {
      const conflict = addCoin(outpointKey(prevTxid, input.index), {
        script: input.witnessUtxo.script,
        amountSats: input.witnessUtxo.amount,
      });
      if (conflict !== null) return { state: "invalid", reason: `input ${i}: ${conflict}` };
    }
  }
  const toSign: VirtualTx = {
    version: psbt.version,
    inputs,
    outputs: Array.from({ length: psbt.outputsLength }, (_, i) => {
      const out = psbt.getOutput(i);
      return { amountSats: out.amount ?? 0n, script: out.script ?? new Uint8Array() };
    }),
    lockTime: psbt.lockTime,
  };
  const shape = checkToSignShape(toSign, challenge, message);
  if (shape !== null) return { state: "invalid", reason: shape };
  const prevouts: PrevOut[] = [];
  for (const [i, input] of inputs.entries()) {
    const coin = coins.get(outpointKey(input.prevTxid, input.prevIndex));
    // "abort if the input cannot be found"
    if (coin === undefined) {
      return { state: "invalid", reason: `input ${i}: no UTXO for its outpoint` };
    }
    prevouts.push(coin);
  }
  return verifyToSign(toSign, prevouts);
}

function outpointKey(txid: Uint8Array, index: number): string {
  return `${displayTxid(txid)}:${index}`;
}

type PsbtInput = ReturnType<Transaction["getInput"]>;
type ScureRawTx = NonNullable<PsbtInput["nonWitnessUtxo"]>;

function fromScureRaw(raw: ScureRawTx): VirtualTx {
  return {
    version: raw.version,
    inputs: raw.inputs.map((i) => ({
      prevTxid: i.txid.slice().reverse(),
      prevIndex: i.index,
      scriptSig: i.finalScriptSig,
      sequence: i.sequence,
      witness: [],
    })),
    outputs: raw.outputs.map((o) => ({ amountSats: o.amount, script: o.script })),
    lockTime: raw.lockTime,
  };
}

function verifyLegacy(
  challenge: Uint8Array,
  message: Uint8Array,
  sig: Uint8Array,
): MessageVerification {
  const fail = (reason: string): MessageVerification => ({
    valid: false,
    format: "legacy",
    reason,
  });
  if (sig.length !== 65) return fail("legacy signature must be 65 bytes");
  const header = sig[0]!;
  if (header < LEGACY_HEADER_MIN || header > LEGACY_HEADER_MAX) {
    return fail("legacy signature header is not a P2PKH header (27..34)");
  }
  const recovery = (header - LEGACY_HEADER_MIN) & 3;
  const compressed = header - LEGACY_HEADER_MIN >= LEGACY_COMPRESSED_FLAG;
  let pubkey: Uint8Array;
  try {
    pubkey = secp256k1.Signature.fromBytes(sig.subarray(1), "compact")
      .addRecoveryBit(recovery)
      .recoverPublicKey(legacyMessageHash(message))
      .toBytes(compressed);
  } catch {
    return fail("public key not recoverable from the signature");
  }
  return bytesEqual(hash160(pubkey), challenge.subarray(3, 23))
    ? { valid: true, format: "legacy" }
    : fail("signature was not made by the address's key for this message");
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

type KeyMatch =
  | { kind: "p2pkh"; pubkey: Uint8Array; compressed: boolean }
  | { kind: "p2wpkh" | "p2sh-p2wpkh"; pubkey: Uint8Array; compressed: true }
  | { kind: "p2tr"; pubkey: Uint8Array; compressed: true };

/** How `privateKey` controls the address, or a 422. */
function matchKey(privateKey: Uint8Array, addr: ValidAddress, challenge: Uint8Array): KeyMatch {
  const pub33 = secp256k1.getPublicKey(privateKey, true);
  const notControlled = () => unprocessable("the key does not control this address");
  switch (addr.type) {
    case "p2pkh": {
      const hash = challenge.subarray(3, 23);
      if (bytesEqual(hash160(pub33), hash)) {
        return { kind: "p2pkh", pubkey: pub33, compressed: true };
      }
      const pub65 = secp256k1.getPublicKey(privateKey, false);
      if (bytesEqual(hash160(pub65), hash)) {
        return { kind: "p2pkh", pubkey: pub65, compressed: false };
      }
      throw notControlled();
    }
    case "p2wpkh":
      if (bytesEqual(hash160(pub33), challenge.subarray(2))) {
        return { kind: "p2wpkh", pubkey: pub33, compressed: true };
      }
      throw notControlled();
    case "p2sh": {
      const redeemScript = Uint8Array.of(0x00, 0x14, ...hash160(pub33));
      if (bytesEqual(hash160(redeemScript), challenge.subarray(2, 22))) {
        return { kind: "p2sh-p2wpkh", pubkey: pub33, compressed: true };
      }
      throw notControlled();
    }
    case "p2tr": {
      // BIP86: Q = P + H_TapTweak(P)·G with no script tree.
      const [outputKey] = taprootTweakPubkey(pub33.subarray(1), new Uint8Array());
      if (bytesEqual(outputKey, challenge.subarray(2))) {
        return { kind: "p2tr", pubkey: pub33, compressed: true };
      }
      throw notControlled();
    }
    default:
      throw unprocessable(`cannot sign for ${addr.type} addresses`);
  }
}

/** Build and satisfy `to_sign` (version 0, lock time 0, sequence 0). */
function signToSign(
  privateKey: Uint8Array,
  key: KeyMatch,
  challenge: Uint8Array,
  message: Uint8Array,
): VirtualTx {
  const toSpend = buildToSpend(taggedMessageHash(message), challenge);
  const toSign = buildToSign(txidOf(toSpend));
  const input = toSign.inputs[0]!;
  const tx = toScure(toSign);
  const ecdsa = (sighash: Uint8Array) =>
    Uint8Array.of(
      ...secp256k1.sign(sighash, privateKey, { prehash: false, lowS: true, format: "der" }),
      SIGHASH_ALL,
    );
  switch (key.kind) {
    case "p2pkh": {
      const sig = ecdsa(legacySighash(tx, 0, challenge, SIGHASH_ALL));
      input.scriptSig = Uint8Array.of(sig.length, ...sig, key.pubkey.length, ...key.pubkey);
      break;
    }
    case "p2wpkh":
    case "p2sh-p2wpkh": {
      const keyHash = hash160(key.pubkey);
      const sig = ecdsa(segwitV0Sighash(tx, 0, p2pkhScript(keyHash), 0n, SIGHASH_ALL));
      input.witness = [sig, key.pubkey];
      // BIP141 nested P2WPKH: the scriptSig is the single push of `OP_0 <20-byte hash>`.
      if (key.kind === "p2sh-p2wpkh") input.scriptSig = Uint8Array.of(0x16, 0x00, 0x14, ...keyHash);
      break;
    }
    case "p2tr": {
      const tweaked = taprootTweakPrivKey(privateKey, new Uint8Array());
      try {
        const sighash = taprootSighash(
          tx,
          0,
          [{ script: challenge, amountSats: 0n }],
          SIGHASH_DEFAULT,
        );
        input.witness = [schnorr.sign(sighash, tweaked)];
      } finally {
        tweaked.fill(0);
      }
      break;
    }
  }
  return toSign;
}

function signLegacy(privateKey: Uint8Array, compressed: boolean, message: Uint8Array): string {
  const rec = secp256k1.sign(legacyMessageHash(message), privateKey, {
    prehash: false,
    lowS: true,
    format: "recovered",
  });
  const out = new Uint8Array(65);
  out[0] = LEGACY_HEADER_MIN + rec[0]! + (compressed ? LEGACY_COMPRESSED_FLAG : 0);
  out.set(rec.subarray(1), 1);
  return base64.encode(out);
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function requireAddress(address: string, network: BitcoinNetwork, action: string): ValidAddress {
  assertString(address, "address");
  assertNetwork(network);
  const described = describeAddress(address, network);
  if (!described.valid) {
    throw new ValidationError(`Cannot ${action} message: ${described.reason}`, {
      status: 422,
      issues: [{ path: "address", message: described.reason }],
    });
  }
  return described;
}

function scriptBytes(addr: ValidAddress): Uint8Array {
  return hex.decode(addr.scriptPubKeyHex);
}

function unprocessable(reason: string, path = "address"): ValidationError {
  return new ValidationError(`Cannot sign message: ${reason}`, {
    status: 422,
    issues: [{ path, message: reason }],
  });
}

function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`Invalid ${name}: expected a string, got ${describeType(value)}`);
  }
}

function messageBytes(message: string | Uint8Array): Uint8Array {
  if (typeof message === "string") return utf8.encode(message);
  if (message instanceof Uint8Array) return message;
  throw new TypeError(
    `Invalid message: expected a string or Uint8Array, got ${describeType(message)}`,
  );
}
