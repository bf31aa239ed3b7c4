/**
 * signDigestSchnorr() on the BIP340 vectors, and signDigestEcdsa() (RFC 6979,
 * low-S) with its DER helper.
 */
import assert from "node:assert/strict";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { verifyEcdsa, verifySchnorr } from "../../../src/bitcoin/sighash.ts";
import {
  ecdsaCompactToDer,
  signDigestEcdsa,
  signDigestSchnorr,
} from "../../../src/hsm_server/signing/digest_signer.ts";
import {
  generateKeyMaterial,
  openKey,
  type SigningKey,
} from "../../../src/hsm_server/signing/key_material.ts";
import { HARDENED_OFFSET } from "../../../src/bitcoin/derivation_path.ts";

interface Vector {
  index: number;
  secretKey: string;
  publicKey: string;
  auxRand: string;
  message: string;
  signature: string;
  valid: boolean;
  comment: string;
}

const csv = await Deno.readTextFile(
  new URL("../../vectors/bip340/test-vectors.csv", import.meta.url),
);
const vectors: Vector[] = csv.trim().split(/\r?\n/).slice(1).map((line) => {
  const [index, secretKey, publicKey, auxRand, message, signature, result, ...comment] = line.split(
    ",",
  );
  return {
    index: Number(index),
    secretKey: secretKey!,
    publicKey: publicKey!,
    auxRand: auxRand!,
    message: message!,
    signature: signature!,
    valid: result === "TRUE",
    comment: comment.join(","),
  };
});
const bytes = (h: string) => hex.decode(h.toLowerCase());
const label = (v: Vector) => `BIP340 vector ${v.index}${v.comment ? ` (${v.comment})` : ""}`;
const signing = vectors.filter((v) => v.secretKey !== "");

Deno.test("BIP340 vectors: 8 signing vectors, 4 of them over 32-byte messages", () => {
  assert.equal(signing.length, 8);
  assert.equal(signing.filter((v) => v.message.length === 64).length, 4);
});

Deno.test("signDigestSchnorr() gives exactly the vector signature for every 32-byte BIP340 signing vector", () => {
  for (const v of signing.filter((x) => x.message.length === 64)) {
    const key = openKey("single", bytes(v.secretKey), "mainnet");
    assert.equal(hex.encode(key.publicKey.subarray(1)), v.publicKey.toLowerCase(), label(v));
    const sig = signDigestSchnorr(key, [], bytes(v.message), bytes(v.auxRand));
    assert.equal(hex.encode(sig), v.signature.toLowerCase(), label(v));
    key.dispose();
  }
});

Deno.test("signDigestSchnorr() refuses the BIP340 vectors with 0/1/17/100-byte messages: it signs digests only", () => {
  const others = signing.filter((x) => x.message.length !== 64);
  assert.deepEqual(others.map((v) => v.message.length / 2), [0, 1, 17, 100]);
  for (const v of others) {
    const key = openKey("single", bytes(v.secretKey), "mainnet");
    assert.throws(
      () => signDigestSchnorr(key, [], bytes(v.message), bytes(v.auxRand)),
      RangeError,
      label(v),
    );
    // The vector itself holds for the curve library underneath.
    assert.equal(
      hex.encode(schnorr.sign(bytes(v.message), bytes(v.secretKey), bytes(v.auxRand))),
      v.signature.toLowerCase(),
      label(v),
    );
  }
});

Deno.test("signDigestSchnorr() handles odd-Y keys (BIP340 negation): vector keys of both parities verify", () => {
  let odd = 0;
  for (const v of signing.filter((x) => x.message.length === 64)) {
    const key = openKey("single", bytes(v.secretKey), "mainnet");
    if (key.publicKey[0] === 0x03) odd++;
    const sig = signDigestSchnorr(key, [], bytes(v.message));
    assert.ok(verifySchnorr(key.publicKey.subarray(1), bytes(v.message), sig), label(v));
  }
  assert.ok(odd > 0, "at least one vector key has odd Y");
});

function bip32Key(): SigningKey {
  const material = generateKeyMaterial("bip32");
  const key = openKey("bip32", material, "mainnet");
  material.fill(0);
  return key;
}

Deno.test("signDigestSchnorr() with a derived key: fresh aux by default, valid for that x-only key", () => {
  const key = bip32Key();
  const path = [HARDENED_OFFSET + 9, 0];
  const digest = crypto.getRandomValues(new Uint8Array(32));
  const a = signDigestSchnorr(key, path, digest);
  const b = signDigestSchnorr(key, path, digest);
  assert.notDeepEqual(a, b, "aux_rand differs per signature");
  const xOnly = key.publicKeyAt(path).subarray(1);
  assert.ok(verifySchnorr(xOnly, digest, a));
  assert.ok(verifySchnorr(xOnly, digest, b));
  assert.ok(!verifySchnorr(key.publicKey.subarray(1), digest, a), "not the root's signature");
  const aux = new Uint8Array(32).fill(3);
  assert.deepEqual(
    signDigestSchnorr(key, path, digest, aux),
    signDigestSchnorr(key, path, digest, aux),
  );
  assert.deepEqual(aux, new Uint8Array(32).fill(3), "the caller's aux is left alone");
});

Deno.test("signDigestEcdsa() is deterministic (RFC 6979), low-S, compact, and verifies", () => {
  const key = bip32Key();
  const path = [HARDENED_OFFSET + 44, HARDENED_OFFSET, HARDENED_OFFSET, 0, 7];
  const pub = key.publicKeyAt(path);
  for (let i = 0; i < 8; i++) {
    const digest = crypto.getRandomValues(new Uint8Array(32));
    const sig = signDigestEcdsa(key, path, digest);
    assert.equal(sig.length, 64);
    assert.deepEqual(signDigestEcdsa(key, path, digest), sig, "deterministic");
    const parsed = secp256k1.Signature.fromBytes(sig, "compact");
    assert.equal(parsed.hasHighS(), false, "low-S");
    const der = ecdsaCompactToDer(sig);
    assert.deepEqual(verifyEcdsa(pub, digest, der), { valid: true, lowS: true });
  }
});

Deno.test("signDigestEcdsa() equals the plain RFC 6979 signature of the derived private key", () => {
  const key = bip32Key();
  const path = [1, 2, 3];
  const digest = new Uint8Array(32).fill(0xab);
  const priv = key.privateKeyAt(path);
  const expected = secp256k1.sign(digest, priv, { prehash: false });
  priv.fill(0);
  assert.deepEqual(signDigestEcdsa(key, path, digest), expected);
});

Deno.test("ecdsaCompactToDer() encodes strict DER (BIP66) that decodes back", () => {
  const key = bip32Key();
  const sig = signDigestEcdsa(key, [], new Uint8Array(32).fill(1));
  const der = ecdsaCompactToDer(sig);
  assert.equal(der[0], 0x30);
  assert.equal(der[1], der.length - 2);
  assert.deepEqual(secp256k1.Signature.fromBytes(der, "der").toBytes("compact"), sig);
  assert.throws(() => ecdsaCompactToDer(new Uint8Array(64)), Error, "r = s = 0 is no signature");
});

Deno.test("digest signers throw TypeError/RangeError on wrong argument types and sizes", () => {
  const key = bip32Key();
  const d = new Uint8Array(32);
  const cases: [string, () => unknown, ErrorConstructor][] = [
    ["schnorr key null", () => signDigestSchnorr(null as unknown as SigningKey, [], d), TypeError],
    [
      "schnorr digest string",
      () => signDigestSchnorr(key, [], "00" as unknown as Uint8Array),
      TypeError,
    ],
    ["schnorr digest 31", () => signDigestSchnorr(key, [], new Uint8Array(31)), RangeError],
    ["schnorr digest 33", () => signDigestSchnorr(key, [], new Uint8Array(33)), RangeError],
    ["schnorr aux 16", () => signDigestSchnorr(key, [], d, new Uint8Array(16)), RangeError],
    ["schnorr path", () => signDigestSchnorr(key, "m/0" as unknown as number[], d), TypeError],
    ["schnorr path index", () => signDigestSchnorr(key, [2 ** 32], d), RangeError],
    ["ecdsa key", () => signDigestEcdsa({} as SigningKey, [], d), TypeError],
    ["ecdsa digest", () => signDigestEcdsa(key, [], new Uint8Array(0)), RangeError],
    ["ecdsa path", () => signDigestEcdsa(key, [-1], d), RangeError],
    ["der type", () => ecdsaCompactToDer([1, 2] as unknown as Uint8Array), TypeError],
    ["der size", () => ecdsaCompactToDer(new Uint8Array(65)), RangeError],
  ];
  for (const [name, call, type] of cases) assert.throws(call, type, name);
  const single = openKey("single", generateKeyMaterial("single"), "mainnet");
  assert.throws(
    () => signDigestSchnorr(single, [0], d),
    RangeError,
    "single keys have no children",
  );
});
