import assert from "node:assert/strict";
import type { Db, Queryable, SqlParam } from "../../src/db/mod.ts";
import { createLogger, type LogLevel } from "../../src/obs/mod.ts";
import { DbRateLimiter, type RateDecision } from "../../src/ratelimit/mod.ts";
import { dbTest } from "../_helpers/db.ts";

const T0 = 1_700_000_000_000;

/** A clock the test moves by hand. */
function manualClock() {
  let t = T0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** Wraps a Db to count statements, optionally delaying or failing them. */
function instrumented(db: Db, options: { delayMs?: number } = {}) {
  const stats = { calls: 0, failing: false };
  const wrapped: Db = {
    kind: db.kind,
    async query<T = Record<string, unknown>>(sql: string, params?: readonly SqlParam[]) {
      stats.calls++;
      if (options.delayMs !== undefined) await new Promise((r) => setTimeout(r, options.delayMs));
      if (stats.failing) throw new Error("connection refused");
      return await db.query<T>(sql, params);
    },
    exec: (sql: string) => db.exec(sql),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => db.transaction(fn),
    close: () => db.close(),
  };
  return { db: wrapped, stats };
}

async function drain(limiter: DbRateLimiter, bucket: string, rule: RuleLike, max: number) {
  let admitted = 0;
  for (let i = 0; i < max; i++) if ((await limiter.take(bucket, rule)).allowed) admitted++;
  return admitted;
}

type RuleLike = { perMinute: number; burst: number };

dbTest("DbRateLimiter.take() admits the burst, then refuses with Retry-After", async (db) => {
  const clock = manualClock();
  const limiter = new DbRateLimiter(db, { leaseTokens: 10, now: clock.now });
  const rule = { perMinute: 60, burst: 5 };
  const decisions: RateDecision[] = [];
  for (let i = 0; i < 5; i++) decisions.push(await limiter.take("ip:192.0.2.1", rule));
  assert.ok(decisions.every((d) => d.allowed && d.limit === 5 && d.retryAfterSeconds === 0));
  assert.deepEqual(decisions.map((d) => d.remaining), [4, 3, 2, 1, 0]);
  const refused = await limiter.take("ip:192.0.2.1", rule);
  assert.equal(refused.allowed, false);
  assert.equal(refused.remaining, 0);
  assert.equal(refused.retryAfterSeconds, 1, "one token refills in 1 s at 60/min");
  assert.equal(refused.resetSeconds, 5);

  const slow = { perMinute: 20, burst: 1 };
  assert.equal((await limiter.take("key:slow", slow)).allowed, true);
  const slowRefusal = await limiter.take("key:slow", slow);
  assert.equal(slowRefusal.allowed, false);
  assert.equal(slowRefusal.retryAfterSeconds, 3, "one token refills in 3 s at 20/min");
});

dbTest("DbRateLimiter.take() refills over time, capped at the burst", async (db) => {
  const clock = manualClock();
  const limiter = new DbRateLimiter(db, { leaseTokens: 10, now: clock.now });
  const rule = { perMinute: 60, burst: 5 };
  assert.equal(await drain(limiter, "key:a", rule, 20), 5);
  clock.advance(999);
  assert.equal((await limiter.take("key:a", rule)).allowed, false, "refused before 1 s");
  clock.advance(1);
  assert.equal(await drain(limiter, "key:a", rule, 5), 1, "one token after 1 s");
  clock.advance(60_000);
  assert.equal(await drain(limiter, "key:a", rule, 20), 5, "never more than the burst");
  const [row] = await db.query<{ tokens: number }>(
    "SELECT tokens FROM rate_buckets WHERE bucket = 'key:a'",
  );
  assert.equal(row?.tokens, 0);
});

dbTest("two DbRateLimiter instances share one budget", async (db) => {
  const clock = manualClock();
  const options = { leaseTokens: 10, now: clock.now };
  const a = new DbRateLimiter(db, options);
  const b = new DbRateLimiter(db, options);
  const rule = { perMinute: 600, burst: 50 };
  let admitted = 0;
  for (let i = 0; i < 100; i++) {
    const [da, dbDecision] = await Promise.all([a.take("key:k", rule), b.take("key:k", rule)]);
    admitted += Number(da.allowed) + Number(dbDecision.allowed);
  }
  assert.equal(admitted, 50, "with no time passing, both together admit exactly the burst");
});

dbTest("DbRateLimiter over-admission stays within burst + instances × lease", async (db) => {
  // Leases live 10 s, so they are still valid after the row refills to full:
  // the worst case the module documents.
  const clock = manualClock();
  const options = { leaseTokens: 10, leaseTtlMs: 10_000, now: clock.now };
  const instances = [new DbRateLimiter(db, options), new DbRateLimiter(db, options)];
  const rule = { perMinute: 600, burst: 50 };
  for (const limiter of instances) assert.equal((await limiter.take("key:k", rule)).allowed, true);
  clock.advance(5_000);
  let admitted = 0;
  for (const limiter of instances) admitted += await drain(limiter, "key:k", rule, 100);
  const bound = rule.burst + instances.length * options.leaseTokens;
  assert.ok(admitted <= bound, `admitted ${admitted} > documented bound ${bound}`);
  assert.ok(admitted < 2 * rule.burst, `admitted ${admitted}, not far below two bursts`);
  assert.equal(admitted, 68, "burst + both unspent leases (9 each)");
});

dbTest("DbRateLimiter instances never over-grant under concurrent statements", async (db) => {
  const clock = manualClock();
  const instances = Array.from(
    { length: 5 },
    // A generous statement deadline: under a loaded CI a timed-out grant would
    // fall back to local buckets and make the count depend on timing.
    () => new DbRateLimiter(db, { leaseTokens: 7, now: clock.now, dbTimeoutMs: 60_000 }),
  );
  const rule = { perMinute: 6000, burst: 100 };
  const decisions = await Promise.all(
    instances.flatMap((limiter) => Array.from({ length: 40 }, () => limiter.take("key:hot", rule))),
  );
  const allowed = decisions.filter((d) => d.allowed).length;
  assert.ok(allowed <= 100, `admitted ${allowed}: more than the bucket minted`);
  // Leases err towards refusing (module doc): when the last tokens of the bucket
  // land in a lease whose takes were already answered, they are not spent. Each
  // instance can strand at most one partial lease.
  assert.ok(allowed >= 100 - instances.length * 6, `admitted only ${allowed}`);
});

dbTest("DbRateLimiter makes about one round trip per leaseTokens requests", async (db) => {
  const clock = manualClock();
  const { db: counted, stats } = instrumented(db);
  const limiter = new DbRateLimiter(counted, { leaseTokens: 10, now: clock.now });
  const rule = { perMinute: 60_000, burst: 1000 };
  assert.equal(await drain(limiter, "key:busy", rule, 200), 200);
  assert.equal(stats.calls, 20);
});

dbTest("DbRateLimiter refuses an empty bucket locally until a token refills", async (db) => {
  const clock = manualClock();
  const { db: counted, stats } = instrumented(db);
  const limiter = new DbRateLimiter(counted, { leaseTokens: 10, now: clock.now });
  const rule = { perMinute: 60, burst: 2 };
  assert.equal(await drain(limiter, "ip:198.51.100.7", rule, 2), 2);
  const before = stats.calls;
  assert.equal(await drain(limiter, "ip:198.51.100.7", rule, 50), 0);
  assert.equal(stats.calls - before, 1, "one statement learns the bucket is empty");
});

dbTest("DbRateLimiter coalesces concurrent takes into one statement", async (db) => {
  const clock = manualClock();
  const { db: counted, stats } = instrumented(db, { delayMs: 5 });
  const limiter = new DbRateLimiter(counted, { leaseTokens: 10, now: clock.now });
  const rule = { perMinute: 60_000, burst: 1000 };
  const decisions = await Promise.all(
    Array.from({ length: 50 }, () => limiter.take("key:burst", rule)),
  );
  assert.ok(decisions.every((d) => d.allowed));
  assert.equal(stats.calls, 5, "50 requests / 10 tokens a lease, one statement at a time");
});

dbTest("DbRateLimiter hands an expired lease's unused tokens back", async (db) => {
  const clock = manualClock();
  const options = { leaseTokens: 10, leaseTtlMs: 10_000, now: clock.now };
  const a = new DbRateLimiter(db, options);
  const rule = { perMinute: 60, burst: 20 };
  assert.equal((await a.take("key:r", rule)).allowed, true); // row 10, lease 9 left
  clock.advance(10_000); // lease expired; row refilled to 20
  assert.equal((await a.take("key:r", rule)).allowed, true);
  const [row] = await db.query<{ tokens: number }>(
    "SELECT tokens FROM rate_buckets WHERE bucket = 'key:r'",
  );
  assert.equal(row?.tokens, 10, "min(20, 10 + 10 refill + 9 refund) - 10 granted");
});

dbTest("DbRateLimiter falls back to a local limit while the database fails", async (db) => {
  const clock = manualClock();
  const { db: failing, stats } = instrumented(db);
  const lines: { level: LogLevel; line: string }[] = [];
  const logger = createLogger({
    level: "debug",
    sink: (level, line) => lines.push({ level, line }),
  });
  const limiter = new DbRateLimiter(failing, {
    leaseTokens: 10,
    dbRetryMs: 5_000,
    now: clock.now,
    logger,
  });
  const rule = { perMinute: 60, burst: 3 };
  stats.failing = true;
  assert.equal(await drain(limiter, "ip:203.0.113.9", rule, 10), 3, "fail open, locally limited");
  const refused = await limiter.take("ip:203.0.113.9", rule);
  assert.equal(refused.allowed, false);
  assert.equal(refused.retryAfterSeconds, 1);
  assert.equal(stats.calls, 1, "no statement per request while degraded");
  assert.equal(lines.filter((l) => l.level === "warn").length, 1);
  assert.match(lines[0]?.line ?? "", /connection refused/);

  stats.failing = false;
  clock.advance(5_000);
  assert.equal((await limiter.take("ip:203.0.113.9", rule)).allowed, true);
  assert.equal(stats.calls, 2, "back on the database after dbRetryMs");
  assert.ok(lines.some((l) => l.level === "info" && /restored/.test(l.line)));
});

dbTest("DbRateLimiter falls back when the database does not answer in time", async (db) => {
  const { db: slow } = instrumented(db, { delayMs: 200 });
  const limiter = new DbRateLimiter(slow, { leaseTokens: 10, dbTimeoutMs: 20 });
  const started = performance.now();
  const decision = await limiter.take("key:t", { perMinute: 60, burst: 2 });
  assert.equal(decision.allowed, true);
  assert.ok(performance.now() - started < 150, "did not wait for the slow statement");
  await new Promise((r) => setTimeout(r, 250)); // let the abandoned statement finish
});

dbTest("DbRateLimiter keeps at most maxBuckets buckets in memory", async (db) => {
  const clock = manualClock();
  const limiter = new DbRateLimiter(db, { leaseTokens: 10, maxBuckets: 3, now: clock.now });
  for (let i = 0; i < 10; i++) await limiter.take(`ip:10.0.0.${i}`, { perMinute: 60, burst: 5 });
  assert.equal(limiter.trackedBuckets, 3);
});

dbTest("DbRateLimiter rejects bad arguments", async (db) => {
  assert.throws(() => new DbRateLimiter(db, { leaseTokens: 0 }), RangeError);
  assert.throws(() => new DbRateLimiter(db, { leaseTokens: 10, leaseTtlMs: 1.5 }), RangeError);
  assert.throws(() => new DbRateLimiter(db, { leaseTokens: "10" as never }), TypeError);
  const limiter = new DbRateLimiter(db, { leaseTokens: 10 });
  await assert.rejects(() => limiter.take("", { perMinute: 60, burst: 5 }), TypeError);
  await assert.rejects(() => limiter.take("key:x", { perMinute: 0, burst: 5 }), RangeError);
});
