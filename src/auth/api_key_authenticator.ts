/**
 * Verifies `Authorization: Bearer anya_<env>_<keyId>_<secret>` keys against
 * the `api_keys` table (format and hashing: `api_key.ts`).
 *
 * Per request: parse the key, find its row by key id, compare SHA-256 of the
 * presented key with the stored hash (and, during a rotation grace period, with
 * the previous hash) in constant time, then check revocation and expiry. Every
 * failure raises the same `UnauthorizedError` detail, so a caller cannot tell an
 * unknown key id from a wrong secret, an expired key or a revoked one.
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import { UnauthorizedError, UnavailableError } from "../errors/app_error.ts";
import type { Logger } from "../obs/logger.ts";
import { constantTimeEqual, hashApiKey, parseApiKey } from "./api_key.ts";
import { type ApiKeyRecord, ApiKeyRepo } from "./api_key_repo.ts";
import type { Authenticator } from "./authenticator.ts";
import { isScope, type Principal, type Scope } from "./principal.ts";

/** Default bound on cached keys. */
export const DEFAULT_MAX_CACHE_ENTRIES = 10_000;
/** Default: write `last_used_at` at most once a minute per key. */
export const DEFAULT_LAST_USED_INTERVAL_MS = 60_000;
/** Default: gather last-use times for one second, then write them in one statement. */
export const DEFAULT_LAST_USED_FLUSH_DELAY_MS = 1_000;

/** Options of {@linkcode ApiKeyAuthenticator}. */
export interface ApiKeyAuthenticatorOptions {
  /** The database holding `api_keys`. */
  db: Db;
  /** How long a verified key is trusted without asking the database (`config.auth.cacheTtlMs`); 0 disables the cache. */
  cacheTtlMs: number;
  /** Where failed last-used writes are reported. */
  logger: Logger;
  /** Clock; defaults to the system clock. */
  now?: () => Date;
  /** Most keys held in the cache; the oldest entry is evicted first. */
  maxCacheEntries?: number;
  /** Least time between two `last_used_at` writes for one key. */
  lastUsedIntervalMs?: number;
  /** How long last-use times are gathered before one batched write. */
  lastUsedFlushDelayMs?: number;
}

interface CacheEntry {
  principal: Principal;
  /** Clock time (ms) after which the database must be asked again. */
  freshUntil: number;
  /** Key expiry, or the end of the grace period when the previous secret matched. */
  validUntil: number;
}

const INVALID = "Missing or invalid API key";

/**
 * {@linkcode Authenticator} over the `api_keys` table.
 *
 * **Caching and revocation.** A verified key is cached in-process for
 * `cacheTtlMs` (default 5000 ms), so most requests make no database round trip.
 * The cache is keyed by the SHA-256 of the presented key, so only keys that
 * verified are cached; a wrong, unknown or newly issued key always reaches the
 * database (failures are never cached, so a key created or rotated on another
 * instance works at once). The price: a revocation, a rotation with zero grace
 * or an expiry-shortening change made on another instance takes effect here
 * within `cacheTtlMs`. Changes made through an `ApiKeyService` wired to
 * {@linkcode ApiKeyAuthenticator.invalidate} take effect on this instance at
 * once. Key expiry and grace-period ends are checked on every request, cached
 * or not. The cache holds at most `maxCacheEntries` keys (default 10 000).
 *
 * **Last use.** `last_used_at` is not written per request: each key's use is
 * recorded at most once per `lastUsedIntervalMs` (default 1 min), gathered for
 * `lastUsedFlushDelayMs` and written for all keys in one statement, in the
 * background. Write errors are logged, never surfaced to the request. Call
 * {@linkcode ApiKeyAuthenticator.close} on shutdown to write what is pending.
 *
 * @example
 * ```ts
 * const auth = new ApiKeyAuthenticator({ db, cacheTtlMs: config.auth.cacheTtlMs, logger });
 * const principal = await auth.authenticate(bearerToken);
 * await auth.close();
 * ```
 */
export class ApiKeyAuthenticator implements Authenticator {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #lastUsedIntervalMs: number;
  readonly #flushDelayMs: number;
  /** Keyed by hex SHA-256 of the presented key; insertion order = age. */
  readonly #cache = new Map<string, CacheEntry>();
  /** Key id → its cache keys (a key has two valid secrets during a rotation). */
  readonly #cacheKeysById = new Map<string, Set<string>>();
  /** Concurrent first lookups of one key share one database query. */
  readonly #inflight = new Map<string, Promise<CacheEntry>>();
  /** Key id → clock time (ms) of the last use recorded for writing. */
  readonly #lastRecorded = new Map<string, number>();
  /** Key id → last-use time waiting to be written. */
  readonly #pending = new Map<string, Date>();
  /** Bumped by invalidate(): a lookup that began before it must not be cached. */
  #epoch = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  /**
   * Build an authenticator; call {@linkcode ApiKeyAuthenticator.close} when done.
   *
   * @param options database, cache TTL, logger, clock and limits
   */
  constructor(options: ApiKeyAuthenticatorOptions) {
    const ttl = options.cacheTtlMs;
    if (!Number.isInteger(ttl) || ttl < 0) {
      throw new RangeError(`cacheTtlMs: expected a whole number >= 0, got ${ttl}`);
    }
    const max = options.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxCacheEntries: expected a whole number >= 1, got ${max}`);
    }
    this.#db = options.db;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => new Date());
    this.#ttlMs = ttl;
    this.#maxEntries = max;
    this.#lastUsedIntervalMs = options.lastUsedIntervalMs ?? DEFAULT_LAST_USED_INTERVAL_MS;
    this.#flushDelayMs = options.lastUsedFlushDelayMs ?? DEFAULT_LAST_USED_FLUSH_DELAY_MS;
  }

  /**
   * Verify a bearer key.
   *
   * @param secret the token after `Bearer `
   * @returns the key's principal
   * @throws UnauthorizedError when malformed, unknown, wrong, expired or revoked
   * @throws UnavailableError when the database cannot be asked
   */
  async authenticate(secret: string): Promise<Principal> {
    if (typeof secret !== "string") throw new UnauthorizedError(INVALID);
    const parsed = parseApiKey(secret);
    if (parsed === null) throw new UnauthorizedError(INVALID);
    const presented = hashApiKey(parsed);
    // A Map lookup by digest is not constant-time, but it leaks at most facts
    // about SHA-256 outputs of valid keys, which do not help find a preimage.
    const cacheKey = toHex(presented);
    const now = this.#now().getTime();

    let entry = this.#cache.get(cacheKey);
    if (entry !== undefined && now >= entry.freshUntil) {
      this.#uncache(cacheKey);
      entry = undefined;
    }
    if (entry === undefined) {
      const epoch = this.#epoch;
      let lookup = this.#inflight.get(cacheKey);
      if (lookup === undefined) {
        lookup = this.#lookup(parsed.keyId, presented, now).finally(() =>
          this.#inflight.delete(cacheKey)
        );
        this.#inflight.set(cacheKey, lookup);
      }
      entry = await lookup;
      if (this.#ttlMs > 0 && !this.#closed && epoch === this.#epoch) {
        // The row just read is the newest knowledge of this key: entries cached
        // for its other secret (before a rotation elsewhere) may be stale.
        this.#forget(entry.principal.keyId);
        this.#remember(cacheKey, entry);
      }
    }
    // Checked on every request, so a cached key still stops at its expiry
    // or at the end of its rotation grace period.
    if (this.#now().getTime() >= entry.validUntil) {
      this.#uncache(cacheKey);
      throw new UnauthorizedError(INVALID);
    }
    this.#noteUse(entry.principal.keyId, this.#now());
    return entry.principal;
  }

  /**
   * Forget every cached verification of a key, so its next use asks the
   * database (call after revoking or rotating it in this process).
   *
   * @param keyId the key's id
   */
  invalidate(keyId: string): void {
    this.#epoch += 1;
    this.#forget(keyId);
  }

  /** Write pending last-use times now. Never rejects; failures are logged. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = [...this.#pending].map(([id, at]) => ({ id, at }));
    this.#pending.clear();
    if (batch.length === 0) return this.#flushing;
    // Chained so writes stay ordered and close() can wait for all of them.
    this.#flushing = this.#flushing.then(async () => {
      try {
        await new ApiKeyRepo(this.#db).touchLastUsed(batch);
      } catch (err) {
        this.#logger.error("api key last-used update failed", { keys: batch.length, err });
      }
    });
    return this.#flushing;
  }

  /** Stop the flush timer, write pending last-use times and drop the cache. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    this.#cache.clear();
    this.#cacheKeysById.clear();
    this.#lastRecorded.clear();
  }

  async #lookup(keyId: string, presented: Uint8Array, now: number): Promise<CacheEntry> {
    let row: ApiKeyRecord | null;
    try {
      row = await new ApiKeyRepo(this.#db).getForAuthentication(keyId);
    } catch (err) {
      // Fail closed, but as "unavailable": a database outage is not the caller's fault.
      throw new UnavailableError("Cannot verify API key: database unavailable", { cause: err });
    }
    if (row === null) throw new UnauthorizedError(INVALID);
    const expiresAt = row.expiresAt?.getTime() ?? Infinity;
    let validUntil: number;
    // Compare against both hashes unconditionally so timing does not reveal
    // whether a rotation is in progress or which hash matched.
    const current = constantTimeEqual(presented, row.secretHash);
    const previous = row.prevSecretHash !== null &&
      constantTimeEqual(presented, row.prevSecretHash);
    if (current) {
      validUntil = expiresAt;
    } else if (previous && row.prevSecretExpiresAt !== null) {
      validUntil = Math.min(expiresAt, row.prevSecretExpiresAt.getTime());
    } else {
      throw new UnauthorizedError(INVALID);
    }
    if (row.revokedAt !== null || now >= validUntil) throw new UnauthorizedError(INVALID);
    const scopes = new Set<Scope>(row.scopes.filter(isScope));
    const principal: Principal = Object.freeze({ keyId: row.id, tenant: row.tenant, scopes });
    if (row.lastUsedAt !== null && !this.#lastRecorded.has(row.id)) {
      // Seed from the database so a restart does not rewrite a fresh value.
      this.#setBounded(this.#lastRecorded, row.id, row.lastUsedAt.getTime());
    }
    return { principal, freshUntil: now + this.#ttlMs, validUntil };
  }

  #forget(keyId: string): void {
    for (const k of this.#cacheKeysById.get(keyId) ?? []) this.#cache.delete(k);
    this.#cacheKeysById.delete(keyId);
  }

  #remember(cacheKey: string, entry: CacheEntry): void {
    this.#uncache(cacheKey);
    this.#cache.set(cacheKey, entry);
    const id = entry.principal.keyId;
    const keys = this.#cacheKeysById.get(id) ?? new Set<string>();
    keys.add(cacheKey);
    this.#cacheKeysById.set(id, keys);
    while (this.#cache.size > this.#maxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done === true) break;
      this.#uncache(oldest.value);
    }
  }

  #uncache(cacheKey: string): void {
    const entry = this.#cache.get(cacheKey);
    if (entry === undefined) return;
    this.#cache.delete(cacheKey);
    const id = entry.principal.keyId;
    const keys = this.#cacheKeysById.get(id);
    keys?.delete(cacheKey);
    if (keys?.size === 0) this.#cacheKeysById.delete(id);
  }

  /** Set `key`, moving it to the newest position and evicting the oldest past the bound. */
  #setBounded<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    while (map.size > this.#maxEntries) {
      const oldest = map.keys().next();
      if (oldest.done === true) break;
      map.delete(oldest.value);
    }
  }

  #noteUse(keyId: string, at: Date): void {
    if (this.#closed) return;
    const last = this.#lastRecorded.get(keyId);
    if (last !== undefined && at.getTime() - last < this.#lastUsedIntervalMs) return;
    this.#setBounded(this.#lastRecorded, keyId, at.getTime());
    this.#pending.set(keyId, at);
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, this.#flushDelayMs);
    }
  }
}

function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
