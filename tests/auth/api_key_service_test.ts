import assert from "node:assert/strict";
import { AuditLog } from "../../src/audit/audit_log.ts";
import { ApiKeyAuthenticator } from "../../src/auth/api_key_authenticator.ts";
import { ApiKeyRepo } from "../../src/auth/api_key_repo.ts";
import {
  type ActionContext,
  ApiKeyService,
  DEFAULT_GRACE_SECONDS,
} from "../../src/auth/api_key_service.ts";
import { hashApiKey, parseApiKey } from "../../src/auth/api_key.ts";
import type { Db } from "../../src/db/db.ts";
import {
  ConflictError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
} from "../../src/errors/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { dbTest } from "../_helpers/db.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");
const CTX: ActionContext = { actor: "admin-key", requestId: "req-1" };

/** A clock tests move by hand. */
function manualClock(start = T0) {
  let t = start.getTime();
  return {
    now: () => new Date(t),
    advance(ms: number) {
      t += ms;
    },
  };
}

function setup(db: Db, clock = manualClock()) {
  const audit = new AuditLog(db);
  const service = new ApiKeyService({ db, audit, now: clock.now });
  // TTL 0: every call reads the database, so these tests see changes at once.
  const auth = new ApiKeyAuthenticator({
    db,
    cacheTtlMs: 0,
    logger: createLogger({ sink: () => {} }),
    now: clock.now,
  });
  return { audit, service, auth, clock };
}

dbTest("ApiKeyService.create() stores only a hash and returns the secret once", async (db) => {
  const { service, auth } = setup(db);
  const { key, secret } = await service.create(
    { tenant: "acme", scopes: ["read", "admin"], name: "ops" },
    CTX,
  );
  assert.match(secret, /^anya_live_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(key, {
    id: key.id,
    tenant: "acme",
    name: "ops",
    scopes: ["read", "admin"],
    status: "active",
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    rotatedAt: null,
    previousSecretExpiresAt: null,
  });
  assert.equal(secret.split("_")[2], key.id);
  const stored = await new ApiKeyRepo(db).get("acme", key.id);
  const parsed = parseApiKey(secret);
  assert.ok(stored !== null && parsed !== null);
  assert.deepEqual(stored.secretHash, hashApiKey(parsed));
  const [raw] = await db.query<Record<string, unknown>>("SELECT * FROM api_keys");
  const text = JSON.stringify(raw, (_, v) => (v instanceof Uint8Array ? Array.from(v) : v));
  assert.ok(!text.includes(parsed.secret), "the secret text is not stored");
  const principal = await auth.authenticate(secret);
  assert.deepEqual(principal.scopes, new Set(["read", "admin"]));
  await auth.close();
});

dbTest("ApiKeyService.create() validates its input and writes nothing on failure", async (db) => {
  const { service, audit } = setup(db);
  const bad = (v: unknown) => v as never;
  const cases: [string, Parameters<ApiKeyService["create"]>[0], number][] = [
    ["no scopes", { tenant: "acme", scopes: [] }, 400],
    ["unknown scope", { tenant: "acme", scopes: bad(["read", "root"]) }, 400],
    ["duplicate scope", { tenant: "acme", scopes: ["read", "read"] }, 400],
    ["empty tenant", { tenant: "", scopes: ["read"] }, 400],
    ["tenant with space", { tenant: "a b", scopes: ["read"] }, 400],
    ["long name", { tenant: "acme", scopes: ["read"], name: "x".repeat(101) }, 400],
    ["control char in name", { tenant: "acme", scopes: ["read"], name: "a\nb" }, 400],
    ["invalid date", { tenant: "acme", scopes: ["read"], expiresAt: new Date(NaN) }, 400],
    ["past expiry", { tenant: "acme", scopes: ["read"], expiresAt: new Date(T0.getTime()) }, 422],
  ];
  for (const [label, input, status] of cases) {
    await assert.rejects(
      () => service.create(input, CTX),
      (err) => err instanceof ValidationError && err.status === status,
      label,
    );
  }
  assert.deepEqual(await db.query("SELECT id FROM api_keys"), []);
  assert.deepEqual(await audit.verify(), { ok: true, checked: 0, headSeq: null });
});

dbTest("ApiKeyService.create() rolls back the key when the audit append fails", async (db) => {
  class FailingAudit extends AuditLog {
    override append(): never {
      throw new Error("audit store unavailable");
    }
  }
  const service = new ApiKeyService({ db, audit: new FailingAudit(db) });
  await assert.rejects(
    () => service.create({ tenant: "acme", scopes: ["read"] }, CTX),
    /audit store unavailable/,
  );
  assert.deepEqual(await db.query("SELECT id FROM api_keys"), []);
});

dbTest("ApiKeyService.list() and get() see only the caller's tenant", async (db) => {
  const { service, clock } = setup(db);
  const a1 = await service.create({ tenant: "a", scopes: ["read"] }, CTX);
  clock.advance(1000);
  const a2 = await service.create({ tenant: "a", scopes: ["admin"] }, CTX);
  const b1 = await service.create({ tenant: "b", scopes: ["read"] }, CTX);
  assert.deepEqual((await service.list("a")).map((k) => k.id), [a1.key.id, a2.key.id]);
  assert.deepEqual((await service.list("b")).map((k) => k.id), [b1.key.id]);
  assert.deepEqual(await service.list("c"), []);
  assert.equal((await service.get("a", a1.key.id)).id, a1.key.id);
  await assert.rejects(() => service.get("a", b1.key.id), NotFoundError);
  await assert.rejects(() => service.get("a", "0000000000000000"), NotFoundError);
  for (const view of await service.list("a")) {
    assert.deepEqual(
      Object.keys(view).filter((k) => /hash|secret/i.test(k) && k !== "previousSecretExpiresAt"),
      [],
    );
  }
});

dbTest("ApiKeyService.rotate() and revoke() answer 404 for another tenant's key", async (db) => {
  const { service, auth } = setup(db);
  const b = await service.create({ tenant: "b", scopes: ["read"] }, CTX);
  await assert.rejects(() => service.rotate({ tenant: "a", id: b.key.id }, CTX), NotFoundError);
  await assert.rejects(() => service.revoke({ tenant: "a", id: b.key.id }, CTX), NotFoundError);
  const after = await service.get("b", b.key.id);
  assert.equal(after.status, "active");
  assert.equal(after.rotatedAt, null);
  assert.equal((await auth.authenticate(b.secret)).tenant, "b");
  await auth.close();
});

dbTest(
  "ApiKeyService.rotate() keeps the old secret working until the grace period ends",
  async (db) => {
    const { service, auth, clock } = setup(db);
    const created = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    clock.advance(10_000);
    const rotated = await service.rotate(
      { tenant: "acme", id: created.key.id, graceSeconds: 3600 },
      CTX,
    );
    assert.notEqual(rotated.secret, created.secret);
    assert.equal(rotated.key.id, created.key.id);
    assert.deepEqual(rotated.key.rotatedAt, new Date(T0.getTime() + 10_000));
    assert.deepEqual(
      rotated.key.previousSecretExpiresAt,
      new Date(T0.getTime() + 10_000 + 3600_000),
    );

    assert.equal((await auth.authenticate(created.secret)).keyId, created.key.id);
    assert.equal((await auth.authenticate(rotated.secret)).keyId, created.key.id);
    clock.advance(3600_000 - 1);
    assert.equal((await auth.authenticate(created.secret)).keyId, created.key.id);
    clock.advance(1);
    await assert.rejects(() => auth.authenticate(created.secret), UnauthorizedError);
    assert.equal((await auth.authenticate(rotated.secret)).keyId, created.key.id);
    await auth.close();
  },
);

dbTest("ApiKeyService.rotate() defaults to 24 h grace; 0 ends it at once", async (db) => {
  const { service, auth } = setup(db);
  const created = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
  const first = await service.rotate({ tenant: "acme", id: created.key.id }, CTX);
  assert.deepEqual(
    first.key.previousSecretExpiresAt,
    new Date(T0.getTime() + DEFAULT_GRACE_SECONDS * 1000),
  );
  // A second rotation keeps only the secret it replaces: the first one stops now.
  const second = await service.rotate({ tenant: "acme", id: created.key.id, graceSeconds: 0 }, CTX);
  await assert.rejects(() => auth.authenticate(created.secret), UnauthorizedError);
  await assert.rejects(() => auth.authenticate(first.secret), UnauthorizedError);
  assert.equal((await auth.authenticate(second.secret)).tenant, "acme");
  for (const graceSeconds of [-1, 1.5, 7 * 86400 + 1, Number.NaN]) {
    await assert.rejects(
      () => service.rotate({ tenant: "acme", id: created.key.id, graceSeconds }, CTX),
      ValidationError,
      String(graceSeconds),
    );
  }
  await auth.close();
});

dbTest("ApiKeyService.revoke() stops the key, is idempotent, and blocks rotation", async (db) => {
  const { service, auth, clock } = setup(db);
  const changed: string[] = [];
  const tracked = new ApiKeyService({
    db,
    audit: new AuditLog(db),
    now: clock.now,
    onKeyChanged: (id) => changed.push(id),
  });
  const created = await tracked.create({ tenant: "acme", scopes: ["read"] }, CTX);
  await auth.authenticate(created.secret);
  const revoked = await tracked.revoke({ tenant: "acme", id: created.key.id }, CTX);
  assert.equal(revoked.status, "revoked");
  assert.deepEqual(revoked.revokedAt, T0);
  await assert.rejects(() => auth.authenticate(created.secret), UnauthorizedError);
  clock.advance(5000);
  const again = await service.revoke({ tenant: "acme", id: created.key.id }, CTX);
  assert.deepEqual(again.revokedAt, T0, "the first revocation time is kept");
  await assert.rejects(
    () => service.rotate({ tenant: "acme", id: created.key.id }, CTX),
    (err) => err instanceof ConflictError && err.code === "api-key-revoked",
  );
  assert.deepEqual(changed, [created.key.id]);
  await auth.close();
});

dbTest("ApiKeyService keys stop working at their expiry", async (db) => {
  const { service, auth, clock } = setup(db);
  const expiresAt = new Date(T0.getTime() + 60_000);
  const created = await service.create({ tenant: "acme", scopes: ["read"], expiresAt }, CTX);
  assert.deepEqual(created.key.expiresAt, expiresAt);
  clock.advance(59_999);
  assert.equal((await auth.authenticate(created.secret)).tenant, "acme");
  clock.advance(1);
  await assert.rejects(() => auth.authenticate(created.secret), UnauthorizedError);
  assert.equal((await service.get("acme", created.key.id)).status, "expired");
  await assert.rejects(
    () => service.rotate({ tenant: "acme", id: created.key.id }, CTX),
    (err) => err instanceof ConflictError && err.code === "api-key-expired",
  );
  await auth.close();
});

dbTest("ApiKeyService writes one audit row per change and the chain verifies", async (db) => {
  const { service, audit } = setup(db);
  const created = await service.create(
    { tenant: "acme", scopes: ["read", "admin"], name: "ops" },
    { actor: "cli:keys:create", requestId: "r1" },
  );
  await service.rotate(
    { tenant: "acme", id: created.key.id, graceSeconds: 60 },
    { actor: "k1", requestId: "r2" },
  );
  await service.revoke({ tenant: "acme", id: created.key.id }, { actor: "k1", requestId: "r3" });
  await service.get("acme", created.key.id);
  await service.list("acme");
  const rows = (await audit.list("acme", { limit: 10 })).reverse();
  assert.deepEqual(
    rows.map((r) => [r.action, r.actor, r.requestId, r.target, r.outcome]),
    [
      ["api_key.create", "cli:keys:create", "r1", created.key.id, "success"],
      ["api_key.rotate", "k1", "r2", created.key.id, "success"],
      ["api_key.revoke", "k1", "r3", created.key.id, "success"],
    ],
  );
  assert.deepEqual(rows[0]?.details, { scopes: "read,admin", name: "ops", expiresAt: null });
  assert.equal(rows[1]?.details.graceSeconds, 60);
  assert.deepEqual(rows[2]?.details, { alreadyRevoked: false });
  assert.ok(
    !JSON.stringify(rows, (_, v) => typeof v === "bigint" ? String(v) : v).includes(
      created.secret.slice(-43),
    ),
    "no secret in audit",
  );
  assert.deepEqual(await audit.verify(), { ok: true, checked: 3, headSeq: "3" });
});
