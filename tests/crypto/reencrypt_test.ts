import assert from "node:assert/strict";
import {
  EncryptedSecretRepo,
  Keyring,
  type ReencryptProgress,
  reencryptSecrets,
  SecretBox,
  type SecretContext,
} from "../../src/crypto/mod.ts";
import type { Db } from "../../src/db/mod.ts";
import { dbTest } from "../_helpers/db.ts";

const KEY_A = { id: "ka", key: crypto.getRandomValues(new Uint8Array(32)) };
const KEY_B = { id: "kb", key: crypto.getRandomValues(new Uint8Array(32)) };
const KEY_C = { id: "kc", key: crypto.getRandomValues(new Uint8Array(32)) };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

async function boxOf(...keys: { id: string; key: Uint8Array }[]): Promise<SecretBox> {
  return new SecretBox(await Keyring.import(keys));
}

async function seed(db: Db, count: number): Promise<void> {
  const repo = new EncryptedSecretRepo(db, await boxOf(KEY_A));
  for (let i = 0; i < count; i++) {
    const id = `s${String(i).padStart(3, "0")}`;
    await repo.put(i % 2 === 0 ? "t1" : "t2", { id, purpose: "p", value: enc(`value-${i}`) });
  }
}

async function keyCounts(db: Db): Promise<Record<string, number>> {
  const rows = await db.query<{ key_id: string; n: bigint }>(
    "SELECT key_id, count(*) AS n FROM encrypted_secrets GROUP BY key_id ORDER BY key_id",
  );
  return Object.fromEntries(rows.map((r) => [r.key_id, Number(r.n)]));
}

async function assertAllReadable(db: Db, box: SecretBox, count: number): Promise<void> {
  const repo = new EncryptedSecretRepo(db, box);
  for (let i = 0; i < count; i++) {
    const id = `s${String(i).padStart(3, "0")}`;
    const got = await repo.get(i % 2 === 0 ? "t1" : "t2", id);
    assert.equal(dec(got?.value), `value-${i}`, id);
  }
}

dbTest(
  "reencryptSecrets() moves every row to the newest key and they still decrypt",
  async (db) => {
    await seed(db, 25);
    const box = await boxOf(KEY_A, KEY_B);
    const progress: ReencryptProgress[] = [];
    const result = await reencryptSecrets(db, box, {
      batchSize: 10,
      onProgress: (p) => progress.push(p),
    });
    assert.deepEqual(
      { ...result, failures: result.failures.length },
      {
        newestKeyId: "kb",
        examined: 25,
        reencrypted: 25,
        skipped: 0,
        failed: 0,
        failures: 0,
        remaining: 0,
        complete: true,
      },
    );
    assert.deepEqual(progress.map((p) => p.examined), [10, 20, 25]);
    assert.deepEqual(await keyCounts(db), { kb: 25 });
    await assertAllReadable(db, box, 25);
    // Old key no longer needed.
    await assertAllReadable(db, await boxOf(KEY_B), 25);
    // Nothing left: a second run is a no-op.
    const again = await reencryptSecrets(db, box);
    assert.equal(again.examined, 0);
    assert.equal(again.complete, true);
  },
);

dbTest("reencryptSecrets() leaves updated_at alone and keeps tenant and purpose", async (db) => {
  await seed(db, 2);
  const before = await db.query(
    "SELECT id, tenant, purpose, created_at, updated_at FROM encrypted_secrets ORDER BY id",
  );
  await reencryptSecrets(db, await boxOf(KEY_A, KEY_B));
  const after = await db.query(
    "SELECT id, tenant, purpose, created_at, updated_at FROM encrypted_secrets ORDER BY id",
  );
  assert.deepEqual(after, before);
});

dbTest("reencryptSecrets() interrupted by maxRows resumes where it stopped", async (db) => {
  await seed(db, 12);
  const box = await boxOf(KEY_A, KEY_B);
  const first = await reencryptSecrets(db, box, { batchSize: 2, maxRows: 5 });
  assert.equal(first.examined, 5);
  assert.equal(first.reencrypted, 5);
  assert.equal(first.remaining, 7);
  assert.equal(first.complete, false);
  assert.deepEqual(await keyCounts(db), { ka: 7, kb: 5 });
  // Half-rotated state: every row still readable with both keys loaded.
  await assertAllReadable(db, box, 12);

  const second = await reencryptSecrets(db, box, { batchSize: 2, maxRows: 5 });
  assert.equal(second.reencrypted, 5);
  assert.equal(second.remaining, 2);
  const third = await reencryptSecrets(db, box, { batchSize: 100 });
  assert.equal(third.reencrypted, 2);
  assert.equal(third.complete, true);
  assert.deepEqual(await keyCounts(db), { kb: 12 });
  await assertAllReadable(db, box, 12);
});

dbTest("reencryptSecrets() stops between rows when its signal is aborted", async (db) => {
  await seed(db, 6);
  const box = await boxOf(KEY_A, KEY_B);
  const abort = new AbortController();
  const result = await reencryptSecrets(db, box, {
    batchSize: 2,
    signal: abort.signal,
    onProgress: (p) => {
      if (p.examined >= 2) abort.abort();
    },
  });
  assert.equal(result.reencrypted, 2);
  assert.equal(result.remaining, 4);
  assert.equal(result.complete, false);
});

dbTest(
  "reencryptSecrets() runs concurrently with itself without losing or double-writing rows",
  async (db) => {
    await seed(db, 30);
    const box = await boxOf(KEY_A, KEY_B);
    const results = await Promise.all([
      reencryptSecrets(db, box, { batchSize: 4 }),
      reencryptSecrets(db, box, { batchSize: 7 }),
      reencryptSecrets(db, box, { batchSize: 30 }),
    ]);
    const reencrypted = results.reduce((n, r) => n + r.reencrypted, 0);
    assert.equal(reencrypted, 30);
    for (const r of results) assert.equal(r.failed, 0);
    assert.deepEqual(await keyCounts(db), { kb: 30 });
    await assertAllReadable(db, box, 30);
  },
);

dbTest(
  "reencryptSecrets() skips a row rewritten meanwhile instead of overwriting it",
  async (db) => {
    await seed(db, 3);
    const box = await boxOf(KEY_A, KEY_B);
    // A server still on the old keyring rewrites s001 while the rotation runs:
    // its new value (under ka) must survive, and be picked up by the next run.
    const oldServer = new EncryptedSecretRepo(db, await boxOf(KEY_A));
    let rewritten = false;
    class InterleavingBox extends SecretBox {
      override async open(envelope: Uint8Array, context: SecretContext): Promise<Uint8Array> {
        const plaintext = await super.open(envelope, context);
        if (context.rowId === "s001" && !rewritten) {
          rewritten = true;
          await oldServer.put("t2", { id: "s001", purpose: "p", value: enc("fresh") });
        }
        return plaintext;
      }
    }
    const result = await reencryptSecrets(
      db,
      new InterleavingBox(await Keyring.import([KEY_A, KEY_B])),
    );
    assert.equal(result.skipped, 1);
    assert.equal(result.reencrypted, 2);
    assert.equal(result.remaining, 1);
    assert.equal(dec((await new EncryptedSecretRepo(db, box).get("t2", "s001"))?.value), "fresh");
    const next = await reencryptSecrets(db, box);
    assert.equal(next.reencrypted, 1);
    assert.equal(next.complete, true);
    assert.equal(dec((await new EncryptedSecretRepo(db, box).get("t2", "s001"))?.value), "fresh");
  },
);

dbTest("reencryptSecrets() reports rows it cannot decrypt and carries on", async (db) => {
  await seed(db, 4);
  // s002 under a key the keyring lacks; s001's ciphertext moved onto s003.
  const repoC = new EncryptedSecretRepo(db, await boxOf(KEY_C));
  await repoC.put("t1", { id: "s002", purpose: "p", value: enc("value-2") });
  await db.query(
    `UPDATE encrypted_secrets SET ciphertext = (SELECT ciphertext FROM encrypted_secrets WHERE id = 's001')
     WHERE id = 's003'`,
  );
  const result = await reencryptSecrets(db, await boxOf(KEY_A, KEY_B), { batchSize: 1 });
  assert.equal(result.reencrypted, 2);
  assert.equal(result.failed, 2);
  assert.deepEqual(result.failures, [
    { id: "s002", reason: "unknown-key" },
    { id: "s003", reason: "authentication-failed" },
  ]);
  assert.equal(result.remaining, 2);
  assert.equal(result.complete, false);
  assert.deepEqual(await keyCounts(db), { ka: 1, kb: 2, kc: 1 });
});

dbTest("reencryptSecrets() rejects malformed options", async (db) => {
  const box = await boxOf(KEY_A);
  await assert.rejects(() => reencryptSecrets(db, box, { batchSize: 0 }), RangeError);
  await assert.rejects(() => reencryptSecrets(db, box, { batchSize: 1.5 }), TypeError);
  await assert.rejects(() => reencryptSecrets(db, box, { maxRows: -1 }), RangeError);
  await assert.rejects(() => reencryptSecrets(db, box, { maxRows: "3" as never }), TypeError);
});
