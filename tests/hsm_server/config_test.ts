import assert from "node:assert/strict";
import { HSM_ENV_KEYS, loadHsmConfig } from "../../src/hsm_server/config.ts";
import { ConfigError } from "../../src/config/load.ts";
import { hsmPermissionsFor, permissionFlags } from "../../scripts/permissions.ts";
import { configFor, HSM_ENTRY } from "../../scripts/start.ts";

const BASE = {
  HSM_TLS_CERT_FILE: "/pki/hsm.crt",
  HSM_TLS_KEY_FILE: "/pki/hsm.key",
  HSM_CLIENT_CA_FILE: "/pki/ca.crt",
  HSM_CLIENT_ALLOWLIST: "edge=acme, edge-2=beta",
  HSM_KEK_FILE: "/secrets/kek",
};

Deno.test("loadHsmConfig: defaults, allowlist map, PGlite under the HSM data dir", () => {
  const c = loadHsmConfig(BASE);
  assert.equal(c.host, "127.0.0.1");
  assert.equal(c.port, 8443);
  assert.deepEqual([...c.allowlist], [["edge", "acme"], ["edge-2", "beta"]]);
  assert.deepEqual(c.db, { kind: "pglite", dataDir: "./data/hsm/pglite" });
  assert.equal(c.keyCacheIdleMs, 60_000);
  assert.equal(loadHsmConfig({ ...BASE, HSM_KEY_CACHE_IDLE_MS: "0" }).keyCacheIdleMs, 0);
  assert.throws(() => loadHsmConfig({ ...BASE, HSM_KEY_CACHE_IDLE_MS: "-5" }), ConfigError);
  assert.ok(Object.isFrozen(c));
});

Deno.test("loadHsmConfig names every missing or bad variable, never echoing values", () => {
  try {
    loadHsmConfig({ HSM_CLIENT_ALLOWLIST: "edge=acme,not a pair", HSM_PORT: "99999" });
    assert.fail("expected ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const names = err.problems.map((p) => p.split(":")[0]);
    for (
      const n of [
        "HSM_TLS_CERT_FILE",
        "HSM_TLS_KEY_FILE",
        "HSM_CLIENT_CA_FILE",
        "HSM_KEK_FILE",
        "HSM_CLIENT_ALLOWLIST",
        "HSM_PORT",
      ]
    ) assert.ok(names.includes(n), `${n} in ${names}`);
    assert.doesNotMatch(err.message, /not a pair|99999/);
  }
  assert.throws(() => loadHsmConfig({ ...BASE, HSM_CLIENT_ALLOWLIST: "*.corp=acme" }), ConfigError);
  assert.throws(
    () => loadHsmConfig({ ...BASE, HSM_DATABASE_URL: "postgres://u:secret@db/hsm" }),
    ConfigError,
  );
});

Deno.test("the HSM's permissions: its files, its data dir, its address; nothing of the edge", () => {
  const c = loadHsmConfig({ ...BASE, HSM_DATA_DIR: "/var/hsm", HSM_PORT: "9443" });
  const p = hsmPermissionsFor(c, { pgliteDir: "/deps/pglite" });
  assert.deepEqual(p.env, HSM_ENV_KEYS);
  assert.deepEqual(p.read, [
    "/var/hsm",
    "/pki/hsm.crt",
    "/pki/hsm.key",
    "/pki/ca.crt",
    "/secrets/kek",
    "/deps/pglite",
  ]);
  assert.deepEqual(p.write, ["/var/hsm"]);
  assert.deepEqual(p.net, ["127.0.0.1:9443"]);
  const flags = permissionFlags(p);
  assert.ok(flags.includes("--ignore-env"));
  assert.ok(!flags.some((f) => f === "-A" || f === "--allow-all" || f === "--allow-run"));
  const pg = loadHsmConfig({ ...BASE, HSM_DATABASE_URL: "postgres://hsm@db.internal:6432/hsm" });
  assert.deepEqual(hsmPermissionsFor(pg).net, ["127.0.0.1:8443", "db.internal:6432"]);
});

Deno.test("the launcher loads the HSM's config for the HSM entry point and the edge's otherwise", () => {
  assert.ok("kekFile" in configFor(HSM_ENTRY, BASE));
  assert.ok("kekFile" in configFor(`./${HSM_ENTRY}`, BASE));
  assert.ok(!("kekFile" in configFor("main.ts", {})));
});
