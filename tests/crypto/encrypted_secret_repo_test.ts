import assert from "node:assert/strict";
import { DecryptionError, EncryptedSecretRepo, Keyring, SecretBox } from "../../src/crypto/mod.ts";
import { ConflictError } from "../../src/errors/mod.ts";
import { dbTest } from "../_helpers/db.ts";

const KEY_A = { id: "ka", key: crypto.getRandomValues(new Uint8Array(32)) };
const KEY_B = { id: "kb", key: crypto.getRandomValues(new Uint8Array(32)) };
const enc = (s: string) => new TextEncoder().encode(s);

async function repoWith(
  db: Parameters<Parameters<typeof dbTest>[1]>[0],
  ...keys: { id: string; key: Uint8Array }[]
) {
  return new EncryptedSecretRepo(db, new SecretBox(await Keyring.import(keys)));
}

dbTest("EncryptedSecretRepo put/get round-trips and stores only ciphertext", async (db) => {
  const repo = await repoWith(db, KEY_A);
  const meta = await repo.put("t1", { purpose: "lnd.macaroon", value: enc("super-secret-mac") });
  assert.match(meta.id, /^sec_[0-9a-f]{32}$/);
  assert.equal(meta.tenant, "t1");
  assert.equal(meta.purpose, "lnd.macaroon");
  assert.equal(meta.keyId, "ka");
  assert.ok(meta.createdAt instanceof Date);

  const got = await repo.get("t1", meta.id);
  assert.ok(got);
  assert.deepEqual(got.value, enc("super-secret-mac"));
  assert.equal(got.keyId, "ka");
  assert.equal(got.purpose, "lnd.macaroon");

  const [row] = await db.query<{ key_id: string; ciphertext: Uint8Array }>(
    "SELECT key_id, ciphertext FROM encrypted_secrets WHERE id = $1",
    [meta.id],
  );
  assert.equal(row?.key_id, "ka");
  assert.ok(row?.ciphertext instanceof Uint8Array);
  assert.ok(!new TextDecoder().decode(row.ciphertext).includes("super-secret"));
});

dbTest("EncryptedSecretRepo.get() is tenant-scoped: another tenant gets null", async (db) => {
  const repo = await repoWith(db, KEY_A);
  const meta = await repo.put("t1", { id: "shared-id", purpose: "p", value: enc("v") });
  assert.equal(await repo.get("t2", meta.id), null);
  assert.equal(await repo.get("t1", "missing"), null);
  assert.equal(await repo.delete("t2", meta.id), false);
  assert.ok(await repo.get("t1", meta.id));
  // Purpose filter.
  assert.equal(await repo.get("t1", meta.id, { purpose: "other" }), null);
  assert.ok(await repo.get("t1", meta.id, { purpose: "p" }));
});

dbTest("EncryptedSecretRepo.put() replaces a value and refuses another tenant's id", async (db) => {
  const repo = await repoWith(db, KEY_A);
  const first = await repo.put("t1", { id: "s1", purpose: "p", value: enc("one") });
  const second = await repo.put("t1", { id: "s1", purpose: "p", value: enc("two") });
  assert.equal(second.createdAt.getTime(), first.createdAt.getTime());
  assert.deepEqual((await repo.get("t1", "s1"))?.value, enc("two"));

  await assert.rejects(
    () => repo.put("t2", { id: "s1", purpose: "p", value: enc("hijack") }),
    ConflictError,
  );
  await assert.rejects(
    () => repo.put("t1", { id: "s1", purpose: "other", value: enc("x") }),
    ConflictError,
  );
  assert.deepEqual((await repo.get("t1", "s1"))?.value, enc("two"));
});

dbTest("EncryptedSecretRepo.delete() removes only the tenant's row", async (db) => {
  const repo = await repoWith(db, KEY_A);
  await repo.put("t1", { id: "s1", purpose: "p", value: enc("v") });
  assert.equal(await repo.delete("t1", "s1"), true);
  assert.equal(await repo.get("t1", "s1"), null);
  assert.equal(await repo.delete("t1", "s1"), false);
});

dbTest("EncryptedSecretRepo put/delete join the caller's transaction", async (db) => {
  const repo = await repoWith(db, KEY_A);
  await assert.rejects(
    () =>
      db.transaction(async (tx) => {
        await repo.put("t1", { id: "s-tx", purpose: "p", value: enc("v") }, { tx });
        throw new Error("roll back");
      }),
    /roll back/,
  );
  assert.equal(await repo.get("t1", "s-tx"), null);
});

dbTest(
  "EncryptedSecretRepo.get() fails on a ciphertext moved to another row or tenant",
  async (db) => {
    const repo = await repoWith(db, KEY_A);
    await repo.put("t1", { id: "s1", purpose: "p", value: enc("one") });
    await repo.put("t1", { id: "s2", purpose: "p", value: enc("two") });
    await repo.put("t2", { id: "s3", purpose: "p", value: enc("three") });
    // Copy s1's ciphertext over s2 (same tenant) and over s3 (other tenant).
    await db.query(
      `UPDATE encrypted_secrets SET ciphertext = (SELECT ciphertext FROM encrypted_secrets WHERE id = 's1')
     WHERE id IN ('s2', 's3')`,
    );
    for (const [tenant, id] of [["t1", "s2"], ["t2", "s3"]] as const) {
      await assert.rejects(() => repo.get(tenant, id), (err: unknown) => {
        assert.ok(err instanceof DecryptionError);
        assert.equal(err.reason, "authentication-failed");
        assert.ok(!err.message.includes("one"));
        return true;
      }, id);
    }
    // Moving the row to another tenant or purpose breaks it too.
    await db.query("UPDATE encrypted_secrets SET tenant = 't9' WHERE id = 's1'");
    await assert.rejects(() => repo.get("t9", "s1"), DecryptionError);
  },
);

dbTest(
  "EncryptedSecretRepo.get() rejects a key_id column that disagrees with the envelope",
  async (db) => {
    const repo = await repoWith(db, KEY_A, KEY_B);
    await repo.put("t1", { id: "s1", purpose: "p", value: enc("v") });
    await db.query("UPDATE encrypted_secrets SET key_id = 'ka' WHERE id = 's1'");
    await assert.rejects(() => repo.get("t1", "s1"), /key id column does not match/);
  },
);

dbTest("EncryptedSecretRepo reads rows written under older keys", async (db) => {
  const old = await repoWith(db, KEY_A);
  await old.put("t1", { id: "s1", purpose: "p", value: enc("v") });
  const rotated = await repoWith(db, KEY_A, KEY_B);
  const got = await rotated.get("t1", "s1");
  assert.equal(got?.keyId, "ka");
  assert.deepEqual(got?.value, enc("v"));
  assert.equal((await rotated.put("t1", { id: "s1", purpose: "p", value: enc("w") })).keyId, "kb");
  // Without key A, an old row fails clearly.
  await old.put("t1", { id: "s2", purpose: "p", value: enc("v") });
  const onlyB = await repoWith(db, KEY_B);
  await assert.rejects(() => onlyB.get("t1", "s2"), /key "ka" is not in the data key file/);
});

dbTest("EncryptedSecretRepo rejects wrong argument types", async (db) => {
  const repo = await repoWith(db, KEY_A);
  const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError][] = [
    ["put tenant", () => repo.put(1 as never, { purpose: "p", value: enc("v") }), TypeError],
    ["put empty tenant", () => repo.put("", { purpose: "p", value: enc("v") }), RangeError],
    ["put input", () => repo.put("t", null as never), TypeError],
    ["put value string", () => repo.put("t", { purpose: "p", value: "v" as never }), TypeError],
    ["put bad id", () => repo.put("t", { id: "a b", purpose: "p", value: enc("v") }), RangeError],
    ["put purpose", () => repo.put("t", { purpose: 3 as never, value: enc("v") }), TypeError],
    ["get id", () => repo.get("t", 5 as never), TypeError],
    ["get empty id", () => repo.get("t", ""), RangeError],
    ["delete tenant", () => repo.delete(undefined as never, "s"), TypeError],
  ];
  for (const [label, fn, type] of cases) await assert.rejects(fn, type, label);
});
