/**
 * End to end: the real server process, started by `deno task start` with its
 * real permission flags, on a fresh PGlite data dir.
 */
import assert from "node:assert/strict";
import { PGlite } from "@electric-sql/pglite";
import { runDeno, startServer } from "../_helpers/server.ts";

const PROBLEM = "application/problem+json";

async function createKeyCli(dataDir: string, tenant: string, scopes: string): Promise<string> {
  const r = await runDeno(
    ["task", "--quiet", "keys:create", "--tenant", tenant, "--scopes", scopes],
    { ANYA_DATA_DIR: dataDir },
  );
  assert.equal(r.code, 0, r.stderr);
  const key = r.stdout.trimEnd().split("\n").at(-1) ?? "";
  assert.match(key, /^anya_live_[0-9a-f]+_[A-Za-z0-9_-]{43}$/);
  return key;
}

async function call(
  url: string,
  path: string,
  init: { key?: string; method?: string; body?: string } = {},
): Promise<{ res: Response; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (init.key !== undefined) headers.Authorization = `Bearer ${init.key}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? "GET",
    headers,
    body: init.body ?? null,
  });
  const text = await res.text();
  return { res, json: text === "" ? {} : JSON.parse(text) };
}

function assertProblem(res: Response, json: Record<string, unknown>, status: number, code: string) {
  assert.equal(res.status, status, JSON.stringify(json));
  assert.equal(res.headers.get("content-type"), PROBLEM);
  assert.equal(json.type, `urn:anya-edge:problem:${code}`);
  assert.equal(json.status, status);
  assert.equal(typeof json.instance, "string");
}

Deno.test({
  name: "server process: health, keys, 401/403/404/413/429, audit tamper detection, SIGTERM",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "anya-e2e-" });
    try {
      const acmeAdmin = await createKeyCli(dataDir, "acme", "admin,read");
      const otherAdmin = await createKeyCli(dataDir, "other", "admin");
      const env = {
        ANYA_DATA_DIR: dataDir,
        BODY_LIMIT_BYTES: "2048",
        RATE_LIMIT_IP_BURST: "4",
        RATE_LIMIT_IP_PER_MINUTE: "1",
        RATE_LIMIT_LEASE_TOKENS: "1",
      };

      let server = await startServer(env);
      {
        const health = await call(server.url, "/healthz");
        assert.deepEqual(health.json, { status: "ok" });
        const ready = await call(server.url, "/readyz");
        assert.equal(ready.res.status, 200);

        const list = await call(server.url, "/v1/admin/keys", { key: acmeAdmin });
        assert.equal(list.res.status, 200, JSON.stringify(list.json));
        assert.ok(list.res.headers.get("ratelimit-limit"));

        const none = await call(server.url, "/v1/admin/keys");
        assertProblem(none.res, none.json, 401, "unauthorized");

        const created = await call(server.url, "/v1/admin/keys", {
          key: acmeAdmin,
          method: "POST",
          body: JSON.stringify({ scopes: ["read"], name: "reader" }),
        });
        assert.equal(created.res.status, 201, JSON.stringify(created.json));
        const reader = String(created.json.secret);
        const readerId = String(created.json.id);

        const forbidden = await call(server.url, "/v1/admin/keys", { key: reader });
        assertProblem(forbidden.res, forbidden.json, 403, "forbidden");

        const crossTenant = await call(server.url, `/v1/admin/keys/${readerId}`, {
          key: otherAdmin,
        });
        assertProblem(crossTenant.res, crossTenant.json, 404, "not-found");

        const tooLarge = await call(server.url, "/v1/admin/keys", {
          key: acmeAdmin,
          method: "POST",
          body: JSON.stringify({ scopes: ["read"], name: "x".repeat(4096) }),
        });
        assertProblem(tooLarge.res, tooLarge.json, 413, "payload-too-large");

        let limited: { res: Response; json: Record<string, unknown> } | undefined;
        for (let i = 0; i < 10 && limited === undefined; i++) {
          const r = await call(server.url, "/v1/admin/keys");
          if (r.res.status === 429) limited = r;
        }
        assert.ok(limited, "expected a 429 for unauthenticated requests");
        assertProblem(limited.res, limited.json, 429, "rate-limited");
        assert.ok(Number(limited.res.headers.get("retry-after")) >= 1);
        assert.equal(limited.res.headers.get("ratelimit-remaining"), "0");

        const verify = await call(server.url, "/v1/admin/audit/verify", { key: acmeAdmin });
        assert.equal(verify.json.ok, true, JSON.stringify(verify.json));
        assert.ok(Number(verify.json.checked) >= 3);

        const status = await server.stop("SIGTERM");
        assert.equal(status.code, 0, server.output());
        assert.match(server.output(), /"msg":"shutdown complete"/);
      }

      // Someone with direct database access edits a row behind the service's back.
      const pg = await PGlite.create(`${dataDir}/pglite`);
      await pg.exec("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update");
      await pg.exec("UPDATE audit_log SET outcome = 'denied' WHERE seq = 2");
      await pg.close();

      server = await startServer(env);
      try {
        const verify = await call(server.url, "/v1/admin/audit/verify", { key: acmeAdmin });
        assert.equal(verify.res.status, 200);
        assert.equal(verify.json.ok, false);
        assert.equal(verify.json.firstBrokenSeq, "2");
      } finally {
        assert.equal((await server.stop("SIGTERM")).code, 0, server.output());
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "main.ts exits naming each missing --allow-net entry",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "anya-perm-" });
    try {
      const r = await runDeno(
        ["run", "--allow-env", `--allow-read=.,${dataDir}`, `--allow-write=${dataDir}`, "main.ts"],
        { ANYA_DATA_DIR: dataDir, DATABASE_URL: "postgres://anya@db.example.internal:6543/anya" },
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr + r.stdout, /--allow-net=.*db\.example\.internal:6543/);
      assert.match(r.stderr + r.stdout, /127\.0\.0\.1:8080/);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
