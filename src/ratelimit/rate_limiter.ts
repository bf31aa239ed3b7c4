/**
 * The rate-limiter contract the HTTP layer depends on.
 *
 * @module
 */

/** A token-bucket rule: sustained rate and burst size. */
export interface RateRule {
  /** Tokens added per minute: the sustained rate. */
  perMinute: number;
  /** Bucket capacity: how many requests may arrive at once. */
  burst: number;
}

/** The outcome of taking one token. */
export interface RateDecision {
  /** Whether a token was taken and the request may proceed. */
  allowed: boolean;
  /** Bucket size, for `RateLimit-Limit`. */
  limit: number;
  /** Tokens left after this request (best knowledge of this instance). */
  remaining: number;
  /** Seconds until the bucket is full again, for `RateLimit-Reset`. */
  resetSeconds: number;
  /** When refused: whole seconds until a token is available. */
  retryAfterSeconds: number;
}

/** Takes tokens from named buckets (`key:<id>`, `ip:<addr>`). */
export interface RateLimiter {
  /**
   * Take one token from `bucket`.
   *
   * @param bucket bucket name
   * @param rule its rate and burst
   */
  take(bucket: string, rule: RateRule): Promise<RateDecision>;
}
