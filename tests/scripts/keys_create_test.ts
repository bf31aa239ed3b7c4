import assert from "node:assert/strict";
import { AuditLog } from "../../src/audit/audit_log.ts";
import { ApiKeyAuthenticator } from "../../src/auth/api_key_authenticator.ts";
import { loadConfig } from "../../src/config/load.ts";
import { CONFIG_ENV_KEYS } from "../../src/config/schema.ts";
import { openDb } from "../../src/db/open.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { parseKeysCreateArgs } from "../../scripts/keys_create.ts";
import { UsageError } from "../../scripts/_cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
// Spawning needs --allow-run for the deno binary (by path, or as "deno" on PATH);
// without it the spawning tests are reported as ignored.
const DENO = [Deno.execPath(), "deno"].find((command) =>
  Deno.permissions.querySync({ name: "run", command }).state === "granted"
);
const CAN_RUN = DENO !== undefined;

/** PATH, HOME and DENO_DIR from the parent, so the child finds its caches. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of ["PATH", "HOME", "DENO_DIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** Run `scripts/keys_create.ts` against `dataDir` with its narrow permission set. */
async function runCli(dataDir: string, args: string[]) {
  const out = await new Deno.Command(DENO ?? "deno", {
    args: [
      "run",
      // The narrow flag the task should use: only the variables the schema names.
      `--allow-env=${CONFIG_ENV_KEYS.join(",")}`,
      `--allow-read=${ROOT},${dataDir}`,
      `--allow-write=${dataDir}`,
      "scripts/keys_create.ts",
      ...args,
    ],
    cwd: ROOT,
    env: { ...baseEnv(), ANYA_DATA_DIR: dataDir },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function tempDataDir(): Promise<string> {
  // Inside the repo's ignored data/ dir: tests may write only below the repo.
  await Deno.mkdir(`${ROOT}data`, { recursive: true });
  return await Deno.makeTempDir({ dir: `${ROOT}data`, prefix: "test-keys-create-" });
}

Deno.test({
  name: "keys:create prints a key on the last stdout line that then authenticates",
  ignore: !CAN_RUN,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await tempDataDir();
    try {
      const run = await runCli(dir, [
        "--tenant",
        "acme",
        "--scopes",
        "admin,read",
        "--name",
        "bootstrap",
        "--expires-in-days",
        "30",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      const key = lines.at(-1) ?? "";
      assert.match(key, /^anya_live_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      assert.match(run.stderr, /Created API key [0-9a-f]{16} for tenant "acme"/);
      assert.ok(!run.stderr.includes(key), "the key goes to stdout only");

      const config = loadConfig({ ANYA_DATA_DIR: dir });
      const db = await openDb(config.db);
      const auth = new ApiKeyAuthenticator({
        db,
        cacheTtlMs: 0,
        logger: createLogger({ sink: () => {} }),
      });
      try {
        const principal = await auth.authenticate(key);
        assert.equal(principal.tenant, "acme");
        assert.deepEqual(principal.scopes, new Set(["admin", "read"]));
        const [row] = await new AuditLog(db).list("acme", { limit: 1 });
        assert.equal(row?.actor, "cli:keys:create");
        assert.equal(row?.action, "api_key.create");
      } finally {
        await auth.close();
        await db.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "keys:create exits 1 with a usage message on bad arguments",
  ignore: !CAN_RUN,
  fn: async () => {
    const dir = await tempDataDir();
    try {
      const run = await runCli(dir, ["--tenant", "acme", "--scopes", "root"]);
      assert.equal(run.code, 1);
      assert.equal(run.stdout, "");
      assert.match(run.stderr, /Unknown scope: "root"/);
      assert.match(run.stderr, /Usage: deno task keys:create/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("parseKeysCreateArgs() parses and checks arguments", () => {
  assert.deepEqual(parseKeysCreateArgs(["--tenant", "t", "--scopes", "admin, read,admin"]), {
    tenant: "t",
    scopes: ["admin", "read"],
    name: undefined,
    expiresInDays: undefined,
  });
  assert.deepEqual(
    parseKeysCreateArgs(["--tenant=t", "--scopes=ml", "--name=n", "--expires-in-days=7"]),
    { tenant: "t", scopes: ["ml"], name: "n", expiresInDays: 7 },
  );
  assert.equal(parseKeysCreateArgs(["--help"]), "help");
  const bad: [string, string[]][] = [
    ["no tenant", ["--scopes", "read"]],
    ["no scopes", ["--tenant", "t"]],
    ["empty scopes", ["--tenant", "t", "--scopes", ","]],
    ["unknown scope", ["--tenant", "t", "--scopes", "read,root"]],
    ["unknown option", ["--tenant", "t", "--scopes", "read", "--force"]],
    ["positional", ["--tenant", "t", "--scopes", "read", "extra"]],
    ["zero days", ["--tenant", "t", "--scopes", "read", "--expires-in-days", "0"]],
    ["fractional days", ["--tenant", "t", "--scopes", "read", "--expires-in-days", "1.5"]],
    ["negative days", ["--tenant", "t", "--scopes", "read", "--expires-in-days=-3"]],
  ];
  for (const [label, args] of bad) {
    assert.throws(() => parseKeysCreateArgs(args), UsageError, label);
  }
});
