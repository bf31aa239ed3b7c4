import assert from "node:assert/strict";
import { currentVersion, migrate, MIGRATIONS, SchemaTooNewError } from "../../src/db/mod.ts";
import { dbTest } from "../_helpers/db.ts";

dbTest("migrate() is idempotent and records versions", async (db) => {
  const again = await migrate(db, MIGRATIONS);
  assert.deepEqual(again.applied, []);
  assert.equal(again.version, MIGRATIONS.at(-1)?.version);
});

dbTest("migrate() refuses a database newer than the code", async (db) => {
  await db.query("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')");
  await assert.rejects(() => migrate(db, MIGRATIONS), SchemaTooNewError);
  assert.equal(await currentVersion(db), 9999);
});

dbTest("Db returns bigint for int8 and Uint8Array for bytea", async (db) => {
  const [row] = await db.query<{ a: bigint; b: Uint8Array; j: unknown; t: Date; n: string }>(
    "SELECT $1::int8 AS a, $2::bytea AS b, $3::jsonb AS j, now() AS t, 1.5::numeric AS n",
    [2100000000000000n, new Uint8Array([1, 2, 3]), JSON.stringify({ x: [1] })],
  );
  assert.ok(row);
  assert.equal(row.a, 2100000000000000n);
  assert.ok(row.b instanceof Uint8Array);
  assert.deepEqual([...row.b], [1, 2, 3]);
  assert.deepEqual(row.j, { x: [1] });
  assert.ok(row.t instanceof Date);
  assert.equal(row.n, "1.5");
});

dbTest("transaction() rolls back when the body throws", async (db) => {
  await db.query("CREATE TABLE tx_probe (v int)");
  await assert.rejects(() =>
    db.transaction(async (tx) => {
      await tx.query("INSERT INTO tx_probe VALUES (1)");
      throw new Error("boom");
    })
  );
  await db.transaction(async (tx) => {
    await tx.query("INSERT INTO tx_probe VALUES (2)");
  });
  const rows = await db.query<{ v: number }>("SELECT v FROM tx_probe");
  assert.deepEqual(rows.map((r) => r.v), [2]);
});

dbTest("audit_log refuses UPDATE and DELETE", async (db) => {
  await db.query(
    `INSERT INTO audit_log (seq, at, actor, tenant, action, target, outcome, request_id, prev_hash, hash)
    VALUES (1, now(), 'a', 't', 'x', 'y', 'ok', 'r', '', 'h')`,
  );
  await assert.rejects(() => db.query("UPDATE audit_log SET actor = 'b'"), /append-only/);
  await assert.rejects(() => db.query("DELETE FROM audit_log"), /append-only/);
});
