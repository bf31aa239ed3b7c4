import assert from "node:assert/strict";
import { ApiKeyRepo, type NewApiKeyRecord } from "../../src/auth/api_key_repo.ts";
import { generateApiKey, hashApiKey } from "../../src/auth/api_key.ts";
import { dbTest } from "../_helpers/db.ts";

const T0 = new Date("2030-01-01T00:00:00.000Z");

function newKey(tenant: string): NewApiKeyRecord {
  const key = generateApiKey();
  return {
    id: key.keyId,
    tenant,
    name: "",
    scopes: ["read", "lightning:read"],
    secretHash: hashApiKey(key),
    createdAt: T0,
    expiresAt: null,
  };
}

dbTest("ApiKeyRepo round-trips scopes, hashes and dates as plain values", async (db) => {
  const repo = new ApiKeyRepo(db);
  const input = newKey("acme");
  const stored = await repo.insert(input);
  assert.deepEqual(stored.scopes, ["read", "lightning:read"]);
  assert.equal(Object.getPrototypeOf(stored.secretHash), Uint8Array.prototype);
  assert.deepEqual(stored.secretHash, input.secretHash);
  assert.deepEqual(stored.createdAt, T0);
  assert.deepEqual(await repo.getForAuthentication(input.id), stored);
});

dbTest("ApiKeyRepo tenant-scoped methods ignore other tenants' keys", async (db) => {
  const repo = new ApiKeyRepo(db);
  const b = await repo.insert(newKey("b"));
  assert.equal(await repo.get("a", b.id), null);
  assert.deepEqual(await repo.list("a"), []);
  assert.equal(await repo.revoke("a", { id: b.id, revokedAt: T0 }), null);
  const rotated = await repo.rotate("a", {
    id: b.id,
    secretHash: new Uint8Array(32),
    prevSecretExpiresAt: T0,
    rotatedAt: T0,
  });
  assert.equal(rotated, null);
  assert.deepEqual(await repo.get("b", b.id), b);
});

dbTest("ApiKeyRepo.touchLastUsed() writes many keys at once and never moves back", async (db) => {
  const repo = new ApiKeyRepo(db);
  const a = await repo.insert(newKey("acme"));
  const b = await repo.insert(newKey("acme"));
  const later = new Date(T0.getTime() + 120_000);
  assert.equal(await repo.touchLastUsed([]), 0);
  assert.equal(await repo.touchLastUsed([{ id: a.id, at: later }, { id: b.id, at: T0 }]), 2);
  assert.equal(await repo.touchLastUsed([{ id: a.id, at: T0 }]), 0);
  assert.deepEqual((await repo.get("acme", a.id))?.lastUsedAt, later);
  assert.deepEqual((await repo.get("acme", b.id))?.lastUsedAt, T0);
});
