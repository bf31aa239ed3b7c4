// Output descriptors (BIP380-386) as the edge funds from them: public keys only, and the script
// types pkh, wpkh, sh(wpkh), tr (key path), wsh/sh(wsh) multi/sortedmulti and addr.
// Every BIP vector is used: valid ones in scope must expand to the listed scripts; the others
// must be refused with 422 for a stated reason (VALID_EXPECT, INVALID_EXPECT). Vectors holding
// private keys are refused, then retried in their BIP380-normalized public form.
import assert from "node:assert/strict";
import { createBase58check, hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { HDKey } from "@scure/bip32";
import { p2wpkh, RawTx, TEST_NETWORK, Transaction } from "@scure/btc-signer";
import {
  descriptorChecksum,
  type DescriptorScript,
  expandDescriptor,
  MAX_DESCRIPTOR_RANGE,
  parseDescriptor,
} from "../../src/bitcoin/descriptor.ts";
import { networkParams } from "../../src/bitcoin/network.ts";
import { prepareUtxo } from "../../src/bitcoin/psbt_utxo.ts";
import { inputWeight } from "../../src/bitcoin/tx_size.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

// ---------------------------------------------------------------------------------------------
// Vectors (tests/vectors/descriptors/README.md)

interface ScriptVectors {
  bip: number;
  valid: { descriptor: string; scripts: string[] }[];
  invalid: { description: string; descriptor: string }[];
}
interface Bip380Vectors {
  checksum: { description: string; descriptor: string; valid: boolean }[];
  keyExpressions: {
    valid: { description: string; key: string }[];
    invalid: { description: string; key: string }[];
  };
}

async function load<T>(name: string): Promise<T> {
  const url = new URL(`../vectors/descriptors/${name}`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url)) as T;
}

const BIP380 = await load<Bip380Vectors>("bip-0380.json");
const SCRIPT_BIPS = await Promise.all(
  [381, 382, 383, 385, 386].map((n) => load<ScriptVectors>(`bip-0${n}.json`)),
);

// ---------------------------------------------------------------------------------------------
// Helpers

const H = 0x80000000;
const base58check = createBase58check(sha256);
const PRIVATE = /the edge never accepts private keys/;
const TESTNET_VERSIONS = { private: 0x04358394, public: 0x043587cf };

function rejects(fn: () => unknown, reason: RegExp, label: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, `${label}: expected a ValidationError, got ${e}`);
    assert.equal(e.status, 422, label);
    assert.match(e.message, /^Invalid descriptor: /, label);
    assert.match(e.message, reason, label);
    assert.equal(e.issues.length, 1, label);
    return true;
  });
}

function scriptsOf(text: string, count: number, network: "mainnet" | "testnet4" = "mainnet") {
  const d = parseDescriptor(text, network);
  return expandDescriptor(d, { start: 0, end: count - 1 });
}

const WIF_RE = /\b[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}\b/g;
const XPRV_RE =
  /(\[[0-9a-fA-F]{8}(?:\/\d+['h]?)*\])?(xprv[1-9A-HJ-NP-Za-km-z]{100,112})((?:\/\d+['h]?)*)(\/\*['h]?)?/g;

/** WIF -> hex public key (compressed or not, as the WIF says). */
function wifToPublicHex(wif: string): string {
  const data = base58check.decode(wif);
  return hex.encode(secp256k1.getPublicKey(data.slice(1, 33), data.length === 34));
}

/** Every private key replaced by its public key, all else left as written. */
function publicTwin(text: string): string {
  return text.replace(WIF_RE, wifToPublicHex).replace(
    /xprv[1-9A-HJ-NP-Za-km-z]{100,112}/g,
    (x) => HDKey.fromExtendedKey(x).publicExtendedKey,
  );
}

/**
 * BIP380 §"Normalization of Key Expressions with Hardened Derivation": the public
 * descriptor an exporter would write (xpub at the last hardened step, those steps moved into
 * the origin). Null when a hardened wildcard makes a public form impossible.
 */
function normalizePublic(text: string): string | null {
  let impossible = false;
  const out = text.replace(XPRV_RE, (_m, origin: string | undefined, xprv, stepsText, star) => {
    if (star !== undefined && star !== "/*") impossible = true;
    const steps = (stepsText as string).split("/").slice(1);
    let last = -1;
    steps.forEach((s, i) => {
      if (/['h]$/.test(s)) last = i;
    });
    const root = HDKey.fromExtendedKey(xprv);
    let key = root;
    for (const s of steps.slice(0, last + 1)) key = key.deriveChild(Number.parseInt(s) + H);
    const moved = steps.slice(0, last + 1).map((s) => `/${s.replace("'", "h")}`).join("");
    const prefix = origin !== undefined
      ? `${origin.slice(0, -1)}${moved}]`
      : last >= 0
      ? `[${root.fingerprint.toString(16).padStart(8, "0")}${moved}]`
      : "";
    const rest = steps.slice(last + 1).map((s) => `/${s}`).join("");
    return `${prefix}${key.publicExtendedKey}${rest}${star ?? ""}`;
  });
  return impossible ? null : publicTwin(out);
}

// ---------------------------------------------------------------------------------------------
// BIP380 checksum

Deno.test("BIP380 vectors: counts match the source (8 checksum, 21 valid and 15 invalid keys)", () => {
  assert.equal(BIP380.checksum.length, 8);
  assert.equal(BIP380.keyExpressions.valid.length, 21);
  assert.equal(BIP380.keyExpressions.invalid.length, 15);
});

Deno.test("descriptorChecksum() computes BIP380's example checksum", () => {
  assert.equal(descriptorChecksum("raw(deadbeef)"), "89f8spxm");
  // A checksum already present is ignored.
  assert.equal(descriptorChecksum("raw(deadbeef)#89f8spxm"), "89f8spxm");
});

Deno.test("parseDescriptor() passes and fails the BIP380 checksum vectors as stated", () => {
  for (const [i, v] of BIP380.checksum.entries()) {
    const label = `BIP380 checksum ${i}: ${v.description}`;
    // raw() is out of scope, so a descriptor whose checksum passes is then refused for raw().
    rejects(
      () => parseDescriptor(v.descriptor, "mainnet"),
      v.valid ? /raw\(\) is not supported/ : /checksum|character 5 is not allowed/,
      label,
    );
  }
});

Deno.test("parseDescriptor() verifies a checksum on an in-scope descriptor and reports it", () => {
  const body = "wpkh(03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd)";
  const sum = descriptorChecksum(body);
  const d = parseDescriptor(`${body}#${sum}`, "mainnet");
  assert.equal(d.body, body);
  assert.equal(d.checksum, sum);
  assert.equal(parseDescriptor(body, "mainnet").checksum, sum);
  const flipped = sum[0] === "q" ? `p${sum.slice(1)}` : `q${sum.slice(1)}`;
  rejects(() => parseDescriptor(`${body}#${flipped}`, "mainnet"), /checksum mismatch/, "flipped");
  rejects(
    () => parseDescriptor(body.replace("03a3", "02a3") + `#${sum}`, "mainnet"),
    /checksum mismatch/,
    "altered body",
  );
});

// ---------------------------------------------------------------------------------------------
// BIP380 key expressions, each used as pkh(KEY) (BIP381 allows every key type there)

/** Outcome per valid BIP380 key vector: accepted, or why the edge refuses it. */
const KEY_VALID_EXPECT: (true | RegExp)[] = [
  true, // compressed
  /uncompressed public keys are not supported/,
  true, // origin h
  true, // origin '
  true, // origin mixed
  PRIVATE, // WIF uncompressed
  PRIVATE, // WIF compressed
  true, // xpub
  true, // xpub with origin
  true, // xpub/3/4/5
  true, // xpub/3/4/5/*
  /hardened derivation after an xpub\/tpub is impossible/,
  /hardened derivation after an xpub\/tpub is impossible/,
  /hardened derivation after an xpub\/tpub is impossible/,
  PRIVATE,
  PRIVATE,
  PRIVATE,
  PRIVATE,
  PRIVATE,
  PRIVATE,
  PRIVATE,
];

Deno.test("parseDescriptor() accepts the public BIP380 key expressions and refuses the rest with a reason", () => {
  for (const [i, v] of BIP380.keyExpressions.valid.entries()) {
    const label = `BIP380 valid key ${i}: ${v.description}`;
    const expect = KEY_VALID_EXPECT[i]!;
    if (expect === true) parseDescriptor(`pkh(${v.key})`, "mainnet");
    else rejects(() => parseDescriptor(`pkh(${v.key})`, "mainnet"), expect, label);
  }
  assert.equal(KEY_VALID_EXPECT.filter((e) => e === true).length, 8);
});

Deno.test("expandDescriptor() turns BIP380 key origins into PSBT fingerprints and paths", () => {
  const keys = BIP380.keyExpressions.valid;
  const der = (i: number, index = 0) =>
    expandDescriptor(parseDescriptor(`pkh(${keys[i]!.key})`, "mainnet"), {
      start: index,
      end: index,
    })[0]!.psbtInput.bip32Derivation![0]![1];
  assert.deepEqual(der(2), { fingerprint: 0xdeadbeef, path: [H, H, H] });
  assert.deepEqual(der(3), der(2));
  assert.deepEqual(der(4), der(2));
  assert.deepEqual(der(9), { fingerprint: 0xdeadbeef, path: [H, 1 + H, 2 + H, 3, 4, 5] });
  assert.deepEqual(der(10, 7), { fingerprint: 0xdeadbeef, path: [H, 1 + H, 2 + H, 3, 4, 5, 7] });
  // No origin: the xpub is its own root (Bitcoin Core's convention).
  const xpub = HDKey.fromExtendedKey(keys[7]!.key);
  assert.deepEqual(der(7), { fingerprint: xpub.fingerprint, path: [] });
  // A hex key without origin: fingerprint of the key itself, empty path.
  const h160 = ripemd160(sha256(hex.decode(keys[0]!.key)));
  assert.deepEqual(der(0), { fingerprint: new DataView(h160.buffer).getUint32(0), path: [] });
});

/** Reason per invalid BIP380 key vector, checked on its public twin when it holds a private key. */
const KEY_INVALID_EXPECT: RegExp[] = [
  /"\*" is not allowed in a key origin/,
  /empty derivation step/,
  /8-hex-digit fingerprint/,
  /8-hex-digit fingerprint/,
  /invalid derivation step/,
  /not "H"/,
  /invalid derivation step/,
  /derivation steps are only allowed after an xpub\/tpub/,
  /derivation steps are only allowed after an xpub\/tpub/,
  /derivation index 2147483648 is above 2147483647/,
  /invalid derivation step/,
  /misplaced "\[" or "\]"/,
  // A lone "]" already unbalances the brackets of pkh(...).
  /unbalanced brackets in "pkh\(\)"/,
  /8-hex-digit fingerprint/,
  /a key is missing/,
];

Deno.test("parseDescriptor() refuses every invalid BIP380 key expression for the stated reason", () => {
  for (const [i, v] of BIP380.keyExpressions.invalid.entries()) {
    const label = `BIP380 invalid key ${i}: ${v.description}`;
    const twin = publicTwin(v.key);
    if (twin !== v.key) rejects(() => parseDescriptor(`pkh(${v.key})`, "mainnet"), PRIVATE, label);
    rejects(() => parseDescriptor(`pkh(${twin})`, "mainnet"), KEY_INVALID_EXPECT[i]!, label);
  }
});

// ---------------------------------------------------------------------------------------------
// BIP381-386 valid descriptors

/**
 * What the edge does with each valid vector:
 * - "expand": accepted as written, expands to the listed scripts;
 * - { private, public }: refused for its private key, then its BIP380-normalized public form
 *   either expands to the listed scripts ("expand"), is refused (RegExp: out of scope), or
 *   cannot be written at all (null: hardened wildcard);
 * - RegExp: refused as written (out of scope), no private key involved.
 */
type Expect = "expand" | RegExp | { public: "expand" | RegExp | null };
const PK = /pk\(\) is not supported/;
const TREE = /tr\(\) with a script tree is not supported for funding/;
const UNCOMPRESSED = /uncompressed public keys are not supported/;
const RAW = /raw\(\) is not supported/;
const OVER_16 = /at most 16 keys/;

const VALID_EXPECT: Record<number, Expect[]> = {
  381: [
    { public: PK },
    PK,
    { public: "expand" },
    "expand",
    "expand",
    { public: PK },
    PK,
    { public: UNCOMPRESSED },
    UNCOMPRESSED,
    { public: /sh\(pk\(\)\) is not supported/ },
    /sh\(pk\(\)\) is not supported/,
    { public: /sh\(pkh\(\)\) is not supported/ },
    /sh\(pkh\(\)\) is not supported/,
    { public: "expand" },
    "expand",
    { public: PK },
    PK,
  ],
  382: [
    { public: "expand" },
    "expand",
    { public: "expand" },
    "expand",
    { public: null },
    { public: null },
    { public: /wsh\(pkh\(\)\) is not supported/ },
    /wsh\(pkh\(\)\) is not supported/,
    { public: /wsh\(pk\(\)\) is not supported/ },
    /wsh\(pk\(\)\) is not supported/,
    { public: /wsh\(pkh\(\)\) is not supported/ },
    /wsh\(pkh\(\)\) is not supported/,
  ],
  383: [
    { public: /bare multi\(\) is not supported/ },
    /bare multi\(\) is not supported/,
    /bare sortedmulti\(\) is not supported/,
    { public: /sh\(multi\(\)\) is not supported/ },
    /bare sortedmulti\(\) is not supported/, // its scripts are checked as a witnessScript below
    { public: null },
    "expand",
    { public: OVER_16 },
    { public: OVER_16 },
  ],
  385: [RAW, RAW, RAW, "expand"],
  386: [
    "expand",
    { public: "expand" },
    { public: TREE },
    TREE,
    { public: TREE },
  ],
};

function assertExpands(text: string, scripts: string[], label: string): DescriptorScript[] {
  const out = scriptsOf(text, scripts.length);
  assert.deepEqual(out.map((s) => s.scriptPubKeyHex), scripts, label);
  for (const s of out) {
    assert.equal(typeof s.address, "string", label);
    assert.equal(s.utxo.scriptPubKeyHex, s.scriptPubKeyHex, label);
  }
  return out;
}

for (const vectors of SCRIPT_BIPS) {
  const { bip } = vectors;
  Deno.test(`BIP${bip} valid vectors: in-scope ones expand to the listed scripts, others are refused with a reason`, () => {
    const expects = VALID_EXPECT[bip]!;
    assert.equal(vectors.valid.length, expects.length, `BIP${bip}: vector count`);
    for (const [i, v] of vectors.valid.entries()) {
      const label = `BIP${bip} valid ${i}: ${v.descriptor.slice(0, 60)}`;
      const expect = expects[i]!;
      if (expect === "expand") {
        const out = assertExpands(v.descriptor, v.scripts, label);
        assert.equal(out[0]!.index, v.scripts.length > 1 ? 0 : null, label);
      } else if (expect instanceof RegExp) {
        rejects(() => parseDescriptor(v.descriptor, "mainnet"), expect, label);
      } else {
        rejects(() => parseDescriptor(v.descriptor, "mainnet"), PRIVATE, label);
        const pub = normalizePublic(v.descriptor);
        if (expect.public === null) assert.equal(pub, null, `${label}: no public form`);
        else if (expect.public === "expand") assertExpands(pub!, v.scripts, `${label} (public)`);
        else rejects(() => parseDescriptor(pub!, "mainnet"), expect.public, `${label} (public)`);
      }
    }
  });
}

Deno.test("BIP381-386 valid vectors: 8 expand as written, 5 through their public form, 34 out of scope", () => {
  const all = Object.values(VALID_EXPECT).flat();
  assert.equal(all.length, 47);
  assert.equal(all.filter((e) => e === "expand").length, 8);
  const viaPublic = all.filter((e) => typeof e === "object" && !(e instanceof RegExp));
  assert.equal(viaPublic.filter((e) => (e as { public: unknown }).public === "expand").length, 5);
});

Deno.test("BIP381 pkh(xprv/2147483647'/0) normalizes to the vector's own public form", () => {
  const [, , , , , , , , , , , , , priv, pub] = SCRIPT_BIPS[0]!.valid;
  assert.equal(normalizePublic(priv!.descriptor), pub!.descriptor);
});

Deno.test("BIP383 sortedmulti(2,xpub/*,xpub/0/0/*) scripts equal wsh(sortedmulti(...)) witness scripts", () => {
  const v = SCRIPT_BIPS[2]!.valid[4]!;
  const out = scriptsOf(`wsh(${v.descriptor})`, 3);
  assert.deepEqual(out.map((s) => hex.encode(s.psbtInput.witnessScript!)), v.scripts);
  assert.deepEqual(out.map((s) => s.index), [0, 1, 2]);
});

// ---------------------------------------------------------------------------------------------
// BIP381-386 invalid descriptors

const INVALID_EXPECT: Record<number, RegExp[]> = {
  381: [
    PK,
    /pkh\(\) takes a key, not a script/,
    /sh\(\) takes a script expression/,
    /sh\(\) cannot be used inside sh\(\)/,
  ],
  382: [
    PRIVATE,
    PRIVATE,
    UNCOMPRESSED,
    UNCOMPRESSED,
    PRIVATE,
    /wsh\(pk\(\)\) is not supported/,
    /wpkh\(\) cannot be used inside wsh\(\)/,
    /wsh\(\) cannot be used inside wsh\(\)/,
    /wsh\(\) cannot be used inside wsh\(\)/,
    /wpkh\(\) takes a key, not a script/,
    /wsh\(\) takes a script expression/,
  ],
  383: [
    /sh\(multi\(\)\) is not supported/,
    /bare multi\(\) is not supported/,
    /bare multi\(\) is not supported/,
    PRIVATE,
  ],
  385: [
    RAW,
    /addr\(\): Not a valid Bitcoin address/,
    /raw\(\) cannot be used inside sh\(\)/,
    /raw\(\) cannot be used inside wsh\(\)/,
    /addr\(\) cannot be used inside sh\(\)/,
    /addr\(\) cannot be used inside wsh\(\)/,
  ],
  386: [
    PRIVATE,
    UNCOMPRESSED,
    /tr\(\) cannot be used inside wsh\(\)/,
    /tr\(\) cannot be used inside sh\(\)/,
    PRIVATE,
  ],
};

for (const vectors of SCRIPT_BIPS) {
  const { bip } = vectors;
  Deno.test(`BIP${bip} invalid vectors are refused with 422`, () => {
    const expects = INVALID_EXPECT[bip]!;
    assert.equal(vectors.invalid.length, expects.length, `BIP${bip}: vector count`);
    for (const [i, v] of vectors.invalid.entries()) {
      const label = `BIP${bip} invalid ${i}: ${v.description}`;
      rejects(() => parseDescriptor(v.descriptor, "mainnet"), expects[i]!, label);
    }
  });
}

Deno.test("BIP383 threshold and BIP382/386 key errors are reported for their own reason inside wsh()", () => {
  const [, bad, zero, tooHigh] = SCRIPT_BIPS[2]!.invalid;
  const compressedOnly = (t: string) =>
    publicTwin(t).replace(
      /,04[0-9a-f]{128}/,
      ",02df12b7035bdac8e3bab862a3a83d06ea6b17b6753d52edecba9be46f5d09e076",
    );
  rejects(
    () => parseDescriptor(`wsh(${compressedOnly(bad!.descriptor)})`, "mainnet"),
    /threshold must be a number/,
    "multi(a,...)",
  );
  rejects(
    () => parseDescriptor(`wsh(${compressedOnly(zero!.descriptor)})`, "mainnet"),
    /threshold must be between 1/,
    "multi(0,...)",
  );
  rejects(
    () => parseDescriptor(`wsh(${compressedOnly(tooHigh!.descriptor)})`, "mainnet"),
    /threshold must be between 1/,
    "multi(3,..2 keys)",
  );
  // BIP382: uncompressed keys under wsh(), here in the in-scope shape.
  rejects(
    () =>
      parseDescriptor(
        "wsh(multi(1,04a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd5b8dec5235a0fa8722476c7709c02559e3aa73aa03918ba2d492eea75abea235))",
        "mainnet",
      ),
    UNCOMPRESSED,
    "uncompressed in wsh(multi)",
  );
});

// ---------------------------------------------------------------------------------------------
// Our own rules

const XPUB = BIP380.keyExpressions.valid[7]!.key;
const PUB = "03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd";
const PUB2 = "02df12b7035bdac8e3bab862a3a83d06ea6b17b6753d52edecba9be46f5d09e076";

function testnetRoot(fill: number): HDKey {
  return HDKey.fromMasterSeed(new Uint8Array(32).fill(fill), TESTNET_VERSIONS);
}
function fpHex(k: HDKey): string {
  return k.fingerprint.toString(16).padStart(8, "0");
}
/** `[fp/path]tpub` for `root` at `path` ("84h/1h/0h"). */
function account(root: HDKey, path: string): string {
  return `[${fpHex(root)}/${path}]${
    root.derive(`m/${path.replaceAll("h", "'")}`).publicExtendedKey
  }`;
}

Deno.test("parseDescriptor() checks extended keys and addresses against the network", () => {
  const tpub = testnetRoot(1).derive("m/84'/1'/0'").publicExtendedKey;
  rejects(
    () => parseDescriptor(`wpkh(${XPUB}/0/*)`, "testnet4"),
    /an xpub is a mainnet key; use a tpub on testnet4/,
    "xpub on testnet4",
  );
  rejects(
    () => parseDescriptor(`wpkh(${XPUB}/0/*)`, "regtest"),
    /use a tpub on regtest/,
    "xpub on regtest",
  );
  rejects(
    () => parseDescriptor(`wpkh(${tpub}/0/*)`, "mainnet"),
    /a tpub is a test-network key; use an xpub on mainnet/,
    "tpub on mainnet",
  );
  for (const n of ["testnet4", "signet", "regtest"] as const) {
    parseDescriptor(`wpkh(${tpub}/0/*)`, n);
  }
  rejects(
    () => parseDescriptor("addr(3PUNyaW7M55oKWJ3kDukwk9bsKvryra15j)", "regtest"),
    /another network/,
    "mainnet address on regtest",
  );
  const zpubLike = base58check.encode(
    Uint8Array.from([0x04, 0xb2, 0x47, 0x46, ...base58check.decode(XPUB).slice(4)]),
  );
  rejects(
    () => parseDescriptor(`wpkh(${zpubLike}/0/*)`, "mainnet"),
    /only xpub\/tpub extended keys/,
    "zpub",
  );
});

Deno.test("parseDescriptor() refuses private keys anywhere, without echoing them", () => {
  const root = testnetRoot(2);
  const tprv = root.privateExtendedKey;
  const wif = base58check.encode(Uint8Array.from([0xef, ...root.privateKey!, 1]));
  const cases = [
    `wpkh(${tprv}/0/*)`,
    `wpkh([deadbeef/0h]${tprv}/0/*)`,
    `wsh(multi(1,${PUB},${wif}))`,
    `tr(${PUB.slice(2)},pk(${wif}))`,
    `pk(${wif})`,
    // A mistyped tprv (bad checksum) still reads as a private key.
    `wpkh(${tprv.slice(0, -1)}${tprv.endsWith("1") ? "2" : "1"})`,
  ];
  for (const text of cases) {
    assert.throws(() => parseDescriptor(text, "testnet4"), (e: unknown) => {
      assert.ok(e instanceof ValidationError && e.status === 422);
      assert.match(e.message, PRIVATE);
      assert.ok(!e.message.includes(tprv.slice(4, 30)) && !e.message.includes(wif.slice(1, 30)));
      return true;
    });
  }
});

Deno.test("parseDescriptor() refuses derivations an xpub cannot do, multipath and tr() trees", () => {
  const cases: [string, RegExp][] = [
    [`wpkh(${XPUB}/0h/*)`, /hardened derivation after an xpub\/tpub is impossible/],
    [`wpkh(${XPUB}/0/*h)`, /hardened wildcard "\/\*h" needs the private key/],
    [`wpkh(${XPUB}/0/*')`, /hardened wildcard/],
    [`wpkh(${XPUB}/*/0)`, /"\/\*" must be the last step/],
    [`wpkh(${XPUB}/<0;1>/*)`, /multipath keys \(<a;b>\) are not supported/],
    [`tr(${PUB.slice(2)},pk(${PUB2}))`, TREE],
    [`tr(${XPUB}/0/*,{pk(${PUB}),pk(${PUB2})})`, TREE],
    [`wpkh(${PUB.slice(2)})`, /x-only public keys are only allowed inside tr\(\)/],
    [`wpkh(${PUB}/0)`, /derivation steps are only allowed after an xpub\/tpub/],
    [`wpkh(02${"00".repeat(32)})`, /not a valid public key/],
    [`combo(${PUB})`, /combo\(\) is not supported/],
    [`musig(${PUB},${PUB2})`, /musig\(\) is not supported/],
    [`foo(${PUB})`, /unknown script expression "foo\(\)"/],
    [`wpkh(${PUB}`, /expected a script expression|not closed/],
    [`wpkh(${PUB}))`, /unbalanced|not closed/],
    [`wpkh()`, /wpkh\(\) takes exactly one argument/],
    [`wpkh(${PUB},${PUB2})`, /wpkh\(\) takes exactly one argument/],
    ["", /empty/],
    [`wpkh(${PUB})\n#x`, /character \d+ is not allowed|checksum/],
    ["x".repeat(9000), /longer than 8192 characters/],
  ];
  for (const [text, reason] of cases) {
    rejects(() => parseDescriptor(text, "mainnet"), reason, text.slice(0, 50));
  }
});

Deno.test("parseDescriptor() limits multi() to 16 distinct keys and a threshold within them", () => {
  const keys = Array.from({ length: 17 }, (_, i) => hex.encode(testnetRoot(10 + i).publicKey!));
  parseDescriptor(`wsh(multi(16,${keys.slice(0, 16).join(",")}))`, "mainnet");
  rejects(() => parseDescriptor(`wsh(multi(1,${keys.join(",")}))`, "mainnet"), OVER_16, "17 keys");
  rejects(
    () => parseDescriptor(`wsh(multi(3,${PUB},${PUB2}))`, "mainnet"),
    /threshold must be between 1/,
    "3 of 2",
  );
  rejects(
    () => parseDescriptor(`wsh(sortedmulti(1,${PUB},${PUB}))`, "mainnet"),
    /must be distinct/,
    "repeated key",
  );
  // The same xpub twice derives the same key at every index: caught at parse time.
  rejects(
    () => parseDescriptor(`wsh(multi(1,${XPUB}/*,${XPUB}/*))`, "mainnet"),
    /must be distinct; two keys are the same at index 0/,
    "repeated xpub",
  );
});

Deno.test("parseDescriptor() returns a frozen descriptor with its keys", () => {
  const d = parseDescriptor(
    `wsh(sortedmulti(1,[deadbeef/48h/0h/0h/2h]${XPUB}/0/*,${PUB}))`,
    "mainnet",
  );
  assert.equal(d.type, "wsh-multi");
  assert.equal(d.ranged, true);
  assert.equal(d.threshold, 1);
  assert.equal(d.sorted, true);
  assert.deepEqual(d.keys[0], {
    origin: { fingerprint: 0xdeadbeef, path: [48 + H, H, H, 2 + H] },
    pubkeyHex: null,
    extendedKey: XPUB,
    steps: [0],
    ranged: true,
  });
  assert.deepEqual(d.keys[1], {
    origin: null,
    pubkeyHex: PUB,
    extendedKey: null,
    steps: [],
    ranged: false,
  });
  assert.ok(
    Object.isFrozen(d) && Object.isFrozen(d.keys) && Object.isFrozen(d.keys[0]!.origin!.path),
  );
  assert.throws(() => {
    (d as { type: string }).type = "pkh";
  }, TypeError);
});

Deno.test("expandDescriptor() enforces the range limits (inclusive ends, at most 1000, below 2^31)", () => {
  const d = parseDescriptor(`wpkh(${XPUB}/0/*)`, "mainnet");
  assert.equal(expandDescriptor(d, { start: 0, end: MAX_DESCRIPTOR_RANGE - 1 }).length, 1000);
  assert.deepEqual(
    expandDescriptor(d, { start: 2 ** 31 - 2, end: 2 ** 31 - 1 }).map((s) => s.index),
    [2 ** 31 - 2, 2 ** 31 - 1],
  );
  const bad: [{ start: number; end: number }, RegExp][] = [
    [{ start: 0, end: 1000 }, /more than 1000 indexes/],
    [{ start: 5, end: 4 }, /end is before its start/],
    [{ start: -1, end: 3 }, /within 0\.\.2147483647/],
    [{ start: 2 ** 31 - 1, end: 2 ** 31 }, /within 0\.\.2147483647/],
  ];
  for (const [range, reason] of bad) {
    assert.throws(() => expandDescriptor(d, range), (e: unknown) => {
      assert.ok(e instanceof ValidationError && e.status === 422, JSON.stringify(range));
      assert.match(e.message, reason);
      assert.equal(e.issues[0]!.path, "range");
      return true;
    });
  }
  // A non-ranged descriptor has one script whatever the range.
  const fixed = expandDescriptor(parseDescriptor(`wpkh(${PUB})`, "mainnet"), { start: 3, end: 9 });
  assert.equal(fixed.length, 1);
  assert.equal(fixed[0]!.index, null);
});

Deno.test("parseDescriptor()/expandDescriptor()/descriptorChecksum() throw TypeError on wrong types", () => {
  const d = parseDescriptor(`wpkh(${PUB})`, "mainnet");
  const cases: [string, () => unknown][] = [
    ["text number", () => parseDescriptor(1 as unknown as string, "mainnet")],
    ["text null", () => parseDescriptor(null as unknown as string, "mainnet")],
    ["network", () => parseDescriptor(`wpkh(${PUB})`, "testnet" as "mainnet")],
    ["checksum text", () => descriptorChecksum([] as unknown as string)],
    ["descriptor copy", () => expandDescriptor({ ...d }, { start: 0, end: 0 })],
    ["descriptor null", () => expandDescriptor(null as unknown as typeof d, { start: 0, end: 0 })],
    ["range null", () => expandDescriptor(d, null as unknown as { start: number; end: number })],
    ["range float", () => expandDescriptor(d, { start: 0.5, end: 1 })],
    ["range string", () => expandDescriptor(d, { start: 0, end: "3" as unknown as number })],
  ];
  for (const [label, fn] of cases) assert.throws(fn, TypeError, label);
});

// ---------------------------------------------------------------------------------------------
// Ranged tpub descriptors on test networks: origins, PSBT fields, signing with the master key

const ROOT_A = testnetRoot(0xa1);
const ROOT_B = testnetRoot(0xb2);
const ROOT_C = testnetRoot(0xc3);

interface RangedCase {
  name: string;
  text: string;
  /** The roots that hold the keys, with the BIP32 account path of each. */
  signers: [HDKey, number[]][];
  spendKind: string;
}
const RANGED: RangedCase[] = [
  {
    name: "pkh",
    text: `pkh(${account(ROOT_A, "44h/1h/0h")}/0/*)`,
    signers: [[ROOT_A, [44 + H, 1 + H, H]]],
    spendKind: "p2pkh",
  },
  {
    name: "wpkh",
    text: `wpkh(${account(ROOT_A, "84h/1h/0h")}/0/*)`,
    signers: [[ROOT_A, [84 + H, 1 + H, H]]],
    spendKind: "p2wpkh",
  },
  {
    name: "sh(wpkh)",
    text: `sh(wpkh(${account(ROOT_A, "49h/1h/0h")}/1/*))`,
    signers: [[ROOT_A, [49 + H, 1 + H, H]]],
    spendKind: "p2sh-p2wpkh",
  },
  {
    name: "tr",
    text: `tr(${account(ROOT_A, "86h/1h/0h")}/0/*)`,
    signers: [[ROOT_A, [86 + H, 1 + H, H]]],
    spendKind: "p2tr-keypath",
  },
  {
    name: "wsh(sortedmulti 2-of-3)",
    text: `wsh(sortedmulti(2,${account(ROOT_A, "48h/1h/0h/2h")}/0/*,${
      account(ROOT_B, "48h/1h/0h/2h")
    }/0/*,${account(ROOT_C, "48h/1h/0h/2h")}/0/*))`,
    signers: [[ROOT_A, [48 + H, 1 + H, H, 2 + H]], [ROOT_B, [48 + H, 1 + H, H, 2 + H]]],
    spendKind: "p2wsh-multisig",
  },
  {
    name: "sh(wsh(multi 2-of-2))",
    text: `sh(wsh(multi(2,${account(ROOT_B, "48h/1h/0h/1h")}/0/*,${
      account(ROOT_C, "48h/1h/0h/1h")
    }/0/*)))`,
    signers: [[ROOT_B, [48 + H, 1 + H, H, 1 + H]], [ROOT_C, [48 + H, 1 + H, H, 1 + H]]],
    spendKind: "p2sh-p2wsh-multisig",
  },
];

/** A previous transaction paying `script`, for inputs that need PSBT_IN_NON_WITNESS_UTXO. */
function previousTx(script: Uint8Array, amount: bigint): Uint8Array {
  return RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{
      txid: new Uint8Array(32).fill(9),
      index: 0,
      finalScriptSig: new Uint8Array(),
      sequence: 0xffffffff,
    }],
    outputs: [{ amount, script }],
    witnesses: [],
    lockTime: 0,
  });
}

/** Build a one-input PSBT from `s`, as the funding service would. */
/** scure's signer type; a private `HDKey` from @scure/bip32 fits it once `publicKey` is set. */
type Signer = Parameters<Transaction["sign"]>[0];

function psbtFor(s: DescriptorScript, network: "testnet4" | "regtest"): Transaction {
  const tx = new Transaction();
  const script = hex.decode(s.scriptPubKeyHex);
  const amount = 100_000n;
  if (s.spend?.kind === "p2pkh") {
    const prev = previousTx(script, amount);
    tx.addInput({
      txid: Transaction.fromRaw(prev).id,
      index: 0,
      nonWitnessUtxo: prev,
      ...s.psbtInput,
    });
  } else {
    tx.addInput({
      txid: "11".repeat(32),
      index: 1,
      witnessUtxo: { script, amount },
      ...s.psbtInput,
    });
  }
  tx.addOutputAddress(s.address, 90_000n, networkParams(network));
  return tx;
}

for (const network of ["testnet4", "regtest"] as const) {
  for (const c of RANGED) {
    Deno.test(`expandDescriptor() ${c.name} tpub on ${network}: origin paths, addresses, PSBT signable by the master keys`, () => {
      const d = parseDescriptor(c.text, network);
      assert.equal(d.ranged, true);
      const out = expandDescriptor(d, { start: 5, end: 7 });
      assert.deepEqual(out.map((s) => s.index), [5, 6, 7]);
      const prefix = network === "regtest" ? /^(bcrt1|[mn2])/ : /^(tb1|[mn2])/;
      for (const s of out) {
        const i = s.index!;
        assert.match(s.address, prefix);
        assert.equal(s.spend?.kind, c.spendKind);
        // Each signer's key at account/branch/index, with the master fingerprint and full path.
        const branch = c.name === "sh(wpkh)" ? 1 : 0;
        const expected = c.signers.map(([root, acct]) => {
          const path = [...acct, branch, i];
          let k = root;
          for (const p of path) k = k.deriveChild(p);
          return { pubkey: k.publicKey!, der: { fingerprint: root.fingerprint, path } };
        });
        if (c.name === "tr") {
          const xonly = expected[0]!.pubkey.slice(1);
          assert.deepEqual(s.psbtInput.tapInternalKey, xonly);
          assert.deepEqual(s.psbtInput.tapBip32Derivation, [[xonly, {
            hashes: [],
            der: expected[0]!.der,
          }]]);
          assert.equal(s.psbtInput.bip32Derivation, undefined);
        } else {
          const got = s.psbtInput.bip32Derivation!;
          for (const e of expected) {
            const row = got.find(([pk]) => hex.encode(pk) === hex.encode(e.pubkey));
            assert.ok(row, `${c.name} index ${i}: derivation for ${hex.encode(e.pubkey)}`);
            assert.deepEqual(row[1], e.der);
          }
          assert.equal(got.length, c.name.includes("2-of-3") ? 3 : expected.length);
        }
        // The service path: scure accepts the fields, and the HD master keys alone can sign.
        const tx = psbtFor(s, network);
        for (const [root] of c.signers) assert.equal(tx.sign(root as unknown as Signer), 1);
        tx.finalize();
        assert.equal(verifyInputSignatures(tx, 0).status, "valid");
      }
    });
  }
}

Deno.test("expandDescriptor() sortedmulti orders keys and their derivations by public key", () => {
  const text = `wsh(sortedmulti(1,${account(ROOT_A, "48h/1h/0h/2h")}/0/*,${
    account(ROOT_B, "48h/1h/0h/2h")
  }/0/*))`;
  for (const s of expandDescriptor(parseDescriptor(text, "testnet4"), { start: 0, end: 9 })) {
    const keys = s.psbtInput.bip32Derivation!.map(([pk]) => hex.encode(pk));
    assert.deepEqual(keys, [...keys].sort());
    const ws = hex.encode(s.psbtInput.witnessScript!);
    assert.ok(ws.indexOf(keys[0]!) < ws.indexOf(keys[1]!));
  }
});

Deno.test("expandDescriptor() utxo fields give prepareUtxo() the same input size as spend", () => {
  for (const c of RANGED) {
    const [s] = expandDescriptor(parseDescriptor(c.text, "testnet4"), { start: 0, end: 0 });
    const amount = 50_000n;
    const legacy = s!.spend?.kind === "p2pkh";
    const prev = legacy ? previousTx(hex.decode(s!.scriptPubKeyHex), amount) : undefined;
    const prepared = prepareUtxo({
      txid: prev ? Transaction.fromRaw(prev).id : "22".repeat(32),
      vout: 0,
      valueSats: amount,
      ...s!.utxo,
      ...(prev ? { nonWitnessUtxoHex: hex.encode(prev) } : {}),
    }, "utxos[0]");
    assert.deepEqual(prepared.weight, inputWeight(s!.spend!), c.name);
  }
});

Deno.test("expandDescriptor() addr() gives the address's script and a spend only where it is known", () => {
  const cases: [string, "mainnet" | "testnet4", string | null][] = [
    ["3PUNyaW7M55oKWJ3kDukwk9bsKvryra15j", "mainnet", null],
    ["bc1qmpwzkuwsqc9snjvgdt4czhjsnywa5yjdgwyw6k", "mainnet", "p2wpkh"],
    [p2wpkh(ROOT_A.publicKey!, TEST_NETWORK).address!, "testnet4", "p2wpkh"],
  ];
  for (const [address, network, kind] of cases) {
    const [s] = expandDescriptor(parseDescriptor(`addr(${address})`, network), {
      start: 0,
      end: 0,
    });
    assert.equal(s!.index, null);
    assert.equal(s!.address, address);
    assert.deepEqual(s!.psbtInput, {});
    assert.equal(s!.spend?.kind ?? null, kind);
  }
});

Deno.test("expandDescriptor() hex keys: tr() takes x-only or compressed keys, origin is carried", () => {
  const xonly = PUB.slice(2);
  const a = scriptsOf(`tr(${xonly})`, 1)[0]!;
  const b = scriptsOf(`tr(${PUB})`, 1)[0]!;
  assert.equal(a.scriptPubKeyHex, SCRIPT_BIPS[4]!.valid[0]!.scripts[0]);
  assert.equal(b.scriptPubKeyHex, a.scriptPubKeyHex);
  const c = scriptsOf(`tr([0badf00d/86h/0h/0h/0/5]${xonly})`, 1)[0]!;
  assert.deepEqual(c.psbtInput.tapBip32Derivation![0]![1].der, {
    fingerprint: 0x0badf00d,
    path: [86 + H, H, H, 0, 5],
  });
  assert.equal(c.utxo.tapInternalKeyHex, xonly);
});
