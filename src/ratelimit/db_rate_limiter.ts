/**
 * A rate limiter whose token buckets live in the database (`rate_buckets`), so
 * every instance of the service enforces one shared limit, without a database
 * round trip per request.
 *
 * ## Leases
 *
 * Each instance holds a lease on part of a bucket. When its lease is empty it
 * takes up to `L` tokens from the bucket row in one atomic statement (refill
 * from elapsed time, cap at the burst, grant, write back) and then serves
 * requests from memory. `L = min(leaseTokens, max(1, floor(rate × leaseTtl)))`:
 * a lease never holds more than one lease lifetime's worth of refill, so slow
 * clients do not drain their bucket and idle leases strand little.
 *
 * A lease is used for at most `leaseTtlMs`; after that the instance goes back
 * to the database and hands the unused tokens back in the same statement
 * (still capped at the burst). Tokens of a lease that is evicted, or whose
 * bucket is never seen again, are lost: that errs towards refusing.
 *
 * ## Bound on over-admission
 *
 * Every admitted request spends a token granted once by the database, so the
 * instances never admit more than the bucket minted. What leases add is
 * capacity above the burst: while instances hold leases the row can refill to
 * the full burst, so at any moment at most `burst + N × L` tokens are
 * spendable across `N` instances, instead of `burst`. With the defaults
 * (lease 10 tokens, 2 s) and the key rule (120 burst, 600/min), 3 instances
 * admit at most 30 requests above a single exact bucket.
 *
 * ## Refusals
 *
 * When the database grants nothing, the instance refuses locally until the
 * row has refilled one token (that time is `Retry-After`), so a client
 * hammering an empty bucket costs one round trip per refill, not one per request.
 *
 * ## Clocks
 *
 * Refill uses this instance's clock (`now`), sent with the statement. The row
 * keeps the latest time any instance wrote and elapsed time never goes
 * negative, so an instance whose clock lags refills nothing until it catches
 * up, and one that runs ahead by δ grants at most δ × rate extra tokens once.
 *
 * ## When the database fails: fail open, to a local limit
 *
 * If the statement fails or exceeds `dbTimeoutMs`, the limiter logs a warning
 * and, for `dbRetryMs`, limits each bucket in memory only (seeded with what
 * this instance last knew of the bucket). Refusing every request because the
 * limiter's store is down would turn a database outage into a full API
 * outage, and refusing unauthenticated clients by IP would lock out everyone
 * behind a shared address; the price is that `N` instances admit up to `N`
 * times the limit while the database is away.
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import type { Logger } from "../obs/logger.ts";
import type { RateDecision, RateLimiter, RateRule } from "./rate_limiter.ts";
import {
  assertRule,
  refilled,
  refillPerSecond,
  refusal,
  secondsUntilFull,
  secondsUntilToken,
  TokenBucket,
} from "./token_bucket.ts";
import { withDeadline } from "../util/deadline.ts";

/** Options for {@linkcode DbRateLimiter}. */
export interface DbRateLimiterOptions {
  /** Most tokens one instance takes from a bucket at a time (config `rateLimit.leaseTokens`). */
  leaseTokens: number;
  /** How long a lease may be spent before unused tokens go back (default 2000 ms). */
  leaseTtlMs?: number;
  /** Buckets kept in memory; the least recently used are dropped beyond this (default 10 000). */
  maxBuckets?: number;
  /** Longest wait for the database before falling back to a local limit (default 1000 ms). */
  dbTimeoutMs?: number;
  /** After a database failure, how long to stay on the local limit (default 5000 ms). */
  dbRetryMs?: number;
  /** Clock in milliseconds since the epoch (default `Date.now`). */
  now?: () => number;
  /** Receives the warning when the database fails and the notice when it recovers. */
  logger?: Logger;
}

interface Entry {
  rule: RateRule;
  /** Whole tokens this instance may still spend. */
  lease: number;
  leaseExpiresAt: number;
  /** Tokens the row held right after our last grant, and when. */
  dbTokens: number;
  dbSeenAt: number;
  /** The row has no whole token before this time. */
  refusedUntil: number;
  inflight: Promise<void> | undefined;
  /** In-memory bucket used while the database is unreachable. */
  fallback: TokenBucket | undefined;
}

interface GrantRow {
  granted: number;
  tokens: number;
}

/**
 * One atomic statement: lock the row, refill it from elapsed time (plus any
 * refunded lease), cap at the burst, grant up to the wanted whole tokens and
 * write back; or create the row full minus the grant on first use.
 * `FOR UPDATE` makes a concurrent caller wait and then read the committed row,
 * so grants across instances never exceed what the row holds.
 *
 * $1 bucket, $2 wanted, $3 burst, $4 tokens per second, $5 now (epoch seconds),
 * $6 refund.
 */
const TAKE_SQL = `
WITH cur AS (
  SELECT LEAST($3::float8, tokens + $6::float8
           + $4::float8 * GREATEST(0, $5::float8 - EXTRACT(EPOCH FROM updated_at)::float8)) AS avail,
         updated_at
  FROM rate_buckets WHERE bucket = $1::text FOR UPDATE
), g AS (
  SELECT avail, LEAST($2::float8, floor(avail)) AS n, updated_at FROM cur
), upd AS (
  UPDATE rate_buckets b
  SET tokens = g.avail - g.n, updated_at = GREATEST(g.updated_at, to_timestamp($5::float8))
  FROM g WHERE b.bucket = $1::text
  RETURNING g.n AS granted, b.tokens AS tokens
), ins AS (
  INSERT INTO rate_buckets (bucket, tokens, updated_at)
  SELECT $1::text, $3::float8 - LEAST($2::float8, floor($3::float8)), to_timestamp($5::float8)
  WHERE NOT EXISTS (SELECT 1 FROM cur)
  ON CONFLICT (bucket) DO NOTHING
  RETURNING LEAST($2::float8, floor($3::float8)) AS granted, tokens
)
SELECT granted, tokens FROM upd UNION ALL SELECT granted, tokens FROM ins`;

/** Distributed token buckets over `rate_buckets`, spent locally through leases. */
export class DbRateLimiter implements RateLimiter {
  readonly #db: Db;
  readonly #leaseTokens: number;
  readonly #leaseTtlMs: number;
  readonly #maxBuckets: number;
  readonly #dbTimeoutMs: number;
  readonly #dbRetryMs: number;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #entries = new Map<string, Entry>();
  #degradedUntil = 0;
  #degraded = false;

  /**
   * Create a limiter; it holds only leases in memory, the buckets are in `db`.
   *
   * @param db the shared database
   * @param options lease size and lifetime, memory bound, clock, logger
   */
  constructor(db: Db, options: DbRateLimiterOptions) {
    this.#db = db;
    this.#leaseTokens = positiveInteger("leaseTokens", options.leaseTokens);
    this.#leaseTtlMs = positiveInteger("leaseTtlMs", options.leaseTtlMs ?? 2000);
    this.#maxBuckets = positiveInteger("maxBuckets", options.maxBuckets ?? 10_000);
    this.#dbTimeoutMs = positiveInteger("dbTimeoutMs", options.dbTimeoutMs ?? 1000);
    this.#dbRetryMs = positiveInteger("dbRetryMs", options.dbRetryMs ?? 5000);
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
  }

  /** Buckets currently held in memory (bounded by `maxBuckets`). */
  get trackedBuckets(): number {
    return this.#entries.size;
  }

  /**
   * Take one token from `bucket`, from the local lease when possible.
   *
   * @param bucket bucket name, e.g. `key:<id>` or `ip:<addr>`
   * @param rule its rate and burst
   */
  async take(bucket: string, rule: RateRule): Promise<RateDecision> {
    if (typeof bucket !== "string" || bucket.length === 0) {
      throw new TypeError(`Invalid bucket name: expected a non-empty string, got "${bucket}"`);
    }
    assertRule(rule);
    while (true) {
      const now = this.#now();
      const entry = this.#entry(bucket, rule);
      if (now < this.#degradedUntil) return this.#takeLocally(entry, now);
      if (entry.lease >= 1 && now < entry.leaseExpiresAt) {
        entry.lease -= 1;
        return this.#allowed(entry, now);
      }
      if (now < entry.refusedUntil) {
        return refusal((entry.refusedUntil - now) / 1000, this.#dbView(entry, now), rule);
      }
      // Single flight: one database call per bucket at a time; the others wait
      // for it and then look at the lease again.
      entry.inflight ??= this.#renew(bucket, entry, now).finally(() => {
        entry.inflight = undefined;
      });
      await entry.inflight;
    }
  }

  /** Ask the database for a new lease, returning any unused expired one. */
  async #renew(bucket: string, entry: Entry, now: number): Promise<void> {
    const rule = entry.rule;
    const rate = refillPerSecond(rule);
    const want = Math.max(
      1,
      Math.min(this.#leaseTokens, Math.floor(rate * this.#leaseTtlMs / 1000)),
    );
    // Hand back an expired lease's unused tokens. Forget them locally first: if
    // the statement times out but commits, they must not be returned twice.
    const refund = Math.floor(entry.lease);
    entry.lease = 0;
    let row: GrantRow | undefined;
    try {
      row = await withDeadline(
        this.#grant(bucket, want, rule, now, refund),
        this.#dbTimeoutMs,
        () => {
          throw new Error(`rate_buckets statement exceeded ${this.#dbTimeoutMs} ms`);
        },
      );
    } catch (err) {
      this.#fail(err, now);
      return;
    }
    if (this.#degraded) {
      this.#degraded = false;
      this.#logger?.info("Rate limiter database reachable again: shared limits restored");
    }
    entry.fallback = undefined;
    entry.lease = row.granted;
    entry.leaseExpiresAt = now + this.#leaseTtlMs;
    entry.dbTokens = row.tokens;
    entry.dbSeenAt = now;
    entry.refusedUntil = row.granted >= 1 ? 0 : now + secondsUntilToken(row.tokens, rule) * 1000;
  }

  /** Run the grant statement; retry once if a concurrent first insert won the race. */
  async #grant(
    bucket: string,
    want: number,
    rule: RateRule,
    now: number,
    refund: number,
  ): Promise<GrantRow> {
    const params = [bucket, want, rule.burst, refillPerSecond(rule), now / 1000, refund];
    for (let attempt = 0; attempt < 3; attempt++) {
      const [row] = await this.#db.query<GrantRow>(TAKE_SQL, params);
      if (row !== undefined) return { granted: Number(row.granted), tokens: Number(row.tokens) };
    }
    throw new Error(`rate_buckets statement returned no row for bucket "${bucket}"`);
  }

  #fail(err: unknown, now: number): void {
    this.#degradedUntil = now + this.#dbRetryMs;
    if (!this.#degraded) {
      this.#degraded = true;
      this.#logger?.warn("Rate limiter database unavailable: limiting per instance only", {
        retryInMs: this.#dbRetryMs,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Limit in memory only, starting from what this instance last knew. */
  #takeLocally(entry: Entry, now: number): RateDecision {
    if (entry.fallback === undefined) {
      const known = entry.dbSeenAt === 0
        ? entry.rule.burst
        : entry.lease + this.#dbView(entry, now);
      entry.fallback = new TokenBucket(entry.rule, now, Math.min(entry.rule.burst, known));
      entry.lease = 0;
    }
    return entry.fallback.take(now);
  }

  #allowed(entry: Entry, now: number): RateDecision {
    const rule = entry.rule;
    const left = Math.min(rule.burst, entry.lease + this.#dbView(entry, now));
    return {
      allowed: true,
      limit: rule.burst,
      remaining: Math.floor(left),
      resetSeconds: secondsUntilFull(left, rule),
      retryAfterSeconds: 0,
    };
  }

  /** Estimated tokens in the row now: last seen, plus refill since. */
  #dbView(entry: Entry, now: number): number {
    return refilled(entry.dbTokens, now - entry.dbSeenAt, entry.rule);
  }

  /** The entry for `bucket`, marked most recently used; evicts beyond the bound. */
  #entry(bucket: string, rule: RateRule): Entry {
    let entry = this.#entries.get(bucket);
    if (entry === undefined) {
      entry = {
        rule: { perMinute: rule.perMinute, burst: rule.burst },
        lease: 0,
        leaseExpiresAt: 0,
        dbTokens: 0,
        dbSeenAt: 0,
        refusedUntil: 0,
        inflight: undefined,
        fallback: undefined,
      };
    } else {
      this.#entries.delete(bucket);
      if (entry.rule.perMinute !== rule.perMinute || entry.rule.burst !== rule.burst) {
        entry.rule = { perMinute: rule.perMinute, burst: rule.burst };
        entry.fallback = undefined;
      }
    }
    this.#entries.set(bucket, entry);
    if (this.#entries.size > this.#maxBuckets) this.#evict(entry);
    return entry;
  }

  /** Drop least recently used entries that have no database call in flight. */
  #evict(keep: Entry): void {
    for (const [name, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxBuckets) return;
      if (entry !== keep && entry.inflight === undefined) this.#entries.delete(name);
    }
  }
}

function positiveInteger(name: string, value: number): number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid option "${name}": expected a number, got ${typeof value}`);
  }
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Invalid option "${name}": expected a positive integer, got ${value}`);
  }
  return value;
}
