/**
 * SQL over the `api_keys` table (see `src/db/migrations/0001_foundation.sql`).
 * Every method that reads or changes a tenant's key filters by tenant; the one
 * exception, {@linkcode ApiKeyRepo.getForAuthentication}, looks a key up by its
 * id because the id is what identifies the caller before its tenant is known.
 *
 * The repository holds no clock: callers pass every timestamp, so services and
 * tests decide what "now" is.
 *
 * @module
 */
import type { Queryable } from "../db/db.ts";

/** A stored key, including its hashes. Never leaves `src/auth`. */
export interface ApiKeyRecord {
  id: string;
  tenant: string;
  /** Empty when the key has no name. */
  name: string;
  /** As stored; callers filter against the known scopes. */
  scopes: string[];
  secretHash: Uint8Array;
  /** Hash of the secret replaced by the last rotation, valid until `prevSecretExpiresAt`. */
  prevSecretHash: Uint8Array | null;
  prevSecretExpiresAt: Date | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  rotatedAt: Date | null;
}

/** What {@linkcode ApiKeyRepo.insert} stores. */
export interface NewApiKeyRecord {
  id: string;
  tenant: string;
  name: string;
  scopes: readonly string[];
  secretHash: Uint8Array;
  createdAt: Date;
  expiresAt: Date | null;
}

interface ApiKeyRow {
  id: string;
  tenant: string;
  name: string;
  scopes: string[];
  secret_hash: Uint8Array;
  prev_secret_hash: Uint8Array | null;
  prev_secret_expires_at: Date | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  rotated_at: Date | null;
}

const COLUMNS = `id, tenant, name, scopes, secret_hash, prev_secret_hash, prev_secret_expires_at,
  created_at, expires_at, revoked_at, last_used_at, rotated_at`;

/** Typed queries on `api_keys`, over the database or an open transaction. */
export class ApiKeyRepo {
  readonly #q: Queryable;

  /**
   * Bind the queries to a database or transaction.
   *
   * @param q the database, or a transaction to run inside
   */
  constructor(q: Queryable) {
    this.#q = q;
  }

  /**
   * Insert a new key.
   *
   * @param key the row to store
   * @returns the stored row
   */
  async insert(key: NewApiKeyRecord): Promise<ApiKeyRecord> {
    // The Db port binds scalars only: the scope list travels as a JSON array.
    const rows = await this.#q.query<ApiKeyRow>(
      `INSERT INTO api_keys (id, tenant, name, scopes, secret_hash, created_at, expires_at)
       VALUES ($1, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), $5, $6, $7)
       RETURNING ${COLUMNS}`,
      [
        key.id,
        key.tenant,
        key.name,
        JSON.stringify(key.scopes),
        key.secretHash,
        key.createdAt,
        key.expiresAt,
      ],
    );
    return fromRow(one(rows));
  }

  /**
   * One key of one tenant.
   *
   * @param tenant owner
   * @param id key id
   * @returns the row, or `null` when absent or owned by another tenant
   */
  async get(tenant: string, id: string, options: { forUpdate?: boolean } = {}): Promise<
    ApiKeyRecord | null
  > {
    const rows = await this.#q.query<ApiKeyRow>(
      `SELECT ${COLUMNS} FROM api_keys WHERE tenant = $1 AND id = $2${
        options.forUpdate === true ? " FOR UPDATE" : ""
      }`,
      [tenant, id],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /**
   * A key by id alone, for authentication (the tenant is what it yields).
   *
   * @param id key id from the presented key
   * @returns the row, or `null`
   */
  async getForAuthentication(id: string): Promise<ApiKeyRecord | null> {
    const rows = await this.#q.query<ApiKeyRow>(
      `SELECT ${COLUMNS} FROM api_keys WHERE id = $1`,
      [id],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /**
   * Every key of a tenant, oldest first.
   *
   * @param tenant owner
   */
  async list(tenant: string): Promise<ApiKeyRecord[]> {
    const rows = await this.#q.query<ApiKeyRow>(
      `SELECT ${COLUMNS} FROM api_keys WHERE tenant = $1 ORDER BY created_at ASC, id ASC`,
      [tenant],
    );
    return rows.map(fromRow);
  }

  /**
   * Replace the secret; the current one becomes the previous secret until
   * `prevSecretExpiresAt`. Only one previous secret is kept.
   *
   * @param tenant owner
   * @param change key id, new hash, end of the grace period and rotation time
   * @returns the updated row, or `null` when absent
   */
  async rotate(
    tenant: string,
    change: { id: string; secretHash: Uint8Array; prevSecretExpiresAt: Date; rotatedAt: Date },
  ): Promise<ApiKeyRecord | null> {
    const rows = await this.#q.query<ApiKeyRow>(
      `UPDATE api_keys
          SET prev_secret_hash = secret_hash, prev_secret_expires_at = $3,
              secret_hash = $4, rotated_at = $5
        WHERE tenant = $1 AND id = $2
        RETURNING ${COLUMNS}`,
      [tenant, change.id, change.prevSecretExpiresAt, change.secretHash, change.rotatedAt],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /**
   * Mark a key revoked (the first revocation time is kept).
   *
   * @param tenant owner
   * @param change key id and revocation time
   * @returns the updated row, or `null` when absent
   */
  async revoke(tenant: string, change: { id: string; revokedAt: Date }): Promise<
    ApiKeyRecord | null
  > {
    const rows = await this.#q.query<ApiKeyRow>(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3)
        WHERE tenant = $1 AND id = $2
        RETURNING ${COLUMNS}`,
      [tenant, change.id, change.revokedAt],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /**
   * Record last-use times for many keys in one statement. A time never moves
   * backwards, so out-of-order batches from several instances are harmless.
   *
   * @param uses key ids and when they were last used
   * @returns how many rows changed
   */
  async touchLastUsed(uses: ReadonlyArray<{ id: string; at: Date }>): Promise<number> {
    if (uses.length === 0) return 0;
    const payload = JSON.stringify(uses.map((u) => ({ id: u.id, at: u.at.toISOString() })));
    const rows = await this.#q.query<{ id: string }>(
      `UPDATE api_keys AS k SET last_used_at = v.at
         FROM jsonb_to_recordset($1::jsonb) AS v(id text, at timestamptz)
        WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)
        RETURNING k.id`,
      [payload],
    );
    return rows.length;
  }
}

function one<T>(rows: T[]): T {
  const [row] = rows;
  if (row === undefined) throw new Error("Expected one row from INSERT … RETURNING, got none");
  return row;
}

function fromRow(r: ApiKeyRow): ApiKeyRecord {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    scopes: [...r.scopes],
    // Plain copies: the PostgreSQL driver hands out Buffer views of its own memory.
    secretHash: new Uint8Array(r.secret_hash),
    prevSecretHash: r.prev_secret_hash === null ? null : new Uint8Array(r.prev_secret_hash),
    prevSecretExpiresAt: r.prev_secret_expires_at,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
    rotatedAt: r.rotated_at,
  };
}
