/**
 * Answered signing requests (`hsm_requests`): what makes a repeated
 * idempotency key return the first answer instead of signing again.
 *
 * @module
 */
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Queryable, SqlParam } from "../db/db.ts";

/** A stored answer and the hash of the request it answered. */
export interface StoredAnswer<T> {
  requestHash: string;
  response: T;
}

/** One answer to store. */
export interface AnswerRow {
  idempotencyKey: string;
  requestHash: string;
  response: unknown;
}

/**
 * Fingerprint of a request body: a repeat with the same idempotency key must
 * carry the same request.
 *
 * @param request the request as the service received it
 */
export function requestHash(request: unknown): string {
  return hex.encode(sha256(new TextEncoder().encode(JSON.stringify(request))));
}

/** Data access for answered requests, on the caller's transaction. */
export class RequestRepo {
  readonly #db: Queryable;

  /** @param db an open transaction (holding the key's lock) */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /**
   * The stored answers of `owner` for any of `idempotencyKeys`.
   *
   * @returns answers by idempotency key
   */
  async find<T>(
    tenant: string,
    owner: string,
    idempotencyKeys: readonly string[],
  ): Promise<Map<string, StoredAnswer<T>>> {
    if (idempotencyKeys.length === 0) return new Map();
    // A JSON array parameter: one statement for a whole batch, on both adapters.
    const rows = await this.#db.query<
      { idempotency_key: string; request_hash: string; response: T }
    >(
      `SELECT idempotency_key, request_hash, response FROM hsm_requests
       WHERE tenant = $1 AND owner = $2
         AND idempotency_key IN (SELECT json_array_elements_text($3::json))`,
      [tenant, owner, JSON.stringify(idempotencyKeys)],
    );
    return new Map(
      rows.map((r) => [r.idempotency_key, { requestHash: r.request_hash, response: r.response }]),
    );
  }

  /** Store answers of `owner`, in one statement. */
  async insertMany(tenant: string, owner: string, rows: readonly AnswerRow[]): Promise<void> {
    if (rows.length === 0) return;
    const params: SqlParam[] = [tenant, owner];
    const values = rows.map((r) => {
      const n = params.length;
      params.push(r.idempotencyKey, r.requestHash, JSON.stringify(r.response));
      return `($1, $2, $${n + 1}, $${n + 2}, $${n + 3}::jsonb)`;
    });
    await this.#db.query(
      `INSERT INTO hsm_requests (tenant, owner, idempotency_key, request_hash, response)
       VALUES ${values.join(", ")}`,
      params,
    );
  }
}
