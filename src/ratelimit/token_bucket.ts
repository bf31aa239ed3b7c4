/**
 * Token-bucket arithmetic, free of I/O: a bucket holds at most `burst` tokens
 * and gains `perMinute / 60` tokens a second. Times are milliseconds passed in
 * by the caller, so the same code serves the database-backed limiter and its
 * local fallback, and tests drive it with a fixed clock.
 *
 * @module
 */
import type { RateDecision, RateRule } from "./rate_limiter.ts";

/**
 * Throw unless `rule` is a usable token-bucket rule.
 *
 * @param rule the rule to check
 */
export function assertRule(rule: RateRule): void {
  if (typeof rule !== "object" || rule === null) {
    throw new TypeError(`Invalid rate rule: expected an object, got ${describe(rule)}`);
  }
  for (const field of ["perMinute", "burst"] as const) {
    const value: unknown = rule[field];
    if (typeof value !== "number") {
      throw new TypeError(`Invalid rate rule: "${field}" must be a number, got ${describe(value)}`);
    }
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(`Invalid rate rule: "${field}" must be positive, got ${value}`);
    }
  }
}

/**
 * Tokens the rule adds per second.
 *
 * @param rule rate and burst
 */
export function refillPerSecond(rule: RateRule): number {
  return rule.perMinute / 60;
}

/**
 * Tokens after `elapsedMs` of refill, capped at the burst. A negative elapsed
 * time (a clock that stepped back) refills nothing.
 *
 * @param tokens tokens at the start
 * @param elapsedMs time since then
 * @param rule rate and burst
 */
export function refilled(tokens: number, elapsedMs: number, rule: RateRule): number {
  const gained = refillPerSecond(rule) * Math.max(0, elapsedMs) / 1000;
  return Math.min(rule.burst, tokens + gained);
}

/**
 * Seconds until a bucket holding `tokens` holds one whole token (0 if it does).
 *
 * @param tokens current tokens
 * @param rule rate and burst
 */
export function secondsUntilToken(tokens: number, rule: RateRule): number {
  return Math.max(0, (1 - tokens) / refillPerSecond(rule));
}

/**
 * Seconds until a bucket holding `tokens` is full again.
 *
 * @param tokens current tokens
 * @param rule rate and burst
 */
export function secondsUntilFull(tokens: number, rule: RateRule): number {
  return Math.max(0, (rule.burst - tokens) / refillPerSecond(rule));
}

/**
 * The decision for a refused request: whole seconds, at least 1, in
 * `retryAfterSeconds` (it becomes `Retry-After`).
 *
 * @param waitSeconds exact time until a token is available
 * @param tokens tokens currently known to be in the bucket
 * @param rule rate and burst
 */
export function refusal(waitSeconds: number, tokens: number, rule: RateRule): RateDecision {
  return {
    allowed: false,
    limit: rule.burst,
    remaining: 0,
    resetSeconds: secondsUntilFull(tokens, rule),
    retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)),
  };
}

/** One in-memory token bucket; the caller supplies the time of each call. */
export class TokenBucket {
  readonly #rule: RateRule;
  #tokens: number;
  #updatedMs: number;

  /**
   * Create a bucket, full unless `tokens` says otherwise.
   *
   * @param rule rate and burst
   * @param nowMs creation time in milliseconds
   * @param tokens initial tokens (default: a full bucket)
   */
  constructor(rule: RateRule, nowMs: number, tokens: number = rule.burst) {
    assertRule(rule);
    if (!Number.isFinite(nowMs)) throw new RangeError(`Invalid time: got ${nowMs}`);
    if (!Number.isFinite(tokens) || tokens < 0) {
      throw new RangeError(`Invalid initial tokens: expected >= 0, got ${tokens}`);
    }
    this.#rule = { perMinute: rule.perMinute, burst: rule.burst };
    this.#tokens = Math.min(rule.burst, tokens);
    this.#updatedMs = nowMs;
  }

  /** Tokens in the bucket at `nowMs`. */
  peek(nowMs: number): number {
    return refilled(this.#tokens, nowMs - this.#updatedMs, this.#rule);
  }

  /**
   * Take one token at `nowMs` if there is one.
   *
   * @param nowMs the current time in milliseconds
   */
  take(nowMs: number): RateDecision {
    this.#tokens = this.peek(nowMs);
    this.#updatedMs = Math.max(this.#updatedMs, nowMs);
    if (this.#tokens < 1) {
      return refusal(secondsUntilToken(this.#tokens, this.#rule), this.#tokens, this.#rule);
    }
    this.#tokens -= 1;
    return {
      allowed: true,
      limit: this.#rule.burst,
      remaining: Math.floor(this.#tokens),
      resetSeconds: secondsUntilFull(this.#tokens, this.#rule),
      retryAfterSeconds: 0,
    };
  }
}

function describe(value: unknown): string {
  return value === null ? "null" : typeof value;
}
