import assert from "node:assert/strict";
import {
  CONFIG_ENV_KEYS,
  ConfigError,
  listenHost,
  loadConfig,
  upstreamHosts,
} from "../../src/config/mod.ts";

Deno.test("loadConfig() applies defaults: PGlite under ./data, 127.0.0.1:8080", () => {
  const c = loadConfig({});
  assert.equal(c.server.host, "127.0.0.1");
  assert.equal(c.server.port, 8080);
  assert.deepEqual(c.db, { kind: "pglite", dataDir: "./data/pglite" });
  assert.equal(c.server.bodyLimitBytes, 1024 * 1024);
  assert.deepEqual(c.server.corsOrigins, []);
  assert.equal(listenHost(c), "127.0.0.1:8080");
  assert.deepEqual(upstreamHosts(c), []);
});

Deno.test("loadConfig() switches to PostgreSQL with DATABASE_URL", () => {
  const c = loadConfig({
    DATABASE_URL: "postgres://app@db.internal/anya",
    DATABASE_POOL_SIZE: "4",
  });
  assert.equal(c.db.kind, "postgres");
  assert.ok(c.db.kind === "postgres" && c.db.poolSize === 4);
  assert.deepEqual(upstreamHosts(c), ["db.internal:5432"]);
});

Deno.test("loadConfig() names every bad variable and never echoes values", () => {
  try {
    loadConfig({
      PORT: "eighty",
      DATABASE_URL: "mysql://root:hunter2@x/y",
      LOG_LEVEL: "loud",
      CORS_ORIGINS: "not a url",
    });
    assert.fail("expected ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const names = err.problems.map((p) => p.split(":")[0]);
    assert.deepEqual(names.sort(), ["CORS_ORIGINS", "DATABASE_URL", "LOG_LEVEL", "PORT"]);
    assert.doesNotMatch(err.message, /hunter2/);
  }
});

Deno.test("loadConfig() treats empty strings as unset", () => {
  assert.equal(loadConfig({ PORT: "", DATABASE_URL: "" }).db.kind, "pglite");
});

Deno.test("loadConfig() rejects a password both in DATABASE_URL and in a file", () => {
  assert.throws(
    () => loadConfig({ DATABASE_URL: "postgres://u:p@h/d", DATABASE_PASSWORD_FILE: "/run/pw" }),
    (e: unknown) => e instanceof ConfigError && /DATABASE_URL/.test(e.message),
  );
  assert.throws(() => loadConfig({ DATABASE_PASSWORD_FILE: "/run/pw" }), /only meaningful/);
});

Deno.test("loadConfig() returns a frozen config", () => {
  const c = loadConfig({});
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.server));
});

Deno.test("CONFIG_ENV_KEYS lists the schema's variables", () => {
  for (const k of ["HOST", "PORT", "DATABASE_URL", "ANYA_DATA_DIR", "ANYA_DATA_KEY_FILE"]) {
    assert.ok(CONFIG_ENV_KEYS.includes(k), k);
  }
});

Deno.test("listenHost() brackets IPv6 addresses", () => {
  assert.equal(listenHost(loadConfig({ HOST: "::1", PORT: "9000" })), "[::1]:9000");
});

Deno.test("loadConfig() builds the chain backend slice and its upstream host", () => {
  const esplora = loadConfig({
    CHAIN_BACKEND: "esplora",
    ESPLORA_URL: "https://blockstream.info/api",
    BITCOIN_NETWORK: "signet",
  });
  assert.deepEqual(esplora.chain.backend, { kind: "esplora", url: "https://blockstream.info/api" });
  assert.equal(esplora.chain.network, "signet");
  assert.deepEqual(upstreamHosts(esplora), ["blockstream.info:443"]);
  const core = loadConfig({
    CHAIN_BACKEND: "bitcoind",
    BITCOIND_URL: "http://127.0.0.1:8332",
    BITCOIND_RPC_COOKIE_FILE: "/var/lib/bitcoind/.cookie",
  });
  assert.deepEqual(core.chain.backend, {
    kind: "bitcoind",
    url: "http://127.0.0.1:8332",
    auth: { kind: "cookie", cookieFile: "/var/lib/bitcoind/.cookie" },
  });
  assert.deepEqual(upstreamHosts(core), ["127.0.0.1:8332"]);
  assert.equal(loadConfig({}).chain.backend, null);
});

Deno.test("loadConfig() enforces the chain backend's required variables", () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems.map((p) => p.split(":")[0]);
    }
  };
  assert.deepEqual(problems({ CHAIN_BACKEND: "esplora" }), ["ESPLORA_URL"]);
  assert.deepEqual(problems({ CHAIN_BACKEND: "bitcoind" }), [
    "BITCOIND_URL",
    "BITCOIND_RPC_COOKIE_FILE",
  ]);
  assert.deepEqual(
    problems({ CHAIN_BACKEND: "bitcoind", BITCOIND_URL: "http://h:8332", BITCOIND_RPC_USER: "u" }),
    ["BITCOIND_RPC_PASSWORD_FILE"],
  );
  assert.deepEqual(problems({ BITCOIN_NETWORK: "testnet3" }), ["BITCOIN_NETWORK"]);
  assert.deepEqual(problems({ CHAIN_BACKEND: "esplora", ESPLORA_URL: "ftp://x" }), ["ESPLORA_URL"]);
});

Deno.test("loadConfig() builds the Lightning node slice: credential file, pinned certificate, host", () => {
  const lnd = loadConfig({
    LIGHTNING_BACKEND: "lnd",
    LND_REST_URL: "https://lnd.internal:8080",
    LND_MACAROON_FILE: "/secrets/admin.macaroon",
    LND_TLS_CERT_SHA256: "AB:".repeat(31) + "AB",
  });
  assert.deepEqual(lnd.lightning.backend, {
    kind: "lnd",
    url: "https://lnd.internal:8080",
    credentialFile: "/secrets/admin.macaroon",
    tls: { sha256: "ab".repeat(32) },
  });
  assert.deepEqual(upstreamHosts(lnd), ["lnd.internal:8080"]);
  assert.equal(lnd.lightning.limits.maxPaymentSat, 100_000n);
  const cln = loadConfig({
    LIGHTNING_BACKEND: "cln",
    CLN_REST_URL: "http://127.0.0.1:3010",
    CLN_RUNE_FILE: "/secrets/rune",
  });
  assert.deepEqual(cln.lightning.backend?.tls, null);
  assert.equal(loadConfig({}).lightning.backend, null);
});

Deno.test("loadConfig() enforces the Lightning node's required variables", () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems.map((p) => p.split(":")[0]);
    }
  };
  assert.deepEqual(problems({ LIGHTNING_BACKEND: "lnd" }), ["LND_REST_URL", "LND_MACAROON_FILE"]);
  assert.deepEqual(
    problems({
      LIGHTNING_BACKEND: "lnd",
      LND_REST_URL: "https://lnd:8080",
      LND_MACAROON_FILE: "/m",
    }),
    ["LND_TLS_CERT_FILE"],
  );
  assert.deepEqual(
    problems({
      LIGHTNING_BACKEND: "cln",
      CLN_REST_URL: "http://cln.lan:3010",
      CLN_RUNE_FILE: "/r",
    }),
    ["CLN_REST_URL"],
  );
  assert.deepEqual(
    problems({
      LIGHTNING_BACKEND: "cln",
      CLN_REST_URL: "https://cln:3010",
      CLN_RUNE_FILE: "/r",
      CLN_TLS_CERT_SHA256: "xyz",
    }),
    ["CLN_TLS_CERT_SHA256"],
  );
});
