/**
 * Rows of `hsm_keys` and `hsm_key_versions`. Sealed material is read only by
 * the signing path; every other read leaves it out.
 *
 * @module
 */
import type { Queryable } from "../db/db.ts";
import type { BitcoinNetwork } from "../bitcoin/network.ts";

/** Lifecycle of a key or of one of its versions. */
export type KeyStatus = "active" | "signing-disabled" | "destroyed";
/** Key statuses, for schemas. */
export const KEY_STATUSES = ["active", "signing-disabled", "destroyed"] as const;
/** A BIP32 root generated inside the HSM, or a single key. */
export type KeyKind = "bip32" | "single";
/**
 * What a key may sign: `transactions` (PSBTs, BIP-322 messages) or `oracle`
 * (raw 32-byte digests, BIP340). Never both: a raw digest signature could be a
 * transaction signature that bypassed the policy.
 */
export type KeyUsage = "transactions" | "oracle";

/** One version of a key (rotation adds one). */
export interface KeyVersion {
  version: number;
  status: KeyStatus;
  /** BIP32 master fingerprint (single keys: of their public key). */
  fingerprint: number;
  publicKeyHex: string;
  /** The account-less master xpub (tpub on test networks); null for single keys. */
  xpub: string | null;
  storeKind: string;
  createdAt: Date;
}

/** A key and its versions, without secret material. */
export interface KeyRecord {
  id: string;
  tenant: string;
  owner: string;
  label: string;
  kind: KeyKind;
  usage: KeyUsage;
  network: BitcoinNetwork;
  status: KeyStatus;
  currentVersion: number;
  policy: unknown | null;
  policyRevision: number;
  createdAt: Date;
  updatedAt: Date;
  versions: KeyVersion[];
}

interface KeyRow {
  id: string;
  tenant: string;
  owner: string;
  label: string;
  kind: KeyKind;
  usage: KeyUsage;
  network: BitcoinNetwork;
  status: KeyStatus;
  current_version: number;
  policy: unknown | null;
  policy_revision: number;
  created_at: Date;
  updated_at: Date;
}

interface VersionRow {
  key_id: string;
  version: number;
  status: KeyStatus;
  fingerprint: bigint | number;
  public_key_hex: string;
  xpub: string | null;
  store_kind: string;
  created_at: Date;
}

/** A version row as `json_build_object` renders it: the timestamp is a string. */
type JsonVersionRow = Omit<VersionRow, "created_at"> & { created_at: string };

/** A new key id. */
export function newKeyId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "hk_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function toVersion(r: VersionRow): KeyVersion {
  return {
    version: r.version,
    status: r.status,
    fingerprint: Number(r.fingerprint),
    publicKeyHex: r.public_key_hex,
    xpub: r.xpub,
    storeKind: r.store_kind,
    createdAt: r.created_at,
  };
}

/** Data access for keys; every method runs on the caller's connection or transaction. */
export class KeyRepo {
  readonly #db: Queryable;

  /** @param db a connection or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** Insert a key with its first version. */
  async insert(
    key: Pick<KeyRecord, "id" | "tenant" | "owner" | "label" | "kind" | "usage" | "network">,
    version: Omit<KeyVersion, "createdAt" | "status" | "version"> & { sealed: Uint8Array },
  ): Promise<void> {
    await this.#db.query(
      `INSERT INTO hsm_keys (id, tenant, owner, label, kind, usage, network, status, current_version)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', 1)`,
      [key.id, key.tenant, key.owner, key.label, key.kind, key.usage, key.network],
    );
    await this.insertVersion(key.id, 1, version);
  }

  /** Insert a version (rotation) and make it current. */
  async insertVersion(
    keyId: string,
    versionNumber: number,
    v: Omit<KeyVersion, "createdAt" | "status" | "version"> & { sealed: Uint8Array },
  ): Promise<void> {
    await this.#db.query(
      `INSERT INTO hsm_key_versions
         (key_id, version, status, sealed, store_kind, fingerprint, public_key_hex, xpub)
       VALUES ($1, $2, 'active', $3, $4, $5, $6, $7)`,
      [keyId, versionNumber, v.sealed, v.storeKind, v.fingerprint, v.publicKeyHex, v.xpub],
    );
    await this.#db.query(
      "UPDATE hsm_keys SET current_version = $2, updated_at = now() WHERE id = $1",
      [keyId, versionNumber],
    );
  }

  /**
   * One key of `owner`, or null (another tenant's key reads as absent).
   *
   * @param lock `FOR UPDATE`, inside a transaction that will change it
   */
  async get(tenant: string, owner: string, id: string, lock = false): Promise<KeyRecord | null> {
    // One round trip: the signing path reads the key on every request.
    const [row] = await this.#db.query<KeyRow & { versions: JsonVersionRow[] }>(
      `SELECT k.*, coalesce((
         SELECT json_agg(json_build_object(
           'key_id', v.key_id, 'version', v.version, 'status', v.status,
           'fingerprint', v.fingerprint, 'public_key_hex', v.public_key_hex, 'xpub', v.xpub,
           'store_kind', v.store_kind, 'created_at', v.created_at) ORDER BY v.version)
         FROM hsm_key_versions v WHERE v.key_id = k.id), '[]'::json) AS versions
       FROM hsm_keys k WHERE k.tenant = $1 AND k.owner = $2 AND k.id = $3${
        lock ? " FOR UPDATE OF k" : ""
      }`,
      [tenant, owner, id],
    );
    if (row === undefined) return null;
    const { versions, ...key } = row;
    return this.#record(
      key,
      versions.map((v) => ({ ...v, created_at: new Date(v.created_at) })),
    );
  }

  /** Every key of `owner`, oldest first (at most 500). */
  async list(tenant: string, owner: string): Promise<KeyRecord[]> {
    const rows = await this.#db.query<KeyRow>(
      `SELECT * FROM hsm_keys WHERE tenant = $1 AND owner = $2 ORDER BY created_at, id LIMIT 500`,
      [tenant, owner],
    );
    if (rows.length === 0) return [];
    const versions = await this.#db.query<VersionRow>(
      `SELECT v.key_id, v.version, v.status, v.fingerprint, v.public_key_hex, v.xpub, v.store_kind,
         v.created_at
       FROM hsm_key_versions v JOIN hsm_keys k ON k.id = v.key_id
       WHERE k.tenant = $1 AND k.owner = $2 ORDER BY v.key_id, v.version`,
      [tenant, owner],
    );
    return rows.map((r) => this.#record(r, versions.filter((v) => v.key_id === r.id)));
  }

  /** The sealed material of one version, or null once destroyed. */
  async sealed(keyId: string, version: number): Promise<Uint8Array | null> {
    const [row] = await this.#db.query<{ sealed: Uint8Array | null }>(
      "SELECT sealed FROM hsm_key_versions WHERE key_id = $1 AND version = $2",
      [keyId, version],
    );
    return row?.sealed ?? null;
  }

  /** Replace the policy; its revision counts changes. */
  async setPolicy(keyId: string, policy: unknown): Promise<void> {
    await this.#db.query(
      `UPDATE hsm_keys SET policy = $2::jsonb, policy_revision = policy_revision + 1,
         updated_at = now() WHERE id = $1`,
      [keyId, JSON.stringify(policy)],
    );
  }

  /** Set the key's status; `destroyed` also wipes every version's material. */
  async setKeyStatus(keyId: string, status: KeyStatus): Promise<void> {
    await this.#db.query(
      "UPDATE hsm_keys SET status = $2, updated_at = now() WHERE id = $1",
      [keyId, status],
    );
    if (status === "destroyed") {
      await this.#db.query(
        "UPDATE hsm_key_versions SET status = 'destroyed', sealed = NULL WHERE key_id = $1",
        [keyId],
      );
    }
  }

  /** Set one version's status; `destroyed` wipes its material. */
  async setVersionStatus(keyId: string, version: number, status: KeyStatus): Promise<void> {
    await this.#db.query(
      `UPDATE hsm_key_versions SET status = $3,
         sealed = CASE WHEN $3 = 'destroyed' THEN NULL ELSE sealed END
       WHERE key_id = $1 AND version = $2`,
      [keyId, version, status],
    );
  }

  #record(row: KeyRow, versions: VersionRow[]): KeyRecord {
    return {
      id: row.id,
      tenant: row.tenant,
      owner: row.owner,
      label: row.label,
      kind: row.kind,
      usage: row.usage,
      network: row.network,
      status: row.status,
      currentVersion: row.current_version,
      policy: row.policy,
      policyRevision: row.policy_revision,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      versions: versions.map(toVersion),
    };
  }
}
