import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../../routes/_env.ts";
import { adminKeyRoutes } from "../../routes/admin_keys.ts";
import { problemResponse, toProblem } from "../../routes/_problem.ts";
import { AuditLog } from "../../src/audit/audit_log.ts";
import { ApiKeyService } from "../../src/auth/api_key_service.ts";
import type { Principal, Scope } from "../../src/auth/principal.ts";
import type { Db } from "../../src/db/db.ts";
import { dbTest } from "../_helpers/db.ts";

const PROBLEM = "application/problem+json";

/**
 * The admin key routes behind stand-ins for the production middleware: the
 * principal comes from `X-Test-Tenant` / `X-Test-Scopes` headers.
 */
function buildApp(db: Db) {
  const audit = new AuditLog(db);
  const apiKeys = new ApiKeyService({ db, audit });
  const app = new OpenAPIHono<AppEnv>();
  app.use(
    "*",
    createMiddleware<AppEnv>(async (c, next) => {
      c.set("requestId", "req-test");
      const principal: Principal = {
        keyId: "caller0000000000",
        tenant: c.req.header("x-test-tenant") ?? "acme",
        scopes: new Set((c.req.header("x-test-scopes") ?? "admin").split(",") as Scope[]),
      };
      c.set("principal", principal);
      await next();
    }),
  );
  app.route("/", adminKeyRoutes({ apiKeys }));
  app.onError((err, c) => problemResponse(toProblem(err, c.get("requestId") ?? "unknown")));
  return { app, apiKeys, audit };
}

function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

async function assertProblem(res: Response, status: number, code: string) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("content-type"), PROBLEM);
  const body = await res.json();
  assert.equal(body.type, `urn:anya-edge:problem:${code}`);
  assert.equal(body.status, status);
  assert.equal(body.instance, "req-test");
  return body;
}

dbTest("POST /v1/admin/keys creates a key and returns its secret once", async (db) => {
  const { app, audit } = buildApp(db);
  const res = await app.request(
    "/v1/admin/keys",
    post({ scopes: ["read", "psbt"], name: "ci" }),
  );
  assert.equal(res.status, 201);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.match(body.secret, new RegExp(`^anya_live_${body.id}_[A-Za-z0-9_-]{43}$`));
  assert.deepEqual(Object.keys(body).sort(), [
    "createdAt",
    "expiresAt",
    "id",
    "lastUsedAt",
    "name",
    "previousSecretExpiresAt",
    "revokedAt",
    "rotatedAt",
    "scopes",
    "secret",
    "status",
    "tenant",
  ]);
  assert.equal(body.tenant, "acme");
  assert.deepEqual(body.scopes, ["read", "psbt"]);
  assert.equal(body.status, "active");
  const [row] = await audit.list("acme", { limit: 1 });
  assert.equal(row?.action, "api_key.create");
  assert.equal(row?.actor, "caller0000000000");
  assert.equal(row?.requestId, "req-test");

  const shown = await app.request(`/v1/admin/keys/${body.id}`);
  assert.equal(shown.status, 200);
  assert.match(shown.headers.get("content-type") ?? "", /^application\/json/);
  const again = await shown.json();
  assert.equal(again.secret, undefined, "the secret is not shown again");
  assert.equal(again.id, body.id);
});

dbTest("POST /v1/admin/keys accepts a future expiry and rejects a past one", async (db) => {
  const { app } = buildApp(db);
  const future = new Date(Date.now() + 86_400_000).toISOString();
  const ok = await app.request("/v1/admin/keys", post({ scopes: ["read"], expiresAt: future }));
  assert.equal(ok.status, 201);
  assert.equal((await ok.json()).expiresAt, future);
  const past = await app.request(
    "/v1/admin/keys",
    post({ scopes: ["read"], expiresAt: "2001-01-01T00:00:00Z" }),
  );
  await assertProblem(past, 422, "unprocessable");
});

dbTest("POST /v1/admin/keys rejects invalid bodies with 400 problems", async (db) => {
  const { app, apiKeys } = buildApp(db);
  const cases: [string, unknown][] = [
    ["unknown field", { scopes: ["read"], admin: true }],
    ["no scopes", { scopes: [] }],
    ["missing scopes", {}],
    ["unknown scope", { scopes: ["root"] }],
    ["duplicate scope", { scopes: ["read", "read"] }],
    ["empty name", { scopes: ["read"], name: "" }],
    ["bad date", { scopes: ["read"], expiresAt: "tomorrow" }],
    ["bad tenant", { scopes: ["read"], tenant: "a b" }],
    ["invalid JSON", "{"],
  ];
  for (const [label, body] of cases) {
    const res = await app.request("/v1/admin/keys", post(body));
    assert.equal(res.status, 400, label);
    assert.equal(res.headers.get("content-type"), PROBLEM, label);
    const problem = await res.json();
    assert.equal(problem.type, "urn:anya-edge:problem:validation-failed", label);
  }
  assert.deepEqual(await apiKeys.list("acme"), []);
});

dbTest("POST /v1/admin/keys refuses keys for another tenant with 403", async (db) => {
  const { app, apiKeys } = buildApp(db);
  const own = await app.request("/v1/admin/keys", post({ scopes: ["read"], tenant: "acme" }));
  assert.equal(own.status, 201);
  const other = await app.request("/v1/admin/keys", post({ scopes: ["read"], tenant: "evil" }));
  const body = await assertProblem(other, 403, "forbidden");
  assert.match(body.detail, /another tenant/);
  assert.deepEqual(await apiKeys.list("evil"), []);
});

dbTest("admin key routes require the admin scope", async (db) => {
  const { app } = buildApp(db);
  const headers = { "x-test-scopes": "read,psbt" };
  const created = await app.request("/v1/admin/keys", post({ scopes: ["read"] }, headers));
  const body = await assertProblem(created, 403, "forbidden");
  assert.equal(body.requiredScope, "admin");
  await assertProblem(await app.request("/v1/admin/keys", { headers }), 403, "forbidden");
});

dbTest("GET /v1/admin/keys lists only the caller tenant's keys", async (db) => {
  const { app, apiKeys } = buildApp(db);
  const ctx = { actor: "t", requestId: "r" };
  const mine = await apiKeys.create({ tenant: "acme", scopes: ["read"] }, ctx);
  await apiKeys.create({ tenant: "other", scopes: ["read"] }, ctx);
  const res = await app.request("/v1/admin/keys");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = await res.json();
  assert.deepEqual(body.items.map((k: { id: string }) => k.id), [mine.key.id]);
  assert.ok(!JSON.stringify(body).includes("anya_live_"), "no secrets in the list");
});

dbTest("admin key routes answer 404 for another tenant's key", async (db) => {
  const { app, apiKeys } = buildApp(db);
  const theirs = await apiKeys.create(
    { tenant: "other", scopes: ["read"] },
    { actor: "t", requestId: "r" },
  );
  const id = theirs.key.id;
  await assertProblem(await app.request(`/v1/admin/keys/${id}`), 404, "not-found");
  await assertProblem(
    await app.request(`/v1/admin/keys/${id}/rotate`, { method: "POST" }),
    404,
    "not-found",
  );
  await assertProblem(
    await app.request(`/v1/admin/keys/${id}/revoke`, { method: "POST" }),
    404,
    "not-found",
  );
  assert.equal((await apiKeys.get("other", id)).status, "active");
  await assertProblem(await app.request("/v1/admin/keys/not-a-key-id"), 400, "validation-failed");
});

dbTest("POST /v1/admin/keys/{id}/rotate issues a new secret with a grace period", async (db) => {
  const { app, apiKeys } = buildApp(db);
  const ctx = { actor: "t", requestId: "r" };
  const created = await apiKeys.create({ tenant: "acme", scopes: ["read"] }, ctx);
  const before = Date.now();
  const res = await app.request(`/v1/admin/keys/${created.key.id}/rotate`, { method: "POST" });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.notEqual(body.secret, created.secret);
  assert.equal(body.id, created.key.id);
  const graceEnd = Date.parse(body.previousSecretExpiresAt);
  assert.ok(graceEnd >= before + 86_400_000 && graceEnd <= Date.now() + 86_400_000);

  const short = await app.request(
    `/v1/admin/keys/${created.key.id}/rotate`,
    post({ graceSeconds: 0 }),
  );
  assert.equal(short.status, 200);
  const shortBody = await short.json();
  assert.ok(Date.parse(shortBody.previousSecretExpiresAt) <= Date.now());

  for (const bad of [{ graceSeconds: 7 * 86400 + 1 }, { graceSeconds: -1 }, { grace: 5 }]) {
    const r = await app.request(`/v1/admin/keys/${created.key.id}/rotate`, post(bad));
    await assertProblem(r, 400, "validation-failed");
  }
});

dbTest(
  "POST /v1/admin/keys/{id}/revoke revokes the key; rotating it then conflicts",
  async (db) => {
    const { app, apiKeys, audit } = buildApp(db);
    const created = await apiKeys.create(
      { tenant: "acme", scopes: ["read"] },
      { actor: "t", requestId: "r" },
    );
    const res = await app.request(`/v1/admin/keys/${created.key.id}/revoke`, { method: "POST" });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const body = await res.json();
    assert.equal(body.status, "revoked");
    assert.equal(typeof body.revokedAt, "string");
    const rotate = await app.request(`/v1/admin/keys/${created.key.id}/rotate`, { method: "POST" });
    await assertProblem(rotate, 409, "api-key-revoked");
    const [row] = await audit.list("acme", { limit: 1 });
    assert.equal(row?.action, "api_key.revoke");
    assert.equal(row?.requestId, "req-test");
    assert.deepEqual(await audit.verify(), { ok: true, checked: 2, headSeq: "2" });
  },
);

Deno.test("adminKeyRoutes() documents its routes and schemas in OpenAPI", () => {
  const router = adminKeyRoutes({ apiKeys: {} as ApiKeyService });
  const doc = router.getOpenAPI31Document({
    openapi: "3.1.0",
    info: { title: "test", version: "0" },
  });
  assert.deepEqual(Object.keys(doc.paths ?? {}).sort(), [
    "/v1/admin/keys",
    "/v1/admin/keys/{id}",
    "/v1/admin/keys/{id}/revoke",
    "/v1/admin/keys/{id}/rotate",
  ]);
  for (const name of ["ApiKey", "ApiKeyWithSecret", "ApiKeyList", "CreateApiKey", "RotateApiKey"]) {
    assert.ok(doc.components?.schemas?.[name], name);
  }
  const create = doc.components?.schemas?.CreateApiKey as { additionalProperties?: unknown };
  assert.equal(create.additionalProperties, false, "unknown fields are rejected");
});
