/**
 * The edge trusts nothing the remote HSM returns: before a signed PSBT is
 * released, {@linkcode checkReturnedPsbt} proves it is the PSBT that was sent
 * plus new signatures, each made by a key allowed for its input and valid for
 * that input's signature hash. Anything else is a 502 `UpstreamError`.
 *
 * Specs:
 * - BIP174 "Specification" (key-value maps; a Signer only adds
 *   PSBT_IN_PARTIAL_SIG and must use PSBT_IN_SIGHASH_TYPE when present, ALL
 *   otherwise) and BIP370 (PSBTv2 moves the unsigned transaction into
 *   per-map fields: they are compared like every other field; the one field a
 *   Signer may change is PSBT_GLOBAL_TX_MODIFIABLE, by exactly the BIP370
 *   "Signer" update for the signatures it added).
 * - BIP371: PSBT_IN_TAP_KEY_SIG / PSBT_IN_TAP_SCRIPT_SIG; BIP341
 *   `taproot_tweak_pubkey` (a key-path signature verifies under the output
 *   key Q, which an allowed internal key must tweak to).
 * - BIP66 strict DER and BIP146 low-S for ECDSA: a consensus-valid but
 *   non-standard signature would make the transaction unrelayable.
 *
 * Signature checks are `src/bitcoin/signatures.ts`; nothing here hashes or
 * verifies by itself.
 *
 * @module
 */
import { type Transaction, utils } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { UpstreamError } from "../errors/mod.ts";
import { psbtPrevout, type SignatureCheck, verifyInputSignatures } from "../bitcoin/signatures.ts";
import { classifyScript } from "../bitcoin/script_type.ts";
import { psbtVersionOf } from "../bitcoin/psbt_ops.ts";
// Why a private module: the comparison must see the serialized key-value pairs themselves
// (unknown and proprietary keys included), which scure's `Transaction` does not expose, and
// `psbt_maps.ts` is the one BIP174 framing reader of the code base.
import { type RawEntry, type RawMap, splitPsbtMaps } from "../bitcoin/psbt_maps.ts";

/** What the edge allows the HSM to sign, computed from the key before the request. */
export interface ReturnedPsbtExpectation {
  /** Inputs the HSM may sign: the edge computes them from the key's BIP32 fingerprint (bip32Derivation / tapBip32Derivation entries) or its single pubkey. */
  signableInputs: ReadonlySet<number>;
  /** For each signable input, the public keys (33-byte compressed for ECDSA, 32-byte x-only for taproot key path) a new signature may be made with. */
  allowedPubkeys: ReadonlyMap<number, readonly Uint8Array[]>;
}

/** One signature the HSM added, after every check passed. */
export interface AddedSignature {
  /** Input index. */
  input: number;
  /** Key it verifies under: the PSBT_IN_PARTIAL_SIG key, the tapscript key, or the taproot output key Q. */
  pubkeyHex: string;
  /** ECDSA (legacy, segwit v0) or BIP340 Schnorr (taproot). */
  scheme: "ecdsa" | "schnorr";
  /** Sighash type the signature commits to (0 = taproot SIGHASH_DEFAULT). */
  sighashType: number;
}

/** Which check refused the HSM's answer; the `check` extension of the 502. */
export type ReturnedPsbtCheck =
  | "unserializable"
  | "psbt-version-changed"
  | "other-transaction"
  | "tx-version-changed"
  | "locktime-changed"
  | "input-count-changed"
  | "output-count-changed"
  | "outpoint-changed"
  | "sequence-changed"
  | "output-amount-changed"
  | "output-script-changed"
  | "field-added"
  | "field-removed"
  | "field-changed"
  | "finalized"
  | "signature-removed"
  | "signature-altered"
  | "no-signature"
  | "input-not-signable"
  | "key-not-allowed"
  | "signature-not-der"
  | "sighash-type-mismatch"
  | "signature-invalid"
  | "signature-unverifiable"
  | "signature-high-s";

// BIP174 / BIP371 input key types the Signer role may add (and the Finalizer's, which it may not).
const IN_PARTIAL_SIG = 0x02;
const IN_FINAL_SCRIPTSIG = 0x07;
const IN_FINAL_SCRIPTWITNESS = 0x08;
const IN_TAP_KEY_SIG = 0x13;
const IN_TAP_SCRIPT_SIG = 0x14;
const SIGNATURE_KEY_TYPES: ReadonlySet<number> = new Set([
  IN_PARTIAL_SIG,
  IN_TAP_KEY_SIG,
  IN_TAP_SCRIPT_SIG,
]);
const SIGHASH_DEFAULT = 0x00;
const SIGHASH_ALL = 0x01;
const SIGHASH_NONE = 0x02;
const SIGHASH_SINGLE = 0x03;
const SIGHASH_ANYONECANPAY = 0x80;
// BIP370 PSBT_GLOBAL_TX_MODIFIABLE and its bits.
const GLOBAL_TX_MODIFIABLE = 0x06;
const INPUTS_MODIFIABLE = 0b001;
const OUTPUTS_MODIFIABLE = 0b010;
const HAS_SIGHASH_SINGLE = 0b100;

// BIP174/BIP370/BIP371/BIP373 names, so a detail says which field changed without its contents.
const GLOBAL_FIELDS: Record<number, string> = {
  0x00: "PSBT_GLOBAL_UNSIGNED_TX",
  0x01: "PSBT_GLOBAL_XPUB",
  0x02: "PSBT_GLOBAL_TX_VERSION",
  0x03: "PSBT_GLOBAL_FALLBACK_LOCKTIME",
  0x04: "PSBT_GLOBAL_INPUT_COUNT",
  0x05: "PSBT_GLOBAL_OUTPUT_COUNT",
  0x06: "PSBT_GLOBAL_TX_MODIFIABLE",
  0xfb: "PSBT_GLOBAL_VERSION",
  0xfc: "PSBT_GLOBAL_PROPRIETARY",
};
const INPUT_FIELDS: Record<number, string> = {
  0x00: "PSBT_IN_NON_WITNESS_UTXO",
  0x01: "PSBT_IN_WITNESS_UTXO",
  0x02: "PSBT_IN_PARTIAL_SIG",
  0x03: "PSBT_IN_SIGHASH_TYPE",
  0x04: "PSBT_IN_REDEEM_SCRIPT",
  0x05: "PSBT_IN_WITNESS_SCRIPT",
  0x06: "PSBT_IN_BIP32_DERIVATION",
  0x07: "PSBT_IN_FINAL_SCRIPTSIG",
  0x08: "PSBT_IN_FINAL_SCRIPTWITNESS",
  0x09: "PSBT_IN_POR_COMMITMENT",
  0x0a: "PSBT_IN_RIPEMD160",
  0x0b: "PSBT_IN_SHA256",
  0x0c: "PSBT_IN_HASH160",
  0x0d: "PSBT_IN_HASH256",
  0x0e: "PSBT_IN_PREVIOUS_TXID",
  0x0f: "PSBT_IN_OUTPUT_INDEX",
  0x10: "PSBT_IN_SEQUENCE",
  0x11: "PSBT_IN_REQUIRED_TIME_LOCKTIME",
  0x12: "PSBT_IN_REQUIRED_HEIGHT_LOCKTIME",
  0x13: "PSBT_IN_TAP_KEY_SIG",
  0x14: "PSBT_IN_TAP_SCRIPT_SIG",
  0x15: "PSBT_IN_TAP_LEAF_SCRIPT",
  0x16: "PSBT_IN_TAP_BIP32_DERIVATION",
  0x17: "PSBT_IN_TAP_INTERNAL_KEY",
  0x18: "PSBT_IN_TAP_MERKLE_ROOT",
  0x1a: "PSBT_IN_MUSIG2_PARTICIPANT_PUBKEYS",
  0x1b: "PSBT_IN_MUSIG2_PUB_NONCE",
  0x1c: "PSBT_IN_MUSIG2_PARTIAL_SIG",
  0xfc: "PSBT_IN_PROPRIETARY",
};
const OUTPUT_FIELDS: Record<number, string> = {
  0x00: "PSBT_OUT_REDEEM_SCRIPT",
  0x01: "PSBT_OUT_WITNESS_SCRIPT",
  0x02: "PSBT_OUT_BIP32_DERIVATION",
  0x03: "PSBT_OUT_AMOUNT",
  0x04: "PSBT_OUT_SCRIPT",
  0x05: "PSBT_OUT_TAP_INTERNAL_KEY",
  0x06: "PSBT_OUT_TAP_TREE",
  0x07: "PSBT_OUT_TAP_BIP32_DERIVATION",
  0x08: "PSBT_OUT_MUSIG2_PARTICIPANT_PUBKEYS",
  0xfc: "PSBT_OUT_PROPRIETARY",
};

/** A signature field present in the returned input map and absent from the original. */
interface NewSignature {
  input: number;
  keyType: number;
  keyData: Uint8Array;
  value: Uint8Array;
}

/**
 * Check the PSBT the HSM returned against the one the edge sent.
 *
 * `returned` must be parsed with `PSBT_TX_OPTS` (`src/bitcoin/psbt_parse.ts`):
 * a transaction that drops unknown or proprietary fields would hide an HSM that
 * added them. The key-value maps are compared as `wire` holds them: the bytes
 * that were sent and received (both parsed into `original` and `returned`);
 * without `wire`, as the two transactions serialize.
 *
 * @param original the PSBT sent to the HSM
 * @param returned the PSBT the HSM answered with
 * @param expect the inputs and keys the HSM may sign with
 * @param wire the bytes `original` and `returned` were parsed from
 * @returns every added signature, by input then map order
 * @throws UpstreamError (502) naming what is wrong, with a `check` extension
 * @example
 * ```ts
 * const returned = parsePsbt(answer.psbt, { network });
 * const added = checkReturnedPsbt(sent.tx, returned.tx, expectation, {
 *   original: sent.bytes,
 *   returned: returned.bytes,
 * });
 * ```
 */
export function checkReturnedPsbt(
  original: Transaction,
  returned: Transaction,
  expect: ReturnedPsbtExpectation,
  wire?: { original: Uint8Array; returned: Uint8Array },
): AddedSignature[] {
  assertPsbtTransaction(original, "original");
  assertPsbtTransaction(returned, "returned");
  assertKeepsUnknownFields(returned);
  assertExpectation(expect, original.inputsLength);
  compareUnsignedTx(original, returned);
  const { added, txModifiable } = compareMaps(original, returned, wire);
  if (txModifiable !== undefined) checkTxModifiable(txModifiable, added);
  if (added.length === 0) throw reject("no-signature", "the HSM returned no signature");
  const keys = added.map((sig) => authorize(returned, sig, expect));
  const reports = new Map<number, SignatureCheck[]>();
  return added.map((sig, k) => verifyAdded(returned, sig, keys[k]!, reports));
}

function reject(
  check: ReturnedPsbtCheck,
  detail: string,
  extensions: Record<string, unknown> = {},
): UpstreamError {
  return new UpstreamError(`HSM returned an unacceptable PSBT: ${detail}`, {
    extensions: { check, ...extensions },
  });
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  return typeof value;
}

function assertPsbtTransaction(tx: unknown, name: string): asserts tx is Transaction {
  if (
    typeof tx !== "object" || tx === null ||
    typeof (tx as Transaction).toPSBT !== "function" ||
    typeof (tx as Transaction).getInput !== "function"
  ) {
    throw new TypeError(`Invalid ${name}: expected a Transaction, got ${describe(tx)}`);
  }
}

function assertKeepsUnknownFields(tx: Transaction): void {
  const { unknown, proprietary } = tx.opts;
  if (unknown !== "ignore" || proprietary !== "ignore") {
    throw new TypeError(
      "Invalid returned: parse it with PSBT_TX_OPTS so unknown and proprietary fields are kept",
    );
  }
}

function assertExpectation(expect: unknown, inputs: number): void {
  if (typeof expect !== "object" || expect === null) {
    throw new TypeError(`Invalid expect: expected an object, got ${describe(expect)}`);
  }
  const { signableInputs, allowedPubkeys } = expect as ReturnedPsbtExpectation;
  if (!(signableInputs instanceof Set)) {
    throw new TypeError(
      `Invalid expect.signableInputs: expected a Set, got ${describe(signableInputs)}`,
    );
  }
  for (const i of signableInputs) assertIndex(i, "expect.signableInputs", inputs);
  if (!(allowedPubkeys instanceof Map)) {
    throw new TypeError(
      `Invalid expect.allowedPubkeys: expected a Map, got ${describe(allowedPubkeys)}`,
    );
  }
  for (const [i, keys] of allowedPubkeys) {
    assertIndex(i, "expect.allowedPubkeys", inputs);
    if (!Array.isArray(keys)) {
      throw new TypeError(
        `Invalid expect.allowedPubkeys[${i}]: expected an array, got ${describe(keys)}`,
      );
    }
    for (const key of keys as unknown[]) {
      if (!(key instanceof Uint8Array)) {
        throw new TypeError(
          `Invalid expect.allowedPubkeys[${i}]: expected Uint8Array keys, got ${describe(key)}`,
        );
      }
      if (key.length !== 32 && key.length !== 33) {
        throw new RangeError(
          `Invalid expect.allowedPubkeys[${i}]: expected 32- or 33-byte keys, got ${key.length} bytes`,
        );
      }
    }
  }
}

function assertIndex(value: unknown, name: string, inputs: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Invalid ${name}: expected input indexes, got ${describe(value)}`);
  }
  if (value < 0 || value >= inputs) {
    throw new RangeError(`Invalid ${name}: input ${value} does not exist (${inputs} inputs)`);
  }
}

// ---------------------------------------------------------------------------------------------
// The unsigned transaction
// ---------------------------------------------------------------------------------------------

function outpointOf(tx: Transaction, i: number): string {
  const input = tx.getInput(i);
  return `${input.txid === undefined ? "" : hex.encode(input.txid)}:${input.index}`;
}

/** Same transaction: checked field by field first, so the 502 says which one moved. */
function compareUnsignedTx(original: Transaction, returned: Transaction): void {
  if (psbtVersionOf(original) !== psbtVersionOf(returned)) {
    throw reject("psbt-version-changed", "the PSBT version was changed");
  }
  const sent = new Set<string>();
  for (let i = 0; i < original.inputsLength; i++) sent.add(outpointOf(original, i));
  let shared = 0;
  for (let i = 0; i < returned.inputsLength; i++) if (sent.has(outpointOf(returned, i))) shared++;
  if (shared === 0) throw reject("other-transaction", "it is a PSBT of another transaction");
  if (original.version !== returned.version) {
    throw reject("tx-version-changed", "the transaction version was changed");
  }
  if (original.lockTime !== returned.lockTime) {
    throw reject("locktime-changed", "the locktime was changed");
  }
  if (original.inputsLength !== returned.inputsLength) {
    throw reject(
      "input-count-changed",
      `the number of inputs was changed from ${original.inputsLength} to ${returned.inputsLength}`,
    );
  }
  for (let i = 0; i < original.inputsLength; i++) {
    if (outpointOf(original, i) !== outpointOf(returned, i)) {
      throw reject("outpoint-changed", `input ${i} spends another output`, { input: i });
    }
    if (original.getInput(i).sequence !== returned.getInput(i).sequence) {
      throw reject("sequence-changed", `the sequence of input ${i} was changed`, { input: i });
    }
  }
  if (original.outputsLength !== returned.outputsLength) {
    throw reject(
      "output-count-changed",
      `the number of outputs was changed from ${original.outputsLength} to ${returned.outputsLength}`,
    );
  }
  for (let o = 0; o < original.outputsLength; o++) {
    const before = original.getOutput(o);
    const after = returned.getOutput(o);
    if (before.amount !== after.amount) {
      throw reject("output-amount-changed", `the amount of output ${o} was changed`, { output: o });
    }
    const scriptBefore = before.script === undefined ? "" : hex.encode(before.script);
    const scriptAfter = after.script === undefined ? "" : hex.encode(after.script);
    if (scriptBefore !== scriptAfter) {
      throw reject("output-script-changed", `the script of output ${o} was changed`, { output: o });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Key-value maps
// ---------------------------------------------------------------------------------------------

function splitMaps(
  tx: Transaction,
  wire: Uint8Array | undefined,
  onError: (cause: unknown) => Error,
): RawMap[] {
  let bytes: Uint8Array;
  try {
    bytes = wire ?? tx.toPSBT(psbtVersionOf(tx));
  } catch (err) {
    throw onError(err);
  }
  const split = splitPsbtMaps(bytes);
  if (!split.ok) throw onError(new Error(`PSBT framing: ${split.problem}`));
  return split.maps;
}

function entryKey(e: RawEntry): string {
  return `${e.keyType}:${hex.encode(e.keyData)}`;
}

interface MapDiff {
  added: RawEntry[];
  removed: RawEntry[];
  changed: RawEntry[];
}

function diffMap(before: RawMap, after: RawMap): MapDiff {
  const old = new Map(before.entries.map((e) => [entryKey(e), hex.encode(e.value)]));
  const seen = new Set<string>();
  const diff: MapDiff = { added: [], removed: [], changed: [] };
  for (const e of after.entries) {
    const key = entryKey(e);
    seen.add(key);
    const value = old.get(key);
    if (value === undefined) diff.added.push(e);
    else if (value !== hex.encode(e.value)) diff.changed.push(e);
  }
  diff.removed = before.entries.filter((e) => !seen.has(entryKey(e)));
  return diff;
}

function fieldName(table: Record<number, string>, keyType: number): string {
  return table[keyType] ?? `unknown field type 0x${keyType.toString(16).padStart(2, "0")}`;
}

/** What {@linkcode compareMaps} lets through for the later checks. */
interface MapComparison {
  /** The new signature fields. */
  added: NewSignature[];
  /** PSBT_GLOBAL_TX_MODIFIABLE before and after, when the HSM changed it. */
  txModifiable?: { before: Uint8Array; after: Uint8Array };
}

/** Every serialized field equal except new signatures and the BIP370 signer's flag update. */
function compareMaps(
  original: Transaction,
  returned: Transaction,
  wire: { original: Uint8Array; returned: Uint8Array } | undefined,
): MapComparison {
  const before = splitMaps(original, wire?.original, (cause) => cause as Error);
  const after = splitMaps(
    returned,
    wire?.returned,
    (cause) =>
      new UpstreamError("HSM returned an unacceptable PSBT: it cannot be serialized", {
        extensions: { check: "unserializable" satisfies ReturnedPsbtCheck },
        cause,
      }),
  );
  const inputs = original.inputsLength;
  if (before.length !== after.length) {
    throw reject("unserializable", "its maps do not match its input and output counts");
  }
  const scopes = before.map((map, m) => {
    if (m === 0) return { map, table: GLOBAL_FIELDS, where: "the global map", input: -1 };
    if (m <= inputs) return { map, table: INPUT_FIELDS, where: `input ${m - 1}`, input: m - 1 };
    return { map, table: OUTPUT_FIELDS, where: `output ${m - 1 - inputs}`, input: -1 };
  });
  const result: MapComparison = { added: [] };
  for (const [m, { map, table, where, input }] of scopes.entries()) {
    const diff = diffMap(map, after[m]!);
    const at = input >= 0 ? { input } : {};
    if (input >= 0) {
      // The Finalizer role is the edge's: an HSM that finalizes has also dropped the signing
      // metadata, so this is reported before the removals it implies.
      const final = diff.added.find((e) =>
        e.keyType === IN_FINAL_SCRIPTSIG || e.keyType === IN_FINAL_SCRIPTWITNESS
      );
      if (final !== undefined) {
        throw reject(
          "finalized",
          `${where} was finalized (${fieldName(table, final.keyType)}): the HSM may only sign`,
          at,
        );
      }
    }
    for (const e of diff.removed) {
      if (input >= 0 && SIGNATURE_KEY_TYPES.has(e.keyType)) {
        throw reject("signature-removed", `an existing signature on ${where} was removed`, at);
      }
      throw reject("field-removed", `${fieldName(table, e.keyType)} was removed from ${where}`, at);
    }
    for (const e of diff.changed) {
      if (m === 0 && e.keyType === GLOBAL_TX_MODIFIABLE && e.keyData.length === 0) {
        const before = map.entries.find((x) => entryKey(x) === entryKey(e))!.value;
        result.txModifiable = { before, after: e.value };
        continue;
      }
      if (input >= 0 && SIGNATURE_KEY_TYPES.has(e.keyType)) {
        throw reject("signature-altered", `an existing signature on ${where} was altered`, at);
      }
      throw reject("field-changed", `${fieldName(table, e.keyType)} of ${where} was changed`, at);
    }
    for (const e of diff.added) {
      if (input >= 0 && SIGNATURE_KEY_TYPES.has(e.keyType)) {
        result.added.push({ input, keyType: e.keyType, keyData: e.keyData, value: e.value });
        continue;
      }
      throw reject("field-added", `${fieldName(table, e.keyType)} was added to ${where}`, at);
    }
  }
  return result;
}

/**
 * BIP370 "Signer": after signing, clear Inputs Modifiable unless ANYONECANPAY, clear Outputs
 * Modifiable unless NONE, set Has SIGHASH_SINGLE for SINGLE. A signer may also leave the field
 * alone (scure does); any other value would re-open the transaction to changes.
 */
function checkTxModifiable(
  change: NonNullable<MapComparison["txModifiable"]>,
  added: readonly NewSignature[],
): void {
  let expected = change.before.length === 1 ? change.before[0]! : -1;
  for (const sig of added) {
    const type = sighashTypeOf(sig);
    const base = type === SIGHASH_DEFAULT ? SIGHASH_ALL : type & 0x1f;
    if ((type & SIGHASH_ANYONECANPAY) === 0) expected &= ~INPUTS_MODIFIABLE;
    if (base !== SIGHASH_NONE) expected &= ~OUTPUTS_MODIFIABLE;
    if (base === SIGHASH_SINGLE) expected |= HAS_SIGHASH_SINGLE;
  }
  if (expected < 0 || change.after.length !== 1 || change.after[0] !== expected) {
    throw reject(
      "field-changed",
      "PSBT_GLOBAL_TX_MODIFIABLE of the global map was changed beyond the BIP370 signer update",
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/** Input may be signed and the key is allowed; returns the key the signature verifies under. */
function authorize(
  tx: Transaction,
  sig: NewSignature,
  expect: ReturnedPsbtExpectation,
): Uint8Array {
  const i = sig.input;
  const at = { input: i };
  if (!expect.signableInputs.has(i)) {
    throw reject("input-not-signable", `input ${i} was signed, but the key may not sign it`, at);
  }
  const input = tx.getInput(i);
  if (input.finalScriptSig?.length || input.finalScriptWitness?.length) {
    throw reject("input-not-signable", `input ${i} is already finalized`, at);
  }
  const allowed = (expect.allowedPubkeys.get(i) ?? []).map((k) => hex.encode(k));
  const notAllowed = () =>
    reject("key-not-allowed", `input ${i} was signed with a key not allowed for it`, at);
  if (sig.keyType === IN_PARTIAL_SIG) {
    if (!allowed.includes(hex.encode(sig.keyData))) throw notAllowed();
    return sig.keyData;
  }
  if (sig.keyType === IN_TAP_SCRIPT_SIG) {
    // BIP371: key data is the 32-byte x-only key followed by the 32-byte leaf hash.
    const key = sig.keyData.subarray(0, 32);
    if (sig.keyData.length !== 64 || !allowed.includes(hex.encode(key))) throw notAllowed();
    return key;
  }
  const prev = psbtPrevout(input);
  if (prev === null || classifyScript(prev.script) !== "p2tr") {
    throw reject(
      "signature-invalid",
      `input ${i} has a taproot key-path signature but does not spend a taproot output`,
      at,
    );
  }
  const outputKey = prev.script.subarray(2, 34);
  const merkleRoot = input.tapMerkleRoot ?? new Uint8Array(0);
  const outputHex = hex.encode(outputKey);
  const matches = allowed.some((k) => k === outputHex || tweaksTo(k, merkleRoot, outputHex));
  if (!matches) throw notAllowed();
  return outputKey;
}

/** BIP341 `taproot_tweak_pubkey(internal, merkleRoot)` equals the output key. */
function tweaksTo(internalHex: string, merkleRoot: Uint8Array, outputHex: string): boolean {
  if (internalHex.length !== 64) return false;
  try {
    const [q] = utils.taprootTweakPubkey(hex.decode(internalHex), merkleRoot);
    return hex.encode(q) === outputHex;
  } catch {
    // Not an x coordinate on the curve: it tweaks to nothing.
    return false;
  }
}

/** The sighash byte a new signature carries (taproot: 0x00 DEFAULT when 64 bytes; -1 if none). */
function sighashTypeOf(sig: NewSignature): number {
  if (sig.keyType === IN_PARTIAL_SIG) return sig.value[sig.value.length - 1] ?? -1;
  return sig.value.length === 65 ? sig.value[64]! : SIGHASH_DEFAULT;
}

/** BIP66: the DER encoding is the canonical one (noble re-encodes minimally). */
function isStrictDer(der: Uint8Array): boolean {
  try {
    const canonical = secp256k1.Signature.fromBytes(der, "der").toBytes("der");
    return hex.encode(canonical) === hex.encode(der);
  } catch {
    return false;
  }
}

/** Position of `sig` among the checks `verifyInputSignatures` returns for a non-final input. */
function checkOf(
  tx: Transaction,
  sig: NewSignature,
  reports: Map<number, SignatureCheck[]>,
): SignatureCheck | undefined {
  const input = tx.getInput(sig.input);
  let checks = reports.get(sig.input);
  if (checks === undefined) {
    checks = verifyInputSignatures(tx, sig.input).signatures;
    reports.set(sig.input, checks);
  }
  const partial = input.partialSig ?? [];
  if (sig.keyType === IN_PARTIAL_SIG) {
    return checks[partial.findIndex(([pk]) => hex.encode(pk) === hex.encode(sig.keyData))];
  }
  const afterKeySig = partial.length + (input.tapKeySig === undefined ? 0 : 1);
  if (sig.keyType === IN_TAP_KEY_SIG) return checks[partial.length];
  const keyData = hex.encode(sig.keyData);
  const k = (input.tapScriptSig ?? []).findIndex(([key]) =>
    hex.encode(key.pubKey) + hex.encode(key.leafHash) === keyData
  );
  return k < 0 ? undefined : checks[afterKeySig + k];
}

function verifyAdded(
  tx: Transaction,
  sig: NewSignature,
  key: Uint8Array,
  reports: Map<number, SignatureCheck[]>,
): AddedSignature {
  const i = sig.input;
  const at = { input: i };
  const scheme = sig.keyType === IN_PARTIAL_SIG ? "ecdsa" : "schnorr";
  const where = `the new signature on input ${i}`;
  if (scheme === "ecdsa" && (sig.value.length < 2 || !isStrictDer(sig.value.subarray(0, -1)))) {
    throw reject("signature-not-der", `${where} is not strict DER (BIP66)`, at);
  }
  const sighashType = sighashTypeOf(sig);
  // BIP174 Signer: use PSBT_IN_SIGHASH_TYPE when given, SIGHASH_ALL otherwise. Anything weaker
  // (NONE, SINGLE, ANYONECANPAY) would let a third party change the transaction afterwards.
  const declared = tx.getInput(i).sighashType;
  const acceptable = declared !== undefined
    ? sighashType === declared
    : sighashType === SIGHASH_ALL || (scheme === "schnorr" && sighashType === SIGHASH_DEFAULT);
  if (!acceptable) {
    throw reject(
      "sighash-type-mismatch",
      `${where} uses sighash type 0x${sighashType.toString(16).padStart(2, "0")}, not the one ${
        declared === undefined ? "a signer uses by default" : "the input declares"
      }`,
      at,
    );
  }
  const check = checkOf(tx, sig, reports);
  if (check === undefined || check.kind !== scheme) {
    throw reject("signature-unverifiable", `${where} could not be checked`, at);
  }
  if (check.status === "invalid") {
    // signatures.ts reasons name rules ("invalid taproot hash type 0x00"), never key material.
    const reason = check.reason === undefined || check.reason === "signature does not verify"
      ? ""
      : `: ${check.reason}`;
    throw reject("signature-invalid", `${where} does not verify${reason}`, at);
  }
  if (check.status === "unverifiable") {
    throw reject(
      "signature-unverifiable",
      `${where} cannot be verified: ${check.reason ?? "missing data"}`,
      at,
    );
  }
  if (check.lowS === false) {
    throw reject("signature-high-s", `${where} has a high S value (BIP146)`, at);
  }
  return { input: i, pubkeyHex: hex.encode(key), scheme, sighashType };
}
