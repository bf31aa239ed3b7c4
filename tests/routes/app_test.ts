import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";

dbTest("GET /healthz and /readyz answer without a key", async (db) => {
  await using t = buildTestApp(db);
  const health = await t.call("/healthz");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  assert.ok(health.headers.get("x-request-id"));
  assert.equal(health.headers.get("x-content-type-options"), "nosniff");
  const ready = await t.call("/readyz");
  assert.equal(ready.status, 200);
  const body = await ready.json();
  assert.equal(body.ready, true);
  assert.equal(body.checks.database.ok, true);
});

dbTest("GET /readyz is 503 when the schema is behind the code", async (db) => {
  await using t = buildTestApp(db);
  await db.query("DELETE FROM schema_migrations");
  const ready = await t.call("/readyz");
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).checks.database.ok, false);
});

dbTest("GET /openapi.json is a valid OpenAPI 3.1 document covering every route", async (db) => {
  await using t = buildTestApp(db);
  const res = await t.call("/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.openapi, "3.1.0");
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  for (
    const path of [
      "/healthz",
      "/readyz",
      "/v1/admin/keys",
      "/v1/admin/audit",
      "/v1/admin/audit/verify",
    ]
  ) {
    assert.ok(doc.paths[path], `missing ${path}`);
  }
  assert.equal(doc.components.securitySchemes.bearerAuth.scheme, "bearer");
});

dbTest("GET /docs serves the interactive reference with its own script", async (db) => {
  await using t = buildTestApp(db);
  const html = await t.call("/docs");
  assert.equal(html.status, 200);
  assert.match(html.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await html.text(), /<script src="\/docs\/app.js">/);
  assert.match(html.headers.get("content-security-policy") ?? "", /script-src 'self'/);
  const js = await t.call("/docs/app.js");
  assert.equal(js.status, 200);
  assert.match(await js.text(), /openapi\.json/);
});

dbTest("unknown routes are 404 problems with the request id as instance", async (db) => {
  await using t = buildTestApp(db);
  const res = await t.call("/nope", { headers: { "X-Request-Id": "abc-123" } });
  const body = await assertProblem(res, 404, "not-found");
  assert.equal(body.instance, "abc-123");
});

dbTest("a request id with unsafe characters is replaced", async (db) => {
  await using t = buildTestApp(db);
  const res = await t.call("/healthz", { headers: { "X-Request-Id": "<script>" } });
  assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
});

dbTest("/v1 without a key is 401, with a bad key 401, both problem+json", async (db) => {
  await using t = buildTestApp(db);
  const none = await t.call("/v1/admin/keys");
  await assertProblem(none, 401, "unauthorized");
  assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
  await assertProblem(
    await t.call("/v1/admin/keys", { key: "anya_live_0123456789abcdef_x" }),
    401,
    "unauthorized",
  );
  await assertProblem(
    await t.call("/v1/admin/keys", { headers: { Authorization: "Basic dXNlcjpwYXNz" } }),
    401,
    "unauthorized",
  );
});

dbTest("a key without the route's scope is 403", async (db) => {
  await using t = buildTestApp(db);
  const reader = await t.key("acme", ["read"]);
  const body = await assertProblem(
    await t.call("/v1/admin/keys", { key: reader.secret }),
    403,
    "forbidden",
  );
  assert.equal(body.requiredScope, "admin");
});

dbTest("bodies over the limit are 413, declared or streamed", async (db) => {
  await using t = buildTestApp(db, { BODY_LIMIT_BYTES: "1024" });
  const admin = await t.key("acme", ["admin"]);
  await assertProblem(
    await t.call("/v1/admin/keys", {
      key: admin.secret,
      method: "POST",
      body: { scopes: ["read"], name: "x".repeat(2000) },
    }),
    413,
    "payload-too-large",
  );
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 4; i++) c.enqueue(new Uint8Array(512).fill(32));
      c.close();
    },
  });
  const res = await t.app.request("/v1/admin/keys", {
    method: "POST",
    headers: { Authorization: `Bearer ${admin.secret}`, "Content-Type": "application/json" },
    body: stream,
    // @ts-ignore: duplex is required by fetch for streamed bodies
    duplex: "half",
  });
  await assertProblem(res, 413, "payload-too-large");
});

dbTest("a stalled upload is 408, not a held connection", async (db) => {
  await using t = buildTestApp(db, { BODY_READ_TIMEOUT_MS: "100" });
  const admin = await t.key("acme", ["admin"]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode('{"scopes":'));
      // never sends the rest
    },
    cancel() {
      clearTimeout(timer);
    },
  });
  const res = await t.app.request("/v1/admin/keys", {
    method: "POST",
    headers: { Authorization: `Bearer ${admin.secret}`, "Content-Type": "application/json" },
    body: stream,
    // @ts-ignore: duplex is required by fetch for streamed bodies
    duplex: "half",
  });
  await assertProblem(res, 408, "request-timeout");
});

dbTest("malformed JSON is a 400 problem", async (db) => {
  await using t = buildTestApp(db);
  const admin = await t.key("acme", ["admin"]);
  await assertProblem(
    await t.call("/v1/admin/keys", { key: admin.secret, method: "POST", body: "{not json" }),
    400,
  );
});

dbTest("rate limits answer 429 with Retry-After and RateLimit headers", async (db) => {
  await using t = buildTestApp(db, {
    RATE_LIMIT_KEY_BURST: "3",
    RATE_LIMIT_KEY_PER_MINUTE: "1",
    RATE_LIMIT_LEASE_TOKENS: "1",
  });
  const admin = await t.key("acme", ["admin"]);
  const statuses: number[] = [];
  let last: Response | undefined;
  for (let i = 0; i < 5; i++) {
    last = await t.call("/v1/admin/keys", { key: admin.secret });
    statuses.push(last.status);
    if (last.status === 200) await last.body?.cancel();
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.ok(last);
  assert.ok(Number(last.headers.get("retry-after")) >= 1);
  assert.equal(last.headers.get("ratelimit-limit"), "3");
  await assertProblem(last, 429, "rate-limited");
});

dbTest("CORS is off by default and on for configured origins", async (db) => {
  {
    await using t = buildTestApp(db);
    const res = await t.call("/healthz", { headers: { Origin: "https://app.example" } });
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  }
  await using t = buildTestApp(db, { CORS_ORIGINS: "https://app.example" });
  const res = await t.call("/healthz", { headers: { Origin: "https://app.example" } });
  assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
});

dbTest("unexpected errors are 500 with only an error id; the log has the stack", async (db) => {
  await using t = buildTestApp(db);
  t.app.get("/boom", () => {
    throw new Error("connection to postgres://app:hunter2@db failed");
  });
  const body = await assertProblem(await t.call("/boom"), 500, "internal");
  assert.doesNotMatch(JSON.stringify(body), /hunter2|postgres/);
  assert.equal(typeof body.errorId, "string");
  const logged = t.logs.map((l) => JSON.parse(l)).find((l) => l.errorId === body.errorId);
  assert.ok(logged, "error id is logged");
  assert.match(String(logged.stack), /app_test/);
  assert.doesNotMatch(JSON.stringify(logged), /hunter2/);
});

dbTest("handlers that overrun REQUEST_TIMEOUT_MS get a 504 problem", async (db) => {
  await using t = buildTestApp(db, { REQUEST_TIMEOUT_MS: "100" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  t.app.get("/slow", async (c) => {
    await new Promise((r) => timer = setTimeout(r, 1_000));
    return c.text("late");
  });
  await assertProblem(await t.call("/slow"), 504, "timeout");
  clearTimeout(timer);
});
