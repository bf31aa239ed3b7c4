/**
 * Rate limiting: the `RateLimiter` contract, token-bucket arithmetic and the
 * database-backed limiter shared by every instance.
 *
 * @module
 */
export * from "./rate_limiter.ts";
export * from "./token_bucket.ts";
export * from "./db_rate_limiter.ts";
