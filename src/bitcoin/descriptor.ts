/**
 * Output script descriptors, the subset the edge can fund a PSBT from: parse a
 * public descriptor, check it against the configured network, and expand it to
 * scriptPubKeys, addresses and the PSBT input fields an external signer (HSM)
 * needs to find its keys.
 *
 * Specs: BIP380 (general syntax, key expressions, checksum,
 * https://github.com/bitcoin/bips/blob/master/bip-0380.mediawiki), BIP381
 * `pkh()`/`sh()`, BIP382 `wpkh()`/`wsh()`, BIP383 `multi()`/`sortedmulti()`,
 * BIP385 `addr()`, BIP386 `tr()` (key path only). BIP174 `PSBT_IN_BIP32_DERIVATION`
 * and BIP371 `PSBT_IN_TAP_BIP32_DERIVATION`/`PSBT_IN_TAP_INTERNAL_KEY` carry the
 * key origins. Key-origin fallbacks follow Bitcoin Core's descriptor.cpp: a key
 * without `[origin]` is its own root (fingerprint of the key, path = the steps).
 *
 * Deliberately narrower than the BIPs: private keys (WIF, xprv/tprv) are
 * refused wherever they appear, so hardened steps after an extended key and
 * hardened wildcards (`/*h`) cannot be derived and are refused too; uncompressed
 * keys, `pk()`, `raw()`, `combo()`, bare and P2SH-only `multi()`, `tr()` script
 * trees and multipath `<a;b>` keys are refused with a message naming the reason;
 * `multi()` takes at most 16 keys, the most `@scure/btc-signer` can finalize.
 *
 * @module
 */
import { hex } from "@scure/base";
import { p2ms, p2pkh, p2sh, p2tr, p2wpkh, p2wsh, utils } from "@scure/btc-signer";
import type { ValidationError } from "../errors/app_error.ts";
import {
  addressToScript,
  assertNetwork,
  describeAddress,
  scriptPubKeyToAddress,
} from "./address.ts";
import type { BitcoinNetwork } from "./network.ts";
import { networkParams } from "./network.ts";
import { classifyScript } from "./script_type.ts";
import type { InputSpend } from "./tx_size.ts";
import type { UtxoInput } from "./psbt_utxo.ts";
import { describeType } from "./_assert.ts";
import {
  type Bip32Der,
  descriptorError as invalid,
  type DescriptorKey,
  keyAt,
  type KeyBase,
  MAX_INDEX,
  parseKey,
  refusePrivateKeys,
} from "./_descriptor_key.ts";

export type { Bip32Der, DescriptorKey, KeyOrigin } from "./_descriptor_key.ts";

/** Most scripts one {@linkcode expandDescriptor} call produces. */
export const MAX_DESCRIPTOR_RANGE = 1000;
/** Longest descriptor text accepted; a 16-key multisig with origins is about 2,600 characters. */
export const MAX_DESCRIPTOR_LENGTH = 8192;

/** Script shapes the edge can fund from. */
export type DescriptorType =
  | "pkh"
  | "wpkh"
  | "sh-wpkh"
  | "tr"
  | "wsh-multi"
  | "sh-wsh-multi"
  | "addr";

/** A checked descriptor; deeply frozen. */
export interface ParsedDescriptor {
  /** The script shape. */
  type: DescriptorType;
  /** The network it was checked against. */
  network: BitcoinNetwork;
  /** The descriptor as given, without `#checksum` (surrounding whitespace trimmed). */
  body: string;
  /** BIP380 checksum of `body`. */
  checksum: string;
  /** True when any key ends in `/*`, so expansion needs a range. */
  ranged: boolean;
  /** Key expressions in written order (empty for `addr()`). */
  keys: readonly DescriptorKey[];
  /** Signatures required, for the multisig types; null otherwise. */
  threshold: number | null;
  /** True for `sortedmulti()`. */
  sorted: boolean;
  /** The address of `addr()`; null otherwise. */
  address: string | null;
}

/** One scriptPubKey of a descriptor with what a PSBT input spending it needs. */
export interface DescriptorScript {
  /** Index in the range for ranged descriptors, null otherwise. */
  index: number | null;
  /** Address on the descriptor's network. */
  address: string;
  /** The scriptPubKey, lowercase hex. */
  scriptPubKeyHex: string;
  /**
   * Fields for `Transaction.addInput` (add `txid`, `index` and the UTXO) so an
   * external signer can find and derive its keys.
   */
  psbtInput: {
    /** `sh(wpkh)`: the P2WPKH program; `sh(wsh)`: the P2WSH program. */
    redeemScript?: Uint8Array;
    /** `wsh(multi)`/`sh(wsh(multi))`: the multisig script. */
    witnessScript?: Uint8Array;
    /** ECDSA keys: [33-byte public key, origin]. */
    bip32Derivation?: [Uint8Array, Bip32Der][];
    /** `tr()`: the x-only internal key. */
    tapInternalKey?: Uint8Array;
    /** `tr()`: [x-only key, { leaf hashes (none for the key path), origin }]. */
    tapBip32Derivation?: [Uint8Array, { hashes: Uint8Array[]; der: Bip32Der }][];
  };
  /**
   * How the input will be satisfied, for size estimation (`tx_size.ts`
   * vocabulary); null for `addr()` of a P2SH, P2WSH or other output whose
   * spending script the address does not reveal.
   */
  spend: InputSpend | null;
  /** The same scripts in `UtxoInput` form, to merge into what `prepareUtxo` takes. */
  utxo: Pick<
    UtxoInput,
    "scriptPubKeyHex" | "redeemScriptHex" | "witnessScriptHex" | "tapInternalKeyHex"
  >;
}

// BIP380 §Checksum: symbol order and generator of the BCH code.
const INPUT_CHARSET =
  "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
const CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];

// OP_CHECKMULTISIG allows 20 keys, but scure's multisig template (and so its finalizer) stops at 16.
const MAX_MULTI_KEYS = 16;
const SUPPORTED =
  "pkh(), wpkh(), sh(wpkh()), tr() without a script tree, wsh(multi()), wsh(sortedmulti()), " +
  "sh(wsh(multi())), sh(wsh(sortedmulti())) and addr()";

const PARSED = new WeakSet<ParsedDescriptor>();
const BASES = new WeakMap<ParsedDescriptor, (KeyBase | null)[]>();

function polymod(symbols: number[]): bigint {
  let chk = 1n;
  for (const value of symbols) {
    const top = chk >> 35n;
    chk = ((chk & 0x7ffffffffn) << 5n) ^ BigInt(value);
    for (let i = 0; i < 5; i++) if ((top >> BigInt(i)) & 1n) chk ^= GENERATOR[i]!;
  }
  return chk;
}

/** BIP380 `descsum_expand`: each character's position in its group, plus a group symbol per 3. */
function expandSymbols(text: string): number[] {
  const symbols: number[] = [];
  const groups: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const v = INPUT_CHARSET.indexOf(text[i]!);
    if (v < 0) throw invalid(`character ${i + 1} is not allowed in a descriptor`);
    symbols.push(v & 31);
    groups.push(v >> 5);
    if (groups.length === 3) {
      symbols.push(groups[0]! * 9 + groups[1]! * 3 + groups[2]!);
      groups.length = 0;
    }
  }
  if (groups.length === 1) symbols.push(groups[0]!);
  else if (groups.length === 2) symbols.push(groups[0]! * 3 + groups[1]!);
  return symbols;
}

/**
 * The BIP380 checksum of a descriptor (`descsum_create`); any `#checksum`
 * already present is ignored.
 *
 * @param text a descriptor, with or without `#checksum`
 * @returns the 8-character checksum
 * @throws ValidationError (422) when the text has a character outside the descriptor set
 */
export function descriptorChecksum(text: string): string {
  if (typeof text !== "string") {
    throw new TypeError(`Invalid text: expected a string, got ${describeType(text)}`);
  }
  if (text.length > MAX_DESCRIPTOR_LENGTH) {
    throw invalid(`longer than ${MAX_DESCRIPTOR_LENGTH} characters`);
  }
  const hash = text.indexOf("#");
  const body = hash < 0 ? text : text.slice(0, hash);
  const c = polymod([...expandSymbols(body), 0, 0, 0, 0, 0, 0, 0, 0]) ^ 1n;
  let out = "";
  for (let i = 0; i < 8; i++) out += CHECKSUM_CHARSET[Number((c >> BigInt(5 * (7 - i))) & 31n)];
  return out;
}

/** Split off and verify a `#checksum`; a descriptor without one is accepted (BIP380). */
function checkChecksum(text: string): { body: string; checksum: string } {
  const hash = text.indexOf("#");
  const body = hash < 0 ? text : text.slice(0, hash);
  const computed = descriptorChecksum(body);
  if (hash < 0) return { body, checksum: computed };
  const given = text.slice(hash + 1);
  if (given.length !== 8 || [...given].some((ch) => !CHECKSUM_CHARSET.includes(ch))) {
    throw invalid("the checksum after '#' must be 8 characters of the bech32 alphabet");
  }
  if (given !== computed) throw invalid("checksum mismatch (the descriptor was altered)");
  return { body, checksum: computed };
}

/** `name(arg,arg,...)` split at top-level commas; null when `expr` is not a call. */
function splitCall(expr: string): { name: string; args: string[] } | null {
  const m = /^([a-z][a-z0-9_]*)\(/.exec(expr);
  if (m === null) return null;
  if (!expr.endsWith(")")) throw invalid(`"${m[1]}(" is not closed by ")" at the end`);
  const args: string[] = [];
  let depth = 0;
  let start = m[0].length;
  for (let i = start; i < expr.length - 1; i++) {
    const ch = expr[i];
    if (ch === "(" || ch === "{" || ch === "[") depth++;
    else if (ch === ")" || ch === "}" || ch === "]") {
      if (--depth < 0) throw invalid(`unbalanced brackets in "${m[1]}()"`);
    } else if (ch === "," && depth === 0) {
      args.push(expr.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw invalid(`unbalanced brackets in "${m[1]}()"`);
  args.push(expr.slice(start, expr.length - 1));
  return { name: m[1]!, args };
}

function unsupported(what: string): ValidationError {
  return invalid(`${what} is not supported for funding (supported: ${SUPPORTED})`);
}

function one(args: string[], name: string): string {
  if (args.length !== 1 || args[0] === "") throw invalid(`${name}() takes exactly one argument`);
  return args[0]!;
}

function parseMulti(
  call: { name: string; args: string[] },
  network: BitcoinNetwork,
): { keys: { key: DescriptorKey; base: KeyBase | null }[]; threshold: number; sorted: boolean } {
  const [k, ...keyTexts] = call.args;
  if (!/^\d{1,3}$/.test(k!)) throw invalid(`${call.name}() threshold must be a number`);
  const threshold = Number(k);
  if (keyTexts.length === 0) throw invalid(`${call.name}() needs at least one key`);
  if (keyTexts.length > MAX_MULTI_KEYS) {
    throw invalid(`${call.name}() takes at most ${MAX_MULTI_KEYS} keys here`);
  }
  if (threshold < 1 || threshold > keyTexts.length) {
    throw invalid(`${call.name}() threshold must be between 1 and the number of keys`);
  }
  const keys = keyTexts.map((t, i) => parseKey(t, false, network, `key ${i + 1}`));
  return { keys, threshold, sorted: call.name === "sortedmulti" };
}

/** `wsh(multi|sortedmulti)` argument; anything else is refused with the BIP's or our reason. */
function parseWshInner(arg: string, network: BitcoinNetwork, outer: string) {
  const inner = splitCall(arg);
  if (inner === null) throw invalid(`${outer}() takes a script expression`);
  if (inner.name === "multi" || inner.name === "sortedmulti") return parseMulti(inner, network);
  if (["wsh", "sh", "tr", "wpkh", "addr", "raw", "combo"].includes(inner.name)) {
    throw invalid(`${inner.name}() cannot be used inside ${outer}()`);
  }
  throw unsupported(`${outer}(${inner.name}())`);
}

interface Draft {
  type: DescriptorType;
  keys: { key: DescriptorKey; base: KeyBase | null }[];
  threshold: number | null;
  sorted: boolean;
  address: string | null;
}

function parseScript(body: string, network: BitcoinNetwork): Draft {
  const call = splitCall(body);
  if (call === null) throw invalid("expected a script expression such as wpkh(...)");
  const { name, args } = call;
  const base = { threshold: null, sorted: false, address: null };
  switch (name) {
    case "pkh":
    case "wpkh": {
      const arg = one(args, name);
      if (splitCall(arg) !== null) throw invalid(`${name}() takes a key, not a script`);
      return { ...base, type: name, keys: [parseKey(arg, false, network, "key")] };
    }
    case "tr": {
      if (args.length === 2) throw invalid("tr() with a script tree is not supported for funding");
      const arg = one(args, name);
      if (splitCall(arg) !== null) throw invalid("tr() takes a key, not a script");
      return { ...base, type: "tr", keys: [parseKey(arg, true, network, "key")] };
    }
    case "sh": {
      const arg = one(args, name);
      const inner = splitCall(arg);
      if (inner === null) throw invalid("sh() takes a script expression");
      if (inner.name === "wpkh") {
        const key = one(inner.args, "wpkh");
        if (splitCall(key) !== null) throw invalid("wpkh() takes a key, not a script");
        return { ...base, type: "sh-wpkh", keys: [parseKey(key, false, network, "key")] };
      }
      if (inner.name === "wsh") {
        const m = parseWshInner(one(inner.args, "wsh"), network, "wsh");
        return { ...base, ...m, type: "sh-wsh-multi" };
      }
      if (["sh", "tr", "addr", "raw", "combo"].includes(inner.name)) {
        throw invalid(`${inner.name}() cannot be used inside sh()`);
      }
      throw unsupported(`sh(${inner.name}())`);
    }
    case "wsh": {
      const m = parseWshInner(one(args, name), network, "wsh");
      return { ...base, ...m, type: "wsh-multi" };
    }
    case "addr": {
      const text = one(args, name);
      const d = describeAddress(text, network);
      if (!d.valid) throw invalid(`addr(): ${d.reason}`);
      return { ...base, type: "addr", keys: [], address: text };
    }
    case "pk":
    case "raw":
    case "combo":
    case "multi":
    case "sortedmulti":
    case "multi_a":
    case "sortedmulti_a":
    case "rawtr":
    case "musig":
      throw unsupported(
        name === "multi" || name === "sortedmulti" ? `bare ${name}()` : `${name}()`,
      );
    default:
      throw invalid(`unknown script expression "${name.slice(0, 20)}()"`);
  }
}

/**
 * Parse a public output descriptor and check it against `network`.
 *
 * @param text the descriptor, with or without a BIP380 `#checksum`
 * @param network the configured network (xpub and mainnet addresses only on mainnet, tpub and
 *   test addresses elsewhere)
 * @returns the parsed, frozen descriptor
 * @throws ValidationError (422) naming the problem; key material is never echoed
 * @example
 * ```ts
 * const d = parseDescriptor("wpkh([d34db33f/84h/1h/0h]tpubD6Nz.../0/*)#abcd1234", "testnet4");
 * expandDescriptor(d, { start: 0, end: 19 }); // 20 scripts, indexes 0..19
 * ```
 */
export function parseDescriptor(text: string, network: BitcoinNetwork): ParsedDescriptor {
  if (typeof text !== "string") {
    throw new TypeError(`Invalid text: expected a string, got ${describeType(text)}`);
  }
  assertNetwork(network);
  const trimmed = text.trim();
  if (trimmed === "") throw invalid("empty");
  if (trimmed.length > MAX_DESCRIPTOR_LENGTH) {
    throw invalid(`longer than ${MAX_DESCRIPTOR_LENGTH} characters`);
  }
  // First, so a descriptor holding a private key always gets this answer, whatever else is wrong.
  refusePrivateKeys(trimmed);
  const { body, checksum } = checkChecksum(trimmed);
  const draft = parseScript(body, network);
  const parsed: ParsedDescriptor = deepFreeze({
    type: draft.type,
    network,
    body,
    checksum,
    ranged: draft.keys.some((k) => k.key.ranged),
    keys: draft.keys.map((k) => k.key),
    threshold: draft.threshold,
    sorted: draft.sorted,
    address: draft.address,
  });
  const bases = draft.keys.map((k) => k.base);
  // One trial script now, so problems that only show once keys are combined (a multisig key
  // repeated) are reported when the descriptor is submitted, not when it is first expanded.
  scriptAt(parsed, bases, parsed.ranged ? 0 : null);
  PARSED.add(parsed);
  BASES.set(parsed, bases);
  return parsed;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function checkRange(range: { start: number; end: number }): void {
  if (typeof range !== "object" || range === null) {
    throw new TypeError(`Invalid range: expected { start, end }, got ${describeType(range)}`);
  }
  for (const field of ["start", "end"] as const) {
    if (!Number.isSafeInteger(range[field])) {
      throw new TypeError(
        `Invalid range.${field}: expected an integer, got ${describeType(range[field])}`,
      );
    }
  }
  const { start, end } = range;
  if (start < 0 || end > MAX_INDEX) {
    throw invalid(`range must lie within 0..${MAX_INDEX} (unhardened indexes)`, "range");
  }
  if (end < start) throw invalid("range end is before its start", "range");
  if (end - start + 1 > MAX_DESCRIPTOR_RANGE) {
    throw invalid(`range covers more than ${MAX_DESCRIPTOR_RANGE} indexes`, "range");
  }
}

/**
 * Expand a descriptor to its scripts. Ranged descriptors give one script per
 * index in `range`; others give their one script (index null) and ignore `range`
 * beyond checking it.
 *
 * @param d a descriptor returned by {@linkcode parseDescriptor} (that object, not a copy)
 * @param range indexes to derive, both ends inclusive as in Bitcoin Core's `range`
 *   (`{ start: 0, end: 19 }` is 20 scripts); at most {@linkcode MAX_DESCRIPTOR_RANGE}, below 2^31
 * @returns the scripts in index order
 * @throws ValidationError (422) for a range over the limits or keys that collide in a multisig
 */
export function expandDescriptor(
  d: ParsedDescriptor,
  range: { start: number; end: number },
): DescriptorScript[] {
  if (typeof d !== "object" || d === null || !PARSED.has(d)) {
    throw new TypeError(
      `Invalid descriptor: expected a value returned by parseDescriptor(), got ${describeType(d)}`,
    );
  }
  checkRange(range);
  const bases = BASES.get(d)!;
  const indexes = d.ranged
    ? Array.from({ length: range.end - range.start + 1 }, (_, i) => range.start + i)
    : [null];
  return indexes.map((index) => scriptAt(d, bases, index));
}

function scriptAt(
  d: ParsedDescriptor,
  bases: (KeyBase | null)[],
  index: number | null,
): DescriptorScript {
  const params = networkParams(d.network);
  const keys = d.keys.map((k, i) => keyAt(k, bases[i] ?? null, index ?? 0));
  const psbtInput: DescriptorScript["psbtInput"] = {};
  let script: Uint8Array;
  let spend: InputSpend | null;
  switch (d.type) {
    case "pkh":
    case "wpkh":
    case "sh-wpkh": {
      const { pubkey, der } = keys[0]!;
      psbtInput.bip32Derivation = [[pubkey, der]];
      if (d.type === "pkh") {
        script = p2pkh(pubkey, params).script;
        spend = { kind: "p2pkh" };
      } else if (d.type === "wpkh") {
        script = p2wpkh(pubkey, params).script;
        spend = { kind: "p2wpkh" };
      } else {
        const inner = p2wpkh(pubkey, params);
        script = p2sh(inner, params).script;
        psbtInput.redeemScript = inner.script;
        spend = { kind: "p2sh-p2wpkh" };
      }
      break;
    }
    case "tr": {
      const { pubkey, der } = keys[0]!;
      const xonly = pubkey.length === 33 ? pubkey.slice(1) : pubkey;
      // BIP386 tr(KEY): key path only, output key tweaked with an empty script tree.
      script = p2tr(xonly, undefined, params).script;
      psbtInput.tapInternalKey = xonly;
      psbtInput.tapBip32Derivation = [[xonly, { hashes: [], der }]];
      spend = { kind: "p2tr-keypath" };
      break;
    }
    case "wsh-multi":
    case "sh-wsh-multi": {
      const ordered = d.sorted
        ? [...keys].sort((a, b) => utils.compareBytes(a.pubkey, b.pubkey))
        : keys;
      checkDistinct(ordered.map((k) => k.pubkey), index);
      const ms = p2ms(d.threshold!, ordered.map((k) => k.pubkey));
      const wsh = p2wsh(ms, params);
      psbtInput.witnessScript = ms.script;
      psbtInput.bip32Derivation = ordered.map((k) => [k.pubkey, k.der]);
      const scriptBytes = ms.script.length;
      if (d.type === "wsh-multi") {
        script = wsh.script;
        spend = { kind: "p2wsh-multisig", m: d.threshold!, scriptBytes };
      } else {
        script = p2sh(wsh, params).script;
        psbtInput.redeemScript = wsh.script;
        spend = { kind: "p2sh-p2wsh-multisig", m: d.threshold!, scriptBytes };
      }
      break;
    }
    case "addr": {
      script = addressToScript(d.address!, d.network)!;
      spend = addrSpend(script);
      break;
    }
  }
  return {
    index,
    address: scriptPubKeyToAddress(script, d.network)!,
    scriptPubKeyHex: hex.encode(script),
    psbtInput,
    spend,
    utxo: {
      scriptPubKeyHex: hex.encode(script),
      ...(psbtInput.redeemScript ? { redeemScriptHex: hex.encode(psbtInput.redeemScript) } : {}),
      ...(psbtInput.witnessScript ? { witnessScriptHex: hex.encode(psbtInput.witnessScript) } : {}),
      ...(psbtInput.tapInternalKey
        ? { tapInternalKeyHex: hex.encode(psbtInput.tapInternalKey) }
        : {}),
    },
  };
}

/** OP_CHECKMULTISIG with a repeated key is legal but almost surely a mistake, and scure refuses it. */
function checkDistinct(pubkeys: Uint8Array[], index: number | null): void {
  const seen = new Set<string>();
  for (const pk of pubkeys) {
    const h = hex.encode(pk);
    if (seen.has(h)) {
      const at = index === null ? "" : ` at index ${index}`;
      throw invalid(`multisig keys must be distinct; two keys are the same${at}`);
    }
    seen.add(h);
  }
}

/** Only single-key outputs reveal how they are spent; taproot is assumed to use its key path. */
function addrSpend(script: Uint8Array): InputSpend | null {
  switch (classifyScript(script)) {
    case "p2pkh":
      return { kind: "p2pkh" };
    case "p2wpkh":
      return { kind: "p2wpkh" };
    case "p2tr":
      return { kind: "p2tr-keypath" };
    default:
      return null;
  }
}
