import assert from "node:assert/strict";
import {
  appendDataKey,
  DataKeyFileError,
  dataKeyPath,
  defaultDataKeyPath,
  loadOrCreateDataKeys,
  parseDataKeyFile,
  readDataKeyFile,
  SecretBox,
  serializeDataKeyFile,
} from "../../src/crypto/mod.ts";

const DATA_ROOT = new URL("../../data/", import.meta.url).pathname;
const CTX = { table: "encrypted_secrets", purpose: "p", tenant: "t", rowId: "r" };

/** A temp dir under the repo's git-ignored data/ (tests may write only inside the repo). */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  await Deno.mkdir(DATA_ROOT, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: DATA_ROOT, prefix: "crypto-key-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mode(path: string): Promise<number> {
  return ((await Deno.stat(path)).mode ?? 0) & 0o777;
}

async function writeKeyFile(path: string, ids: string[], fileMode = 0o600): Promise<void> {
  const text = serializeDataKeyFile(
    ids.map((id) => ({ id, key: crypto.getRandomValues(new Uint8Array(32)) })),
  );
  await Deno.writeTextFile(path, text, { mode: fileMode });
  await Deno.chmod(path, fileMode);
}

Deno.test("loadOrCreateDataKeys() generates <dataDir>/data.key with mode 0600 once", async () => {
  await withTempDir(async (dir) => {
    const dataDir = `${dir}/nested/data`;
    const first = await loadOrCreateDataKeys({ dataDir });
    assert.equal(first.created, true);
    assert.equal(first.path, `${dataDir}/data.key`);
    assert.equal(await mode(first.path), 0o600);
    assert.equal(await mode(dataDir), 0o700);
    const text = await Deno.readTextFile(first.path);
    assert.match(text, /^# anya-edge data keys/);
    const entries = parseDataKeyFile(text);
    assert.equal(entries.length, 1);
    assert.match(entries[0]!.id, /^k\d{4}-\d{2}-\d{2}-[0-9a-f]{8}$/);
    assert.equal(first.keyring.newestKeyId, entries[0]!.id);
    // No temporary files left behind.
    const names = [];
    for await (const e of Deno.readDir(dataDir)) names.push(e.name);
    assert.deepEqual(names, ["data.key"]);

    // Second start: same key, not regenerated.
    const second = await loadOrCreateDataKeys({ dataDir: `${dataDir}/`, dataKeyFile: undefined });
    assert.equal(second.created, false);
    assert.equal(second.keyring.newestKeyId, first.keyring.newestKeyId);
    const sealed = await new SecretBox(first.keyring).seal(new Uint8Array([1, 2, 3]), CTX);
    assert.deepEqual(
      await new SecretBox(second.keyring).open(sealed.envelope, CTX),
      new Uint8Array([1, 2, 3]),
    );
  });
});

Deno.test("loadOrCreateDataKeys() started concurrently agrees on one key", async () => {
  await withTempDir(async (dir) => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => loadOrCreateDataKeys({ dataDir: dir })),
    );
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.keyring.newestKeyId)).size, 1);
    assert.equal(parseDataKeyFile(await Deno.readTextFile(`${dir}/data.key`)).length, 1);
  });
});

Deno.test("loadOrCreateDataKeys() never generates a configured ANYA_DATA_KEY_FILE", async () => {
  await withTempDir(async (dir) => {
    const dataKeyFile = `${dir}/secrets/missing.key`;
    await assert.rejects(
      () => loadOrCreateDataKeys({ dataKeyFile, dataDir: dir }),
      (err: unknown) => {
        assert.ok(err instanceof DataKeyFileError);
        assert.match(err.message, /does not exist/);
        assert.ok(err.message.includes(dataKeyFile));
        return true;
      },
    );
    await assert.rejects(() => Deno.stat(dataKeyFile), Deno.errors.NotFound);
    await assert.rejects(() => Deno.stat(`${dir}/data.key`), Deno.errors.NotFound);
  });
});

Deno.test("loadOrCreateDataKeys() loads a configured key file, newest last", async () => {
  await withTempDir(async (dir) => {
    const dataKeyFile = `${dir}/prod.key`;
    await writeKeyFile(dataKeyFile, ["k-old", "k-new"]);
    const loaded = await loadOrCreateDataKeys({ dataKeyFile, dataDir: `${dir}/unused` });
    assert.equal(loaded.created, false);
    assert.equal(loaded.path, dataKeyFile);
    assert.deepEqual(loaded.keyring.keyIds, ["k-old", "k-new"]);
    assert.equal(loaded.keyring.newestKeyId, "k-new");
    assert.equal(dataKeyPath({ dataKeyFile, dataDir: dir }), dataKeyFile);
  });
});

Deno.test("loadOrCreateDataKeys() refuses key files readable by group or others", async () => {
  await withTempDir(async (dir) => {
    for (const fileMode of [0o644, 0o640, 0o604, 0o660, 0o602]) {
      const path = `${dir}/open-${fileMode.toString(8)}.key`;
      await writeKeyFile(path, ["k1"], fileMode);
      await assert.rejects(
        () => loadOrCreateDataKeys({ dataKeyFile: path, dataDir: dir }),
        (err: unknown) => {
          assert.ok(err instanceof DataKeyFileError);
          assert.ok(err.message.includes(`"${path}"`), err.message);
          assert.ok(err.message.includes(`chmod 600 ${path}`), err.message);
          assert.ok(err.message.includes(`mode 0${fileMode.toString(8)}`), err.message);
          return true;
        },
        fileMode.toString(8),
      );
    }
    // The generated default file is checked too.
    await writeKeyFile(`${dir}/data.key`, ["k1"], 0o644);
    await assert.rejects(() => loadOrCreateDataKeys({ dataDir: dir }), /chmod 600/);
    await Deno.chmod(`${dir}/data.key`, 0o400);
    assert.equal((await loadOrCreateDataKeys({ dataDir: dir })).keyring.newestKeyId, "k1");
  });
});

Deno.test("readDataKeyFile() reports the path and line of a malformed file without its content", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.key`;
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(31))));
    await Deno.writeTextFile(path, `# c\nk1 ${key}\n`, { mode: 0o600 });
    await Deno.chmod(path, 0o600);
    await assert.rejects(() => readDataKeyFile(path), (err: unknown) => {
      assert.ok(err instanceof DataKeyFileError);
      assert.equal(err.line, 2);
      assert.ok(err.message.includes(path));
      assert.ok(!err.message.includes(key.slice(0, 10)));
      return true;
    });
    await Deno.mkdir(`${dir}/a-dir.key`);
    await assert.rejects(() => readDataKeyFile(`${dir}/a-dir.key`), /not a regular file/);
    await assert.rejects(() => readDataKeyFile(42 as never), TypeError);
  });
});

Deno.test("appendDataKey() adds a newest key, keeps old keys, comments and mode 0600", async () => {
  await withTempDir(async (dir) => {
    const created = await loadOrCreateDataKeys({ dataDir: dir });
    const before = await Deno.readTextFile(created.path);
    const added = await appendDataKey(created.path, { now: new Date("2026-11-28T00:00:00Z") });
    assert.match(added.keyId, /^k2026-11-28-[0-9a-f]{8}$/);
    assert.equal(added.keyCount, 2);
    const after = await Deno.readTextFile(created.path);
    assert.ok(after.startsWith(before));
    assert.equal(await mode(created.path), 0o600);
    const reloaded = await loadOrCreateDataKeys({ dataDir: dir });
    assert.equal(reloaded.created, false);
    assert.deepEqual(reloaded.keyring.keyIds, [created.keyring.newestKeyId, added.keyId]);
    // Old envelopes still open; new ones use the added key.
    const old = await new SecretBox(created.keyring).seal(new Uint8Array([5]), CTX);
    const box = new SecretBox(reloaded.keyring);
    assert.deepEqual(await box.open(old.envelope, CTX), new Uint8Array([5]));
    assert.equal((await box.seal(new Uint8Array([6]), CTX)).keyId, added.keyId);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["data.key"]);
  });
});

Deno.test("appendDataKey() refuses while another rotation holds the lock, and missing or open files", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/data.key`;
    await writeKeyFile(path, ["k1"]);
    await Deno.writeTextFile(`${path}.lock`, "");
    await assert.rejects(() => appendDataKey(path), /locked by another rotation/);
    assert.equal(parseDataKeyFile(await Deno.readTextFile(path)).length, 1);
    await Deno.remove(`${path}.lock`);

    await assert.rejects(() => appendDataKey(`${dir}/missing.key`), /does not exist/);
    await Deno.chmod(path, 0o644);
    await assert.rejects(() => appendDataKey(path), /chmod 600/);
    assert.equal(parseDataKeyFile(await Deno.readTextFile(path)).length, 1);
    // A failed append releases its lock.
    await assert.rejects(() => Deno.stat(`${path}.lock`), Deno.errors.NotFound);
    await assert.rejects(() => appendDataKey(1 as never), TypeError);
  });
});

Deno.test("appendDataKey() serialises concurrent rotations without losing a key", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/data.key`;
    await writeKeyFile(path, ["k1"]);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => appendDataKey(path)));
    const added = results.flatMap((r) => r.status === "fulfilled" ? [r.value.keyId] : []);
    assert.ok(added.length >= 1);
    const ids = parseDataKeyFile(await Deno.readTextFile(path)).map((e) => e.id);
    assert.deepEqual(ids, ["k1", ...ids.slice(1)]);
    for (const id of added) assert.ok(ids.includes(id), id);
    assert.equal(ids.length, 1 + added.length);
  });
});

Deno.test("defaultDataKeyPath() and loadOrCreateDataKeys() reject wrong types", async () => {
  assert.equal(defaultDataKeyPath("./data"), "./data/data.key");
  assert.equal(defaultDataKeyPath("/srv/anya/"), "/srv/anya/data.key");
  assert.equal(defaultDataKeyPath("/"), "/data.key");
  assert.throws(() => defaultDataKeyPath(1 as never), TypeError);
  assert.throws(() => defaultDataKeyPath(""), RangeError);
  await assert.rejects(() => loadOrCreateDataKeys(null as never), TypeError);
  await assert.rejects(
    () => loadOrCreateDataKeys({ dataKeyFile: 5 as never, dataDir: "x" }),
    TypeError,
  );
});
