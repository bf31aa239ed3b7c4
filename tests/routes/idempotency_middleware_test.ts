import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AppEnv } from "../../routes/_env.ts";
import { idempotency } from "../../routes/_middleware/idempotency.ts";
import { PROBLEM_CONTENT_TYPE, problemResponse, toProblem } from "../../routes/_problem.ts";
import { IdempotencyStore } from "../../src/idempotency/mod.ts";
import type { Db } from "../../src/db/mod.ts";
import { dbTest } from "../_helpers/db.ts";

const OPTIONS = { ttlHours: 24, lockMs: 30_000 };

/** A tiny app: request id + principal, the middleware, counted handlers. */
function testApp(db: Db) {
  const store = new IdempotencyStore(db);
  const calls = { payments: 0, flaky: 0, optional: 0 };
  let gate: Promise<void> | undefined;
  let entered: () => void = () => {};
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    const id = c.req.header("x-request-id") ?? "req-1";
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    c.set("principal", {
      keyId: "key_1",
      tenant: c.req.header("x-tenant") ?? "t1",
      scopes: new Set(["lightning:write"]),
    });
    await next();
  });
  app.use("/v1/payments", idempotency(store, { required: true, ...OPTIONS }));
  app.use("/v1/flaky", idempotency(store, { required: true, ...OPTIONS }));
  app.use("/v1/optional", idempotency(store, { required: false, ...OPTIONS }));
  app.post("/v1/payments", async (c) => {
    calls.payments++;
    const n = calls.payments;
    entered();
    if (gate !== undefined) await gate;
    const body = await c.req.json<{ amountSat: number }>();
    c.header("RateLimit-Remaining", "7");
    return c.json({ id: `pay_${n}`, amountSat: body.amountSat }, 201, {
      Location: `/v1/payments/pay_${n}`,
    });
  });
  app.post("/v1/flaky", (c) => {
    calls.flaky++;
    if (c.req.header("x-fail") === "throw") throw new Error("node exploded");
    if (c.req.header("x-fail") === "503") return c.json({ busy: true }, 503);
    if (c.req.header("x-fail") === "non-error") {
      // Hono's onError only sees Error instances; anything else propagates
      // through next() to the middleware.
      const thrown: unknown = { reason: "not an Error" };
      throw thrown;
    }
    return c.json({ ok: calls.flaky });
  });
  app.post("/v1/optional", (c) => {
    calls.optional++;
    return c.json({ n: calls.optional });
  });
  app.onError((err, c) => problemResponse(toProblem(err, c.get("requestId") ?? "unknown")));
  return {
    app,
    calls,
    /** Hold the payments handler until the returned function is called. */
    hold() {
      let open: () => void = () => {};
      gate = new Promise((r) => (open = r));
      const inside = new Promise<void>((r) => (entered = r));
      return { inside, open };
    },
  };
}

function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  };
}

async function assertProblem(res: Response, status: number, code: string): Promise<unknown> {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("content-type"), PROBLEM_CONTENT_TYPE);
  const body = await res.json();
  assert.equal(body.type, `urn:anya-edge:problem:${code}`);
  return body;
}

dbTest("idempotency() runs the handler once and replays its response", async (db) => {
  const { app, calls } = testApp(db);
  const init = () => post({ amountSat: 1000 }, { "Idempotency-Key": "k-1" });
  const first = await app.request("/v1/payments", init());
  assert.equal(first.status, 201);
  assert.equal(first.headers.get("idempotency-replayed"), null);
  assert.deepEqual(await first.json(), { id: "pay_1", amountSat: 1000 });

  for (let retry = 0; retry < 3; retry++) {
    const again = await app.request("/v1/payments", {
      ...init(),
      headers: { ...init().headers, "x-request-id": `req-retry-${retry}` },
    });
    assert.equal(again.status, 201);
    assert.equal(again.headers.get("idempotency-replayed"), "true");
    assert.equal(again.headers.get("content-type"), "application/json");
    assert.equal(again.headers.get("location"), "/v1/payments/pay_1");
    assert.equal(again.headers.get("x-request-id"), `req-retry-${retry}`, "this request's id");
    assert.equal(again.headers.get("ratelimit-remaining"), null, "per-request headers not stored");
    assert.deepEqual(await again.json(), { id: "pay_1", amountSat: 1000 });
  }
  assert.equal(calls.payments, 1);

  // The quoted (RFC 8941 sf-string) form names the same key.
  const quoted = await app.request(
    "/v1/payments",
    post({ amountSat: 1000 }, { "Idempotency-Key": '"k-1"' }),
  );
  assert.equal(quoted.headers.get("idempotency-replayed"), "true");
  assert.equal(calls.payments, 1);
});

dbTest("idempotency() answers 409 to a duplicate while the first runs", async (db) => {
  const { app, calls, hold } = testApp(db);
  const { inside, open } = hold();
  const init = () => post({ amountSat: 5 }, { "Idempotency-Key": "k-2" });
  const first = app.request("/v1/payments", init());
  await inside;
  const duplicate = await app.request("/v1/payments", init());
  await assertProblem(duplicate, 409, "idempotency-in-progress");
  assert.equal(duplicate.headers.get("retry-after"), "1");
  open();
  assert.equal((await first).status, 201);
  assert.equal(calls.payments, 1);
  const after = await app.request("/v1/payments", init());
  assert.equal(after.headers.get("idempotency-replayed"), "true");
  assert.equal(calls.payments, 1);
});

dbTest("idempotency() refuses the same key with a different body (422)", async (db) => {
  const { app, calls } = testApp(db);
  const key = { "Idempotency-Key": "k-3" };
  await app.request("/v1/payments", post({ amountSat: 1 }, key));
  const res = await app.request("/v1/payments", post({ amountSat: 2 }, key));
  const body = await assertProblem(res, 422, "unprocessable") as { detail: string };
  assert.match(body.detail, /different request/);
  assert.equal(calls.payments, 1);
});

dbTest("idempotency() requires the header when configured to", async (db) => {
  const { app, calls } = testApp(db);
  const missing = await app.request("/v1/payments", post({ amountSat: 1 }));
  const body = await assertProblem(missing, 400, "validation-failed") as { detail: string };
  assert.match(body.detail, /Idempotency-Key/);
  const invalid = await app.request(
    "/v1/payments",
    post({ amountSat: 1 }, { "Idempotency-Key": "x".repeat(256) }),
  );
  await assertProblem(invalid, 400, "validation-failed");
  assert.equal(calls.payments, 0);

  await app.request("/v1/optional", post({}));
  await app.request("/v1/optional", post({}));
  assert.equal(calls.optional, 2, "without the header an optional route just runs");
});

dbTest("idempotency() releases the key when the handler fails", async (db) => {
  const { app, calls } = testApp(db);
  const init = (fail?: string) =>
    post({}, { "Idempotency-Key": "k-4", ...(fail ? { "x-fail": fail } : {}) });
  await assertProblem(await app.request("/v1/flaky", init("throw")), 500, "internal");
  assert.equal((await app.request("/v1/flaky", init("503"))).status, 503);
  await assert.rejects(
    async () => await app.request("/v1/flaky", init("non-error")),
    (err: unknown) => (err as { reason?: string }).reason === "not an Error",
  );
  const ok = await app.request("/v1/flaky", init());
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { ok: 4 });
  const replay = await app.request("/v1/flaky", init());
  assert.equal(replay.headers.get("idempotency-replayed"), "true");
  assert.deepEqual(await replay.json(), { ok: 4 });
  assert.equal(calls.flaky, 4, "failed attempts ran again, the success did not");
});

dbTest("idempotency() scopes keys per tenant", async (db) => {
  const { app, calls } = testApp(db);
  const as = (tenant: string) =>
    post({ amountSat: 9 }, { "Idempotency-Key": "same", "x-tenant": tenant });
  const a = await app.request("/v1/payments", as("t1"));
  const b = await app.request("/v1/payments", as("t2"));
  assert.equal(b.headers.get("idempotency-replayed"), null);
  assert.notDeepEqual(await a.json(), await b.json());
  assert.equal(calls.payments, 2);
});
