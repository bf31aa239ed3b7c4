/**
 * SoftwareKeyStore: AES-256-GCM sealing bound to the key version, and the
 * KEK file's format and permission checks.
 */
import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { DecryptionError, ENVELOPE_VERSION } from "../../../src/crypto/secret_box.ts";
import { generateKeyMaterial } from "../../../src/hsm_server/signing/key_material.ts";
import type { KeyStore } from "../../../src/hsm_server/signing/key_store.ts";
import {
  DEFAULT_KEK_ID,
  KekFileError,
  SoftwareKeyStore,
} from "../../../src/hsm_server/signing/sealed_key_store.ts";

const kek = () => crypto.getRandomValues(new Uint8Array(32));
const CTX = { keyId: "key_01HX", version: 1 };
const POSIX = Deno.build.os !== "windows";

function assertDecryptionFails(p: Promise<unknown>, label: string): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DecryptionError, `${label}: ${String(e)}`);
    return true;
  }, label);
}

Deno.test("SoftwareKeyStore round-trips bip32 and single material for its key version", async () => {
  const store: KeyStore = new SoftwareKeyStore(kek());
  assert.equal(store.kind, "software");
  for (const kind of ["bip32", "single"] as const) {
    const material = generateKeyMaterial(kind);
    const sealed = await store.seal(material, CTX);
    assert.deepEqual(await store.unseal(sealed, CTX), material, kind);
    // Ciphertext only: the material does not appear in the blob.
    assert.ok(!hex.encode(sealed).includes(hex.encode(material.subarray(0, 16))), kind);
  }
});

Deno.test("SoftwareKeyStore blobs: version byte first, KEK id, 96-bit random nonce, 128-bit tag", async () => {
  const store = new SoftwareKeyStore(kek());
  const material = generateKeyMaterial("bip32");
  const a = await store.seal(material, CTX);
  const b = await store.seal(material, CTX);
  assert.equal(a[0], ENVELOPE_VERSION);
  assert.equal(a[1], DEFAULT_KEK_ID.length);
  assert.equal(new TextDecoder().decode(a.subarray(2, 2 + DEFAULT_KEK_ID.length)), DEFAULT_KEK_ID);
  assert.equal(a.length, 2 + DEFAULT_KEK_ID.length + 12 + material.length + 16);
  assert.notDeepEqual(a, b, "a fresh nonce per seal");
  assert.deepEqual(await store.unseal(b, CTX), material);
});

Deno.test("SoftwareKeyStore.unseal() fails under another KEK", async () => {
  const sealed = await new SoftwareKeyStore(kek()).seal(generateKeyMaterial("single"), CTX);
  await assertDecryptionFails(new SoftwareKeyStore(kek()).unseal(sealed, CTX), "other KEK");
  // Same KEK under another id: the envelope names a key the store does not hold.
  const k = kek();
  const sealed2 = await new SoftwareKeyStore(k).seal(generateKeyMaterial("single"), CTX);
  await assertDecryptionFails(
    new SoftwareKeyStore(k, { kekId: "kek-2" }).unseal(sealed2, CTX),
    "other KEK id",
  );
});

Deno.test("SoftwareKeyStore.unseal() fails when the blob is moved to another key id or version", async () => {
  const store = new SoftwareKeyStore(kek());
  const sealed = await store.seal(generateKeyMaterial("bip32"), CTX);
  const others = [
    { keyId: "key_01HY", version: 1 },
    { keyId: CTX.keyId, version: 2 },
    { keyId: CTX.keyId, version: 0 },
    { keyId: `${CTX.keyId} `, version: 1 },
    // The two fields cannot be shifted into one another.
    { keyId: `1:${CTX.keyId}`, version: 0 },
  ];
  for (const ctx of others) {
    await assertDecryptionFails(store.unseal(sealed, ctx), JSON.stringify(ctx));
  }
});

Deno.test("SoftwareKeyStore.unseal() fails when any byte of the blob is changed, cut or extended", async () => {
  const store = new SoftwareKeyStore(kek());
  const sealed = await store.seal(generateKeyMaterial("single"), CTX);
  for (let i = 0; i < sealed.length; i++) {
    const tampered = sealed.slice();
    tampered[i]! ^= 0x01;
    await assertDecryptionFails(store.unseal(tampered, CTX), `byte ${i}`);
  }
  await assertDecryptionFails(store.unseal(sealed.subarray(0, sealed.length - 1), CTX), "cut");
  await assertDecryptionFails(store.unseal(new Uint8Array([...sealed, 0]), CTX), "extended");
  await assertDecryptionFails(store.unseal(new Uint8Array(0), CTX), "empty");
});

Deno.test("SoftwareKeyStore does not keep a reference to the caller's KEK or material", async () => {
  const k = kek();
  const store = new SoftwareKeyStore(k);
  const copy = k.slice();
  k.fill(0);
  const material = generateKeyMaterial("single");
  const expected = material.slice();
  const sealed = await store.seal(material, CTX);
  assert.deepEqual(material, expected, "seal does not modify the material");
  material.fill(0);
  assert.deepEqual(await store.unseal(sealed, CTX), expected);
  assert.deepEqual(await new SoftwareKeyStore(copy).unseal(sealed, CTX), expected);
});

Deno.test("SoftwareKeyStore throws TypeError/RangeError on wrong arguments", async () => {
  const cases: [string, () => unknown, ErrorConstructor][] = [
    ["kek type", () => new SoftwareKeyStore("k" as unknown as Uint8Array), TypeError],
    ["kek 31", () => new SoftwareKeyStore(new Uint8Array(31)), RangeError],
    ["kek 64", () => new SoftwareKeyStore(new Uint8Array(64)), RangeError],
    ["kek zero", () => new SoftwareKeyStore(new Uint8Array(32)), RangeError],
    ["kek id", () => new SoftwareKeyStore(kek(), { kekId: "KEK!" }), RangeError],
  ];
  for (const [label, call, type] of cases) assert.throws(call, type, label);
  const store = new SoftwareKeyStore(kek());
  const m = new Uint8Array(32).fill(1);
  const bad: [string, () => Promise<unknown>, ErrorConstructor][] = [
    ["material", () => store.seal("x" as unknown as Uint8Array, CTX), TypeError],
    ["empty material", () => store.seal(new Uint8Array(0), CTX), RangeError],
    ["context", () => store.seal(m, null as unknown as typeof CTX), TypeError],
    ["keyId type", () => store.seal(m, { keyId: 1 as unknown as string, version: 1 }), TypeError],
    ["keyId empty", () => store.seal(m, { keyId: "", version: 1 }), RangeError],
    ["keyId long", () => store.seal(m, { keyId: "k".repeat(201), version: 1 }), RangeError],
    ["version float", () => store.seal(m, { keyId: "k", version: 1.5 }), RangeError],
    ["version negative", () => store.seal(m, { keyId: "k", version: -1 }), RangeError],
    [
      "version string",
      () => store.unseal(m, { keyId: "k", version: "1" as unknown as number }),
      RangeError,
    ],
    ["sealed type", () => store.unseal([1] as unknown as Uint8Array, CTX), TypeError],
  ];
  for (const [label, call, type] of bad) await assert.rejects(call, type, label);
});

// ---------------------------------------------------------------------------------------------
// KEK file
// ---------------------------------------------------------------------------------------------

async function kekFile(content: Uint8Array | string, mode = 0o600): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kek_test_" });
  const path = `${dir}/kek`;
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  if (POSIX) await Deno.chmod(path, mode);
  return path;
}

async function cleanup(path: string): Promise<void> {
  await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true });
}

function assertKekFileError(p: Promise<unknown>, pattern: RegExp, secret?: string): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KekFileError, String(e));
    assert.match(e.message, pattern);
    if (secret !== undefined) assert.ok(!e.message.includes(secret), "no key bytes in the message");
    return true;
  });
}

Deno.test("SoftwareKeyStore.fromFile() reads 32 raw bytes or 64 hex digits, and both are the same KEK", async () => {
  const k = kek();
  const raw = await kekFile(k);
  const hexPlain = await kekFile(hex.encode(k));
  const hexNl = await kekFile(`${hex.encode(k).toUpperCase()}\n`);
  const hexCrlf = await kekFile(`${hex.encode(k)}\r\n`);
  try {
    const material = generateKeyMaterial("bip32");
    const sealed = await new SoftwareKeyStore(k).seal(material, CTX);
    for (const path of [raw, hexPlain, hexNl, hexCrlf]) {
      const store = await SoftwareKeyStore.fromFile(path);
      assert.deepEqual(await store.unseal(sealed, CTX), material, path);
    }
  } finally {
    for (const p of [raw, hexPlain, hexNl, hexCrlf]) await cleanup(p);
  }
});

Deno.test("SoftwareKeyStore.fromFile() refuses anything but 32 raw bytes or 64 hex digits", async () => {
  const k = hex.encode(kek());
  const bad: [string, Uint8Array | string, RegExp][] = [
    ["empty", "", /32 raw bytes or 64 hex digits/],
    ["31 bytes", kek().subarray(0, 31), /32 raw bytes or 64 hex digits/],
    ["33 bytes", new Uint8Array([...kek(), 1]), /32 raw bytes or 64 hex digits/],
    ["63 hex", k.slice(0, 63), /32 raw bytes or 64 hex digits/],
    ["65 hex", `${k}a`, /32 raw bytes or 64 hex digits/],
    ["two newlines", `${k}\n\n`, /32 raw bytes or 64 hex digits/],
    ["leading space", ` ${k}`, /32 raw bytes or 64 hex digits/],
    ["non-hex", `${k.slice(0, 63)}g`, /32 raw bytes or 64 hex digits/],
    ["base64", btoa(String.fromCharCode(...kek())), /32 raw bytes or 64 hex digits/],
    ["128-bit hex", k.slice(0, 32), /32 hex digits \(128 bits\)/],
    ["too large", "a".repeat(4096), /32 raw bytes or 64 hex digits, got 4096 bytes/],
    ["all zero", new Uint8Array(32), /unusable key: .*all zeros/],
  ];
  for (const [label, content, pattern] of bad) {
    const path = await kekFile(content);
    try {
      await assertKekFileError(
        SoftwareKeyStore.fromFile(path),
        pattern,
        typeof content === "string" && content.length >= 16 ? content.slice(0, 16) : undefined,
      );
    } catch (e) {
      throw new Error(`${label}: ${String(e)}`);
    } finally {
      await cleanup(path);
    }
  }
});

Deno.test({
  name: "SoftwareKeyStore.fromFile() refuses a KEK file readable or writable by group or others",
  ignore: !POSIX,
  fn: async () => {
    for (const mode of [0o640, 0o604, 0o660, 0o644, 0o606, 0o666]) {
      const path = await kekFile(kek(), mode);
      try {
        await assertKekFileError(
          SoftwareKeyStore.fromFile(path),
          new RegExp(
            `accessible by group or others \\(mode ${mode.toString(8).padStart(4, "0")}\\)`,
          ),
        );
      } finally {
        await cleanup(path);
      }
    }
    for (const mode of [0o600, 0o400]) {
      const path = await kekFile(kek(), mode);
      try {
        assert.equal((await SoftwareKeyStore.fromFile(path)).kind, "software");
      } finally {
        await cleanup(path);
      }
    }
  },
});

Deno.test("SoftwareKeyStore.fromFile() refuses a missing path and a directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kek_test_" });
  try {
    await assertKekFileError(SoftwareKeyStore.fromFile(`${dir}/missing`), /does not exist/);
    if (POSIX) await Deno.chmod(dir, 0o700);
    await assertKekFileError(SoftwareKeyStore.fromFile(dir), /not a regular file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await assert.rejects(() => SoftwareKeyStore.fromFile(""), TypeError);
  await assert.rejects(() => SoftwareKeyStore.fromFile(1 as unknown as string), TypeError);
});
