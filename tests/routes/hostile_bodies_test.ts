/**
 * Property test: random and hostile bodies sent to every JSON endpoint get a
 * 4xx problem, never a 5xx or a stack trace.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp } from "../_helpers/app.ts";

const deepNesting = fc.integer({ min: 100, max: 5_000 }).map((n) => "[".repeat(n) + "]".repeat(n));
const deepObject = fc.integer({ min: 100, max: 3_000 }).map((n) =>
  '{"a":'.repeat(n) + "1" + "}".repeat(n)
);
const hugeNumbers = fc.constantFrom(
  '{"scopes":["read"],"graceSeconds":1e999999}',
  '{"graceSeconds":123456789012345678901234567890}',
  '{"graceSeconds":-0}',
  '{"expiresAt":"9999999-01-01T00:00:00Z","scopes":["read"]}',
  "1e309",
);
const nasty = fc.constantFrom(
  '{"name":"\\u0000","scopes":["read"]}',
  '{"name":"\\ud800","scopes":["read"]}',
  '{"name":"\\udfff\\ud800","scopes":["read"]}',
  '{"__proto__":{"admin":true},"scopes":["read"]}',
  '{"constructor":{"prototype":{"x":1}},"scopes":["read"]}',
  '{"scopes":{"__proto__":["admin"]}}',
  '{"scopes":["read"],"scopes":["admin"],"tenant":"other"}',
  '{"scopes":["admin"],"tenant":"\\u0000"}',
  "null",
  "[]",
  '""',
  "\uFEFF{}",
  '{"scopes":["read"]}\u0000',
);
const randomJson = fc.json({ depthSize: "medium" });
const randomText = fc.string({ unit: "binary", maxLength: 200 });
const randomObject = fc.dictionary(
  fc.constantFrom("scopes", "name", "tenant", "expiresAt", "graceSeconds", "__proto__", "x"),
  fc.anything({ maxDepth: 3 }),
).map((o) => JSON.stringify(o) ?? "{}");

const bodies = fc.oneof(
  deepNesting,
  deepObject,
  hugeNumbers,
  nasty,
  randomJson,
  randomText,
  randomObject,
);

const ENDPOINTS = [
  { method: "POST", path: "/v1/admin/keys" },
  { method: "POST", path: "/v1/admin/keys/{id}/rotate" },
  { method: "POST", path: "/v1/admin/keys/{id}/revoke" },
  { method: "POST", path: "/v1/tx/broadcast" },
];

dbTest("JSON endpoints answer hostile bodies with 4xx problems only", async (db) => {
  await using t = buildTestApp(db, {
    RATE_LIMIT_KEY_BURST: "100000",
    RATE_LIMIT_KEY_PER_MINUTE: "1000000",
  });
  const admin = await t.key("acme", ["admin", "psbt"]);
  const victim = await t.key("acme", ["read"]);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ENDPOINTS), bodies, async (ep, body) => {
      const res = await t.call(ep.path.replace("{id}", victim.id), {
        key: admin.secret,
        method: ep.method,
        body,
        headers: { "Content-Type": "application/json" },
      });
      const text = await res.text();
      if (res.status >= 200 && res.status < 300) return; // a body that happens to be valid
      assert.ok(
        res.status >= 400 && res.status < 500,
        `${ep.path} ${res.status}: ${text.slice(0, 300)}`,
      );
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.doesNotMatch(text, /\bat [\w.<>]+ \(|file:\/\//);
    }),
    { numRuns: 150, seed: 20261128 },
  );
  // Prototype pollution would show up on every object.
  assert.equal(({} as Record<string, unknown>).admin, undefined);
});

dbTest("invalid UTF-8 and wrong content types are 4xx", async (db) => {
  await using t = buildTestApp(db);
  const admin = await t.key("acme", ["admin"]);
  const bad = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
  const res = await t.app.request("/v1/admin/keys", {
    method: "POST",
    headers: { Authorization: `Bearer ${admin.secret}`, "Content-Type": "application/json" },
    body: bad,
  });
  assert.ok(res.status >= 400 && res.status < 500, String(res.status));
  const form = await t.call("/v1/admin/keys", {
    key: admin.secret,
    method: "POST",
    body: "scopes=admin",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  assert.ok(form.status >= 400 && form.status < 500, String(form.status));
  await form.body?.cancel();
  await res.body?.cancel();
});

dbTest("a body nested 400,000 levels deep is a 400, not a parser stack overflow", async (db) => {
  await using t = buildTestApp(db);
  const admin = await t.key("acme", ["admin"]);
  const body = "[".repeat(400_000) + "]".repeat(400_000);
  const res = await t.call("/v1/admin/keys", { key: admin.secret, method: "POST", body });
  assert.equal(res.status, 400);
  assert.match((await res.json()).detail, /nested deeper/);
});
