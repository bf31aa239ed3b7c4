import assert from "node:assert/strict";
import { CONFIG_ENV_KEYS, loadConfig } from "../src/config/mod.ts";

const README = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README's configuration table lists exactly the schema's variables", () => {
  const documented = [...README.matchAll(/^\| `([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), [...CONFIG_ENV_KEYS].sort());
});

Deno.test("README's stated defaults are the schema's defaults", () => {
  const config = loadConfig({});
  const rows = new Map(
    [...README.matchAll(/^\| `([A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|/gm)].map((m) => [m[1], m[2]]),
  );
  assert.equal(rows.get("PORT"), String(config.server.port));
  assert.equal(rows.get("HOST"), config.server.host);
  assert.equal(rows.get("BODY_LIMIT_BYTES"), String(config.server.bodyLimitBytes));
  assert.equal(rows.get("AUTH_CACHE_TTL_MS"), String(config.auth.cacheTtlMs));
  assert.equal(rows.get("RATE_LIMIT_KEY_BURST"), String(config.rateLimit.key.burst));
  assert.equal(rows.get("IDEMPOTENCY_TTL_HOURS"), String(config.idempotency.ttlHours));
});
