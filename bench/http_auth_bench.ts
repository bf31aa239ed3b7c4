/**
 * Authenticated read vs a bare Hono endpoint, in one process. The target:
 * `GET /v1/me` through the full middleware chain (request id, tracing,
 * security headers, body limit, API-key auth with its cache, shared rate
 * limit) keeps at least half the throughput of the bare endpoint. Deno's
 * report shows the ratio against the baseline.
 */
import { Hono } from "hono";
import { PGlite } from "@electric-sql/pglite";
import { migrate, MIGRATIONS, PgliteDb } from "../src/db/mod.ts";
import { PGLITE_TYPE_OPTIONS } from "../src/db/pglite_db.ts";
import { buildTestApp } from "../tests/_helpers/app.ts";

const bare = new Hono();
bare.get("/v1/me", (c) => c.json({ keyId: "k", tenant: "t", scopes: ["read"] }));

const db = new PgliteDb(await PGlite.create(PGLITE_TYPE_OPTIONS));
await migrate(db, MIGRATIONS);
const edge = buildTestApp(db, {
  AUTH_CACHE_TTL_MS: "5000",
  RATE_LIMIT_KEY_PER_MINUTE: "1000000",
  RATE_LIMIT_KEY_BURST: "1000000",
  RATE_LIMIT_LEASE_TOKENS: "1000",
  LOG_LEVEL: "error",
});
const { secret } = await edge.key("bench", ["read"]);
const headers = { Authorization: `Bearer ${secret}` };

Deno.bench(
  { name: "bare Hono GET /v1/me", group: "authenticated read", baseline: true },
  async () => {
    const res = await bare.request("/v1/me", { headers });
    await res.arrayBuffer();
  },
);

Deno.bench(
  { name: "anya-edge GET /v1/me (auth + rate limit)", group: "authenticated read" },
  async () => {
    const res = await edge.app.request("/v1/me", { headers });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  },
);

// The same comparison over real loopback sockets, as clients see it.
const bareServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, bare.fetch);
const edgeServer = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  (req, info) => edge.app.fetch(req, { remoteAddr: info.remoteAddr }),
);
const bareUrl = `http://127.0.0.1:${bareServer.addr.port}/v1/me`;
const edgeUrl = `http://127.0.0.1:${edgeServer.addr.port}/v1/me`;

Deno.bench(
  { name: "bare Hono over HTTP", group: "authenticated read over HTTP", baseline: true },
  async () => {
    const res = await fetch(bareUrl, { headers });
    await res.arrayBuffer();
  },
);

Deno.bench({
  name: "anya-edge over HTTP (auth + rate limit)",
  group: "authenticated read over HTTP",
}, async () => {
  const res = await fetch(edgeUrl, { headers });
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  await res.arrayBuffer();
});

globalThis.addEventListener("unload", () => {
  bareServer.shutdown();
  edgeServer.shutdown();
});
