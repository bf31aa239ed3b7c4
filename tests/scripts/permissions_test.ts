import assert from "node:assert/strict";
import { type Config, CONFIG_ENV_KEYS, loadConfig } from "../../src/config/mod.ts";
import {
  configFiles,
  netHosts,
  ortWasmFileFromUrl,
  permissionFlags,
  permissionsFor,
  pgliteDirFromUrl,
} from "../../scripts/permissions.ts";

const PGLITE =
  "/repo/node_modules/.deno/@electric-sql+pglite@0.5.17/node_modules/@electric-sql/pglite";
const ORT =
  "/repo/node_modules/.deno/onnxruntime-web@1.30.0/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";

Deno.test("permissionsFor() grants PGlite defaults: schema env, models, data, PGlite dir, listen address", () => {
  const p = permissionsFor(loadConfig({}), { pgliteDir: PGLITE, ortWasmFile: ORT });
  assert.deepEqual(p.env, [...CONFIG_ENV_KEYS]);
  assert.deepEqual(p.read, ["./models", "./data", PGLITE, ORT]);
  assert.deepEqual(p.write, ["./data"]);
  assert.deepEqual(p.net, ["127.0.0.1:8080"]);
});

Deno.test("permissionsFor() on PostgreSQL grants the secret files and the database host, not PGlite", () => {
  const config = loadConfig({
    HOST: "0.0.0.0",
    PORT: "9000",
    ANYA_DATA_DIR: "/var/lib/anya",
    ANYA_MODELS_DIR: "/opt/models",
    DATABASE_URL: "postgres://anya@db.internal/anya",
    DATABASE_PASSWORD_FILE: "/run/secrets/pg",
    ANYA_DATA_KEY_FILE: "/run/secrets/data.key",
    ML_ENABLED: "false",
  });
  const p = permissionsFor(config, { pgliteDir: PGLITE });
  assert.deepEqual(p.read, [
    "/opt/models",
    "/var/lib/anya",
    "/run/secrets/pg",
    "/run/secrets/data.key",
  ]);
  assert.deepEqual(p.write, ["/var/lib/anya"]);
  assert.deepEqual(p.net, ["0.0.0.0:9000", "db.internal:5432"]);
});

Deno.test("permissionsFor() in compile mode needs no PGlite dir (the binary embeds it)", () => {
  const p = permissionsFor(loadConfig({}), { mode: "compile" });
  assert.deepEqual(p.read, ["./models", "./data"]);
});

Deno.test("permissionsFor() refuses to run PGlite from source without its package dir", () => {
  assert.throws(() => permissionsFor(loadConfig({})), TypeError);
  assert.throws(
    () => permissionsFor(loadConfig({}), { pgliteDir: "", ortWasmFile: ORT }),
    TypeError,
  );
});

Deno.test("permissionsFor() grants onnxruntime-web's WASM file only when models run from source", () => {
  assert.throws(() => permissionsFor(loadConfig({}), { pgliteDir: PGLITE }), /ortWasmFile/);
  const off = permissionsFor(loadConfig({ ML_ENABLED: "false" }), { pgliteDir: PGLITE });
  assert.ok(!off.read.includes(ORT));
  assert.equal(
    ortWasmFileFromUrl(
      "file:///repo/node_modules/.deno/onnxruntime-web@1.30.0/node_modules/onnxruntime-web/dist/ort.node.min.mjs",
    ),
    ORT,
  );
  assert.throws(() => ortWasmFileFromUrl("https://example.com/ort.mjs"), RangeError);
  assert.throws(() => ortWasmFileFromUrl("file:///repo/other/dist/x.mjs"), RangeError);
});

Deno.test("netHosts() spells IPv6 and explicit ports as --allow-net does, without duplicates", () => {
  assert.deepEqual(
    netHosts(loadConfig({ HOST: "::1", PORT: "8443", DATABASE_URL: "postgres://u@[::1]:6432/d" })),
    ["[::1]:8443", "[::1]:6432"],
  );
  assert.deepEqual(
    netHosts(loadConfig({ PORT: "5432", DATABASE_URL: "postgres://u@127.0.0.1/d" })),
    ["127.0.0.1:5432"],
  );
});

Deno.test("configFiles() collects every string whose key ends in File, at any depth", () => {
  const base = loadConfig({ DATABASE_URL: "postgres://u@h/d", DATABASE_PASSWORD_FILE: "/s/pg" });
  const extended = {
    ...base,
    dataKeyFile: "/s/key",
    hsm: { clientCertFile: "/s/cert.pem", caFile: "/s/ca.pem", url: "https://hsm" },
    nested: { deeper: { keyFile: "/s/cert.pem" } },
  } as unknown as Config;
  assert.deepEqual(configFiles(extended), ["/s/pg", "/s/key", "/s/cert.pem", "/s/ca.pem"]);
  assert.deepEqual(configFiles(loadConfig({})), []);
});

Deno.test("permissionFlags() renders scoped flags only, with --ignore-env after --allow-env", () => {
  const flags = permissionFlags({
    env: ["HOST", "PORT"],
    read: ["./models", "./data"],
    write: ["./data"],
    net: ["127.0.0.1:8080"],
  });
  assert.deepEqual(flags, [
    "--allow-env=HOST,PORT",
    "--ignore-env",
    "--allow-read=./models,./data",
    "--allow-write=./data",
    "--allow-net=127.0.0.1:8080",
  ]);
});

Deno.test("permissionFlags() omits empty lists instead of emitting an unscoped flag", () => {
  const flags = permissionFlags({ env: [], read: [], write: [], net: ["127.0.0.1:1"] });
  assert.deepEqual(flags, ["--allow-net=127.0.0.1:1"]);
});

Deno.test("permissionFlags() rejects entries a flag cannot express", () => {
  const base = { env: [], read: [], write: [], net: [] };
  assert.throws(() => permissionFlags({ ...base, read: ["/a,b"] }), RangeError);
  assert.throws(() => permissionFlags({ ...base, write: [""] }), RangeError);
});

Deno.test("pgliteDirFromUrl() finds the package dir in node_modules and in Deno's global cache", () => {
  assert.equal(pgliteDirFromUrl(`file://${PGLITE}/dist/index.js`), PGLITE);
  assert.equal(
    pgliteDirFromUrl(
      "file:///home/u/.cache/deno/npm/registry.npmjs.org/@electric-sql/pglite/0.5.17/dist/index.js",
    ),
    "/home/u/.cache/deno/npm/registry.npmjs.org/@electric-sql/pglite/0.5.17",
  );
  assert.equal(
    pgliteDirFromUrl("file:///my%20app/node_modules/@electric-sql/pglite/dist/index.js"),
    "/my app/node_modules/@electric-sql/pglite",
  );
});

Deno.test("pgliteDirFromUrl() rejects URLs outside the package", () => {
  assert.throws(
    () => pgliteDirFromUrl("https://esm.sh/@electric-sql/pglite/dist/index.js"),
    RangeError,
  );
  assert.throws(
    () => pgliteDirFromUrl("file:///repo/node_modules/postgres/src/index.js"),
    RangeError,
  );
  assert.throws(() => pgliteDirFromUrl("not a url"), TypeError);
});
