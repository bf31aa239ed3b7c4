/**
 * Authentication and rate limiting for `/v1`. Thin glue: key checks live in
 * `src/auth`, bucket accounting in `src/ratelimit`.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../_env.ts";
import type { Authenticator } from "../../src/auth/authenticator.ts";
import type { Scope } from "../../src/auth/principal.ts";
import type { RateDecision, RateLimiter, RateRule } from "../../src/ratelimit/rate_limiter.ts";
import { ForbiddenError, RateLimitedError, UnauthorizedError } from "../../src/errors/mod.ts";

/** What the auth middleware needs. */
export interface AuthDeps {
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  rules: { key: RateRule; ip: RateRule };
}

/**
 * Require a valid bearer key, then take a token from the key's bucket.
 * Requests without a valid key spend from their IP's bucket first, so
 * guessing keys is rate limited too.
 */
export function authenticate(deps: AuthDeps) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header("authorization");
    const match = header === undefined ? null : /^Bearer ([!-~]{1,512})$/i.exec(header);
    if (match?.[1] === undefined) {
      await limit(c, deps.rateLimiter, `ip:${c.get("clientIp")}`, deps.rules.ip);
      throw new UnauthorizedError(
        header === undefined
          ? "Missing API key: send Authorization: Bearer <key>"
          : "Malformed Authorization header",
      );
    }
    let principal;
    try {
      principal = await deps.authenticator.authenticate(match[1]);
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        await limit(c, deps.rateLimiter, `ip:${c.get("clientIp")}`, deps.rules.ip);
      }
      throw err;
    }
    c.set("principal", principal);
    await limit(c, deps.rateLimiter, `key:${principal.keyId}`, deps.rules.key);
    await next();
  });
}

/** Rate limit by client IP only (public endpoints). */
export function limitByIp(rateLimiter: RateLimiter, rule: RateRule) {
  return createMiddleware<AppEnv>(async (c, next) => {
    await limit(c, rateLimiter, `ip:${c.get("clientIp")}`, rule);
    await next();
  });
}

async function limit(c: Context<AppEnv>, limiter: RateLimiter, bucket: string, rule: RateRule) {
  const decision = await limiter.take(bucket, rule);
  const headers = rateHeaders(decision);
  if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds, headers);
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
}

function rateHeaders(d: RateDecision): Record<string, string> {
  return {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(Math.max(0, Math.floor(d.remaining))),
    "RateLimit-Reset": String(Math.max(0, Math.ceil(d.resetSeconds))),
  };
}

/** Allow the route only to keys holding `scope`. */
export function requireScope(scope: Scope) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.get("principal");
    if (!principal.scopes.has(scope)) {
      throw new ForbiddenError(`API key lacks the required scope: "${scope}"`, {
        extensions: { requiredScope: scope },
      });
    }
    await next();
  });
}
