import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  API_KEY_MAX_LENGTH,
  constantTimeEqual,
  formatApiKey,
  generateApiKey,
  generateKeyId,
  generateSecret,
  hashApiKey,
  parseApiKey,
  type RandomSource,
} from "../../src/auth/api_key.ts";
import { redactText } from "../../src/config/redact.ts";

/** Fills every request with one byte value. */
function constantRandom(byte: number): RandomSource {
  return (bytes) => bytes.fill(byte);
}

Deno.test("generateApiKey() produces anya_live_<16 hex>_<43 base64url> keys", () => {
  const key = generateApiKey();
  assert.match(key.token, /^anya_live_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.equal(key.env, "live");
  assert.equal(key.token, `anya_live_${key.keyId}_${key.secret}`);
  assert.equal(key.token.length, API_KEY_MAX_LENGTH);
  assert.equal(generateApiKey("test").token.slice(0, 10), "anya_test_");
});

Deno.test("generateApiKey() draws fresh randomness every call", () => {
  const tokens = new Set(Array.from({ length: 50 }, () => generateApiKey().token));
  assert.equal(tokens.size, 50);
});

Deno.test("generateKeyId() and generateSecret() encode the random source's bytes", () => {
  assert.equal(generateKeyId(constantRandom(0xab)), "ab".repeat(8));
  assert.equal(generateSecret(constantRandom(0)), "A".repeat(43));
  assert.equal(generateSecret(constantRandom(0xff)), "_".repeat(42) + "8");
});

Deno.test("generated keys are matched by the log redactor", () => {
  const { token } = generateApiKey();
  assert.equal(redactText(`key=${token} end`), "key=[REDACTED] end");
});

Deno.test("parseApiKey() round-trips formatApiKey()", () => {
  for (const env of ["live", "test"] as const) {
    const key = generateApiKey(env);
    assert.deepEqual(parseApiKey(key.token), { env, keyId: key.keyId, secret: key.secret });
    assert.equal(formatApiKey({ env, keyId: key.keyId, secret: key.secret }), key.token);
  }
});

Deno.test("parseApiKey() returns null for malformed keys", () => {
  const good = generateApiKey().token;
  const secret = good.slice(-43);
  const cases: [string, string][] = [
    ["empty", ""],
    ["wrong prefix", good.replace("anya_", "anyb_")],
    ["wrong env", good.replace("_live_", "_prod_")],
    ["upper-case key id", `anya_live_ABCDEF0123456789_${secret}`],
    ["short key id", `anya_live_abc_${secret}`],
    ["short secret", good.slice(0, -1)],
    ["long secret", `${good}A`],
    // 43 chars carry 258 bits: the 2 spare bits must be zero, so "…AB" is a second spelling.
    ["non-canonical secret", `anya_live_${"0".repeat(16)}_${"A".repeat(42)}B`],
    ["whitespace", ` ${good}`],
    ["trailing newline", `${good}\n`],
    ["padding", `${good.slice(0, -1)}=`],
    ["very long", "a".repeat(10_000)],
  ];
  for (const [label, text] of cases) assert.equal(parseApiKey(text), null, label);
  assert.notEqual(parseApiKey(`anya_live_${"0".repeat(16)}_${"A".repeat(43)}`), null);
});

Deno.test("hashApiKey() is SHA-256 of the whole key text", () => {
  const key = generateApiKey();
  const digest = hashApiKey(key);
  assert.equal(digest.length, 32);
  assert.deepEqual(digest, sha256(new TextEncoder().encode(key.token)));
  // The hash binds the env and key id, not only the secret.
  assert.notDeepEqual(hashApiKey({ ...key, env: "test" }), digest);
  assert.notDeepEqual(hashApiKey({ ...key, keyId: "0".repeat(16) }), digest);
});

Deno.test("constantTimeEqual() compares bytes", () => {
  const a = new Uint8Array([1, 2, 3]);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2, 3])), true);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2, 4])), false);
  assert.equal(constantTimeEqual(a, new Uint8Array([1, 2])), false);
  assert.equal(constantTimeEqual(new Uint8Array(), new Uint8Array()), true);
});

Deno.test("api_key functions reject wrong types and sizes", () => {
  const key = generateApiKey();
  const bad = (v: unknown) => v as never;
  const cases: [string, () => unknown, ErrorConstructor][] = [
    ["parseApiKey(undefined)", () => parseApiKey(bad(undefined)), TypeError],
    ["parseApiKey(42)", () => parseApiKey(bad(42)), TypeError],
    ["parseApiKey(bytes)", () => parseApiKey(bad(new Uint8Array(70))), TypeError],
    ["formatApiKey(null)", () => formatApiKey(bad(null)), TypeError],
    ["formatApiKey(string)", () => formatApiKey(bad(key.token)), TypeError],
    ["formatApiKey(env 1)", () => formatApiKey({ ...key, env: bad(1) }), TypeError],
    ["formatApiKey(env prod)", () => formatApiKey({ ...key, env: bad("prod") }), RangeError],
    ["formatApiKey(keyId 1)", () => formatApiKey({ ...key, keyId: bad(1) }), TypeError],
    [
      "formatApiKey(keyId _)",
      () => formatApiKey({ ...key, keyId: "abc_def0123456789" }),
      RangeError,
    ],
    ["formatApiKey(keyId short)", () => formatApiKey({ ...key, keyId: "abc" }), RangeError],
    ["formatApiKey(secret null)", () => formatApiKey({ ...key, secret: bad(null) }), TypeError],
    ["formatApiKey(secret short)", () => formatApiKey({ ...key, secret: "abc" }), RangeError],
    [
      "formatApiKey(secret non-canonical)",
      () => formatApiKey({ ...key, secret: `${"A".repeat(42)}B` }),
      RangeError,
    ],
    ["hashApiKey(undefined)", () => hashApiKey(bad(undefined)), TypeError],
    ["hashApiKey(secret short)", () => hashApiKey({ ...key, secret: "x" }), RangeError],
    ["generateApiKey(prod)", () => generateApiKey(bad("prod")), RangeError],
    ["generateApiKey(1)", () => generateApiKey(bad(1)), TypeError],
    [
      "generateSecret(short random)",
      () => generateSecret(() => new Uint8Array(4)),
      TypeError,
    ],
    ["generateKeyId(array random)", () => generateKeyId(() => bad([1, 2])), TypeError],
    [
      "constantTimeEqual(string, bytes)",
      () => constantTimeEqual(bad("a"), new Uint8Array()),
      TypeError,
    ],
    [
      "constantTimeEqual(bytes, array)",
      () => constantTimeEqual(new Uint8Array(), bad([])),
      TypeError,
    ],
  ];
  for (const [label, call, type] of cases) {
    assert.throws(call, type, label);
  }
});
