/**
 * Tenant-scoped storage of encrypted secrets in `encrypted_secrets`. Values are
 * sealed by {@linkcode SecretBox} with the row's table, purpose, tenant and id
 * as associated data, so a ciphertext copied to another row does not decrypt.
 * The `key_id` column mirrors the key id inside the envelope so rotation can
 * find rows under old keys with an index lookup.
 *
 * @module
 */
import type { Db, Queryable } from "../db/db.ts";
import { ConflictError } from "../errors/app_error.ts";
import {
  DecryptionError,
  envelopeKeyId,
  type SecretBox,
  type SecretContext,
} from "./secret_box.ts";

/** The table this repository owns. */
export const ENCRYPTED_SECRETS_TABLE = "encrypted_secrets";
/** Longest id, tenant or purpose accepted. */
const MAX_FIELD_LENGTH = 128;
const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;

/** What {@linkcode EncryptedSecretRepo.put} stores. */
export interface PutSecretInput {
  /** Row id; generated (`sec_<uuid>`) when omitted. Ids are unique across tenants. */
  id?: string | undefined;
  /** What the secret is for, e.g. `lnd.macaroon`; bound into the ciphertext. */
  purpose: string;
  /** The secret bytes. */
  value: Uint8Array;
}

/** A stored secret without its value. */
export interface SecretMetadata {
  /** Row id. */
  id: string;
  /** Owner. */
  tenant: string;
  /** What the secret is for. */
  purpose: string;
  /** Data key the value is encrypted under. */
  keyId: string;
  /** When the row was first stored. */
  createdAt: Date;
  /** When the value was last replaced (re-encryption does not change it). */
  updatedAt: Date;
}

/** A stored secret with its decrypted value. */
export interface StoredSecret extends SecretMetadata {
  /** The decrypted secret bytes. */
  value: Uint8Array;
}

/** The columns of an `encrypted_secrets` row needed to decrypt it. */
export interface EncryptedSecretRow {
  /** Row id. */
  id: string;
  /** Owner. */
  tenant: string;
  /** What the secret is for. */
  purpose: string;
  /** Key id column, used by rotation queries. */
  key_id: string;
  /** The envelope. */
  ciphertext: Uint8Array;
}

interface SecretRow extends EncryptedSecretRow {
  created_at: Date;
  updated_at: Date;
}

/**
 * The associated-data context of a row of `encrypted_secrets`.
 *
 * @param row the row's id, tenant and purpose
 */
export function encryptedSecretContext(
  row: { id: string; tenant: string; purpose: string },
): SecretContext {
  return {
    table: ENCRYPTED_SECRETS_TABLE,
    purpose: row.purpose,
    tenant: row.tenant,
    rowId: row.id,
  };
}

/** put/get/delete of encrypted secrets, always within one tenant. */
export class EncryptedSecretRepo {
  readonly #db: Db;
  readonly #box: SecretBox;

  /**
   * Build the repository.
   *
   * @param db the database
   * @param box encrypts under the newest data key
   */
  constructor(db: Db, box: SecretBox) {
    this.#db = db;
    this.#box = box;
  }

  /**
   * Create or replace a secret. Replacing requires the same tenant and purpose;
   * the value is re-encrypted under the newest key.
   *
   * @param tenant owner
   * @param input id (optional), purpose and value
   * @param options `tx`: run inside the caller's transaction
   * @returns the stored row's metadata
   * @throws ConflictError when the id belongs to another tenant or purpose
   * @throws TypeError / RangeError on malformed arguments
   * @example
   * ```ts
   * const meta = await repo.put("t1", { purpose: "lnd.macaroon", value: bytes });
   * const secret = await repo.get("t1", meta.id);
   * ```
   */
  async put(
    tenant: string,
    input: PutSecretInput,
    options: { tx?: Queryable } = {},
  ): Promise<SecretMetadata> {
    assertField(tenant, "tenant", "EncryptedSecretRepo.put");
    if (input === null || typeof input !== "object") {
      throw new TypeError('EncryptedSecretRepo.put(): "input" must be an object');
    }
    const id = input.id ?? `sec_${crypto.randomUUID().replaceAll("-", "")}`;
    assertId(id, "EncryptedSecretRepo.put");
    assertField(input.purpose, "purpose", "EncryptedSecretRepo.put");
    const sealed = await this.#box.seal(
      input.value,
      encryptedSecretContext({ id, tenant, purpose: input.purpose }),
    );
    const rows = await (options.tx ?? this.#db).query<Omit<SecretRow, "ciphertext">>(
      `INSERT INTO encrypted_secrets (id, tenant, purpose, key_id, ciphertext)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE
         SET key_id = EXCLUDED.key_id, ciphertext = EXCLUDED.ciphertext, updated_at = now()
         WHERE encrypted_secrets.tenant = EXCLUDED.tenant
           AND encrypted_secrets.purpose = EXCLUDED.purpose
       RETURNING id, tenant, purpose, key_id, created_at, updated_at`,
      [id, tenant, input.purpose, sealed.keyId, sealed.envelope],
    );
    const row = rows[0];
    // The id exists under another tenant or purpose: refuse rather than overwrite it.
    if (row === undefined) {
      throw new ConflictError(`Secret id "${id}" is already in use`, { code: "secret-id-in-use" });
    }
    return toMetadata(row);
  }

  /**
   * Read and decrypt one of the tenant's secrets.
   *
   * @param tenant owner
   * @param id row id
   * @param options `purpose`: return null unless the secret has this purpose
   * @returns the secret, or null when the tenant has no such secret
   * @throws DecryptionError when the stored ciphertext does not decrypt (tampered, moved, or its key is missing)
   */
  async get(
    tenant: string,
    id: string,
    options: { purpose?: string } = {},
  ): Promise<StoredSecret | null> {
    assertField(tenant, "tenant", "EncryptedSecretRepo.get");
    assertField(id, "id", "EncryptedSecretRepo.get");
    const [row] = await this.#db.query<SecretRow>(
      `SELECT id, tenant, purpose, key_id, ciphertext, created_at, updated_at
       FROM encrypted_secrets WHERE id = $1 AND tenant = $2`,
      [id, tenant],
    );
    if (row === undefined) return null;
    if (options.purpose !== undefined && row.purpose !== options.purpose) return null;
    return { ...toMetadata(row), value: await openRow(this.#box, row) };
  }

  /**
   * Delete one of the tenant's secrets.
   *
   * @param tenant owner
   * @param id row id
   * @param options `tx`: run inside the caller's transaction
   * @returns whether a row was deleted
   */
  async delete(tenant: string, id: string, options: { tx?: Queryable } = {}): Promise<boolean> {
    assertField(tenant, "tenant", "EncryptedSecretRepo.delete");
    assertField(id, "id", "EncryptedSecretRepo.delete");
    const rows = await (options.tx ?? this.#db).query(
      "DELETE FROM encrypted_secrets WHERE id = $1 AND tenant = $2 RETURNING id",
      [id, tenant],
    );
    return rows.length > 0;
  }
}

/**
 * Decrypt a row's ciphertext, checking that its `key_id` column matches the
 * envelope (rotation trusts the column, so a mismatch is treated as damage).
 *
 * @param box the data keys
 * @param row id, tenant, purpose, key_id and ciphertext of the row
 */
export async function openRow(
  box: SecretBox,
  row: EncryptedSecretRow,
): Promise<Uint8Array> {
  const keyId = envelopeKeyId(row.ciphertext);
  if (keyId !== row.key_id) {
    throw new DecryptionError("malformed", "key id column does not match the envelope", {
      keyId,
    });
  }
  return await box.open(row.ciphertext, encryptedSecretContext(row));
}

function toMetadata(row: Omit<SecretRow, "ciphertext">): SecretMetadata {
  return {
    id: row.id,
    tenant: row.tenant,
    purpose: row.purpose,
    keyId: row.key_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function assertField(value: unknown, name: string, fn: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`${fn}(): "${name}" must be a string, got ${typeof value}`);
  }
  if (value.length === 0 || value.length > MAX_FIELD_LENGTH) {
    throw new RangeError(
      `${fn}(): "${name}" must be 1..${MAX_FIELD_LENGTH} characters, got ${value.length}`,
    );
  }
}

function assertId(value: unknown, fn: string): asserts value is string {
  assertField(value, "id", fn);
  if (!ID_PATTERN.test(value)) {
    throw new RangeError(`${fn}(): "id" may contain only letters, digits and . _ : -`);
  }
}
