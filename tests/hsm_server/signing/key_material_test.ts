/**
 * Key material: generation, opening, BIP32 derivation, identity (fingerprint,
 * xpub/tpub), disposal, and the argument checks.
 */
import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { hex } from "@scure/base";
import {
  BIP32_MATERIAL_BYTES,
  bip32MaterialFromSeed,
  generateKeyMaterial,
  keyFingerprint,
  openKey,
  SINGLE_MATERIAL_BYTES,
} from "../../../src/hsm_server/signing/key_material.ts";
import { formatDerivationPath, HARDENED_OFFSET } from "../../../src/bitcoin/derivation_path.ts";
import { BITCOIN_NETWORKS } from "../../../src/bitcoin/network.ts";

const H = HARDENED_OFFSET;
const MAINNET = { private: 0x0488ade4, public: 0x0488b21e };

Deno.test("generateKeyMaterial() returns fresh valid material of each kind", () => {
  const a = generateKeyMaterial("bip32");
  const b = generateKeyMaterial("bip32");
  assert.equal(a.length, BIP32_MATERIAL_BYTES);
  assert.notDeepEqual(a, b);
  assert.ok(secp256k1.utils.isValidSecretKey(a.subarray(32)), "master private key");
  const s = generateKeyMaterial("single");
  assert.equal(s.length, SINGLE_MATERIAL_BYTES);
  assert.ok(secp256k1.utils.isValidSecretKey(s));
  assert.notDeepEqual(s, generateKeyMaterial("single"));
});

Deno.test("bip32MaterialFromSeed() is BIP32 master key generation: HMAC-SHA512('Bitcoin seed', seed)", () => {
  const seed = hex.decode("000102030405060708090a0b0c0d0e0f");
  const material = bip32MaterialFromSeed(seed);
  const master = HDKey.fromMasterSeed(seed, MAINNET);
  assert.deepEqual(material, new Uint8Array([...master.chainCode!, ...master.privateKey!]));
  const key = openKey("bip32", material, "mainnet");
  assert.equal(key.xpub, master.publicExtendedKey);
  assert.equal(key.fingerprint, master.fingerprint);
  assert.throws(() => bip32MaterialFromSeed(new Uint8Array(15)), RangeError);
  assert.throws(() => bip32MaterialFromSeed(new Uint8Array(65)), RangeError);
  assert.throws(() => bip32MaterialFromSeed("00" as unknown as Uint8Array), TypeError);
});

Deno.test("openKey('bip32') derives what @scure/bip32 derives, at hardened and normal indexes", () => {
  const material = generateKeyMaterial("bip32");
  const key = openKey("bip32", material, "mainnet");
  const master = new HDKey({
    versions: MAINNET,
    chainCode: material.subarray(0, 32),
    privateKey: material.subarray(32),
  });
  const paths = [[], [0], [H], [H + 84, H, H, 0, 5], [H + 86, H, H, 1, 0], [H + 84, H, H, 0, 6], [
    2 ** 32 - 1,
  ]];
  for (const p of paths) {
    const text = formatDerivationPath(p);
    const child = master.derive(text);
    assert.deepEqual(key.publicKeyAt(p), child.publicKey, text);
    assert.deepEqual(key.privateKeyAt(p), child.privateKey, text);
  }
  // Repeated and interleaved derivations (derived nodes are kept) give the same keys, and a
  // caller wiping the private key it was handed (as the signer does) wipes only its copy.
  assert.deepEqual(
    key.publicKeyAt([H + 84, H, H, 0, 5]),
    master.derive("m/84'/0'/0'/0/5").publicKey,
  );
  key.privateKeyAt([H + 84, H, H, 0, 5]).fill(0);
  assert.deepEqual(
    key.privateKeyAt([H + 84, H, H, 0, 5]),
    master.derive("m/84'/0'/0'/0/5").privateKey,
  );
  assert.deepEqual(key.publicKey, master.publicKey);
  assert.equal(key.fingerprint, master.fingerprint);
  assert.equal(key.kind, "bip32");
});

Deno.test("openKey('bip32') exports xpub on mainnet and tpub on testnet4, signet and regtest", () => {
  const material = generateKeyMaterial("bip32");
  for (const network of BITCOIN_NETWORKS) {
    const key = openKey("bip32", material, network);
    const xpub = key.xpub!;
    assert.ok(xpub.startsWith(network === "mainnet" ? "xpub" : "tpub"), `${network}: ${xpub}`);
    // The xpub decodes to the same public key and chain code, and no private key.
    const versions = network === "mainnet" ? MAINNET : { private: 0x04358394, public: 0x043587cf };
    const parsed = HDKey.fromExtendedKey(xpub, versions);
    assert.equal(parsed.privateKey, null, network);
    assert.deepEqual(parsed.publicKey, key.publicKey, network);
    assert.deepEqual(parsed.chainCode, material.subarray(0, 32), network);
    assert.equal(parsed.depth, 0);
    assert.equal(key.network, network);
  }
});

Deno.test("openKey('single'): fingerprint is HASH160(pubkey)[0..4] as Core records it; no xpub, no children", () => {
  const material = generateKeyMaterial("single");
  const key = openKey("single", material, "regtest");
  const pub = secp256k1.getPublicKey(material, true);
  assert.deepEqual(key.publicKey, pub);
  assert.deepEqual(key.publicKeyAt([]), pub);
  assert.deepEqual(key.privateKeyAt([]), material);
  const id = ripemd160(sha256(pub));
  assert.equal(key.fingerprintHex, hex.encode(id.subarray(0, 4)));
  assert.equal(key.fingerprint, parseInt(hex.encode(id.subarray(0, 4)), 16));
  assert.equal(keyFingerprint(pub), key.fingerprint);
  assert.equal(key.xpub, null);
  assert.equal(key.kind, "single");
  assert.throws(() => key.privateKeyAt([0]), RangeError);
  assert.throws(() => key.publicKeyAt([H]), RangeError);
});

Deno.test("openKey() copies the material: wiping the caller's buffer does not change the key", () => {
  for (const kind of ["bip32", "single"] as const) {
    const material = generateKeyMaterial(kind);
    const expected = kind === "bip32" ? material.slice(32) : material.slice();
    const key = openKey(kind, material, "mainnet");
    material.fill(0);
    assert.deepEqual(key.privateKeyAt([]), expected, kind);
    // Returned keys are copies too.
    key.privateKeyAt([]).fill(0);
    key.publicKey.fill(0);
    assert.deepEqual(key.privateKeyAt([]), expected, kind);
    assert.equal(key.publicKey.length, 33);
    assert.notEqual(key.publicKey[0], 0);
  }
});

Deno.test("SigningKey.dispose() makes every private operation throw; it is idempotent", () => {
  for (const kind of ["bip32", "single"] as const) {
    const key = openKey(kind, generateKeyMaterial(kind), "mainnet");
    key.publicKeyAt(kind === "bip32" ? [H, 1, 2] : []);
    assert.equal(key.disposed, false);
    key.dispose();
    key.dispose();
    assert.equal(key.disposed, true);
    assert.throws(() => key.privateKeyAt([]), /was disposed/, kind);
    assert.throws(() => key.publicKeyAt([]), /was disposed/, kind);
    // Public identity stays readable (the key service logs it).
    assert.equal(key.fingerprintHex.length, 8);
  }
});

Deno.test("openKey() refuses material that is not a valid secp256k1 key, without echoing it", () => {
  const n = hex.decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
  for (const bad of [new Uint8Array(32), n]) {
    assert.throws(() => openKey("single", bad, "mainnet"), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.doesNotMatch(e.message, /[0-9a-f]{16}/);
      return true;
    });
    assert.throws(
      () => openKey("bip32", new Uint8Array([...new Uint8Array(32), ...bad]), "mainnet"),
      RangeError,
    );
  }
});

Deno.test("openKey()/generateKeyMaterial() throw TypeError/RangeError on wrong arguments", () => {
  const cases: [string, () => unknown, ErrorConstructor][] = [
    ["kind", () => generateKeyMaterial("xprv" as "bip32"), TypeError],
    ["kind undefined", () => generateKeyMaterial(undefined as unknown as "bip32"), TypeError],
    ["open kind", () => openKey("hd" as "bip32", new Uint8Array(64), "mainnet"), TypeError],
    [
      "material type",
      () => openKey("single", "00".repeat(32) as unknown as Uint8Array, "mainnet"),
      TypeError,
    ],
    [
      "material bip32 32",
      () => openKey("bip32", generateKeyMaterial("single"), "mainnet"),
      RangeError,
    ],
    [
      "material single 64",
      () => openKey("single", generateKeyMaterial("bip32"), "mainnet"),
      RangeError,
    ],
    [
      "network",
      () => openKey("single", generateKeyMaterial("single"), "testnet" as "mainnet"),
      TypeError,
    ],
  ];
  for (const [label, call, type] of cases) assert.throws(call, type, label);
});

Deno.test("SigningKey.publicKeyAt()/privateKeyAt() refuse malformed paths; keyFingerprint() wants 33 bytes", () => {
  const key = openKey("bip32", generateKeyMaterial("bip32"), "mainnet");
  const cases: [unknown, ErrorConstructor][] = [
    ["m/0", TypeError],
    [null, TypeError],
    [[0.5], TypeError],
    [[-1], RangeError],
    [[2 ** 32], RangeError],
    [new Array(256).fill(0), RangeError],
  ];
  for (const [path, type] of cases) {
    assert.throws(() => key.publicKeyAt(path as number[]), type, String(path));
    assert.throws(() => key.privateKeyAt(path as number[]), type, String(path));
  }
  assert.throws(() => keyFingerprint(new Uint8Array(32)), TypeError);
});
