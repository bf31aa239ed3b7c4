/**
 * `scripts/data_key_rotate.ts` end to end on a temporary embedded database:
 * in-process through `main()`, and as a real subprocess with narrow permission
 * flags when the test run may spawn Deno (`--allow-run=<deno>`).
 */
import assert from "node:assert/strict";
import { EXIT_INCOMPLETE, main, parseDataKeyRotateArgs } from "../../scripts/data_key_rotate.ts";
import { loadConfig } from "../../src/config/load.ts";
import {
  EncryptedSecretRepo,
  loadOrCreateDataKeys,
  parseDataKeyFile,
  SecretBox,
} from "../../src/crypto/mod.ts";
import { migrate, MIGRATIONS, openDb } from "../../src/db/mod.ts";

const REPO_ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const DATA_ROOT = `${REPO_ROOT}/data`;
const ROWS = 5;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
/**
 * The Deno binary this run may spawn: its own path, or `deno` from PATH when the
 * run was granted `--allow-run=deno` (which resolves through PATH, not to the
 * canonical `Deno.execPath()`); null when spawning is not allowed.
 */
const DENO_BIN: string | null =
  [Deno.execPath(), "deno"].find((command) =>
    Deno.permissions.querySync({ name: "run", command }).state === "granted"
  ) ?? null;
const canSpawn = DENO_BIN !== null;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  await Deno.mkdir(DATA_ROOT, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: DATA_ROOT, prefix: "crypto-cli-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Open the temp data dir the way the server does, run `fn`, close. */
async function withDataDir<T>(
  dataDir: string,
  fn: (repo: EncryptedSecretRepo, newestKeyId: string) => Promise<T>,
): Promise<T> {
  const config = loadConfig({ ANYA_DATA_DIR: dataDir });
  const keys = await loadOrCreateDataKeys({ dataKeyFile: undefined, dataDir: config.dataDir });
  const db = await openDb(config.db);
  try {
    await migrate(db, MIGRATIONS);
    return await fn(
      new EncryptedSecretRepo(db, new SecretBox(keys.keyring)),
      keys.keyring.newestKeyId,
    );
  } finally {
    await db.close();
  }
}

async function seed(dataDir: string): Promise<string> {
  return await withDataDir(dataDir, async (repo, keyId) => {
    for (let i = 0; i < ROWS; i++) {
      await repo.put(`t${i % 2}`, { id: `s${i}`, purpose: "p", value: enc(`value-${i}`) });
    }
    return keyId;
  });
}

async function assertRows(dataDir: string, expectedKeyId: string): Promise<void> {
  await withDataDir(dataDir, async (repo, newest) => {
    assert.equal(newest, expectedKeyId);
    for (let i = 0; i < ROWS; i++) {
      const got = await repo.get(`t${i % 2}`, `s${i}`);
      assert.equal(got?.keyId, expectedKeyId, `s${i}`);
      assert.equal(dec(got?.value), `value-${i}`, `s${i}`);
    }
  });
}

async function spawnRotate(dataDir: string, ...args: string[]) {
  if (DENO_BIN === null) throw new Error("spawning Deno is not permitted");
  const output = await new Deno.Command(DENO_BIN, {
    args: [
      "run",
      "--allow-env",
      `--allow-read=.,${dataDir}`,
      `--allow-write=${dataDir}`,
      "scripts/data_key_rotate.ts",
      ...args,
    ],
    cwd: REPO_ROOT,
    // Empty means unset to loadConfig: never touch a database or key file of the caller's.
    env: { ANYA_DATA_DIR: dataDir, DATABASE_URL: "", ANYA_DATA_KEY_FILE: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  const last = stdout.trim().split("\n").at(-1) ?? "";
  return { code: output.code, stdout, stderr, summary: last === "" ? null : JSON.parse(last) };
}

Deno.test("parseDataKeyRotateArgs() parses flags and rejects bad ones", () => {
  assert.deepEqual(parseDataKeyRotateArgs([]), {
    newKey: false,
    keyOnly: false,
    batchSize: undefined,
    maxRows: undefined,
  });
  assert.deepEqual(parseDataKeyRotateArgs(["--new-key", "--batch-size", "50", "--max-rows=0"]), {
    newKey: true,
    keyOnly: false,
    batchSize: 50,
    maxRows: 0,
  });
  assert.equal(parseDataKeyRotateArgs(["-h"]), "help");
  for (
    const bad of [["--batch-size", "0"], ["--batch-size", "x"], ["--max-rows", "-1"], ["--nope"], [
      "pos",
    ]]
  ) {
    assert.throws(() => parseDataKeyRotateArgs(bad), { name: "UsageError" }, bad.join(" "));
  }
});

Deno.test({
  name: "data-key:rotate main() adds a key and re-encrypts every row in-process",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTempDir(async (dir) => {
      const oldKeyId = await seed(dir);
      assert.equal(await main(["--new-key"], { ANYA_DATA_DIR: dir }), 0);
      const ids = parseDataKeyFile(await Deno.readTextFile(`${dir}/data.key`)).map((e) => e.id);
      assert.equal(ids.length, 2);
      assert.equal(ids[0], oldKeyId);
      await assertRows(dir, ids[1]!);
      assert.equal(await main(["--bogus"], { ANYA_DATA_DIR: dir }), 1);
    });
  },
});

Deno.test({
  name: "data-key:rotate CLI rotates a PGlite data dir with narrow permissions, resumably",
  ignore: !canSpawn,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTempDir(async (dir) => {
      const oldKeyId = await seed(dir);

      // Bounded run: a new key, two rows moved, the rest left for the next run.
      const partial = await spawnRotate(dir, "--new-key", "--max-rows", "2", "--batch-size", "1");
      assert.equal(partial.code, EXIT_INCOMPLETE, partial.stderr);
      const newKeyId = partial.summary.newestKeyId;
      assert.notEqual(newKeyId, oldKeyId);
      assert.equal(partial.summary.addedKeyId, newKeyId);
      assert.equal(partial.summary.reencrypted, 2);
      assert.equal(partial.summary.remaining, ROWS - 2);
      assert.equal(partial.summary.complete, false);
      assert.match(partial.stderr, /added key k\d{4}-\d{2}-\d{2}-[0-9a-f]{8}/);
      assert.match(partial.stderr, /run again/);
      // Key material never reaches the console.
      const keyLine = (await Deno.readTextFile(`${dir}/data.key`)).trim().split("\n").at(-1)!;
      const keyB64 = keyLine.split(" ")[1]!;
      assert.ok(!partial.stdout.includes(keyB64) && !partial.stderr.includes(keyB64));
      assert.equal((await Deno.stat(`${dir}/data.key`)).mode! & 0o777, 0o600);

      // Resume without adding another key.
      const rest = await spawnRotate(dir);
      assert.equal(rest.code, 0, rest.stderr);
      assert.deepEqual(rest.summary, {
        newestKeyId: newKeyId,
        addedKeyId: null,
        examined: ROWS - 2,
        reencrypted: ROWS - 2,
        skipped: 0,
        failed: 0,
        remaining: 0,
        complete: true,
      });
      await assertRows(dir, newKeyId);
    });
  },
});

Deno.test({
  name: "data-key:rotate CLI --key-only adds a key without opening the database",
  ignore: !canSpawn,
  fn: async () => {
    await withTempDir(async (dir) => {
      const run = await spawnRotate(dir, "--new-key", "--key-only");
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /generated data key file/);
      assert.equal(run.summary.reencrypted, 0);
      const ids = parseDataKeyFile(await Deno.readTextFile(`${dir}/data.key`)).map((e) => e.id);
      assert.deepEqual(ids.at(-1), run.summary.newestKeyId);
      assert.equal(ids.length, 2);
      await assert.rejects(() => Deno.stat(`${dir}/pglite`), Deno.errors.NotFound);
    });
  },
});
