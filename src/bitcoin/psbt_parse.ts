/**
 * Strict PSBT parsing: every PSBT that enters the edge goes through
 * {@linkcode parsePsbt}, which either returns a decoded `Transaction` whose
 * re-serialisation is byte-identical to the input, or throws a 422
 * `ValidationError` that says what is wrong and where.
 *
 * Specs: BIP174 "Specification" and "Test Vectors" (framing, key types,
 * duplicate keys, the unsigned transaction), BIP370 (PSBTv2 required/allowed
 * fields, required locktimes, locktime determination), BIP371 (taproot field
 * sizes). Decoding is `@scure/btc-signer`'s `Transaction.fromPSBT` with the
 * options in {@linkcode PSBT_TX_OPTS}; the invalid vectors of all three BIPs
 * are rejected by scure itself, and `tests/bitcoin/bip17{4}`, `bip370`,
 * `bip371` tests prove it.
 *
 * Network: an output script carries no network, so the only network signals
 * in a PSBT are extended keys (PSBT_GLOBAL_XPUB version bytes: xpub/tpub and
 * SLIP-132 variants) and BIP44-family derivation paths (coin type 0' on
 * mainnet, 1' on test networks). {@linkcode psbtNetworkFindings} reports them;
 * decode warns, combine/finalize/create call {@linkcode requirePsbtNetwork}.
 *
 * @module
 */
import { Transaction, type TxOpts } from "@scure/btc-signer";
import { base64, hex } from "@scure/base";
import { ValidationError } from "../errors/app_error.ts";
import type { BitcoinNetwork } from "./network.ts";
import { assertNetwork } from "./address.ts";
import { assertTransaction, describeType } from "./_assert.ts";
import { PSBT_MAGIC, psbtVersionOf, splitPsbtMaps } from "./psbt_maps.ts";
import { explainPsbtError } from "./_psbt_errors.ts";

export { explainPsbtError } from "./_psbt_errors.ts";

/** Largest PSBT accepted, in bytes (a block's worth: 4 MB). */
export const MAX_PSBT_BYTES = 4_000_000;

/**
 * `Transaction.fromPSBT` options for every PSBT the edge parses:
 * - `unknown: "ignore"`: keep unknown and proprietary fields. BIP174 requires
 *   combiners to pass them through, and it keeps the round trip byte-exact.
 * - `allowMissingTxModifiable: false`: scure would otherwise add a
 *   PSBT_GLOBAL_TX_MODIFIABLE field to PSBTv2s that lack one when serialising
 *   (BIP370 vectors 24-27 and 38-45 would not round-trip); BIP370 reads its
 *   absence as "nothing modifiable", which is also the strict reading.
 * - `allowUnknownVersion`/`allowUnknownOutputs`: transaction versions and output
 *   scripts outside scure's list are consensus-valid; decode reports them as
 *   non-standard instead of refusing the PSBT.
 * - `disableScriptCheck: true`: scure would refuse PSBTs whose redeemScript or
 *   witnessScript does not match the spent output, but BIP174 lists exactly
 *   those as *valid* PSBTs a signer must refuse ("signer must fail" vectors),
 *   so the mismatch is reported by `signatures.ts`/the signing policy instead.
 */
export const PSBT_TX_OPTS: Readonly<TxOpts> = Object.freeze({
  unknown: "ignore",
  allowMissingTxModifiable: false,
  allowUnknownVersion: true,
  allowUnknownOutputs: true,
  disableScriptCheck: true,
});

/** A PSBT input's fields, as `Transaction.getInput` returns them. */
export type PsbtInputFields = ReturnType<Transaction["getInput"]>;
/** A PSBT output's fields, as `Transaction.getOutput` returns them. */
export type PsbtOutputFields = ReturnType<Transaction["getOutput"]>;

/** A strictly parsed PSBT. */
export interface ParsedPsbt {
  /** The decoded PSBT; `tx.toPSBT()` re-serialises `bytes` exactly. */
  tx: Transaction;
  /** PSBT version (BIP174 v0 or BIP370 v2). */
  version: 0 | 2;
  /** The PSBT as received (decoded from base64/hex). */
  bytes: Uint8Array;
  /** The text encoding it arrived in. */
  format: "base64" | "hex";
}

/** Options of {@linkcode parsePsbt}. */
export interface ParsePsbtOptions {
  /** The configured network. */
  network: BitcoinNetwork;
  /** Size limit in bytes; defaults to {@linkcode MAX_PSBT_BYTES}. */
  maxBytes?: number;
  /** Reject PSBTs with network findings (combine/finalize/create); decode only warns. */
  rejectNetworkMismatch?: boolean;
}

/**
 * Parse a PSBT given as base64 (canonical) or hex.
 *
 * @param input the PSBT text from a request body
 * @param options network and limits
 * @returns the decoded PSBT, its version and original bytes
 * @throws ValidationError (422) naming the problem: "Invalid PSBT: duplicate key 0x00 in input 0"
 * @example
 * ```ts
 * const parsed = parsePsbt(body.psbt, { network: config.BITCOIN_NETWORK });
 * parsed.tx.inputsLength;
 * ```
 */
export function parsePsbt(input: string, options: ParsePsbtOptions): ParsedPsbt {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options: expected an object, got ${describeType(options)}`);
  }
  assertNetwork(options.network);
  const maxBytes = options.maxBytes ?? MAX_PSBT_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new RangeError(`Invalid maxBytes: expected a positive integer, got ${String(maxBytes)}`);
  }
  const { bytes, format } = decodePsbtText(input, maxBytes);
  let tx: Transaction;
  try {
    tx = Transaction.fromPSBT(bytes, PSBT_TX_OPTS);
  } catch (err) {
    throw invalid(explainPsbtError(bytes, err), err);
  }
  const parsed: ParsedPsbt = { tx, version: psbtVersionOf(bytes), bytes, format };
  if (options.rejectNetworkMismatch === true) requirePsbtNetwork(parsed, options.network);
  return parsed;
}

/**
 * Decode PSBT text: all-hex input is hex, anything else must be canonical
 * base64 (padded, RFC 4648 alphabet). Surrounding whitespace is ignored.
 *
 * @param input the text
 * @param maxBytes size limit of the decoded PSBT
 * @throws ValidationError (422) when empty, too large, not base64/hex or without the PSBT magic
 */
export function decodePsbtText(
  input: string,
  maxBytes: number = MAX_PSBT_BYTES,
): { bytes: Uint8Array; format: "base64" | "hex" } {
  if (typeof input !== "string") {
    throw new TypeError(`Invalid psbt: expected a string, got ${describeType(input)}`);
  }
  const text = input.trim();
  if (text.length === 0) throw invalid("empty");
  // Checked on the text first (hex is the longer encoding) so an oversized body is refused
  // before it is decoded.
  if (text.length > maxBytes * 2) {
    throw invalid(`larger than ${maxBytes} bytes`);
  }
  let bytes: Uint8Array;
  let format: "base64" | "hex";
  // A base64 PSBT always starts "cHNidP8", so an all-hex string is never base64 of a PSBT.
  if (/^[0-9a-fA-F]+$/.test(text)) {
    if (text.length % 2 !== 0) throw invalid("hex has an odd number of digits");
    bytes = hex.decode(text.toLowerCase());
    format = "hex";
  } else {
    try {
      bytes = base64.decode(text);
    } catch {
      throw invalid("not valid base64 or hex");
    }
    format = "base64";
  }
  if (bytes.length > maxBytes) throw invalid(`larger than ${maxBytes} bytes`);
  if (!startsWithMagic(bytes)) {
    throw invalid('does not start with the PSBT magic bytes "psbt\\xff"');
  }
  return { bytes, format };
}

function startsWithMagic(bytes: Uint8Array): boolean {
  return PSBT_MAGIC.every((b, i) => bytes[i] === b);
}

function invalid(reason: string, cause?: unknown): ValidationError {
  return new ValidationError(
    `Invalid PSBT: ${reason}`,
    cause === undefined ? { status: 422 } : { status: 422, cause },
  );
}

// ---------------------------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------------------------

/** A sign that a PSBT was made for another network. */
export interface NetworkFinding {
  /** `xpub-version`: a PSBT_GLOBAL_XPUB of another network; `coin-type`: a BIP44-family path. */
  kind: "xpub-version" | "coin-type";
  /** Where: `global`, `input 0`, `output 1`. */
  location: string;
  /** Client-safe explanation. */
  message: string;
}

// BIP32 / SLIP-132 extended public key version bytes.
const MAINNET_XPUB_VERSIONS = new Set([0x0488b21e, 0x049d7cb2, 0x04b24746, 0x0295b43f, 0x02aa7ed3]);
const TESTNET_XPUB_VERSIONS = new Set([0x043587cf, 0x044a5262, 0x045f1cf6, 0x024289ef, 0x02575483]);
// BIP44 (44'), BIP48 (48'), BIP49 (49'), BIP84 (84'), BIP86 (86'): m/purpose'/coin_type'/…
const COIN_TYPE_PURPOSES = new Set([44, 48, 49, 84, 86]);
const HARDENED = 0x80000000;

/**
 * Network hints in a parsed PSBT that contradict `network`.
 *
 * @param parsed a parsed PSBT
 * @param network the configured network
 * @param fields the PSBT's inputs and outputs when the caller already holds
 *   them (`getInput`/`getOutput` deep-copy on every call)
 * @returns findings; empty when nothing points at another network
 */
export function psbtNetworkFindings(
  parsed: ParsedPsbt,
  network: BitcoinNetwork,
  fields?: { inputs: readonly PsbtInputFields[]; outputs: readonly PsbtOutputFields[] },
): NetworkFinding[] {
  if (typeof parsed !== "object" || parsed === null || !(parsed.bytes instanceof Uint8Array)) {
    throw new TypeError(`Invalid parsed: expected a ParsedPsbt, got ${describeType(parsed)}`);
  }
  assertTransaction(parsed.tx);
  assertNetwork(network);
  const mainnet = network === "mainnet";
  const findings: NetworkFinding[] = [];
  const split = splitPsbtMaps(parsed.bytes, 1);
  for (const e of split.ok ? split.maps[0]!.entries : []) {
    // PSBT_GLOBAL_XPUB: key data is the 78-byte serialized xpub, version in its first 4 bytes.
    if (e.keyType !== 0x01 || e.keyData.length !== 78) continue;
    const version = new DataView(e.keyData.buffer, e.keyData.byteOffset, 4).getUint32(0);
    const other = mainnet ? TESTNET_XPUB_VERSIONS.has(version) : MAINNET_XPUB_VERSIONS.has(version);
    if (other) {
      findings.push({
        kind: "xpub-version",
        location: "global",
        message: `PSBT_GLOBAL_XPUB is a ${mainnet ? "test network" : "mainnet"} extended key`,
      });
    }
  }
  const checkPaths = (location: string, paths: number[][]) => {
    for (const path of paths) {
      const [purpose, coin] = path;
      if (purpose === undefined || coin === undefined) continue;
      if (purpose < HARDENED || !COIN_TYPE_PURPOSES.has(purpose - HARDENED) || coin < HARDENED) {
        continue;
      }
      const coinType = coin - HARDENED;
      // SLIP-44: coin type 0 is bitcoin mainnet, 1 is every test network.
      if ((mainnet && coinType === 1) || (!mainnet && coinType === 0)) {
        findings.push({
          kind: "coin-type",
          location,
          message: `${location} derives keys with coin type ${coinType}' (${
            coinType === 0 ? "mainnet" : "test networks"
          })`,
        });
        return;
      }
    }
  };
  const { tx } = parsed;
  const inputs = fields?.inputs ??
    Array.from({ length: tx.inputsLength }, (_, i) => tx.getInput(i));
  const outputs = fields?.outputs ??
    Array.from({ length: tx.outputsLength }, (_, i) => tx.getOutput(i));
  for (const [i, input] of inputs.entries()) {
    checkPaths(`input ${i}`, [
      ...(input.bip32Derivation ?? []).map(([, d]) => d.path),
      ...(input.tapBip32Derivation ?? []).map(([, d]) => d.der.path),
    ]);
  }
  for (const [i, output] of outputs.entries()) {
    checkPaths(`output ${i}`, [
      ...(output.bip32Derivation ?? []).map(([, d]) => d.path),
      ...(output.tapBip32Derivation ?? []).map(([, d]) => d.der.path),
    ]);
  }
  return findings;
}

/**
 * Refuse a PSBT made for another network (combine, finalize, create).
 *
 * @param parsed a parsed PSBT
 * @param network the configured network
 * @throws ValidationError (422) listing the findings
 */
export function requirePsbtNetwork(parsed: ParsedPsbt, network: BitcoinNetwork): void {
  const findings = psbtNetworkFindings(parsed, network);
  if (findings.length === 0) return;
  throw new ValidationError(
    `Invalid PSBT: made for another network than ${network}: ${findings[0]!.message}`,
    {
      status: 422,
      issues: findings.map((f) => ({ path: f.location, message: f.message })),
    },
  );
}
