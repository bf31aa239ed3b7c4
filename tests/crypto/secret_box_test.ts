import assert from "node:assert/strict";
import {
  DecryptionError,
  ENVELOPE_VERSION,
  envelopeKeyId,
  Keyring,
  MAX_PLAINTEXT_BYTES,
  NONCE_BYTES,
  SecretBox,
  type SecretContext,
  TAG_BYTES,
} from "../../src/crypto/mod.ts";

const KEY_A = crypto.getRandomValues(new Uint8Array(32));
const KEY_B = crypto.getRandomValues(new Uint8Array(32));
const CTX: SecretContext = {
  table: "encrypted_secrets",
  purpose: "lnd.macaroon",
  tenant: "t1",
  rowId: "sec_1",
};
const PLAINTEXT = new TextEncoder().encode("0201036c6e6402f801 macaroon bytes");

async function box(...ids: ("ka" | "kb")[]): Promise<SecretBox> {
  const keys = { ka: KEY_A, kb: KEY_B };
  return new SecretBox(await Keyring.import(ids.map((id) => ({ id, key: keys[id] }))));
}

async function assertDecryptionError(
  promise: Promise<unknown>,
  reason: string,
  label: string,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DecryptionError, `${label}: ${String(err)}`);
    assert.equal(err.reason, reason, label);
    assert.match(err.message, /^Cannot decrypt secret: /, label);
    assert.ok(!err.message.includes("macaroon bytes"), label);
    return true;
  }, label);
}

Deno.test("SecretBox round-trips under the newest key", async () => {
  const b = await box("ka", "kb");
  const sealed = await b.seal(PLAINTEXT, CTX);
  assert.equal(sealed.keyId, "kb");
  assert.equal(envelopeKeyId(sealed.envelope), "kb");
  assert.equal(sealed.envelope[0], ENVELOPE_VERSION);
  assert.equal(sealed.envelope.length, 2 + 2 + NONCE_BYTES + PLAINTEXT.length + TAG_BYTES);
  assert.deepEqual(await b.open(sealed.envelope, CTX), PLAINTEXT);
  // Empty and maximum-size plaintexts work too.
  const empty = await b.seal(new Uint8Array(0), CTX);
  assert.deepEqual(await b.open(empty.envelope, CTX), new Uint8Array(0));
  const big = new Uint8Array(MAX_PLAINTEXT_BYTES).fill(9);
  assert.deepEqual(await b.open((await b.seal(big, CTX)).envelope, CTX), big);
});

Deno.test("SecretBox uses a fresh nonce for every encryption", async () => {
  const b = await box("ka");
  const one = await b.seal(PLAINTEXT, CTX);
  const two = await b.seal(PLAINTEXT, CTX);
  const nonce = (e: Uint8Array) => e.slice(4, 4 + NONCE_BYTES);
  assert.notDeepEqual(nonce(one.envelope), nonce(two.envelope));
  assert.notDeepEqual(one.envelope, two.envelope);
});

Deno.test("SecretBox.open() decrypts envelopes under older keys of the keyring", async () => {
  const old = await (await box("ka")).seal(PLAINTEXT, CTX);
  assert.equal(old.keyId, "ka");
  assert.deepEqual(await (await box("ka", "kb")).open(old.envelope, CTX), PLAINTEXT);
});

Deno.test("SecretBox.open() rejects every flipped byte (version, key id, nonce, ciphertext, tag)", async () => {
  const b = await box("ka", "kb");
  const { envelope } = await b.seal(PLAINTEXT, CTX);
  const headerLength = 4; // version, id length, "kb"
  // [label, byte index, xor mask, expected reason]
  const regions: [string, number, number, string][] = [
    ["version", 0, 0x01, "unsupported-version"],
    ["key id length (to 0)", 1, 0x02, "malformed"],
    ["key id length (to 34)", 1, 0x20, "malformed"],
    ["key id (k -> j, unknown key)", 2, 0x01, "unknown-key"],
    ["key id (bad character)", 2, 0x80, "malformed"],
    ["nonce", headerLength, 0x01, "authentication-failed"],
    ["nonce end", headerLength + NONCE_BYTES - 1, 0x01, "authentication-failed"],
    ["ciphertext", headerLength + NONCE_BYTES, 0x01, "authentication-failed"],
    ["tag", envelope.length - 1, 0x01, "authentication-failed"],
    ["tag start", envelope.length - TAG_BYTES, 0x01, "authentication-failed"],
  ];
  for (const [label, index, mask, reason] of regions) {
    const tampered = envelope.slice();
    tampered[index]! ^= mask;
    await assertDecryptionError(b.open(tampered, CTX), reason, label);
  }
  // Every single-byte flip anywhere fails.
  for (let i = 0; i < envelope.length; i++) {
    const tampered = envelope.slice();
    tampered[i]! ^= 0x80;
    await assert.rejects(b.open(tampered, CTX), DecryptionError, `byte ${i}`);
  }
});

Deno.test("SecretBox.open() rejects a key id swapped for another known key", async () => {
  // Re-label an envelope sealed under "kb" as "ka": same length, known key, wrong key.
  const b = await box("ka", "kb");
  const { envelope } = await b.seal(PLAINTEXT, CTX);
  const relabelled = envelope.slice();
  relabelled[3] = "a".charCodeAt(0);
  assert.equal(envelopeKeyId(relabelled), "ka");
  await assertDecryptionError(b.open(relabelled, CTX), "authentication-failed", "relabelled");
});

Deno.test("SecretBox.open() rejects truncated and unknown-key envelopes", async () => {
  const b = await box("ka", "kb");
  const { envelope } = await b.seal(PLAINTEXT, CTX);
  await assertDecryptionError(b.open(envelope.slice(0, 1), CTX), "malformed", "1 byte");
  await assertDecryptionError(
    b.open(envelope.slice(0, 4 + NONCE_BYTES + TAG_BYTES - 1), CTX),
    "malformed",
    "short",
  );
  await assertDecryptionError(
    b.open(envelope.slice(0, envelope.length - 1), CTX),
    "authentication-failed",
    "truncated tag",
  );
  await assertDecryptionError((await box("ka")).open(envelope, CTX), "unknown-key", "no kb");
});

Deno.test("SecretBox.open() fails when the associated data differs (other row, tenant, purpose)", async () => {
  const b = await box("ka");
  const { envelope } = await b.seal(PLAINTEXT, CTX);
  const others: [string, SecretContext][] = [
    ["row id", { ...CTX, rowId: "sec_2" }],
    ["tenant", { ...CTX, tenant: "t2" }],
    ["purpose", { ...CTX, purpose: "cln.rune" }],
    ["table", { ...CTX, table: "other_table" }],
    // Field boundaries are unambiguous: moving characters between fields changes the AAD.
    ["shifted", { ...CTX, tenant: "t1s", rowId: "ec_1" }],
  ];
  for (const [label, ctx] of others) {
    await assertDecryptionError(b.open(envelope, ctx), "authentication-failed", label);
  }
});

Deno.test("SecretBox and envelopeKeyId() reject wrong types and sizes", async () => {
  const b = await box("ka");
  const { envelope } = await b.seal(PLAINTEXT, CTX);
  const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError][] = [
    ["seal string", () => b.seal("secret" as never, CTX), TypeError],
    ["seal array", () => b.seal([1, 2] as never, CTX), TypeError],
    ["seal ArrayBuffer", () => b.seal(new ArrayBuffer(2) as never, CTX), TypeError],
    ["seal too big", () => b.seal(new Uint8Array(MAX_PLAINTEXT_BYTES + 1), CTX), RangeError],
    ["seal no context", () => b.seal(PLAINTEXT, undefined as never), TypeError],
    ["seal null context", () => b.seal(PLAINTEXT, null as never), TypeError],
    ["seal numeric tenant", () => b.seal(PLAINTEXT, { ...CTX, tenant: 1 as never }), TypeError],
    [
      "seal missing row id",
      () => b.seal(PLAINTEXT, { ...CTX, rowId: undefined as never }),
      TypeError,
    ],
    ["seal empty purpose", () => b.seal(PLAINTEXT, { ...CTX, purpose: "" }), RangeError],
    ["seal long tenant", () => b.seal(PLAINTEXT, { ...CTX, tenant: "t".repeat(257) }), RangeError],
    ["open string", () => b.open("abc" as never, CTX), TypeError],
    ["open number", () => b.open(42 as never, CTX), TypeError],
    ["open bad context", () => b.open(envelope, { ...CTX, rowId: "" }), RangeError],
    ["keyId of string", () => Promise.resolve().then(() => envelopeKeyId("x" as never)), TypeError],
  ];
  for (const [label, fn, type] of cases) await assert.rejects(fn, type, label);
});
