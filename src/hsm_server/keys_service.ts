/**
 * Key lifecycle inside the HSM: create (material generated here, only public
 * data leaves), rotate, set policy, change status. Every change and its audit
 * row commit in one transaction: if the audit write fails, nothing changes.
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import type { AuditLog } from "../audit/audit_log.ts";
import { ConflictError, NotFoundError } from "../errors/mod.ts";
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import {
  type KeyKind,
  type KeyRecord,
  KeyRepo,
  type KeyStatus,
  type KeyUsage,
  newKeyId,
} from "./key_repo.ts";
import type { KeyStore } from "./signing/key_store.ts";
import { generateKeyMaterial, openKey } from "./signing/key_material.ts";
import type { OpenKeyCache } from "./signing/open_key_cache.ts";
import { compilePolicy, parseSigningPolicy, policyToJson } from "./policy/policy.ts";

/** Who is asking: the client certificate's tenant and the edge-side owner. */
export interface Caller {
  /** From the client certificate allowlist. */
  tenant: string;
  /** The edge's tenant on whose behalf the edge calls (its API key tenant). */
  owner: string;
  /** Request id, for the audit trail. */
  requestId: string;
  /** The client certificate subject, for the audit trail. */
  subject: string;
}

/** Dependencies of {@linkcode KeysService}. */
export interface KeysServiceOptions {
  db: Db;
  audit: AuditLog;
  store: KeyStore;
  /** The signing path's opened keys, dropped here when a status changes. */
  keyCache?: OpenKeyCache;
}

/** Create, read, rotate and govern keys. */
export class KeysService {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #store: KeyStore;
  readonly #keyCache: OpenKeyCache | undefined;

  /** @param options database, audit log, the sealing key store and the open-key cache */
  constructor(options: KeysServiceOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#store = options.store;
    this.#keyCache = options.keyCache;
  }

  /**
   * Generate a key inside the HSM.
   *
   * @param caller tenant and owner
   * @param spec label, kind, usage and network
   * @returns the key's public view
   */
  async create(
    caller: Caller,
    spec: { label: string; kind: KeyKind; usage: KeyUsage; network: BitcoinNetwork },
  ): Promise<KeyRecord> {
    const id = newKeyId();
    const sealedVersion = await this.#newVersion(id, 1, spec.kind, spec.network);
    await this.#db.transaction(async (tx) => {
      await new KeyRepo(tx).insert(
        { id, ...spec, tenant: caller.tenant, owner: caller.owner },
        sealedVersion,
      );
      await this.#audit.append(tx, {
        ...entry(caller, "key.create", id),
        details: { kind: spec.kind, usage: spec.usage, network: spec.network, version: 1 },
      });
    });
    return await this.get(caller, id);
  }

  /** One key; another owner's key is a 404. */
  async get(caller: Caller, id: string): Promise<KeyRecord> {
    const key = await new KeyRepo(this.#db).get(caller.tenant, caller.owner, id);
    if (key === null) throw new NotFoundError("Key not found");
    return key;
  }

  /** The owner's keys. */
  async list(caller: Caller): Promise<KeyRecord[]> {
    return await new KeyRepo(this.#db).list(caller.tenant, caller.owner);
  }

  /**
   * Add a new version and make it current. Older versions stay for
   * verification and keep signing until disabled.
   */
  async rotate(caller: Caller, id: string): Promise<KeyRecord> {
    const current = await this.get(caller, id);
    if (current.status === "destroyed") {
      throw new ConflictError("A destroyed key cannot be rotated");
    }
    const next = current.currentVersion + 1;
    const sealedVersion = await this.#newVersion(id, next, current.kind, current.network);
    await this.#db.transaction(async (tx) => {
      const repo = new KeyRepo(tx);
      const locked = await repo.get(caller.tenant, caller.owner, id, true);
      if (locked === null || locked.currentVersion !== current.currentVersion) {
        throw new ConflictError("The key changed meanwhile: retry the rotation");
      }
      await repo.insertVersion(id, next, sealedVersion);
      await this.#audit.append(tx, {
        ...entry(caller, "key.rotate", id),
        details: { version: next },
      });
    });
    return await this.get(caller, id);
  }

  /**
   * Replace a key's signing policy (validated and compiled first, so a policy
   * that cannot be enforced is never stored).
   */
  async setPolicy(caller: Caller, id: string, input: unknown): Promise<KeyRecord> {
    const policy = parseSigningPolicy(input);
    const key = await this.get(caller, id);
    compilePolicy(policy, key.network);
    await this.#db.transaction(async (tx) => {
      await new KeyRepo(tx).setPolicy(id, policyToJson(policy));
      await this.#audit.append(tx, {
        ...entry(caller, "key.policy", id),
        details: { revision: key.policyRevision + 1 },
      });
    });
    return await this.get(caller, id);
  }

  /**
   * Change the status of the key or of one version. `destroyed` wipes the
   * sealed material and is final.
   */
  async setStatus(
    caller: Caller,
    id: string,
    change: { status: KeyStatus; version?: number },
  ): Promise<KeyRecord> {
    await this.#db.transaction(async (tx) => {
      const repo = new KeyRepo(tx);
      const key = await repo.get(caller.tenant, caller.owner, id, true);
      if (key === null) throw new NotFoundError("Key not found");
      const from = change.version === undefined
        ? key.status
        : key.versions.find((v) => v.version === change.version)?.status;
      if (from === undefined) throw new NotFoundError(`Key version ${change.version} not found`);
      if (from === "destroyed" && change.status !== "destroyed") {
        throw new ConflictError("A destroyed key cannot be brought back");
      }
      if (change.version === undefined) await repo.setKeyStatus(id, change.status);
      else await repo.setVersionStatus(id, change.version, change.status);
      await this.#audit.append(tx, {
        ...entry(caller, "key.status", id),
        details: { status: change.status, version: change.version ?? null },
      });
    });
    // After the commit: a sign waiting on the key's row lock then reads the new status.
    this.#keyCache?.evict(id, change.version);
    return await this.get(caller, id);
  }

  async #newVersion(id: string, version: number, kind: KeyKind, network: BitcoinNetwork) {
    const material = generateKeyMaterial(kind);
    const key = openKey(kind, material, network);
    try {
      return {
        sealed: await this.#store.seal(material, { keyId: id, version }),
        storeKind: this.#store.kind,
        fingerprint: key.fingerprint,
        publicKeyHex: toHex(key.publicKey),
        xpub: key.xpub,
      };
    } finally {
      key.dispose();
      material.fill(0);
    }
  }
}

/** The audit entry of a caller's action on `target`. */
export function entry(caller: Caller, action: string, target: string) {
  return {
    actor: caller.subject,
    tenant: caller.tenant,
    action,
    target,
    outcome: "success" as const,
    requestId: caller.requestId,
  };
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
