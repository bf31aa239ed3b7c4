/**
 * Durable idempotency records in `idempotency_keys`, following
 * draft-ietf-httpapi-idempotency-key-header: the first request with a key
 * runs; a retry with the same key and the same request gets the stored
 * response; a retry while the first is still running is a 409; the same key
 * with a different request is a 422.
 *
 * Instances hold no state: every decision is one statement on the shared
 * database, timed by the database clock so instances with skewed clocks agree
 * on when a lock or record expires.
 *
 * A `running` row carries a lock (`locked_until`). If the instance running it
 * dies, a retry after the lock expires takes the row over and runs again.
 * `lockMs` must therefore exceed the longest a handler may run (the request
 * timeout): a takeover while the first run is alive would run the request twice.
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import { ConflictError, ValidationError } from "../errors/mod.ts";
import { isIdempotencyKey } from "./idempotency_key.ts";
import type { RequestFingerprint } from "./fingerprint.ts";

/** A response kept for replay. */
export interface StoredResponse {
  /** HTTP status, 100-599 (5xx are never stored). */
  status: number;
  /** Replayed headers (lower-case names). */
  headers: Record<string, string>;
  /** Body bytes, exactly as sent. */
  body: Uint8Array;
}

/** Outcome of {@linkcode IdempotencyStore.begin}. */
export type BeginResult =
  | { kind: "started" }
  | ({ kind: "replay" } & StoredResponse);

/** Options for {@linkcode IdempotencyStore}. */
export interface IdempotencyStoreOptions {
  /** How long records are kept (config `idempotency.ttlHours`; default 24). */
  ttlHours?: number;
}

/** Options for one {@linkcode IdempotencyStore.begin} call. */
export interface BeginOptions {
  /** How long the first request holds the key before a retry may take it over. */
  lockMs: number;
  /** Overrides the store's record lifetime for this key. */
  ttlHours?: number;
}

interface RecordRow {
  method: string;
  path: string;
  request_hash: string;
  state: "running" | "done";
  locked: boolean;
  response_status: number | null;
  response_headers: unknown;
  response_body: Uint8Array | null;
}

/**
 * Claim the key: insert a running row, or replace a row that has expired, or
 * take over a running row of the same request whose lock has lapsed.
 * $1 tenant, $2 key, $3 method, $4 path, $5 body hash, $6 lock ms, $7 ttl hours.
 */
const BEGIN_SQL = `
INSERT INTO idempotency_keys AS k
  (tenant, key, method, path, request_hash, state, locked_until, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, 'running',
  now() + $6::float8 * interval '1 millisecond', now(), now() + $7::float8 * interval '1 hour')
ON CONFLICT (tenant, key) DO UPDATE SET
  method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
  state = 'running', locked_until = EXCLUDED.locked_until, created_at = EXCLUDED.created_at,
  expires_at = EXCLUDED.expires_at,
  response_status = NULL, response_headers = NULL, response_body = NULL
WHERE k.expires_at <= now()
   OR (k.state = 'running' AND k.locked_until <= now()
       AND k.method = EXCLUDED.method AND k.path = EXCLUDED.path
       AND k.request_hash = EXCLUDED.request_hash)
RETURNING 1 AS started`;

const READ_SQL = `
SELECT method, path, request_hash, state, locked_until > now() AS locked,
       response_status, response_headers, response_body
FROM idempotency_keys
WHERE tenant = $1 AND key = $2 AND expires_at > now()`;

/** Idempotency records shared by every instance through the database. */
export class IdempotencyStore {
  readonly #db: Db;
  readonly #ttlHours: number;

  /**
   * Create a store over `db`; it keeps no state of its own.
   *
   * @param db the shared database
   * @param options record lifetime
   */
  constructor(db: Db, options: IdempotencyStoreOptions = {}) {
    this.#db = db;
    this.#ttlHours = positive("ttlHours", options.ttlHours ?? 24);
  }

  /**
   * Start processing `key` for `tenant`, or return the stored response of the
   * request that already used it.
   *
   * @param tenant owner of the key; keys of different tenants never meet
   * @param key the client's idempotency key
   * @param fingerprint method, path and body hash of this request
   * @param options lock duration and optional lifetime
   * @returns `started` (run the request, then `complete` or `release`) or `replay`
   * @throws {ConflictError} 409 `idempotency-in-progress` while the first request runs
   * @throws {ValidationError} 422 when the key was used with a different request
   */
  async begin(
    tenant: string,
    key: string,
    fingerprint: RequestFingerprint,
    options: BeginOptions,
  ): Promise<BeginResult> {
    checkIds(tenant, key);
    checkFingerprint(fingerprint);
    const lockMs = positive("lockMs", options.lockMs);
    const ttlHours = positive("ttlHours", options.ttlHours ?? this.#ttlHours);
    const { method, path, bodyHash } = fingerprint;
    // The row can change between the two statements (released, expired,
    // lock lapsed); then claiming again decides.
    for (let attempt = 0; attempt < 5; attempt++) {
      const claimed = await this.#db.query(BEGIN_SQL, [
        tenant,
        key,
        method,
        path,
        bodyHash,
        lockMs,
        ttlHours,
      ]);
      if (claimed.length > 0) return { kind: "started" };
      const [row] = await this.#db.query<RecordRow>(READ_SQL, [tenant, key]);
      if (row === undefined) continue;
      const differs = row.method !== method
        ? "method"
        : row.path !== path
        ? "path"
        : row.request_hash !== bodyHash
        ? "body"
        : undefined;
      if (differs !== undefined) {
        throw new ValidationError(
          `Idempotency-Key was already used with a different request: the ${differs} differs`,
          { status: 422 },
        );
      }
      if (row.state === "running") {
        if (!row.locked) continue;
        throw new ConflictError(
          "A request with this Idempotency-Key is still being processed: retry later",
          { code: "idempotency-in-progress", headers: { "Retry-After": "1" } },
        );
      }
      return { kind: "replay", ...toStoredResponse(row) };
    }
    throw new ConflictError(
      "A request with this Idempotency-Key is changing state: retry later",
      { code: "idempotency-in-progress", headers: { "Retry-After": "1" } },
    );
  }

  /**
   * Store the response of a started request for replay. A 5xx response is
   * not stored: the key is released instead, so a retry runs again.
   *
   * @param tenant owner of the key
   * @param key the idempotency key
   * @param response status, replayable headers and body bytes
   * @returns whether this call's running row was found (false if it was taken
   *   over or released meanwhile)
   */
  async complete(tenant: string, key: string, response: StoredResponse): Promise<boolean> {
    checkIds(tenant, key);
    checkResponse(response);
    if (response.status >= 500) return await this.release(tenant, key);
    const rows = await this.#db.query(
      `UPDATE idempotency_keys
       SET state = 'done', locked_until = now(), response_status = $3,
           response_headers = $4::jsonb, response_body = $5
       WHERE tenant = $1 AND key = $2 AND state = 'running'
       RETURNING 1 AS done`,
      [tenant, key, response.status, JSON.stringify(response.headers), response.body],
    );
    return rows.length > 0;
  }

  /**
   * Forget a running key (the request failed or threw), so a retry runs again.
   *
   * @param tenant owner of the key
   * @param key the idempotency key
   * @returns whether a running row was deleted
   */
  async release(tenant: string, key: string): Promise<boolean> {
    checkIds(tenant, key);
    const rows = await this.#db.query(
      `DELETE FROM idempotency_keys
       WHERE tenant = $1 AND key = $2 AND state = 'running'
       RETURNING 1 AS released`,
      [tenant, key],
    );
    return rows.length > 0;
  }

  /**
   * Delete expired records, at most `limit` per call.
   *
   * @param options batch size (default 10 000)
   * @returns how many records were deleted
   */
  async purgeExpired(options: { limit?: number } = {}): Promise<number> {
    const limit = positive("limit", options.limit ?? 10_000);
    const [row] = await this.#db.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM idempotency_keys
         WHERE (tenant, key) IN (
           SELECT tenant, key FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [Math.floor(limit)],
    );
    return row?.n ?? 0;
  }
}

function toStoredResponse(row: RecordRow): StoredResponse {
  if (row.response_status === null || row.response_body === null) {
    throw new TypeError("Idempotency record is done but has no stored response");
  }
  const headers: Record<string, string> = {};
  if (typeof row.response_headers === "object" && row.response_headers !== null) {
    for (const [name, value] of Object.entries(row.response_headers)) {
      if (typeof value === "string") headers[name] = value;
    }
  }
  // Copy into a plain Uint8Array (the PostgreSQL driver hands out Buffers).
  return { status: row.response_status, headers, body: new Uint8Array(row.response_body) };
}

function checkIds(tenant: string, key: string): void {
  if (typeof tenant !== "string" || tenant.length === 0) {
    throw new TypeError(`Invalid tenant: expected a non-empty string, got "${tenant}"`);
  }
  if (!isIdempotencyKey(key)) {
    throw new RangeError("Invalid idempotency key: expected 1-255 printable ASCII characters");
  }
}

function checkFingerprint(fingerprint: RequestFingerprint): void {
  for (const field of ["method", "path", "bodyHash"] as const) {
    const value: unknown = fingerprint?.[field];
    if (typeof value !== "string" || value.length === 0) {
      throw new TypeError(`Invalid fingerprint: "${field}" must be a non-empty string`);
    }
  }
}

function checkResponse(response: StoredResponse): void {
  if (!Number.isInteger(response.status) || response.status < 100 || response.status > 599) {
    throw new RangeError(`Invalid response status: expected 100-599, got ${response.status}`);
  }
  if (!(response.body instanceof Uint8Array)) {
    throw new TypeError(`Invalid response body: expected Uint8Array, got ${typeof response.body}`);
  }
  for (const [name, value] of Object.entries(response.headers)) {
    if (typeof value !== "string") {
      throw new TypeError(`Invalid response header "${name}": expected a string value`);
    }
  }
}

function positive(name: string, value: number): number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid "${name}": expected a number, got ${typeof value}`);
  }
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`Invalid "${name}": expected a positive number, got ${value}`);
  }
  return value;
}
