/**
 * Address validation, scriptPubKey ↔ address conversion and taproot output
 * construction.
 *
 * Specs: base58check P2PKH/P2SH (version bytes per network), BIP173 bech32 for
 * witness v0, BIP350 bech32m for witness v1+ ("Addresses for segwit v1+"),
 * BIP341 "Constructing and spending Taproot outputs" for the output key
 * (`Q = P + H_TapTweak(P || merkle_root)·G`). Decoding and encoding go through
 * `@scure/btc-signer`'s `Address`/`OutScript`; witness versions 2..16 (which
 * scure does not name) are decoded with `@scure/base`'s `bech32m`, checked
 * against BIP350's rules.
 *
 * @module
 */
import { Address, OutScript, p2tr, TaprootControlBlock } from "@scure/btc-signer";
import { bech32, bech32m, createBase58check, hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { BITCOIN_NETWORKS, type BitcoinNetwork, networkParams } from "./network.ts";
import { classifyScript, witnessProgram } from "./script_type.ts";
import { describeType } from "./_assert.ts";

/** Address types `describeAddress` reports. */
export type AddressType =
  | "p2pkh"
  | "p2sh"
  | "p2wpkh"
  | "p2wsh"
  | "p2tr"
  | "p2a"
  | "witness-unknown";

/** A valid address for the configured network. */
export interface ValidAddress {
  /** Always true here. */
  valid: true;
  /** The network asked about. */
  network: BitcoinNetwork;
  /** Output type of the address. */
  type: AddressType;
  /** The scriptPubKey that pays this address, hex. */
  scriptPubKeyHex: string;
  /** Present for segwit addresses. */
  witnessVersion?: number;
}

/** An address that is not valid for the configured network. */
export interface InvalidAddress {
  /** Always false here. */
  valid: false;
  /** Client-safe explanation. */
  reason: string;
  /** Other networks the address is valid for, when it is a well-formed address of one. */
  networks?: BitcoinNetwork[];
}

const MAX_ADDRESS_LENGTH = 90;

/**
 * Check an address against `network` and describe it.
 *
 * @param address the address as given by a client
 * @param network the configured network
 * @returns `{ valid: true, type, scriptPubKeyHex }` or `{ valid: false, reason }`
 * @example
 * ```ts
 * describeAddress("bc1qmpwzkuwsqc9snjvgdt4czhjsnywa5yjdgwyw6k", "mainnet");
 * // { valid: true, network: "mainnet", type: "p2wpkh", scriptPubKeyHex: "0014d85c…", witnessVersion: 0 }
 * ```
 */
export function describeAddress(
  address: string,
  network: BitcoinNetwork,
): ValidAddress | InvalidAddress {
  if (typeof address !== "string") {
    throw new TypeError(`Invalid address: expected a string, got ${describeType(address)}`);
  }
  assertNetwork(network);
  if (address.length === 0) return { valid: false, reason: "Address is empty" };
  if (address.length > MAX_ADDRESS_LENGTH) {
    return { valid: false, reason: `Address is longer than ${MAX_ADDRESS_LENGTH} characters` };
  }
  const script = decodeForNetwork(address, network);
  if (script !== null) {
    const type = classifyScript(script) as AddressType;
    const wp = witnessProgram(script);
    return {
      valid: true,
      network,
      type,
      scriptPubKeyHex: hex.encode(script),
      ...(wp === null ? {} : { witnessVersion: wp.version }),
    };
  }
  const others = BITCOIN_NETWORKS.filter((n) => n !== network && decodeForNetwork(address, n));
  if (others.length > 0) {
    return {
      valid: false,
      reason: `Address is for another network (${others.join(", ")}), not ${network}`,
      networks: others,
    };
  }
  return { valid: false, reason: "Not a valid Bitcoin address (bad encoding or checksum)" };
}

/**
 * The scriptPubKey paying `address` on `network`.
 *
 * @param address an address
 * @param network the network the address must belong to
 * @returns the scriptPubKey, or null when `address` is not valid on `network`
 */
export function addressToScript(address: string, network: BitcoinNetwork): Uint8Array | null {
  if (typeof address !== "string") {
    throw new TypeError(`Invalid address: expected a string, got ${describeType(address)}`);
  }
  assertNetwork(network);
  return decodeForNetwork(address, network);
}

/**
 * The address of a scriptPubKey on `network`, or null when the script has no
 * address form (P2PK, bare multisig, OP_RETURN, non-standard scripts).
 *
 * @param script a scriptPubKey
 * @param network the network whose encoding to use
 */
export function scriptPubKeyToAddress(script: Uint8Array, network: BitcoinNetwork): string | null {
  if (!(script instanceof Uint8Array)) {
    throw new TypeError(`Invalid script: expected a Uint8Array, got ${describeType(script)}`);
  }
  assertNetwork(network);
  const params = networkParams(network);
  const type = classifyScript(script);
  // Encoded from the script bytes: going through scure's `Address` would first
  // decode the script, lifting a P2TR key onto the curve for nothing.
  switch (type) {
    case "p2pkh":
      return base58.encode(concat(params.pubKeyHash, script.subarray(3, 23)));
    case "p2sh":
      return base58.encode(concat(params.scriptHash, script.subarray(2, 22)));
    case "p2wpkh":
    case "p2wsh":
    case "p2tr":
    case "p2a":
    case "witness-unknown": {
      const wp = witnessProgram(script)!;
      // BIP173 bech32 for v0, BIP350 bech32m for v1+.
      const coder = wp.version === 0 ? bech32 : bech32m;
      return coder.encode(params.bech32, [wp.version, ...coder.toWords(wp.program)], false);
    }
    default:
      return null;
  }
}

const base58 = createBase58check(sha256);

function concat(version: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1);
  out[0] = version;
  out.set(payload, 1);
  return out;
}

/** One leaf of a taproot script tree in BIP341 test-vector form. */
export interface TaprootLeafInput {
  /** Leaf script. */
  script: Uint8Array;
  /** Leaf version (0xc0 for tapscript). */
  leafVersion: number;
}

/** A taproot script tree: a leaf or a pair of subtrees (BIP341 vector shape). */
export type TaprootTreeInput = TaprootLeafInput | readonly [TaprootTreeInput, TaprootTreeInput];

/** Output of {@linkcode taprootOutput}. */
export interface TaprootOutputInfo {
  /** The tweaked x-only output key Q. */
  outputKey: Uint8Array;
  /** `OP_1 <Q>`. */
  scriptPubKey: Uint8Array;
  /** bech32m address on the network asked for. */
  address: string;
  /** Merkle root of the script tree, null for key-path-only outputs. */
  merkleRoot: Uint8Array | null;
  /** Control blocks of each leaf, in the tree's depth-first order. */
  controlBlocks: Uint8Array[];
}

/**
 * Build a taproot output from an internal key and an optional script tree
 * (BIP341 `taproot_output_script`).
 *
 * @param internalKey 32-byte x-only internal key P
 * @param tree the script tree, or null for a key-path-only output
 * @param network the network of the address
 */
export function taprootOutput(
  internalKey: Uint8Array,
  tree: TaprootTreeInput | null,
  network: BitcoinNetwork,
): TaprootOutputInfo {
  if (!(internalKey instanceof Uint8Array)) {
    throw new TypeError(
      `Invalid internalKey: expected a Uint8Array, got ${describeType(internalKey)}`,
    );
  }
  if (internalKey.length !== 32) {
    throw new RangeError(`Invalid internalKey: expected 32 bytes, got ${internalKey.length}`);
  }
  assertNetwork(network);
  const params = networkParams(network);
  if (tree === null) {
    const out = p2tr(internalKey, undefined, params);
    return {
      outputKey: out.tweakedPubkey,
      scriptPubKey: out.script,
      address: out.address,
      merkleRoot: null,
      controlBlocks: [],
    };
  }
  // allowUnknownOutputs: BIP341 leaves may hold any script (the vectors use OP_CHECKSIG leaves,
  // future leaf versions and raw data); the commitment math does not depend on the script.
  const out = p2tr(internalKey, toScureTree(tree), params, true);
  return {
    outputKey: out.tweakedPubkey,
    scriptPubKey: out.script,
    address: out.address,
    merkleRoot: out.tapMerkleRoot,
    controlBlocks: (out.tapLeafScript ?? []).map(([cb]) => TaprootControlBlock.encode(cb)),
  };
}

type ScureTree = { script: Uint8Array; leafVersion: number } | ScureTree[];

function toScureTree(tree: TaprootTreeInput): ScureTree {
  if (Array.isArray(tree)) {
    if (tree.length !== 2) throw new RangeError("Invalid taproot tree: a branch has two children");
    return [toScureTree(tree[0]), toScureTree(tree[1])];
  }
  const leaf = tree as TaprootLeafInput;
  if (!(leaf.script instanceof Uint8Array) || !Number.isInteger(leaf.leafVersion)) {
    throw new TypeError("Invalid taproot leaf: expected { script: Uint8Array, leafVersion }");
  }
  return { script: leaf.script, leafVersion: leaf.leafVersion };
}

function decodeForNetwork(address: string, network: BitcoinNetwork): Uint8Array | null {
  const params = networkParams(network);
  try {
    return OutScript.encode(Address(params).decode(address));
  } catch {
    // scure names only v0, v1 (32-byte) and P2A programs; fall through for other versions.
  }
  return decodeFutureWitness(address, params.bech32);
}

/** BIP350 witness versions 1..16 with programs scure does not name (2..40 bytes, bech32m). */
function decodeFutureWitness(address: string, hrp: string): Uint8Array | null {
  if (!address.toLowerCase().startsWith(`${hrp}1`)) return null;
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32m.decode(address as `${string}1${string}`, MAX_ADDRESS_LENGTH);
  } catch {
    return null;
  }
  const [version, ...words] = decoded.words;
  // v0 must be bech32 (BIP173) and is handled by scure; here only v1..16.
  if (decoded.prefix !== hrp || version === undefined || version < 1 || version > 16) return null;
  let program: Uint8Array;
  try {
    program = bech32.fromWords(words);
  } catch {
    return null;
  }
  if (program.length < 2 || program.length > 40) return null;
  const script = new Uint8Array(2 + program.length);
  script[0] = 0x50 + version; // OP_1..OP_16
  script[1] = program.length;
  script.set(program, 2);
  return script;
}

/**
 * Throw a TypeError unless `network` is one of {@linkcode BITCOIN_NETWORKS}.
 *
 * @param network value to check
 */
export function assertNetwork(network: unknown): asserts network is BitcoinNetwork {
  if (typeof network !== "string" || !(BITCOIN_NETWORKS as readonly string[]).includes(network)) {
    throw new TypeError(
      `Invalid network: expected one of ${BITCOIN_NETWORKS.join(", ")}, got ${
        describeType(network)
      }`,
    );
  }
}
