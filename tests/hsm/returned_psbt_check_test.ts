import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import {
  bip32Path,
  p2pkh,
  p2sh,
  p2tr,
  p2tr_pk,
  p2wpkh,
  RawTx,
  SigHash,
  TEST_NETWORK,
  Transaction,
} from "@scure/btc-signer";
import { tapLeafHash } from "@scure/btc-signer/payment.js";
import { hex, utf8 } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { UpstreamError } from "../../src/errors/mod.ts";
import { PSBT_TX_OPTS } from "../../src/bitcoin/psbt_parse.ts";
import { psbtVersionOf } from "../../src/bitcoin/psbt_ops.ts";
import { PSBT_MAGIC, splitPsbtMaps } from "../../src/bitcoin/psbt_maps.ts";
import { segwitV0Sighash } from "../../src/bitcoin/sighash.ts";
import {
  type AddedSignature,
  checkReturnedPsbt,
  type ReturnedPsbtCheck,
  type ReturnedPsbtExpectation,
} from "../../src/hsm/returned_psbt_check.ts";

// ---------------------------------------------------------------------------------------------
// Keys and PSBTs: the HSM's key A (a BIP32 root) and another signer's key B
// ---------------------------------------------------------------------------------------------

type Signer = Parameters<Transaction["sign"]>[0];

interface Child {
  key: HDKey;
  pub: Uint8Array;
  xonly: Uint8Array;
  fingerprint: number;
  path: number[];
}

function root(label: string): HDKey {
  return HDKey.fromMasterSeed(sha256(utf8.decode(label)));
}
const ROOT_A = root("hsm key A");
const ROOT_B = root("other signer B");

function child(r: HDKey, path: string): Child {
  const key = r.derive(path);
  const pub = key.publicKey!;
  return { key, pub, xonly: pub.subarray(1), fingerprint: r.fingerprint, path: bip32Path(path) };
}
const A_WPKH = child(ROOT_A, "m/84'/1'/0'/0/0");
const A_OTHER = child(ROOT_A, "m/84'/1'/0'/0/7");
const A_CHANGE = child(ROOT_A, "m/84'/1'/0'/1/0");
const A_SH = child(ROOT_A, "m/49'/1'/0'/0/0");
const A_PKH = child(ROOT_A, "m/44'/1'/0'/0/0");
const A_TR = child(ROOT_A, "m/86'/1'/0'/0/0");
const A_TREE = child(ROOT_A, "m/86'/1'/0'/0/1");
const A_LEAF = child(ROOT_A, "m/86'/1'/0'/0/2");
const B_WPKH = child(ROOT_B, "m/84'/1'/0'/0/0");
const B_TR = child(ROOT_B, "m/86'/1'/0'/0/0");
const RECIPIENT = child(root("recipient"), "m/0/0");
const ATTACKER = child(root("attacker"), "m/0/0");

function der(c: Child): [Uint8Array, { fingerprint: number; path: number[] }] {
  return [c.pub, { fingerprint: c.fingerprint, path: c.path }];
}
function tapDer(
  c: Child,
): [Uint8Array, { hashes: Uint8Array[]; der: { fingerprint: number; path: number[] } }] {
  return [c.xonly, { hashes: [], der: { fingerprint: c.fingerprint, path: c.path } }];
}

function txid(label: string): string {
  return hex.encode(sha256(utf8.decode(label)));
}

/** Re-parse as the edge parses an HSM answer. */
function reparse(tx: Transaction): Transaction {
  return Transaction.fromPSBT(tx.toPSBT(psbtVersionOf(tx)), PSBT_TX_OPTS);
}

interface Variant {
  lockTime?: number;
  sequence1?: number;
  amount0?: bigint;
  script0?: Uint8Array;
  extraOutput?: boolean;
  txidLabel?: string;
  sighashType0?: number;
}

const WPKH_AMOUNT = 50_000n;

/** Inputs: 0 P2WPKH (A), 1 P2SH-P2WPKH (A), 2 P2WPKH (B, already signed by B). */
function segwitPsbt(v: Variant = {}): Transaction {
  const label = v.txidLabel ?? "funding";
  const tx = new Transaction({ ...PSBT_TX_OPTS, lockTime: v.lockTime ?? 0 });
  const nested = p2sh(p2wpkh(A_SH.pub, TEST_NETWORK), TEST_NETWORK);
  tx.addInput({
    txid: txid(`${label} 0`),
    index: 0,
    witnessUtxo: { script: p2wpkh(A_WPKH.pub, TEST_NETWORK).script, amount: WPKH_AMOUNT },
    bip32Derivation: [der(A_WPKH)],
    ...(v.sighashType0 === undefined ? {} : { sighashType: v.sighashType0 }),
  });
  tx.addInput({
    txid: txid(`${label} 1`),
    index: 1,
    sequence: v.sequence1 ?? 0xfffffffd,
    witnessUtxo: { script: nested.script, amount: 30_000n },
    redeemScript: nested.redeemScript!,
    bip32Derivation: [der(A_SH)],
  });
  tx.addInput({
    txid: txid(`${label} 2`),
    index: 0,
    witnessUtxo: { script: p2wpkh(B_WPKH.pub, TEST_NETWORK).script, amount: 20_000n },
    bip32Derivation: [der(B_WPKH)],
  });
  tx.addOutput({
    script: v.script0 ?? p2wpkh(RECIPIENT.pub, TEST_NETWORK).script,
    amount: v.amount0 ?? 70_000n,
  });
  tx.addOutput({
    script: p2wpkh(A_CHANGE.pub, TEST_NETWORK).script,
    amount: 28_000n,
    bip32Derivation: [der(A_CHANGE)],
  });
  if (v.extraOutput === true) {
    tx.addOutput({ script: p2wpkh(ATTACKER.pub, TEST_NETWORK).script, amount: 1_000n });
  }
  tx.signIdx(B_WPKH.key.privateKey!, 2);
  return reparse(tx);
}

/** Inputs: 0 P2TR key path (A), 1 P2PKH with PSBT_IN_NON_WITNESS_UTXO (A), 2 P2TR (B, unsigned). */
function taprootPsbt(): Transaction {
  const prevRaw = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{
      txid: hex.decode(txid("grandparent")),
      index: 0,
      finalScriptSig: new Uint8Array(),
      sequence: 0xffffffff,
    }],
    outputs: [{ script: p2pkh(A_PKH.pub, TEST_NETWORK).script, amount: 40_000n }],
    lockTime: 0,
    witnesses: [],
  });
  const prevId = Transaction.fromRaw(prevRaw).id;
  const tx = new Transaction({ ...PSBT_TX_OPTS });
  tx.addInput({
    txid: txid("taproot 0"),
    index: 0,
    witnessUtxo: { script: p2tr(A_TR.xonly, undefined, TEST_NETWORK).script, amount: 60_000n },
    tapInternalKey: A_TR.xonly,
    tapBip32Derivation: [tapDer(A_TR)],
  });
  tx.addInput({
    txid: prevId,
    index: 0,
    nonWitnessUtxo: prevRaw,
    bip32Derivation: [der(A_PKH)],
  });
  tx.addInput({
    txid: txid("taproot 2"),
    index: 1,
    witnessUtxo: { script: p2tr(B_TR.xonly, undefined, TEST_NETWORK).script, amount: 10_000n },
    tapInternalKey: B_TR.xonly,
    tapBip32Derivation: [tapDer(B_TR)],
  });
  tx.addOutput({ script: p2tr(RECIPIENT.xonly, undefined, TEST_NETWORK).script, amount: 105_000n });
  return reparse(tx);
}

const TREE = p2tr(A_TREE.xonly, { script: p2tr_pk(A_LEAF.xonly).script }, TEST_NETWORK);
const LEAF_HASH = tapLeafHash(p2tr_pk(A_LEAF.xonly).script);

/**
 * Inputs: 0 P2TR whose internal key (A) commits to a script tree with one `<A leaf key>
 * OP_CHECKSIG` leaf, so A signs both the key path and the script path; 1 P2WPKH (B).
 */
function scriptTreePsbt(): Transaction {
  const tx = new Transaction({ ...PSBT_TX_OPTS });
  tx.addInput({
    txid: txid("tree 0"),
    index: 0,
    witnessUtxo: { script: TREE.script, amount: 80_000n },
    tapInternalKey: TREE.tapInternalKey,
    tapMerkleRoot: TREE.tapMerkleRoot,
    tapLeafScript: TREE.tapLeafScript!,
    tapBip32Derivation: [
      tapDer(A_TREE),
      [A_LEAF.xonly, {
        hashes: [LEAF_HASH],
        der: { fingerprint: A_LEAF.fingerprint, path: A_LEAF.path },
      }],
    ],
  });
  tx.addInput({
    txid: txid("tree 1"),
    index: 0,
    witnessUtxo: { script: p2wpkh(B_WPKH.pub, TEST_NETWORK).script, amount: 20_000n },
    bip32Derivation: [der(B_WPKH)],
  });
  tx.addOutput({ script: p2wpkh(RECIPIENT.pub, TEST_NETWORK).script, amount: 99_000n });
  return reparse(tx);
}

/** What the edge computes from key A's fingerprint before calling the HSM. */
function expectationFor(tx: Transaction, r: HDKey = ROOT_A): ReturnedPsbtExpectation {
  const signableInputs = new Set<number>();
  const allowedPubkeys = new Map<number, Uint8Array[]>();
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    const keys = [
      ...(input.bip32Derivation ?? []).filter(([, d]) => d.fingerprint === r.fingerprint)
        .map(([pk]) => pk),
      ...(input.tapBip32Derivation ?? []).filter(([, d]) => d.der.fingerprint === r.fingerprint)
        .map(([pk]) => pk),
    ];
    if (keys.length === 0) continue;
    signableInputs.add(i);
    allowedPubkeys.set(i, keys);
  }
  return { signableInputs, allowedPubkeys };
}

/** What an honest HSM does: sign every input whose derivation belongs to its root. */
function honestSign(tx: Transaction, signer: HDKey = ROOT_A, sighash?: number[]): Transaction {
  const copy = reparse(tx);
  copy.sign(signer as unknown as Signer, sighash);
  return reparse(copy);
}

// ---------------------------------------------------------------------------------------------
// Raw map editing, for answers scure's API would refuse to build
// ---------------------------------------------------------------------------------------------

interface Entry {
  keyType: number;
  keyData: Uint8Array;
  value: Uint8Array;
}

function readMaps(tx: Transaction): Entry[][] {
  const split = splitPsbtMaps(tx.toPSBT(psbtVersionOf(tx)));
  assert.ok(split.ok);
  return split.maps.map((m) => m.entries.map((e) => ({ ...e })));
}

function compactSize(n: number): number[] {
  if (n < 0xfd) return [n];
  if (n <= 0xffff) return [0xfd, n & 0xff, n >> 8];
  return [0xfe, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
}

function writeMaps(maps: Entry[][]): Transaction {
  const out: number[] = [...PSBT_MAGIC];
  for (const map of maps) {
    for (const e of map) {
      const key = [...compactSize(e.keyType), ...e.keyData];
      out.push(...compactSize(key.length), ...key, ...compactSize(e.value.length), ...e.value);
    }
    out.push(0x00);
  }
  return Transaction.fromPSBT(new Uint8Array(out), PSBT_TX_OPTS);
}

/** Apply `edit` to the serialized maps (0 = global, then inputs, then outputs). */
function editMaps(tx: Transaction, edit: (maps: Entry[][]) => void): Transaction {
  const maps = readMaps(tx);
  edit(maps);
  return writeMaps(maps);
}

function inputMap(maps: Entry[][], i: number): Entry[] {
  return maps[1 + i]!;
}

function findEntry(map: Entry[], keyType: number, keyData?: Uint8Array): Entry {
  const e = map.find((x) =>
    x.keyType === keyType &&
    (keyData === undefined || hex.encode(x.keyData) === hex.encode(keyData))
  );
  assert.ok(e, `entry 0x${keyType.toString(16)} present`);
  return e;
}

/** `tx` with one more PSBT_IN_PARTIAL_SIG on input `i`. */
function withPartialSig(tx: Transaction, i: number, pub: Uint8Array, value: Uint8Array) {
  return editMaps(tx, (maps) => {
    inputMap(maps, i).push({ keyType: 0x02, keyData: pub, value });
  });
}

/** A BIP143 ECDSA signature of P2WPKH input `i` over `digestType`, labelled `byteType`. */
function wpkhSignature(
  tx: Transaction,
  i: number,
  signer: Child,
  scriptKey: Child,
  digestType: number,
  byteType = digestType,
): Uint8Array {
  const scriptCode = p2pkh(scriptKey.pub).script;
  const digest = segwitV0Sighash(tx, i, scriptCode, WPKH_AMOUNT, digestType);
  const sig = secp256k1.sign(digest, signer.key.privateKey!, { prehash: false, format: "der" });
  return new Uint8Array([...sig, byteType]);
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

function assertRejected(fn: () => unknown, check: ReturnedPsbtCheck, detail: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof UpstreamError, `expected an UpstreamError, got ${String(caught)}`);
  assert.equal(caught.status, 502);
  assert.equal(caught.code, "upstream-error");
  assert.equal(caught.extensions.check, check, caught.message);
  assert.match(caught.message, /^HSM returned an unacceptable PSBT: /);
  assert.match(caught.message, detail);
  // No keys, signatures or hashes in a client-visible detail.
  assert.doesNotMatch(caught.message, /[0-9a-f]{16,}/i);
}

function sig(
  input: number,
  pub: Uint8Array,
  scheme: AddedSignature["scheme"],
  sighashType: number,
): AddedSignature {
  return { input, pubkeyHex: hex.encode(pub), scheme, sighashType };
}

const SEGWIT = segwitPsbt();
const SEGWIT_SIGNED = honestSign(SEGWIT);
const SEGWIT_EXPECT = expectationFor(SEGWIT);
const TAPROOT = taprootPsbt();
const TAPROOT_SIGNED = honestSign(TAPROOT);
const TAPROOT_EXPECT = expectationFor(TAPROOT);
const TAPROOT_OUTPUT_KEY = p2tr(A_TR.xonly, undefined, TEST_NETWORK).tweakedPubkey;

// ---------------------------------------------------------------------------------------------
// Honest HSM
// ---------------------------------------------------------------------------------------------

Deno.test("checkReturnedPsbt() accepts an honest P2WPKH + P2SH-P2WPKH signing and lists it", () => {
  assert.deepEqual([...SEGWIT_EXPECT.signableInputs], [0, 1]);
  assert.deepEqual(checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, SEGWIT_EXPECT), [
    sig(0, A_WPKH.pub, "ecdsa", SigHash.ALL),
    sig(1, A_SH.pub, "ecdsa", SigHash.ALL),
  ]);
});

Deno.test("checkReturnedPsbt() accepts an honest P2TR key-path + P2PKH signing", () => {
  assert.deepEqual([...TAPROOT_EXPECT.signableInputs], [0, 1]);
  assert.deepEqual(checkReturnedPsbt(TAPROOT, TAPROOT_SIGNED, TAPROOT_EXPECT), [
    sig(0, TAPROOT_OUTPUT_KEY, "schnorr", SigHash.DEFAULT),
    sig(1, A_PKH.pub, "ecdsa", SigHash.ALL),
  ]);
});

Deno.test("checkReturnedPsbt() accepts taproot key-path (with merkle root) and script-path signatures", () => {
  const original = scriptTreePsbt();
  const signed = honestSign(original);
  assert.equal(signed.getInput(0).tapScriptSig?.length, 1);
  assert.deepEqual(checkReturnedPsbt(original, signed, expectationFor(original)), [
    sig(0, TREE.tweakedPubkey, "schnorr", SigHash.DEFAULT),
    sig(0, A_LEAF.xonly, "schnorr", SigHash.DEFAULT),
  ]);
  const bad = editMaps(signed, (maps) => {
    const e = findEntry(inputMap(maps, 0), 0x14);
    e.value = e.value.slice();
    e.value[5]! ^= 0x01;
  });
  assertRejected(
    () => checkReturnedPsbt(original, bad, expectationFor(original)),
    "signature-invalid",
    /signature on input 0 does not verify/,
  );
});

Deno.test("checkReturnedPsbt() accepts the taproot output key itself as the allowed key", () => {
  const expect: ReturnedPsbtExpectation = {
    signableInputs: new Set([0, 1]),
    allowedPubkeys: new Map([[0, [TAPROOT_OUTPUT_KEY]], [1, [A_PKH.pub]]]),
  };
  assert.equal(checkReturnedPsbt(TAPROOT, TAPROOT_SIGNED, expect).length, 2);
});

Deno.test("checkReturnedPsbt() accepts a signature with the sighash type the input declares", () => {
  const acp = SigHash.ALL_ANYONECANPAY;
  const original = segwitPsbt({ sighashType0: acp });
  const signed = honestSign(original, ROOT_A, [SigHash.ALL, acp]);
  assert.deepEqual(checkReturnedPsbt(original, signed, expectationFor(original)), [
    sig(0, A_WPKH.pub, "ecdsa", acp),
    sig(1, A_SH.pub, "ecdsa", SigHash.ALL),
  ]);
});

Deno.test("checkReturnedPsbt() accepts an answer that signs only some signable inputs", () => {
  const partial = editMaps(SEGWIT_SIGNED, (maps) => {
    const m = inputMap(maps, 1);
    m.splice(m.indexOf(findEntry(m, 0x02, A_SH.pub)), 1);
  });
  assert.deepEqual(checkReturnedPsbt(SEGWIT, partial, SEGWIT_EXPECT), [
    sig(0, A_WPKH.pub, "ecdsa", SigHash.ALL),
  ]);
});

Deno.test("checkReturnedPsbt() accepts an honest PSBTv2 (BIP370) round trip", () => {
  const v2 = Transaction.fromPSBT(segwitPsbt().toPSBT(2), PSBT_TX_OPTS);
  assert.equal(psbtVersionOf(v2), 2);
  const signed = honestSign(v2);
  assert.equal(psbtVersionOf(signed), 2);
  assert.deepEqual(checkReturnedPsbt(v2, signed, expectationFor(v2)), [
    sig(0, A_WPKH.pub, "ecdsa", SigHash.ALL),
    sig(1, A_SH.pub, "ecdsa", SigHash.ALL),
  ]);
});

// ---------------------------------------------------------------------------------------------
// Hostile HSM: signatures
// ---------------------------------------------------------------------------------------------

Deno.test("checkReturnedPsbt() rejects an ECDSA signature with a flipped byte", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    const e = findEntry(inputMap(maps, 0), 0x02, A_WPKH.pub);
    e.value = e.value.slice();
    e.value[10]! ^= 0x01; // inside R: still DER, no longer a valid signature
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "signature-invalid",
    /the new signature on input 0 does not verify$/,
  );
});

Deno.test("checkReturnedPsbt() rejects a taproot key-path signature with a flipped byte", () => {
  const bad = editMaps(TAPROOT_SIGNED, (maps) => {
    const e = findEntry(inputMap(maps, 0), 0x13);
    e.value = e.value.slice();
    e.value[40]! ^= 0x01;
  });
  assertRejected(
    () => checkReturnedPsbt(TAPROOT, bad, TAPROOT_EXPECT),
    "signature-invalid",
    /signature on input 0 does not verify/,
  );
});

Deno.test("checkReturnedPsbt() rejects a signature over another sighash type than its byte says", () => {
  const bad = withPartialSig(
    SEGWIT,
    0,
    A_WPKH.pub,
    wpkhSignature(SEGWIT, 0, A_WPKH, A_WPKH, SigHash.NONE, SigHash.ALL),
  );
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "signature-invalid",
    /input 0 does not verify/,
  );
});

Deno.test("checkReturnedPsbt() rejects SIGHASH_NONE when the input declares no sighash type", () => {
  const bad = withPartialSig(
    SEGWIT,
    0,
    A_WPKH.pub,
    wpkhSignature(SEGWIT, 0, A_WPKH, A_WPKH, SigHash.NONE),
  );
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "sighash-type-mismatch",
    /input 0 uses sighash type 0x02, not the one a signer uses by default/,
  );
});

Deno.test("checkReturnedPsbt() rejects SIGHASH_ALL when the input declares ALL|ANYONECANPAY", () => {
  const original = segwitPsbt({ sighashType0: SigHash.ALL_ANYONECANPAY });
  const bad = withPartialSig(
    original,
    0,
    A_WPKH.pub,
    wpkhSignature(original, 0, A_WPKH, A_WPKH, SigHash.ALL),
  );
  assertRejected(
    () => checkReturnedPsbt(original, bad, expectationFor(original)),
    "sighash-type-mismatch",
    /uses sighash type 0x01, not the one the input declares/,
  );
});

Deno.test("checkReturnedPsbt() rejects the high-S twin of a valid signature", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    const e = findEntry(inputMap(maps, 0), 0x02, A_WPKH.pub);
    const low = secp256k1.Signature.fromBytes(e.value.subarray(0, -1), "der");
    const high = new secp256k1.Signature(low.r, secp256k1.Point.Fn.ORDER - low.s);
    assert.ok(high.hasHighS());
    e.value = new Uint8Array([...high.toBytes("der"), SigHash.ALL]);
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "signature-high-s",
    /input 0 has a high S value \(BIP146\)/,
  );
});

Deno.test("checkReturnedPsbt() rejects a signature that is not strict DER", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    const e = findEntry(inputMap(maps, 1), 0x02, A_SH.pub);
    const v = e.value;
    // R gains a superfluous leading zero byte: BIP66 requires minimal integers.
    e.value = new Uint8Array([0x30, v[1]! + 1, 0x02, v[3]! + 1, 0x00, ...v.subarray(4)]);
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "signature-not-der",
    /input 1 is not strict DER \(BIP66\)/,
  );
});

Deno.test("checkReturnedPsbt() rejects an extra signed input (another key's input)", () => {
  const both = honestSign(TAPROOT_SIGNED, ROOT_B);
  assert.ok(both.getInput(2).tapKeySig !== undefined, "B's input was signed");
  assertRejected(
    () => checkReturnedPsbt(TAPROOT, both, TAPROOT_EXPECT),
    "input-not-signable",
    /input 2 was signed, but the key may not sign it/,
  );
});

Deno.test("checkReturnedPsbt() rejects a signed input the edge did not offer", () => {
  const expect: ReturnedPsbtExpectation = {
    signableInputs: new Set([0]),
    allowedPubkeys: new Map([[0, [A_WPKH.pub]]]),
  };
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, expect),
    "input-not-signable",
    /input 1 was signed/,
  );
});

Deno.test("checkReturnedPsbt() rejects a valid signature by a key not allowed for the input", () => {
  const bad = withPartialSig(
    SEGWIT,
    0,
    A_OTHER.pub,
    wpkhSignature(SEGWIT, 0, A_OTHER, A_WPKH, SigHash.ALL),
  );
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "key-not-allowed",
    /input 0 was signed with a key not allowed for it/,
  );
});

Deno.test("checkReturnedPsbt() rejects a taproot signature when the allowed key is another", () => {
  const expect: ReturnedPsbtExpectation = {
    signableInputs: new Set([0, 1]),
    allowedPubkeys: new Map([[0, [B_TR.xonly]], [1, [A_PKH.pub]]]),
  };
  assertRejected(
    () => checkReturnedPsbt(TAPROOT, TAPROOT_SIGNED, expect),
    "key-not-allowed",
    /input 0 was signed with a key not allowed/,
  );
});

Deno.test("checkReturnedPsbt() rejects the removal of another signer's signature", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    const m = inputMap(maps, 2);
    m.splice(m.indexOf(findEntry(m, 0x02, B_WPKH.pub)), 1);
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "signature-removed",
    /an existing signature on input 2 was removed/,
  );
});

Deno.test("checkReturnedPsbt() rejects an altered signature of another signer", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    const e = findEntry(inputMap(maps, 2), 0x02, B_WPKH.pub);
    e.value = e.value.slice();
    e.value[12]! ^= 0x01;
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "signature-altered",
    /an existing signature on input 2 was altered/,
  );
});

Deno.test("checkReturnedPsbt() rejects an answer without any new signature", () => {
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, reparse(SEGWIT), SEGWIT_EXPECT),
    "no-signature",
    /the HSM returned no signature$/,
  );
});

Deno.test("checkReturnedPsbt() rejects a finalized input", () => {
  const finalized = reparse(SEGWIT_SIGNED);
  finalized.finalizeIdx(0);
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, reparse(finalized), SEGWIT_EXPECT),
    "finalized",
    /input 0 was finalized \(PSBT_IN_FINAL_SCRIPTWITNESS\): the HSM may only sign/,
  );
});

// ---------------------------------------------------------------------------------------------
// Hostile HSM: the transaction and the other fields
// ---------------------------------------------------------------------------------------------

const TX_CHANGES: [string, Variant, ReturnedPsbtCheck, RegExp][] = [
  ["a changed output amount", { amount0: 69_000n }, "output-amount-changed", /output 0/],
  [
    "a changed output script",
    { script0: p2wpkh(ATTACKER.pub, TEST_NETWORK).script },
    "output-script-changed",
    /the script of output 0 was changed/,
  ],
  ["an added output", { extraOutput: true }, "output-count-changed", /from 2 to 3/],
  ["a changed sequence", { sequence1: 0xffffffff }, "sequence-changed", /input 1/],
  ["a changed locktime", { lockTime: 800_000 }, "locktime-changed", /the locktime was changed/],
  [
    "a PSBT of another transaction",
    { txidLabel: "elsewhere" },
    "other-transaction",
    /it is a PSBT of another transaction/,
  ],
];

for (const [name, variant, check, detail] of TX_CHANGES) {
  Deno.test(`checkReturnedPsbt() rejects ${name}, validly signed`, () => {
    const hostile = honestSign(segwitPsbt(variant));
    assertRejected(() => checkReturnedPsbt(SEGWIT, hostile, SEGWIT_EXPECT), check, detail);
  });
}

Deno.test("checkReturnedPsbt() rejects a changed PSBT version", () => {
  const v2 = Transaction.fromPSBT(SEGWIT_SIGNED.toPSBT(2), PSBT_TX_OPTS);
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, v2, SEGWIT_EXPECT),
    "psbt-version-changed",
    /PSBT version/,
  );
});

Deno.test("checkReturnedPsbt() rejects an unknown field added to an input", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    inputMap(maps, 0).push({
      keyType: 0x42,
      keyData: new Uint8Array(),
      value: new Uint8Array([1]),
    });
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "field-added",
    /unknown field type 0x42 was added to input 0/,
  );
});

const PROPRIETARY_KEY = new Uint8Array([3, ...utf8.decode("hsm"), 0x01]);

Deno.test("checkReturnedPsbt() rejects a proprietary field added to the global map", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    maps[0]!.push({ keyType: 0xfc, keyData: PROPRIETARY_KEY, value: new Uint8Array([7]) });
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "field-added",
    /PSBT_GLOBAL_PROPRIETARY was added to the global map/,
  );
});

Deno.test("checkReturnedPsbt() rejects a changed proprietary field of an output", () => {
  const output0 = 1 + SEGWIT.inputsLength;
  const original = editMaps(SEGWIT, (maps) => {
    maps[output0]!.push({ keyType: 0xfc, keyData: PROPRIETARY_KEY, value: new Uint8Array([1]) });
  });
  const signed = honestSign(original);
  assert.equal(checkReturnedPsbt(original, signed, expectationFor(original)).length, 2);
  const bad = editMaps(signed, (maps) => {
    findEntry(maps[output0]!, 0xfc).value = new Uint8Array([2]);
  });
  assertRejected(
    () => checkReturnedPsbt(original, bad, expectationFor(original)),
    "field-changed",
    /PSBT_OUT_PROPRIETARY of output 0 was changed/,
  );
});

Deno.test("checkReturnedPsbt() rejects a changed PSBT_IN_WITNESS_UTXO, validly signed", () => {
  // BIP143 signs the spent amount, so an HSM lying about it can sign "validly" for a fee the
  // edge never saw; the field comparison is what catches it.
  const lied = editMaps(SEGWIT, (maps) => {
    const e = findEntry(inputMap(maps, 0), 0x01);
    e.value = e.value.slice();
    e.value[1]! ^= 0x01; // the amount's second byte
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, honestSign(lied), SEGWIT_EXPECT),
    "field-changed",
    /PSBT_IN_WITNESS_UTXO of input 0 was changed/,
  );
});

Deno.test("checkReturnedPsbt() rejects an ECDSA signature on a taproot input", () => {
  const expect: ReturnedPsbtExpectation = {
    signableInputs: new Set([0]),
    allowedPubkeys: new Map([[0, [A_TR.pub]]]),
  };
  const digest = new Uint8Array(32).fill(1);
  const s = secp256k1.sign(digest, A_TR.key.privateKey!, { prehash: false, format: "der" });
  const bad = withPartialSig(TAPROOT, 0, A_TR.pub, new Uint8Array([...s, SigHash.ALL]));
  assertRejected(
    () => checkReturnedPsbt(TAPROOT, bad, expect),
    "signature-invalid",
    /input 0 does not verify: ECDSA signature on a taproot input/,
  );
});

Deno.test("checkReturnedPsbt() rejects a removed derivation field", () => {
  const bad = editMaps(SEGWIT_SIGNED, (maps) => {
    const m = maps[1 + SEGWIT.inputsLength + 1]!;
    m.splice(m.indexOf(findEntry(m, 0x02)), 1);
  });
  assertRejected(
    () => checkReturnedPsbt(SEGWIT, bad, SEGWIT_EXPECT),
    "field-removed",
    /PSBT_OUT_BIP32_DERIVATION was removed from output 1/,
  );
});

Deno.test("checkReturnedPsbt() rejects a changed PSBT_OUT_AMOUNT in a PSBTv2 (BIP370)", () => {
  const v2 = Transaction.fromPSBT(segwitPsbt().toPSBT(2), PSBT_TX_OPTS);
  const output0 = 1 + v2.inputsLength;
  const bad = editMaps(honestSign(v2), (maps) => {
    const amount = new Uint8Array(8);
    new DataView(amount.buffer).setBigUint64(0, 69_000n, true);
    findEntry(maps[output0]!, 0x03).value = amount;
  });
  assertRejected(
    () => checkReturnedPsbt(v2, bad, expectationFor(v2)),
    "output-amount-changed",
    /the amount of output 0 was changed/,
  );
});

Deno.test("checkReturnedPsbt() accepts the BIP370 signer update of PSBT_GLOBAL_TX_MODIFIABLE only", () => {
  // No signature yet: inputs and outputs are still modifiable (0b011).
  const v2 = Transaction.fromPSBT(taprootPsbt().toPSBT(2), PSBT_TX_OPTS);
  const expect = expectationFor(v2);
  assert.deepEqual(findEntry(readMaps(v2)[0]!, 0x06).value, new Uint8Array([0b011]));
  const signed = honestSign(v2);
  assert.equal(checkReturnedPsbt(v2, signed, expect).length, 2, "left alone (as scure does)");
  const withFlags = (flags: number) =>
    editMaps(signed, (maps) => {
      findEntry(maps[0]!, 0x06).value = new Uint8Array([flags]);
    });
  // SIGHASH_DEFAULT/ALL signatures close both inputs and outputs.
  assert.equal(checkReturnedPsbt(v2, withFlags(0b000), expect).length, 2);
  for (const flags of [0b001, 0b010, 0b100, 0b111]) {
    assertRejected(
      () => checkReturnedPsbt(v2, withFlags(flags), expect),
      "field-changed",
      /PSBT_GLOBAL_TX_MODIFIABLE of the global map was changed beyond the BIP370 signer update/,
    );
  }
});

Deno.test("checkReturnedPsbt() rejects a changed PSBT_GLOBAL_TX_MODIFIABLE in a PSBTv2", () => {
  const v2 = Transaction.fromPSBT(segwitPsbt().toPSBT(2), PSBT_TX_OPTS);
  const bad = editMaps(honestSign(v2), (maps) => {
    findEntry(maps[0]!, 0x06).value = new Uint8Array([0x03]);
  });
  assertRejected(
    () => checkReturnedPsbt(v2, bad, expectationFor(v2)),
    "field-changed",
    /PSBT_GLOBAL_TX_MODIFIABLE of the global map was changed/,
  );
});

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

Deno.test("checkReturnedPsbt() accepts an original built in memory (scure's default options)", () => {
  const inMemory = Transaction.fromPSBT(SEGWIT.toPSBT());
  assert.equal(checkReturnedPsbt(inMemory, SEGWIT_SIGNED, SEGWIT_EXPECT).length, 2);
});

Deno.test("checkReturnedPsbt() throws TypeError/RangeError for wrong arguments", () => {
  const expect = SEGWIT_EXPECT;
  const stripping = Transaction.fromPSBT(SEGWIT_SIGNED.toPSBT());
  const cases: [string, () => unknown, ErrorConstructor][] = [
    [
      "original not a Transaction",
      () => checkReturnedPsbt({} as Transaction, SEGWIT, expect),
      TypeError,
    ],
    [
      "returned null",
      () => checkReturnedPsbt(SEGWIT, null as unknown as Transaction, expect),
      TypeError,
    ],
    [
      "returned drops unknown fields",
      () => checkReturnedPsbt(SEGWIT, stripping, expect),
      TypeError,
    ],
    [
      "expect undefined",
      () =>
        checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, undefined as unknown as ReturnedPsbtExpectation),
      TypeError,
    ],
    [
      "signableInputs an array",
      () =>
        checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, {
          ...expect,
          signableInputs: [0] as unknown as Set<number>,
        }),
      TypeError,
    ],
    [
      "signable input out of range",
      () => checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, { ...expect, signableInputs: new Set([3]) }),
      RangeError,
    ],
    [
      "allowedPubkeys a record",
      () =>
        checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, {
          ...expect,
          allowedPubkeys: {} as Map<number, Uint8Array[]>,
        }),
      TypeError,
    ],
    [
      "allowed key of 20 bytes",
      () =>
        checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, {
          ...expect,
          allowedPubkeys: new Map([[0, [new Uint8Array(20)]]]),
        }),
      RangeError,
    ],
    [
      "allowed key a string",
      () =>
        checkReturnedPsbt(SEGWIT, SEGWIT_SIGNED, {
          ...expect,
          allowedPubkeys: new Map([[0, ["02ab" as unknown as Uint8Array]]]),
        }),
      TypeError,
    ],
  ];
  for (const [name, fn, type] of cases) {
    assert.throws(fn, type, name);
  }
});
