import assert from "node:assert/strict";
import { AuditLog } from "../../src/audit/audit_log.ts";
import {
  ApiKeyAuthenticator,
  type ApiKeyAuthenticatorOptions,
} from "../../src/auth/api_key_authenticator.ts";
import { ApiKeyRepo } from "../../src/auth/api_key_repo.ts";
import { type ActionContext, ApiKeyService } from "../../src/auth/api_key_service.ts";
import { generateApiKey, hashApiKey } from "../../src/auth/api_key.ts";
import type { Db, SqlParam } from "../../src/db/db.ts";
import { UnauthorizedError, UnavailableError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { dbTest } from "../_helpers/db.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");
const CTX: ActionContext = { actor: "admin-key", requestId: "req-1" };
const AUTH_LOOKUP = "FROM api_keys WHERE id = $1";

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

/** Wraps a database, recording statements and failing on demand. */
function instrument(db: Db) {
  const statements: string[] = [];
  const state = { fail: undefined as RegExp | undefined };
  const wrapped: Db = {
    kind: db.kind,
    query<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
      statements.push(sql);
      if (state.fail?.test(sql)) return Promise.reject(new Error("connection refused"));
      return db.query<T>(sql, params);
    },
    exec: (sql) => db.exec(sql),
    transaction: (fn) => db.transaction(fn),
    close: () => Promise.resolve(),
  };
  return {
    db: wrapped,
    state,
    lookups: () => statements.filter((s) => s.includes(AUTH_LOOKUP)).length,
    updates: () => statements.filter((s) => s.includes("SET last_used_at")).length,
  };
}

function setup(db: Db, options: Partial<ApiKeyAuthenticatorOptions> = {}) {
  const clock = manualClock();
  const logs: string[] = [];
  const probe = instrument(db);
  const auth = new ApiKeyAuthenticator({
    db: probe.db,
    cacheTtlMs: 5000,
    logger: createLogger({ sink: (_level, line) => logs.push(line) }),
    now: clock.now,
    // Long enough that tests flush explicitly.
    lastUsedFlushDelayMs: 600_000,
    ...options,
  });
  // The service runs against the unwrapped database: it is "another instance".
  const service = new ApiKeyService({ db, audit: new AuditLog(db), now: clock.now });
  return { auth, service, clock, logs, probe };
}

dbTest("ApiKeyAuthenticator.authenticate() returns the key's principal", async (db) => {
  const { auth, service } = setup(db);
  try {
    const { key, secret } = await service.create(
      { tenant: "acme", scopes: ["read", "psbt"] },
      CTX,
    );
    const principal = await auth.authenticate(secret);
    assert.equal(principal.keyId, key.id);
    assert.equal(principal.tenant, "acme");
    assert.deepEqual(principal.scopes, new Set(["read", "psbt"]));
    assert.ok(Object.isFrozen(principal));
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator rejects every bad key with the same detail", async (db) => {
  const { auth, service, clock } = setup(db, { cacheTtlMs: 0 });
  try {
    const good = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    const revoked = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    await service.revoke({ tenant: "acme", id: revoked.key.id }, CTX);
    const expiring = await service.create(
      { tenant: "acme", scopes: ["read"], expiresAt: new Date(T0.getTime() + 1000) },
      CTX,
    );
    clock.advance(1000);
    const wrongSecret = `${good.secret.slice(0, -43)}${generateApiKey().secret}`;
    const cases: [string, unknown][] = [
      ["empty", ""],
      ["garbage", "hello"],
      ["not a string", 42],
      ["unknown key id", generateApiKey().token],
      ["wrong secret", wrongSecret],
      ["test env of a live key", good.secret.replace("anya_live_", "anya_test_")],
      ["revoked", revoked.secret],
      ["expired", expiring.secret],
    ];
    for (const [label, token] of cases) {
      await assert.rejects(
        () => auth.authenticate(token as string),
        (err) =>
          err instanceof UnauthorizedError && err.message === "Missing or invalid API key" &&
          err.status === 401,
        label,
      );
    }
    assert.equal((await auth.authenticate(good.secret)).tenant, "acme");
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator serves repeated requests from its cache for cacheTtlMs", async (db) => {
  const { auth, service, clock, probe } = setup(db, { cacheTtlMs: 5000 });
  try {
    const { secret } = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    for (let i = 0; i < 5; i++) await auth.authenticate(secret);
    assert.equal(probe.lookups(), 1);
    clock.advance(4999);
    await auth.authenticate(secret);
    assert.equal(probe.lookups(), 1);
    clock.advance(1);
    await auth.authenticate(secret);
    assert.equal(probe.lookups(), 2);
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator accepts a revoked cached key until the TTL ends", async (db) => {
  const { auth, service, clock } = setup(db, { cacheTtlMs: 5000 });
  try {
    const { key, secret } = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    await auth.authenticate(secret);
    await service.revoke({ tenant: "acme", id: key.id }, CTX);
    clock.advance(4999);
    assert.equal((await auth.authenticate(secret)).keyId, key.id, "still cached");
    clock.advance(1);
    await assert.rejects(() => auth.authenticate(secret), UnauthorizedError);
    clock.advance(1);
    await assert.rejects(() => auth.authenticate(secret), UnauthorizedError);
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator.invalidate() makes a revocation take effect at once", async (db) => {
  const { auth, service, clock } = setup(db, { cacheTtlMs: 60_000 });
  const wired = new ApiKeyService({
    db,
    audit: new AuditLog(db),
    now: clock.now,
    onKeyChanged: (id) => auth.invalidate(id),
  });
  try {
    const a = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    const b = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    await auth.authenticate(a.secret);
    await auth.authenticate(b.secret);
    await wired.revoke({ tenant: "acme", id: a.key.id }, CTX);
    await assert.rejects(() => auth.authenticate(a.secret), UnauthorizedError);
    assert.equal((await auth.authenticate(b.secret)).keyId, b.key.id, "other keys stay cached");
  } finally {
    await auth.close();
  }
});

dbTest(
  "ApiKeyAuthenticator does not cache failures: a key created later works at once",
  async (db) => {
    const { auth } = setup(db, { cacheTtlMs: 60_000 });
    try {
      const key = generateApiKey();
      await assert.rejects(() => auth.authenticate(key.token), UnauthorizedError);
      await new ApiKeyRepo(db).insert({
        id: key.keyId,
        tenant: "acme",
        name: "",
        scopes: ["read"],
        secretHash: hashApiKey(key),
        createdAt: T0,
        expiresAt: null,
      });
      assert.equal((await auth.authenticate(key.token)).keyId, key.keyId);
    } finally {
      await auth.close();
    }
  },
);

dbTest(
  "ApiKeyAuthenticator accepts a new secret rotated elsewhere while the old is cached",
  async (db) => {
    const { auth, service, clock } = setup(db, { cacheTtlMs: 60_000 });
    try {
      const created = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
      await auth.authenticate(created.secret);
      const rotated = await service.rotate(
        { tenant: "acme", id: created.key.id, graceSeconds: 10 },
        CTX,
      );
      assert.equal((await auth.authenticate(rotated.secret)).keyId, created.key.id);
      assert.equal((await auth.authenticate(created.secret)).keyId, created.key.id);
      // The old secret's grace end is checked even on cache hits.
      clock.advance(10_000);
      await assert.rejects(() => auth.authenticate(created.secret), UnauthorizedError);
      assert.equal((await auth.authenticate(rotated.secret)).keyId, created.key.id);
    } finally {
      await auth.close();
    }
  },
);

dbTest("ApiKeyAuthenticator rejects a cached key once it expires", async (db) => {
  const { auth, service, clock, probe } = setup(db, { cacheTtlMs: 60_000 });
  try {
    const { secret } = await service.create(
      { tenant: "acme", scopes: ["read"], expiresAt: new Date(T0.getTime() + 2000) },
      CTX,
    );
    await auth.authenticate(secret);
    clock.advance(1999);
    await auth.authenticate(secret);
    clock.advance(1);
    await assert.rejects(() => auth.authenticate(secret), UnauthorizedError);
    assert.equal(probe.lookups(), 1, "rejected from the cache");
    await assert.rejects(() => auth.authenticate(secret), UnauthorizedError);
    assert.equal(probe.lookups(), 2, "the expired entry was dropped");
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator keeps at most maxCacheEntries keys", async (db) => {
  const { auth, service, probe } = setup(db, { cacheTtlMs: 60_000, maxCacheEntries: 2 });
  try {
    const keys = [];
    for (let i = 0; i < 3; i++) {
      keys.push(await service.create({ tenant: "acme", scopes: ["read"] }, CTX));
    }
    for (const k of keys) await auth.authenticate(k.secret);
    assert.equal(probe.lookups(), 3);
    await auth.authenticate(keys[2]!.secret);
    await auth.authenticate(keys[1]!.secret);
    assert.equal(probe.lookups(), 3, "the two newest are cached");
    await auth.authenticate(keys[0]!.secret);
    assert.equal(probe.lookups(), 4, "the oldest was evicted");
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator shares one lookup between concurrent first requests", async (db) => {
  const { auth, service, probe } = setup(db);
  try {
    const { secret } = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    const results = await Promise.all(Array.from({ length: 10 }, () => auth.authenticate(secret)));
    assert.equal(new Set(results.map((p) => p.keyId)).size, 1);
    assert.equal(probe.lookups(), 1);
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator writes last_used_at at most once per interval per key", async (db) => {
  const { auth, service, clock, probe } = setup(db, { lastUsedIntervalMs: 60_000 });
  try {
    const a = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    const b = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    for (let i = 0; i < 5; i++) {
      await auth.authenticate(a.secret);
      await auth.authenticate(b.secret);
    }
    assert.equal(probe.updates(), 0, "nothing is written on the request path");
    await auth.flush();
    assert.equal(probe.updates(), 1, "both keys in one statement");
    assert.deepEqual((await service.get("acme", a.key.id)).lastUsedAt, T0);
    assert.deepEqual((await service.get("acme", b.key.id)).lastUsedAt, T0);

    clock.advance(30_000);
    await auth.authenticate(a.secret);
    await auth.flush();
    assert.equal(probe.updates(), 1, "within the interval: no write");

    clock.advance(30_000);
    await auth.authenticate(a.secret);
    await auth.flush();
    assert.equal(probe.updates(), 2);
    assert.deepEqual((await service.get("acme", a.key.id)).lastUsedAt, clock.now());
    assert.deepEqual((await service.get("acme", b.key.id)).lastUsedAt, T0);
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator flushes last use on its timer and on close()", async (db) => {
  const { auth, service } = setup(db, { lastUsedFlushDelayMs: 10 });
  const { key, secret } = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
  await auth.authenticate(secret);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual((await service.get("acme", key.id)).lastUsedAt, T0);

  const { auth: other, service: s2, clock } = setup(db);
  clock.advance(120_000);
  await other.authenticate(secret);
  await other.close();
  assert.deepEqual((await s2.get("acme", key.id)).lastUsedAt, clock.now());
  await auth.close();
});

dbTest("ApiKeyAuthenticator logs a failed last-used write and still authenticates", async (db) => {
  const { auth, service, probe, logs } = setup(db);
  try {
    const { secret } = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    probe.state.fail = /SET last_used_at/;
    assert.equal((await auth.authenticate(secret)).tenant, "acme");
    await auth.flush();
    assert.equal(logs.length, 1);
    const line = JSON.parse(logs[0]!);
    assert.equal(line.level, "error");
    assert.equal(line.msg, "api key last-used update failed");
    assert.ok(!logs[0]!.includes(secret));
  } finally {
    await auth.close();
  }
});

dbTest("ApiKeyAuthenticator answers 503 when the database cannot be asked", async (db) => {
  const { auth, service, probe } = setup(db);
  try {
    const { secret } = await service.create({ tenant: "acme", scopes: ["read"] }, CTX);
    probe.state.fail = /FROM api_keys/;
    await assert.rejects(
      () => auth.authenticate(secret),
      (err) => err instanceof UnavailableError && err.status === 503,
    );
    probe.state.fail = undefined;
    assert.equal((await auth.authenticate(secret)).tenant, "acme");
  } finally {
    await auth.close();
  }
});

Deno.test("ApiKeyAuthenticator rejects invalid options", () => {
  const db = {} as Db;
  const logger = createLogger({ sink: () => {} });
  assert.throws(() =>
    new ApiKeyAuthenticator({
      db,
      cacheTtlMs: -1,
      logger,
    }), RangeError);
  assert.throws(() =>
    new ApiKeyAuthenticator({
      db,
      cacheTtlMs: 1.5,
      logger,
    }), RangeError);
  assert.throws(
    () =>
      new ApiKeyAuthenticator({
        db,
        cacheTtlMs: 0,
        logger,
        maxCacheEntries: 0,
      }),
    RangeError,
  );
});
