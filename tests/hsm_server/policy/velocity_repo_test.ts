import assert from "node:assert/strict";
import { type Db, migrate, type Migration, openDb } from "../../../src/db/mod.ts";
import { VELOCITY_WINDOW_MS, VelocityRepo } from "../../../src/hsm_server/policy/velocity_repo.ts";
import velocitySql from "../../../src/hsm_server/migrations/0002_velocity.sql" with {
  type: "text",
};
import { DB_KINDS, openTestDb, type TestDb } from "../../_helpers/db.ts";

// Only this migration: it must not depend on the HSM's key tables (0001).
const VELOCITY_MIGRATION: Migration = { version: 2, name: "0002_velocity", sql: velocitySql };

/** One test per database kind, on a fresh schema holding only `hsm_velocity`. */
function velocityTest(name: string, fn: (db: TestDb) => Promise<void>): void {
  for (const kind of DB_KINDS) {
    Deno.test({
      name: `${name} [${kind}]`,
      // PGlite keeps its WASM instance and its timers for the whole process.
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        await using db = await openTestDb(kind, { migrate: false });
        await migrate(db, [VELOCITY_MIGRATION]);
        await fn(db);
      },
    });
  }
}

function windowStart(): Date {
  return new Date(Date.now() - VELOCITY_WINDOW_MS);
}

velocityTest("VelocityRepo.spentSince() sums what each key signed in the window", async (db) => {
  const repo = new VelocityRepo(db);
  assert.equal(await repo.spentSince("k1", windowStart()), 0n);
  await repo.record("k1", 100_000n, "req-1");
  await repo.record("k1", 2_100_000_000_000_000n, "req-2");
  await repo.record("k2", 7n, "req-3");
  assert.equal(await repo.spentSince("k1", windowStart()), 2_100_000_000_100_000n);
  assert.equal(await repo.spentSince("k2", windowStart()), 7n);
  assert.equal(await repo.spentSince("other", windowStart()), 0n);
});

velocityTest("VelocityRepo.spentSince() leaves out rows older than the window", async (db) => {
  const repo = new VelocityRepo(db);
  await db.query(
    `INSERT INTO hsm_velocity (key_id, amount_sats, request_id, signed_at)
     VALUES ('k1', 500, 'old', now() - interval '25 hours'),
            ('k1', 30, 'recent', now() - interval '23 hours')`,
  );
  await repo.record("k1", 1n, "now");
  assert.equal(await repo.spentSince("k1", windowStart()), 31n);
  assert.equal(await repo.prune(windowStart()), 1);
  assert.equal(await repo.spentSince("k1", new Date(0)), 31n);
});

velocityTest("hsm_velocity refuses negative amounts, VelocityRepo bad arguments", async (db) => {
  await assert.rejects(() =>
    db.query("INSERT INTO hsm_velocity (key_id, amount_sats, request_id) VALUES ('k', -1, 'r')")
  );
  const repo = new VelocityRepo(db);
  await assert.rejects(() => repo.record("k", -1n, "r"), RangeError);
  await assert.rejects(() => repo.record("k", 1 as unknown as bigint, "r"), TypeError);
  await assert.rejects(() => repo.record("", 1n, "r"), TypeError);
  await assert.rejects(() => repo.record("k", 1n, ""), TypeError);
  await assert.rejects(() => repo.spentSince("k", new Date(Number.NaN)), TypeError);
  await assert.rejects(() => repo.spentSince("k", "yesterday" as unknown as Date), TypeError);
});

velocityTest(
  "VelocityRepo: of two concurrent check-then-record transactions only one passes the limit",
  async (db) => {
    const limit = 150_000n;
    const attempt = (requestId: string) =>
      db.transaction(async (tx) => {
        const repo = new VelocityRepo(tx);
        const spent = await repo.spentSince("k1", windowStart());
        // Widen the race: without the key lock both would read 0 here on PostgreSQL.
        await new Promise((resolve) => setTimeout(resolve, 30));
        if (spent + 100_000n > limit) return false;
        await repo.record("k1", 100_000n, requestId);
        return true;
      });
    const results = await Promise.all([attempt("a"), attempt("b")]);
    assert.deepEqual(results.toSorted(), [false, true]);
    assert.equal(await new VelocityRepo(db).spentSince("k1", windowStart()), 100_000n);
  },
);

velocityTest("VelocityRepo: a rolled-back transaction records nothing", async (db) => {
  await assert.rejects(() =>
    db.transaction(async (tx) => {
      await new VelocityRepo(tx).record("k1", 5n, "r");
      throw new Error("signing failed");
    })
  );
  assert.equal(await new VelocityRepo(db).spentSince("k1", windowStart()), 0n);
});

velocityTest("VelocityRepo: another key's transaction does not wait for the lock", async (db) => {
  if (db.kind === "pglite") return; // one connection: every transaction is serialised anyway
  let releaseFirst!: () => void;
  const held = new Promise<void>((resolve) => releaseFirst = resolve);
  let firstLocked!: () => void;
  const locked = new Promise<void>((resolve) => firstLocked = resolve);
  const first = db.transaction(async (tx) => {
    await new VelocityRepo(tx).spentSince("k1", windowStart());
    firstLocked();
    await held;
  });
  await locked;
  const spent = await db.transaction((tx) => new VelocityRepo(tx).spentSince("k2", windowStart()));
  assert.equal(spent, 0n);
  releaseFirst();
  await first;
});

Deno.test({
  name: "VelocityRepo: the 24-hour spend survives closing and reopening the database",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hsm_velocity_" });
    const config = { kind: "pglite" as const, dataDir: `${dir}/pglite` };
    let db: Db | undefined;
    try {
      db = await openDb(config);
      assert.deepEqual((await migrate(db, [VELOCITY_MIGRATION])).applied, [2]);
      await db.transaction(async (tx) => {
        const repo = new VelocityRepo(tx);
        assert.equal(await repo.spentSince("k1", windowStart()), 0n);
        await repo.record("k1", 120_000n, "before-restart");
      });
      await db.close();

      db = await openDb(config);
      assert.deepEqual((await migrate(db, [VELOCITY_MIGRATION])).applied, []);
      const spent = await db.transaction((tx) =>
        new VelocityRepo(tx).spentSince("k1", windowStart())
      );
      assert.equal(spent, 120_000n);
    } finally {
      await db?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
