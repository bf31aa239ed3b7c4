/**
 * Managing API keys: create, list, get, rotate, revoke. Every change and its
 * audit row are written in one transaction, so an audited change cannot be
 * lost and an unaudited change cannot be committed (fail closed).
 *
 * Secrets are returned exactly once, by {@linkcode ApiKeyService.create} and
 * {@linkcode ApiKeyService.rotate}; only their SHA-256 is stored (see
 * `api_key.ts` for why one fast hash suffices for 256-bit secrets).
 *
 * @module
 */
import type { AuditLog } from "../audit/audit_log.ts";
import type { Db } from "../db/db.ts";
import { ConflictError, NotFoundError, ValidationError } from "../errors/app_error.ts";
import {
  type ApiKeyEnv,
  formatApiKey,
  generateApiKey,
  generateSecret,
  hashApiKey,
} from "./api_key.ts";
import { type ApiKeyRecord, ApiKeyRepo } from "./api_key_repo.ts";
import { isScope, type Scope, SCOPES } from "./principal.ts";

/** Rotation grace period when the caller names none: 24 hours. */
export const DEFAULT_GRACE_SECONDS = 24 * 60 * 60;
/** Longest rotation grace period a caller may ask for: 7 days. */
export const MAX_GRACE_SECONDS = 7 * 24 * 60 * 60;
/** Longest key name. */
export const MAX_NAME_LENGTH = 100;
/** What a tenant id looks like: short, printable, no whitespace. */
export const TENANT_PATTERN: RegExp = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** Whether a key can be used now. */
export type ApiKeyStatus = "active" | "expired" | "revoked";

/** A key as shown to administrators: never a secret or a hash. */
export interface ApiKeyView {
  /** Public key id, the `<keyId>` part of the key. */
  id: string;
  /** Owner of the key. */
  tenant: string;
  /** Free-form label, or `null`. */
  name: string | null;
  /** What the key may do. */
  scopes: Scope[];
  /** Whether the key can be used now. */
  status: ApiKeyStatus;
  /** When the key was issued. */
  createdAt: Date;
  /** When the key stops working, or `null` for never. */
  expiresAt: Date | null;
  /** When the key was revoked, or `null`. */
  revokedAt: Date | null;
  /** Last successful use, written at most about once a minute. */
  lastUsedAt: Date | null;
  /** Time of the last rotation, or `null`. */
  rotatedAt: Date | null;
  /** Until when the secret replaced by the last rotation still works. */
  previousSecretExpiresAt: Date | null;
}

/** A key together with its secret, returned once on create and rotate. */
export interface ApiKeyWithSecret {
  /** The key's public view. */
  key: ApiKeyView;
  /** The full key text (`anya_live_<id>_<secret>`); shown once, never stored. */
  secret: string;
}

/** Who asked, for the audit trail. */
export interface ActionContext {
  /** An API key id, or a tool name such as `cli:keys:create`. */
  actor: string;
  /** Correlates the audit row with the request or CLI run. */
  requestId: string;
}

/** Input of {@linkcode ApiKeyService.create}. */
export interface CreateApiKeyInput {
  /** Owner; see {@linkcode TENANT_PATTERN}. */
  tenant: string;
  /** Non-empty, without repeats. */
  scopes: readonly Scope[];
  /** Optional label, 1-100 printable characters. */
  name?: string | undefined;
  /** Must lie in the future. */
  expiresAt?: Date | undefined;
}

/** Dependencies and options of {@linkcode ApiKeyService}. */
export interface ApiKeyServiceOptions {
  /** Where keys are stored. */
  db: Db;
  /** Receives one row per change, in the change's transaction. */
  audit: AuditLog;
  /** Clock; defaults to the system clock. */
  now?: () => Date;
  /** Environment label of issued keys; default `live`. */
  env?: ApiKeyEnv;
  /**
   * Told the id of every key that was rotated or revoked, after commit, so an
   * in-process authenticator can drop it from its cache at once.
   */
  onKeyChanged?: (keyId: string) => void;
}

/**
 * Creates, lists, rotates and revokes API keys, scoped by tenant: a key of
 * another tenant is reported as not found.
 *
 * @example
 * ```ts
 * const service = new ApiKeyService({ db, audit: new AuditLog(db) });
 * const { key, secret } = await service.create(
 *   { tenant: "acme", scopes: ["read"] },
 *   { actor: "cli:keys:create", requestId: "cli-1" },
 * );
 * ```
 */
export class ApiKeyService {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #now: () => Date;
  readonly #env: ApiKeyEnv;
  readonly #onKeyChanged: (keyId: string) => void;

  /**
   * Build the service.
   *
   * @param options database, audit log, clock and key environment
   */
  constructor(options: ApiKeyServiceOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#now = options.now ?? (() => new Date());
    this.#env = options.env ?? "live";
    this.#onKeyChanged = options.onKeyChanged ?? (() => {});
  }

  /**
   * Issue a new key.
   *
   * @param input tenant, scopes, optional name and expiry
   * @param ctx actor and request id for the audit row
   * @returns the key and its secret (the only time the secret is available)
   * @throws ValidationError on bad input (422 when the expiry is not in the future)
   */
  async create(input: CreateApiKeyInput, ctx: ActionContext): Promise<ApiKeyWithSecret> {
    const tenant = checkTenant(input.tenant);
    const scopes = checkScopes(input.scopes);
    const name = checkName(input.name);
    const now = this.#now();
    if (input.expiresAt !== undefined) {
      if (!(input.expiresAt instanceof Date) || Number.isNaN(input.expiresAt.getTime())) {
        throw new ValidationError("Invalid expiresAt: must be a date", {
          issues: [{ path: "expiresAt", message: "must be a date" }],
        });
      }
      if (input.expiresAt.getTime() <= now.getTime()) {
        throw new ValidationError("Invalid expiresAt: must lie in the future", {
          status: 422,
          issues: [{ path: "expiresAt", message: "must lie in the future" }],
        });
      }
    }
    const generated = generateApiKey(this.#env);
    const record = await this.#db.transaction(async (tx) => {
      const stored = await new ApiKeyRepo(tx).insert({
        id: generated.keyId,
        tenant,
        name: name ?? "",
        scopes,
        secretHash: hashApiKey(generated),
        createdAt: now,
        expiresAt: input.expiresAt ?? null,
      });
      await this.#audit.append(tx, {
        actor: ctx.actor,
        tenant,
        action: "api_key.create",
        target: stored.id,
        outcome: "success",
        requestId: ctx.requestId,
        details: {
          scopes: scopes.join(","),
          name: name ?? null,
          expiresAt: stored.expiresAt?.toISOString() ?? null,
        },
      });
      return stored;
    });
    return { key: this.#view(record, now), secret: generated.token };
  }

  /**
   * Every key of a tenant, oldest first.
   *
   * @param tenant owner
   */
  async list(tenant: string): Promise<ApiKeyView[]> {
    const now = this.#now();
    const rows = await new ApiKeyRepo(this.#db).list(tenant);
    return rows.map((r) => this.#view(r, now));
  }

  /**
   * One key of a tenant.
   *
   * @param tenant owner
   * @param id key id
   * @throws NotFoundError when absent or owned by another tenant
   */
  async get(tenant: string, id: string): Promise<ApiKeyView> {
    const row = await new ApiKeyRepo(this.#db).get(tenant, id);
    if (row === null) throw notFound();
    return this.#view(row, this.#now());
  }

  /**
   * Issue a new secret for a key. The old secret keeps working for
   * `graceSeconds` (default 24 h, at most 7 days; 0 ends it at once), so
   * clients can switch without downtime. A second rotation replaces the first
   * one's previous secret, ending its grace period.
   *
   * @param ref tenant, key id and grace period in seconds
   * @param ctx actor and request id for the audit row
   * @returns the key and its new secret
   * @throws NotFoundError when absent or owned by another tenant
   * @throws ConflictError when the key is revoked or expired
   * @throws ValidationError when the grace period is out of range
   */
  async rotate(
    ref: { tenant: string; id: string; graceSeconds?: number | undefined },
    ctx: ActionContext,
  ): Promise<ApiKeyWithSecret> {
    const graceSeconds = ref.graceSeconds ?? DEFAULT_GRACE_SECONDS;
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
      throw new ValidationError(
        `Invalid graceSeconds: must be a whole number from 0 to ${MAX_GRACE_SECONDS}`,
        { issues: [{ path: "graceSeconds", message: `must be 0..${MAX_GRACE_SECONDS}` }] },
      );
    }
    const now = this.#now();
    const record = await this.#db.transaction(async (tx) => {
      const repo = new ApiKeyRepo(tx);
      // Lock the row: two concurrent rotations must not both keep "the" old secret.
      const current = await repo.get(ref.tenant, ref.id, { forUpdate: true });
      if (current === null) throw notFound();
      const status = statusOf(current, now);
      if (status !== "active") {
        throw new ConflictError(`Cannot rotate API key "${current.id}": it is ${status}`, {
          code: `api-key-${status}`,
        });
      }
      const next = { env: this.#env, keyId: current.id, secret: generateSecret() };
      const prevSecretExpiresAt = new Date(now.getTime() + graceSeconds * 1000);
      const updated = await repo.rotate(ref.tenant, {
        id: current.id,
        secretHash: hashApiKey(next),
        prevSecretExpiresAt,
        rotatedAt: now,
      });
      if (updated === null) throw notFound();
      await this.#audit.append(tx, {
        actor: ctx.actor,
        tenant: updated.tenant,
        action: "api_key.rotate",
        target: updated.id,
        outcome: "success",
        requestId: ctx.requestId,
        details: { graceSeconds, previousSecretExpiresAt: prevSecretExpiresAt.toISOString() },
      });
      return { updated, token: formatApiKey(next) };
    });
    this.#onKeyChanged(record.updated.id);
    return { key: this.#view(record.updated, now), secret: record.token };
  }

  /**
   * Revoke a key for good. Idempotent: revoking again keeps the first
   * revocation time (and is audited with `alreadyRevoked: true`).
   *
   * @param ref tenant and key id
   * @param ctx actor and request id for the audit row
   * @returns the revoked key
   * @throws NotFoundError when absent or owned by another tenant
   */
  async revoke(ref: { tenant: string; id: string }, ctx: ActionContext): Promise<ApiKeyView> {
    const now = this.#now();
    const updated = await this.#db.transaction(async (tx) => {
      const repo = new ApiKeyRepo(tx);
      const current = await repo.get(ref.tenant, ref.id, { forUpdate: true });
      if (current === null) throw notFound();
      const row = await repo.revoke(ref.tenant, { id: current.id, revokedAt: now });
      if (row === null) throw notFound();
      await this.#audit.append(tx, {
        actor: ctx.actor,
        tenant: row.tenant,
        action: "api_key.revoke",
        target: row.id,
        outcome: "success",
        requestId: ctx.requestId,
        details: { alreadyRevoked: current.revokedAt !== null },
      });
      return row;
    });
    this.#onKeyChanged(updated.id);
    return this.#view(updated, now);
  }

  #view(r: ApiKeyRecord, now: Date): ApiKeyView {
    return {
      id: r.id,
      tenant: r.tenant,
      name: r.name === "" ? null : r.name,
      scopes: r.scopes.filter(isScope),
      status: statusOf(r, now),
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      revokedAt: r.revokedAt,
      lastUsedAt: r.lastUsedAt,
      rotatedAt: r.rotatedAt,
      previousSecretExpiresAt: r.prevSecretHash === null ? null : r.prevSecretExpiresAt,
    };
  }
}

function statusOf(r: ApiKeyRecord, now: Date): ApiKeyStatus {
  if (r.revokedAt !== null) return "revoked";
  if (r.expiresAt !== null && r.expiresAt.getTime() <= now.getTime()) return "expired";
  return "active";
}

function notFound(): NotFoundError {
  return new NotFoundError("API key not found");
}

function checkTenant(tenant: unknown): string {
  if (typeof tenant !== "string" || !TENANT_PATTERN.test(tenant)) {
    throw new ValidationError(
      "Invalid tenant: expected 1-64 characters of letters, digits, '.', '_', ':' or '-'",
      { issues: [{ path: "tenant", message: "invalid tenant id" }] },
    );
  }
  return tenant;
}

function checkScopes(scopes: unknown): Scope[] {
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new ValidationError("Invalid scopes: at least one scope is required", {
      issues: [{ path: "scopes", message: "must be a non-empty list" }],
    });
  }
  const bad = scopes.filter((s) => typeof s !== "string" || !isScope(s));
  if (bad.length > 0) {
    throw new ValidationError(
      `Invalid scopes: unknown scope ${
        bad.slice(0, 5).map((s) => `"${String(s).slice(0, 32)}"`).join(", ")
      }; known scopes are ${SCOPES.join(", ")}`,
      { issues: [{ path: "scopes", message: "unknown scope" }] },
    );
  }
  if (new Set(scopes).size !== scopes.length) {
    throw new ValidationError("Invalid scopes: each scope may appear once", {
      issues: [{ path: "scopes", message: "duplicate scope" }],
    });
  }
  return scopes as Scope[];
}

function checkName(name: unknown): string | undefined {
  if (name === undefined) return undefined;
  // Names reach logs and the audit trail: no control characters.
  if (
    typeof name !== "string" || name.length === 0 || name.length > MAX_NAME_LENGTH ||
    /\p{Cc}/u.test(name)
  ) {
    throw new ValidationError(`Invalid name: expected 1-${MAX_NAME_LENGTH} printable characters`, {
      issues: [{ path: "name", message: `must be 1-${MAX_NAME_LENGTH} characters` }],
    });
  }
  return name;
}
