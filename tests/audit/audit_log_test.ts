import assert from "node:assert/strict";
import { AuditLog } from "../../src/audit/mod.ts";
import { dbTest } from "../_helpers/db.ts";

const entry = (n: number, tenant = "t1") => ({
  actor: "key_1",
  tenant,
  action: "api_key.create",
  target: `key_${n}`,
  outcome: "success" as const,
  requestId: `req-${n}`,
  details: { scopes: "read", n, zeta: true, alpha: null },
});

dbTest("AuditLog.verify() accepts an intact chain", async (db) => {
  const log = new AuditLog(db);
  for (let i = 0; i < 5; i++) await log.record(entry(i));
  assert.deepEqual(await log.verify(2), { ok: true, checked: 5, headSeq: "5" });
});

dbTest("AuditLog.verify() reports the first edited row", async (db) => {
  const log = new AuditLog(db);
  for (let i = 0; i < 4; i++) await log.record(entry(i));
  await db.query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update");
  await db.query("UPDATE audit_log SET target = 'forged' WHERE seq = 2");
  const v = await log.verify();
  assert.equal(v.ok, false);
  assert.ok(!v.ok && v.firstBrokenSeq === "2" && /content/.test(v.reason));
});

dbTest("AuditLog.verify() reports a deleted row", async (db) => {
  const log = new AuditLog(db);
  for (let i = 0; i < 4; i++) await log.record(entry(i));
  await db.query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update");
  await db.query("DELETE FROM audit_log WHERE seq = 3");
  const v = await log.verify();
  assert.ok(!v.ok && v.firstBrokenSeq === "4" && /missing/.test(v.reason));
});

dbTest("AuditLog.append() writes nothing when the transaction rolls back", async (db) => {
  const log = new AuditLog(db);
  await assert.rejects(() =>
    db.transaction(async (tx) => {
      await log.append(tx, entry(1));
      throw new Error("action failed");
    })
  );
  assert.deepEqual(await log.verify(), { ok: true, checked: 0, headSeq: null });
});

dbTest("AuditLog.list() pages one tenant newest first", async (db) => {
  const log = new AuditLog(db);
  for (let i = 0; i < 3; i++) await log.record(entry(i, "t1"));
  await log.record(entry(9, "t2"));
  const page1 = await log.list("t1", { limit: 2 });
  assert.deepEqual(page1.map((r) => r.target), ["key_2", "key_1"]);
  const page2 = await log.list("t1", { before: page1.at(-1)?.seq, limit: 2 });
  assert.deepEqual(page2.map((r) => r.target), ["key_0"]);
});

dbTest("AuditLog appends from concurrent transactions form one chain", async (db) => {
  const log = new AuditLog(db);
  await Promise.all(Array.from({ length: 8 }, (_, i) => log.record(entry(i))));
  const v = await log.verify();
  assert.ok(v.ok && v.checked === 8);
});

dbTest("AuditLog.appendMany() chains a batch in order after the existing head", async (db) => {
  const log = new AuditLog(db);
  await log.record(entry(0));
  const batch = await db.transaction((tx) => log.appendMany(tx, [entry(1), entry(2), entry(3)]));
  assert.deepEqual(batch.map((r) => r.seq), [2n, 3n, 4n]);
  assert.equal(batch[1]!.prevHash, batch[0]!.hash);
  assert.deepEqual(await db.transaction((tx) => log.appendMany(tx, [])), []);
  await log.record(entry(4));
  assert.deepEqual(await log.verify(), { ok: true, checked: 5, headSeq: "5" });
  const listed = await log.list("t1", { limit: 10 });
  assert.deepEqual(listed.map((r) => r.target), ["key_4", "key_3", "key_2", "key_1", "key_0"]);
});
