/**
 * `Idempotency-Key` handling for unsafe routes (draft-ietf-httpapi-idempotency-key-header).
 * Mount after `authenticate` (keys are scoped per tenant) and after the body
 * limit (the body is hashed). Thin glue: the records live in `src/idempotency`.
 */
import { createMiddleware } from "hono/factory";
import type { MiddlewareHandler } from "hono";
import type { StatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../_env.ts";
import type { IdempotencyStore } from "../../src/idempotency/mod.ts";
import {
  IDEMPOTENCY_KEY_HEADER,
  parseIdempotencyKey,
  requestFingerprint,
} from "../../src/idempotency/mod.ts";
import { ValidationError } from "../../src/errors/mod.ts";
import type { Logger } from "../../src/obs/logger.ts";

/** Options for {@linkcode idempotency}. */
export interface IdempotencyOptions {
  /** Refuse requests without the header (400) instead of running them unprotected. */
  required: boolean;
  /** Record lifetime (config `idempotency.ttlHours`). */
  ttlHours: number;
  /** Lock on a running request; must exceed the request timeout. */
  lockMs: number;
  /** Receives failures to store or release a record. */
  logger?: Logger;
}

/** Header set on replayed responses. */
export const IDEMPOTENCY_REPLAYED_HEADER = "Idempotency-Replayed";

/** Response headers stored and replayed; per-request ones (request id, rate limits) are not. */
const REPLAYED_HEADERS = ["content-type", "content-language", "content-location", "location"];

/** Statuses whose response has no body. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Client errors that say "not now" rather than "never": not stored, so a retry
 * with the same key runs again.
 */
const TRANSIENT_STATUSES = new Set([408, 425, 429]);

/**
 * Run the request once per `Idempotency-Key`: the first request runs and its
 * response (status < 500) is stored; retries with the same key and request get
 * that response back with `Idempotency-Replayed: true`.
 *
 * @param store the idempotency records
 * @param options whether the header is required, record lifetime, lock
 */
export function idempotency(
  store: IdempotencyStore,
  options: IdempotencyOptions,
): MiddlewareHandler<AppEnv> {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header(IDEMPOTENCY_KEY_HEADER);
    if (header === undefined) {
      if (!options.required) return await next();
      throw new ValidationError(
        `Missing ${IDEMPOTENCY_KEY_HEADER} header: send a unique key with this request and reuse it on every retry`,
        { issues: [{ path: `header.${IDEMPOTENCY_KEY_HEADER}`, message: "Required" }] },
      );
    }
    const key = parseIdempotencyKey(header);
    const principal = c.get("principal");
    if (principal === undefined) {
      throw new TypeError("idempotency() needs an authenticated principal: mount it after auth");
    }
    const tenant = principal.tenant;
    const url = new URL(c.req.url);
    const fingerprint = requestFingerprint({
      method: c.req.method,
      path: url.pathname + url.search,
      body: new Uint8Array(await c.req.raw.clone().arrayBuffer()),
    });

    const begun = await store.begin(tenant, key, fingerprint, {
      lockMs: options.lockMs,
      ttlHours: options.ttlHours,
    });
    if (begun.kind === "replay") {
      const body = NULL_BODY_STATUSES.has(begun.status) ? null : new Uint8Array(begun.body);
      return c.newResponse(body, begun.status as StatusCode, {
        ...begun.headers,
        [IDEMPOTENCY_REPLAYED_HEADER]: "true",
      });
    }

    try {
      await next();
    } catch (err) {
      await release();
      throw err;
    }

    const res = c.res;
    if (res.status >= 500 || TRANSIENT_STATUSES.has(res.status)) {
      await release();
      return;
    }
    // Read the body to store it, then hand the client an identical response.
    const body = new Uint8Array(await res.arrayBuffer());
    c.res = new Response(NULL_BODY_STATUSES.has(res.status) ? null : body, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const value = res.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    try {
      const stored = await store.complete(tenant, key, { status: res.status, headers, body });
      if (!stored) {
        options.logger?.warn("Idempotency record was taken over before completion", {
          requestId: c.get("requestId"),
          tenant,
        });
      }
    } catch (err) {
      // The work is done and the client gets its answer; failing the request now
      // would invite a retry that runs it again once the lock lapses.
      options.logger?.error("Could not store idempotent response", {
        requestId: c.get("requestId"),
        tenant,
        error: err instanceof Error ? err.message : String(err),
      });
    }

    async function release(): Promise<void> {
      try {
        await store.release(tenant, key);
      } catch (err) {
        options.logger?.warn("Could not release idempotency key; it frees when its lock lapses", {
          requestId: c.get("requestId"),
          tenant,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  });
}

/** What a route module needs to protect its unsafe routes. */
export interface IdempotencyDeps {
  idempotency: IdempotencyStore;
  logger: Logger;
  idempotencyTtlHours: number;
  idempotencyLockMs: number;
}

/**
 * {@linkcode idempotency} with a route module's settings, the header optional:
 * callers that send it get replays, others run unprotected as before.
 *
 * @param deps the store, logger and config settings
 */
export function optionalIdempotency(deps: IdempotencyDeps): MiddlewareHandler<AppEnv> {
  return idempotency(deps.idempotency, {
    required: false,
    ttlHours: deps.idempotencyTtlHours,
    lockMs: deps.idempotencyLockMs,
    logger: deps.logger,
  });
}
