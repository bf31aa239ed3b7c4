/**
 * Opened signing keys kept between requests, as an HSM keeps a key loaded
 * once it has used it.
 *
 * Why: unsealing a key (AES-GCM under the KEK) and rebuilding its BIP32 nodes
 * for every request cost more than the signatures themselves; a
 * {@linkcode SigningKey} remembers its derived parent nodes, and a kept key
 * keeps them.
 *
 * Exposure: a key stays in memory only while it is used; after `idleMs`
 * without a lease it is disposed (its private bytes zeroed). The cache never
 * decides whether a key may sign: callers read the key's status from the
 * database on every request and lease only versions that are active, and
 * {@linkcode OpenKeyCache.evict} drops a key at once when its status changes.
 * A key in use when evicted is disposed when its last lease ends.
 *
 * @module
 */
import type { SigningKey } from "./key_material.ts";

/** Options of {@linkcode OpenKeyCache}. */
export interface OpenKeyCacheOptions {
  /** Dispose a key this long after its last use; 0 keeps nothing (every lease opens afresh). */
  idleMs: number;
  /** Most keys held; the least recently used is disposed first. */
  maxKeys: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** A key on loan from the cache; `release` it when the request is done. */
export interface KeyLease {
  readonly key: SigningKey;
  release(): void;
}

interface Entry {
  key: SigningKey;
  leases: number;
  lastUsed: number;
  evicted: boolean;
}

/** Opened keys by key id and version. */
export class OpenKeyCache {
  readonly #idleMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** @param options idle time and size bound */
  constructor(options: OpenKeyCacheOptions) {
    if (!Number.isInteger(options.idleMs) || options.idleMs < 0) {
      throw new RangeError('OpenKeyCache: "idleMs" must be an integer ≥ 0');
    }
    if (!Number.isInteger(options.maxKeys) || options.maxKeys < 1) {
      throw new RangeError('OpenKeyCache: "maxKeys" must be an integer ≥ 1');
    }
    this.#idleMs = options.idleMs;
    this.#maxKeys = options.maxKeys;
    this.#now = options.now ?? Date.now;
  }

  /** Keys held now (leased or idle). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Lease version `version` of `keyId`, opening it with `open` when it is not held.
   *
   * @param keyId the key
   * @param version the version, which the caller found active
   * @param open unseals and opens the version
   */
  async lease(
    keyId: string,
    version: number,
    open: () => Promise<SigningKey>,
  ): Promise<KeyLease> {
    this.sweep();
    const id = `${keyId}#${version}`;
    let entry = this.#entries.get(id);
    if (entry === undefined || entry.key.disposed) {
      const key = await open();
      // Another request may have opened it meanwhile; keep one.
      const raced = this.#entries.get(id);
      if (raced !== undefined && !raced.key.disposed) {
        key.dispose();
        entry = raced;
      } else {
        entry = { key, leases: 0, lastUsed: this.#now(), evicted: this.#idleMs === 0 };
        if (!entry.evicted) this.#insert(id, entry);
      }
    } else {
      // Most recently used last: Map keeps insertion order.
      this.#entries.delete(id);
      this.#entries.set(id, entry);
    }
    const held = entry;
    held.leases++;
    held.lastUsed = this.#now();
    let released = false;
    return {
      key: held.key,
      release: () => {
        if (released) return;
        released = true;
        held.leases--;
        held.lastUsed = this.#now();
        if (held.evicted && held.leases === 0) held.key.dispose();
      },
    };
  }

  /**
   * Drop `keyId` (every version, or just `version`) because its status
   * changed; leased ones go when released.
   */
  evict(keyId: string, version?: number): void {
    for (const [id, entry] of this.#entries) {
      const matches = version === undefined
        ? id.startsWith(`${keyId}#`)
        : id === `${keyId}#${version}`;
      if (matches) this.#drop(id, entry);
    }
  }

  /** Dispose the keys idle longer than `idleMs`. */
  sweep(): void {
    const cutoff = this.#now() - this.#idleMs;
    for (const [id, entry] of this.#entries) {
      if (entry.leases === 0 && entry.lastUsed <= cutoff) this.#drop(id, entry);
    }
    if (this.#entries.size === 0) this.#stopSweeper();
  }

  /** Dispose everything (shutdown); leased keys go when released. */
  clear(): void {
    for (const [id, entry] of this.#entries) this.#drop(id, entry);
    this.#stopSweeper();
  }

  #insert(id: string, entry: Entry): void {
    while (this.#entries.size >= this.#maxKeys) {
      const [oldestId, oldest] = this.#entries.entries().next().value!;
      this.#drop(oldestId, oldest);
    }
    this.#entries.set(id, entry);
    if (this.#sweeper === undefined) {
      // An idle key must go even when no request comes to sweep it.
      const timer = setInterval(() => this.sweep(), Math.max(1_000, this.#idleMs / 2));
      Deno.unrefTimer(timer);
      this.#sweeper = timer;
    }
  }

  #drop(id: string, entry: Entry): void {
    this.#entries.delete(id);
    entry.evicted = true;
    if (entry.leases === 0) entry.key.dispose();
  }

  #stopSweeper(): void {
    if (this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
