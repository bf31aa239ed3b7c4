import assert from "node:assert/strict";
import { ConflictError, ValidationError } from "../../src/errors/mod.ts";
import {
  IdempotencyStore,
  type RequestFingerprint,
  requestFingerprint,
} from "../../src/idempotency/mod.ts";
import { dbTest } from "../_helpers/db.ts";

const enc = new TextEncoder();
const LOCK = { lockMs: 30_000 };

function fp(body: string, path = "/v1/payments"): RequestFingerprint {
  return requestFingerprint({ method: "POST", path, body: enc.encode(body) });
}

const RESPONSE = {
  status: 201,
  headers: { "content-type": "application/json", location: "/v1/payments/p1" },
  body: enc.encode('{"id":"p1"}'),
};

function isConflict(err: unknown): boolean {
  return err instanceof ConflictError && err.status === 409 &&
    err.code === "idempotency-in-progress";
}

function isReuse(err: unknown): boolean {
  return err instanceof ValidationError && err.status === 422 && err.code === "unprocessable" &&
    /different request/.test(err.message);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

dbTest("IdempotencyStore.begin() starts once, then replays the stored response", async (db) => {
  const store = new IdempotencyStore(db);
  assert.deepEqual(await store.begin("t1", "k1", fp('{"a":1}'), LOCK), { kind: "started" });
  assert.equal(await store.complete("t1", "k1", RESPONSE), true);
  const replay = await store.begin("t1", "k1", fp('{"a":1}'), LOCK);
  assert.equal(replay.kind, "replay");
  assert.ok(replay.kind === "replay");
  assert.equal(replay.status, 201);
  assert.deepEqual(replay.headers, RESPONSE.headers);
  assert.deepEqual(replay.body, RESPONSE.body);
  // A second instance over the same database sees the same record.
  const other = await new IdempotencyStore(db).begin("t1", "k1", fp('{"a":1}'), LOCK);
  assert.equal(other.kind, "replay");
});

dbTest("IdempotencyStore.begin() refuses the key with a different request (422)", async (db) => {
  const store = new IdempotencyStore(db);
  await store.begin("t1", "k1", fp('{"a":1}'), LOCK);
  await store.complete("t1", "k1", RESPONSE);
  await assert.rejects(() => store.begin("t1", "k1", fp('{"a":2}'), LOCK), isReuse);
  await assert.rejects(
    () => store.begin("t1", "k1", fp('{"a":1}', "/v1/other"), LOCK),
    (err: unknown) => isReuse(err) && /path/.test((err as Error).message),
  );
  const put = { ...fp('{"a":1}'), method: "PUT" };
  await assert.rejects(() => store.begin("t1", "k1", put, LOCK), isReuse);
});

dbTest("IdempotencyStore.begin() answers 409 while the first request runs", async (db) => {
  const store = new IdempotencyStore(db);
  await store.begin("t1", "k1", fp("x"), LOCK);
  await assert.rejects(() => store.begin("t1", "k1", fp("x"), LOCK), (err: unknown) => {
    assert.ok(isConflict(err));
    assert.equal((err as ConflictError).headers["Retry-After"], "1");
    return true;
  });
  // A different request with the running key is still a 422.
  await assert.rejects(() => store.begin("t1", "k1", fp("y"), LOCK), isReuse);
});

dbTest("IdempotencyStore.begin() lets exactly one of concurrent duplicates start", async (db) => {
  const store = new IdempotencyStore(db);
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, () => store.begin("t1", "dup", fp("x"), LOCK)),
  );
  const started = results.filter((r) => r.status === "fulfilled");
  assert.equal(started.length, 1);
  for (const r of results) if (r.status === "rejected") assert.ok(isConflict(r.reason));
});

dbTest("IdempotencyStore.begin() takes over a running key whose lock lapsed", async (db) => {
  const store = new IdempotencyStore(db);
  await store.begin("t1", "k1", fp("x"), { lockMs: 1 });
  await sleep(20);
  await assert.rejects(() => store.begin("t1", "k1", fp("other"), LOCK), isReuse);
  assert.deepEqual(await store.begin("t1", "k1", fp("x"), LOCK), { kind: "started" });
  await assert.rejects(() => store.begin("t1", "k1", fp("x"), LOCK), isConflict);
});

dbTest("IdempotencyStore.release() frees the key so a retry runs again", async (db) => {
  const store = new IdempotencyStore(db);
  await store.begin("t1", "k1", fp("x"), LOCK);
  assert.equal(await store.release("t1", "k1"), true);
  assert.equal(await store.complete("t1", "k1", RESPONSE), false, "nothing left to complete");
  assert.deepEqual(await store.begin("t1", "k1", fp("x"), LOCK), { kind: "started" });
  // A 5xx is not stored: completing with one releases the key.
  await store.complete("t1", "k1", { status: 503, headers: {}, body: new Uint8Array() });
  assert.deepEqual(await store.begin("t1", "k1", fp("x"), LOCK), { kind: "started" });
  // Done records are not released.
  await store.complete("t1", "k1", RESPONSE);
  assert.equal(await store.release("t1", "k1"), false);
  assert.equal((await store.begin("t1", "k1", fp("x"), LOCK)).kind, "replay");
});

dbTest("IdempotencyStore keys expire after their lifetime and are purged", async (db) => {
  const store = new IdempotencyStore(db, { ttlHours: 24 });
  await store.begin("t1", "old", fp("x"), LOCK);
  await store.complete("t1", "old", RESPONSE);
  await store.begin("t1", "fresh", fp("x"), LOCK);
  const [row] = await db.query<{ hours: number }>(
    `SELECT extract(epoch FROM expires_at - created_at)::float8 / 3600 AS hours
     FROM idempotency_keys WHERE key = 'fresh'`,
  );
  assert.equal(Math.round(row?.hours ?? 0), 24);
  await db.query(
    "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'old'",
  );
  // An expired key is free again, even for a different request.
  assert.deepEqual(await store.begin("t1", "old", fp("new body"), LOCK), { kind: "started" });
  await db.query(
    "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'old'",
  );
  assert.equal(await store.purgeExpired(), 1);
  assert.equal(await store.purgeExpired(), 0);
  const keys = await db.query<{ key: string }>("SELECT key FROM idempotency_keys");
  assert.deepEqual(keys.map((k) => k.key), ["fresh"]);
});

dbTest("IdempotencyStore scopes keys per tenant", async (db) => {
  const store = new IdempotencyStore(db);
  await store.begin("t1", "shared", fp("x"), LOCK);
  assert.deepEqual(await store.begin("t2", "shared", fp("y"), LOCK), { kind: "started" });
  await store.complete("t2", "shared", RESPONSE);
  await assert.rejects(() => store.begin("t1", "shared", fp("x"), LOCK), isConflict);
  assert.equal(await store.release("t1", "shared"), true);
  assert.equal((await store.begin("t2", "shared", fp("y"), LOCK)).kind, "replay");
});

dbTest("IdempotencyStore rejects bad arguments", async (db) => {
  assert.throws(() => new IdempotencyStore(db, { ttlHours: 0 }), RangeError);
  const store = new IdempotencyStore(db);
  await assert.rejects(() => store.begin("", "k", fp("x"), LOCK), TypeError);
  await assert.rejects(() => store.begin("t1", "", fp("x"), LOCK), RangeError);
  await assert.rejects(() => store.begin("t1", "k".repeat(256), fp("x"), LOCK), RangeError);
  await assert.rejects(() => store.begin("t1", "k\n", fp("x"), LOCK), RangeError);
  await assert.rejects(() => store.begin("t1", "k", { ...fp("x"), bodyHash: "" }, LOCK), TypeError);
  await assert.rejects(() => store.begin("t1", "k", fp("x"), { lockMs: -1 }), RangeError);
  await assert.rejects(
    () => store.complete("t1", "k", { status: 99, headers: {}, body: new Uint8Array() }),
    RangeError,
  );
});
