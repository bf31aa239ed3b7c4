import assert from "node:assert/strict";
import { schnorr } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { verifySchnorr } from "../../src/bitcoin/sighash.ts";

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

const csv = await Deno.readTextFile(new URL("../vectors/bip340/test-vectors.csv", import.meta.url));
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

Deno.test("BIP340 vectors: 19 vectors, 9 TRUE and 10 FALSE", () => {
  assert.equal(vectors.length, 19);
  assert.equal(vectors.filter((v) => v.valid).length, 9);
  assert.equal(vectors.filter((v) => !v.valid).length, 10);
});

Deno.test("verifySchnorr() returns each BIP340 vector's verification result", () => {
  for (const v of vectors) {
    assert.equal(
      verifySchnorr(bytes(v.publicKey), bytes(v.message), bytes(v.signature)),
      v.valid,
      label(v),
    );
  }
});

Deno.test("verifySchnorr() rejects each TRUE BIP340 vector once a message bit is flipped", () => {
  for (const v of vectors.filter((x) => x.valid && x.message.length > 0)) {
    const msg = bytes(v.message);
    msg[0]! ^= 0x01;
    assert.equal(verifySchnorr(bytes(v.publicKey), msg, bytes(v.signature)), false, label(v));
  }
});

Deno.test("BIP340 signing vectors: noble derives the public key and signature (library check; the edge never signs)", () => {
  const signing = vectors.filter((v) => v.secretKey !== "");
  assert.equal(signing.length, 8);
  for (const v of signing) {
    const sk = bytes(v.secretKey);
    assert.equal(hex.encode(schnorr.getPublicKey(sk)), v.publicKey.toLowerCase(), label(v));
    assert.equal(
      hex.encode(schnorr.sign(bytes(v.message), sk, bytes(v.auxRand))),
      v.signature.toLowerCase(),
      label(v),
    );
  }
});

Deno.test("verifySchnorr() throws TypeError/RangeError for wrong argument types and sizes", () => {
  const pk = bytes(vectors[0]!.publicKey);
  const msg = bytes(vectors[0]!.message);
  const sig = bytes(vectors[0]!.signature);
  const table: [string, () => unknown, ErrorConstructor][] = [
    ["pubkey string", () => verifySchnorr("00" as unknown as Uint8Array, msg, sig), TypeError],
    ["pubkey 33 bytes", () => verifySchnorr(new Uint8Array(33), msg, sig), RangeError],
    ["message null", () => verifySchnorr(pk, null as unknown as Uint8Array, sig), TypeError],
    ["message array", () => verifySchnorr(pk, [1, 2] as unknown as Uint8Array, sig), TypeError],
    ["signature 65 bytes", () => verifySchnorr(pk, msg, new Uint8Array(65)), RangeError],
    ["signature number", () => verifySchnorr(pk, msg, 1 as unknown as Uint8Array), TypeError],
  ];
  for (const [name, call, type] of table) assert.throws(call, type, name);
});
