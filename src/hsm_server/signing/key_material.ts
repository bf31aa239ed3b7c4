/**
 * Secret key material of the HSM: generation, and the in-memory
 * {@linkcode SigningKey} that derives keys from it.
 *
 * Specs:
 * - BIP32 "Master key generation" (HMAC-SHA512 of a seed keyed with
 *   "Bitcoin seed"), "Child key derivation" and "Serialization format"
 *   (xpub/tpub version bytes, key fingerprint = first 32 bits of
 *   HASH160(compressed public key)),
 *   https://github.com/bitcoin/bips/blob/master/bip-0032.mediawiki
 * - SEC1 §2.3.3 compressed points; secp256k1 secret keys are 1..n-1.
 *
 * Material formats (what gets sealed at rest):
 * - `bip32`: 64 bytes, master chain code ‖ master private key. Storing the
 *   master rather than the seed lets an existing extended private key be
 *   imported, and costs nothing: the seed is only ever HMAC'd into it.
 * - `single`: the 32-byte private key.
 *
 * The derivation math is `@scure/bip32`'s and `@noble/curves`'; nothing here
 * is hand-rolled. Private bytes never enter messages or errors.
 *
 * @module
 */
import { HDKey, type Versions } from "@scure/bip32";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import { assertNetwork } from "../../bitcoin/address.ts";
import { assertDerivationPath } from "../../bitcoin/derivation_path.ts";

/** The two kinds of key the HSM holds. */
export type KeyKind = "bip32" | "single";

/** Every {@linkcode KeyKind}. */
export const KEY_KINDS: readonly KeyKind[] = Object.freeze(["bip32", "single"]);

/** Bytes of `bip32` material: chain code (32) ‖ private key (32). */
export const BIP32_MATERIAL_BYTES = 64;
/** Bytes of `single` material: the private key. */
export const SINGLE_MATERIAL_BYTES = 32;

// BIP32 "Serialization format": mainnet xprv/xpub, testnet tprv/tpub (also used by signet/regtest).
const MAINNET_VERSIONS: Versions = Object.freeze({ private: 0x0488ade4, public: 0x0488b21e });
const TEST_VERSIONS: Versions = Object.freeze({ private: 0x04358394, public: 0x043587cf });
// BIP32 seeds are 128..512 bits; 256 is the advised size.
const SEED_BYTES = 32;
// A CSPRNG returns an invalid key (0 or ≥ n, chance ~2^-128) essentially never; a loop that keeps
// failing means the RNG is broken, and signing with its output must not happen.
const MAX_GENERATION_ATTEMPTS = 16;

/**
 * A key opened for signing. It holds a copy of the private material until
 * {@linkcode SigningKey.dispose} zeroes it; every method throws afterwards.
 */
export interface SigningKey {
  /** `bip32` (a BIP32 root) or `single` (one private key). */
  readonly kind: KeyKind;
  /** Network the key was opened for (decides xpub vs tpub). */
  readonly network: BitcoinNetwork;
  /**
   * Key fingerprint as an unsigned 32-bit integer: the first 4 bytes of
   * HASH160 of the (master) public key, big-endian, as BIP32 and PSBT
   * derivation records use it. For single keys, what Core records for an
   * imported key.
   */
  readonly fingerprint: number;
  /** {@linkcode SigningKey.fingerprint} as 8 lowercase hex digits. */
  readonly fingerprintHex: string;
  /** Compressed 33-byte public key of the root (a fresh copy on each read). */
  readonly publicKey: Uint8Array;
  /** Master extended public key (xpub on mainnet, tpub elsewhere); null for single keys. */
  readonly xpub: string | null;
  /** True once {@linkcode SigningKey.dispose} ran. */
  readonly disposed: boolean;
  /**
   * The private key at `path`. The caller owns the returned copy and must
   * zero it (`fill(0)`) after use.
   *
   * @param path child indexes from the root, hardened ones ≥ 2^31 (`HARDENED_OFFSET`); `[]` for single keys
   * @throws TypeError / RangeError on a malformed path, or any non-empty path for a single key
   */
  privateKeyAt(path: readonly number[]): Uint8Array;
  /**
   * The compressed 33-byte public key at `path`.
   *
   * @param path as for {@linkcode SigningKey.privateKeyAt}
   * @throws TypeError / RangeError on a malformed path, or any non-empty path for a single key
   */
  publicKeyAt(path: readonly number[]): Uint8Array;
  /** Zero the private material held; idempotent. */
  dispose(): void;
}

/**
 * Fresh secret material of `kind`, from the platform CSPRNG.
 *
 * - `bip32`: a 32-byte random seed turned into a master key by BIP32 master
 *   key generation; returns chain code ‖ private key (64 bytes). The seed is
 *   zeroed.
 * - `single`: 32 random bytes, drawn again until they are a valid secp256k1
 *   secret key.
 *
 * @param kind which kind of key
 * @returns the material; the caller seals it and then zeroes it
 * @throws TypeError when `kind` is not a {@linkcode KeyKind}
 * @example
 * ```ts
 * const material = generateKeyMaterial("bip32");
 * const sealed = await store.seal(material, { keyId, version: 1 });
 * material.fill(0);
 * ```
 */
export function generateKeyMaterial(kind: KeyKind): Uint8Array {
  assertKind(kind, "generateKeyMaterial");
  for (let attempt = 0; attempt < MAX_GENERATION_ATTEMPTS; attempt++) {
    if (kind === "single") {
      const key = crypto.getRandomValues(new Uint8Array(SINGLE_MATERIAL_BYTES));
      if (secp256k1.utils.isValidSecretKey(key)) return key;
      key.fill(0);
      continue;
    }
    const seed = crypto.getRandomValues(new Uint8Array(SEED_BYTES));
    let master: HDKey | undefined;
    try {
      master = HDKey.fromMasterSeed(seed);
    } catch {
      // BIP32: an HMAC output outside 1..n-1 is an invalid master key; draw another seed.
      continue;
    } finally {
      seed.fill(0);
    }
    const material = masterMaterial(master);
    master.wipePrivateData();
    return material;
  }
  throw new Error(
    "generateKeyMaterial(): the random number generator keeps returning invalid keys",
  );
}

/**
 * The `bip32` material of an existing BIP32 root (its chain code ‖ private key).
 *
 * @param seed a BIP32 seed, 16..64 bytes (e.g. a BIP39 seed)
 * @returns the 64-byte material; the caller zeroes `seed` and the result when done
 * @throws TypeError / RangeError on a seed of the wrong type or size
 * @throws Error in the ~2^-127 case that the seed gives an invalid master key
 */
export function bip32MaterialFromSeed(seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array)) {
    throw new TypeError(
      `bip32MaterialFromSeed(): "seed" must be a Uint8Array, got ${typeOf(seed)}`,
    );
  }
  if (seed.length < 16 || seed.length > 64) {
    throw new RangeError(
      `bip32MaterialFromSeed(): "seed" must be 16..64 bytes, got ${seed.length}`,
    );
  }
  const master = HDKey.fromMasterSeed(seed);
  try {
    return masterMaterial(master);
  } finally {
    master.wipePrivateData();
  }
}

/**
 * Open key material for signing. The material is copied; the caller may zero
 * its buffer right after.
 *
 * @param kind the material's kind
 * @param material 64 bytes for `bip32`, 32 for `single` (see the module doc)
 * @param network decides the extended key version bytes (xpub on mainnet, tpub elsewhere)
 * @returns the key; call {@linkcode SigningKey.dispose} when done
 * @throws TypeError / RangeError on a wrong kind, network or material size
 * @throws RangeError when the material holds an invalid secp256k1 private key
 * @example
 * ```ts
 * const material = await store.unseal(row.sealed, { keyId, version });
 * const key = openKey("bip32", material, "mainnet");
 * material.fill(0);
 * try {
 *   return signPsbt(tx, key, { network: "mainnet" });
 * } finally {
 *   key.dispose();
 * }
 * ```
 */
export function openKey(
  kind: KeyKind,
  material: Uint8Array,
  network: BitcoinNetwork,
): SigningKey {
  assertKind(kind, "openKey");
  if (!(material instanceof Uint8Array)) {
    throw new TypeError(`openKey(): "material" must be a Uint8Array, got ${typeOf(material)}`);
  }
  assertNetwork(network);
  const expected = kind === "bip32" ? BIP32_MATERIAL_BYTES : SINGLE_MATERIAL_BYTES;
  if (material.length !== expected) {
    throw new RangeError(
      `openKey(): "${kind}" material must be ${expected} bytes, got ${material.length}`,
    );
  }
  const secret = kind === "bip32" ? material.subarray(32) : material;
  // Checked before anything is built so the error cannot come from deeper down with key bytes.
  if (!secp256k1.utils.isValidSecretKey(secret)) {
    throw new RangeError("openKey(): the material does not hold a valid secp256k1 private key");
  }
  return kind === "bip32"
    ? new Bip32Key(material.subarray(0, 32), secret, network)
    : new SingleKey(secret, network);
}

/**
 * BIP32 key fingerprint of a compressed public key: first 4 bytes of its HASH160, big-endian.
 *
 * @param publicKey 33-byte compressed public key
 */
export function keyFingerprint(publicKey: Uint8Array): number {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 33) {
    throw new TypeError(
      `keyFingerprint(): "publicKey" must be a 33-byte Uint8Array, got ${typeOf(publicKey)}`,
    );
  }
  const id = ripemd160(sha256(publicKey));
  return new DataView(id.buffer, id.byteOffset, 4).getUint32(0, false);
}

function masterMaterial(master: HDKey): Uint8Array {
  const chainCode = master.chainCode;
  const privateKey = master.privateKey;
  if (chainCode === null || privateKey === null) throw new Error("BIP32 master key is incomplete");
  const material = new Uint8Array(BIP32_MATERIAL_BYTES);
  material.set(chainCode, 0);
  material.set(privateKey, 32);
  privateKey.fill(0);
  return material;
}

/** Shared bookkeeping: identity, disposal and path checks. */
abstract class BaseKey implements SigningKey {
  abstract readonly kind: KeyKind;
  readonly network: BitcoinNetwork;
  readonly fingerprint: number;
  readonly fingerprintHex: string;
  readonly #publicKey: Uint8Array;
  #disposed = false;

  constructor(publicKey: Uint8Array, network: BitcoinNetwork) {
    this.network = network;
    this.#publicKey = Uint8Array.from(publicKey);
    this.fingerprint = keyFingerprint(this.#publicKey);
    this.fingerprintHex = this.fingerprint.toString(16).padStart(8, "0");
  }

  get publicKey(): Uint8Array {
    return Uint8Array.from(this.#publicKey);
  }

  abstract get xpub(): string | null;

  get disposed(): boolean {
    return this.#disposed;
  }

  privateKeyAt(path: readonly number[]): Uint8Array {
    this.#assertUsable(path);
    return this.derivePrivate(path);
  }

  publicKeyAt(path: readonly number[]): Uint8Array {
    this.#assertUsable(path);
    if (path.length === 0) return this.publicKey;
    return this.derivePublic(path);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.wipe();
  }

  protected abstract derivePrivate(path: readonly number[]): Uint8Array;
  protected abstract derivePublic(path: readonly number[]): Uint8Array;
  protected abstract wipe(): void;

  #assertUsable(path: readonly number[]): void {
    if (this.#disposed) throw new Error(`SigningKey ${this.fingerprintHex} was disposed`);
    assertDerivationPath(path);
  }
}

class SingleKey extends BaseKey {
  readonly kind = "single" as const;
  readonly #privateKey: Uint8Array;

  constructor(privateKey: Uint8Array, network: BitcoinNetwork) {
    super(secp256k1.getPublicKey(privateKey, true), network);
    this.#privateKey = Uint8Array.from(privateKey);
  }

  get xpub(): null {
    return null;
  }

  protected derivePrivate(path: readonly number[]): Uint8Array {
    assertRootOnly(path);
    return Uint8Array.from(this.#privateKey);
  }

  protected derivePublic(path: readonly number[]): Uint8Array {
    assertRootOnly(path);
    return this.publicKey;
  }

  protected wipe(): void {
    this.#privateKey.fill(0);
  }
}

class Bip32Key extends BaseKey {
  readonly kind = "bip32" as const;
  readonly #master: HDKey;
  readonly #xpub: string;
  readonly #nodes = new Map<string, HDKey>();
  // Public keys by path: public data, and ownership checks ask for the same leaves each request.
  readonly #publicLeaves = new Map<string, Uint8Array>();

  constructor(chainCode: Uint8Array, privateKey: Uint8Array, network: BitcoinNetwork) {
    // HDKey copies both buffers, so the caller's material can be zeroed independently.
    const master = new HDKey({
      versions: network === "mainnet" ? MAINNET_VERSIONS : TEST_VERSIONS,
      chainCode,
      privateKey,
    });
    const publicKey = master.publicKey;
    if (publicKey === null) throw new Error("BIP32 master key has no public key");
    super(publicKey, network);
    this.#master = master;
    this.#xpub = master.publicExtendedKey;
  }

  get xpub(): string {
    return this.#xpub;
  }

  protected derivePrivate(path: readonly number[]): Uint8Array {
    return this.#withChild(path, (child) => child.privateKey);
  }

  protected derivePublic(path: readonly number[]): Uint8Array {
    const id = pathKey(path, path.length);
    const known = this.#publicLeaves.get(id);
    if (known !== undefined) return Uint8Array.from(known);
    const derived = this.#withChild(path, (child) => child.publicKey);
    if (this.#publicLeaves.size >= MAX_CACHED_PUBLIC_KEYS) this.#publicLeaves.clear();
    this.#publicLeaves.set(id, Uint8Array.from(derived));
    return derived;
  }

  protected wipe(): void {
    this.#publicLeaves.clear();
    this.#clearNodes();
    this.#master.wipePrivateData();
  }

  /**
   * Derive down `path` and read what `pick` wants from the node there.
   *
   * Every node derived (each proper prefix and the leaf) is kept until
   * {@linkcode SigningKey.dispose}: the inputs of one PSBT share their account
   * path, a wallet signs with the same addresses again, and re-deriving each
   * level per input and per step (ownership check, then signing) dominated
   * signing time. Keeping them adds no exposure: each is a function of the
   * master key held anyway, and dispose wipes them with it.
   */
  #withChild(path: readonly number[], pick: (child: HDKey) => Uint8Array | null): Uint8Array {
    if (path.length === 0) return picked(pick(this.#master));
    let node = this.#master;
    let depth = 0;
    for (let d = path.length; d > 0; d--) {
      const cached = this.#nodes.get(pathKey(path, d));
      if (cached !== undefined) {
        node = cached;
        depth = d;
        break;
      }
    }
    for (; depth < path.length; depth++) {
      node = node.deriveChild(path[depth]!);
      this.#remember(pathKey(path, depth + 1), node);
    }
    return picked(pick(node));
  }

  #remember(key: string, node: HDKey): void {
    // Bounded: past this many paths, derive afresh rather than grow without end.
    if (this.#nodes.size >= MAX_CACHED_NODES) this.#clearNodes();
    this.#nodes.set(key, node);
  }

  #clearNodes(): void {
    for (const node of this.#nodes.values()) node.wipePrivateData();
    this.#nodes.clear();
  }
}

/** Derived nodes (accounts and leaves) a {@linkcode Bip32Key} keeps (see `#withChild`). */
const MAX_CACHED_NODES = 4096;
/** Derived public keys a {@linkcode Bip32Key} keeps. */
const MAX_CACHED_PUBLIC_KEYS = 4096;

function picked(bytes: Uint8Array | null): Uint8Array {
  if (bytes === null) throw new Error("BIP32 derivation lost its key");
  return bytes;
}

function pathKey(path: readonly number[], depth: number): string {
  return path.slice(0, depth).join("/");
}

function assertRootOnly(path: readonly number[]): void {
  if (path.length !== 0) {
    throw new RangeError(
      `Invalid path: a single key has no children, expected [] but got ${path.length} levels`,
    );
  }
}

function assertKind(kind: unknown, fn: string): asserts kind is KeyKind {
  if (kind !== "bip32" && kind !== "single") {
    throw new TypeError(`${fn}(): "kind" must be "bip32" or "single", got ${typeOf(kind)}`);
  }
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (typeof value === "string") return JSON.stringify(value.slice(0, 20));
  return typeof value;
}
