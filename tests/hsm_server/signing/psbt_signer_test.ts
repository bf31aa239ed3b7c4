/**
 * signPsbt(): ECDSA (P2WPKH, P2SH-P2WPKH, P2PKH) and taproot key-path signing
 * checked end to end (independent verification, finalize, extract, re-parse),
 * ownership rules, and the refusals that must leave the PSBT unsigned.
 */
import assert from "node:assert/strict";
import { p2tr, SigHash, Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { PolicyViolationError, ValidationError } from "../../../src/errors/app_error.ts";
import { verifyInputSignatures } from "../../../src/bitcoin/signatures.ts";
import { extractTransaction, finalizePsbt } from "../../../src/bitcoin/psbt_ops.ts";
import { PSBT_TX_OPTS } from "../../../src/bitcoin/psbt_parse.ts";
import {
  generateKeyMaterial,
  openKey,
  type SigningKey,
} from "../../../src/hsm_server/signing/key_material.ts";
import { signPsbt, signPsbtFields } from "../../../src/hsm_server/signing/psbt_signer.ts";
import { insertInputRecords, splitPsbtMaps } from "../../../src/bitcoin/psbt_maps.ts";
import { coinFor, h, psbtHex, spendPsbt, type SpendType } from "./_psbt_builders.ts";

const NETWORK = "regtest" as const;

function newKey(kind: "bip32" | "single" = "bip32"): SigningKey {
  const material = generateKeyMaterial(kind);
  const key = openKey(kind, material, NETWORK);
  material.fill(0);
  return key;
}

const path = (type: SpendType, i: number): number[] => {
  const purpose = { "p2pkh": 44, "p2sh-p2wpkh": 49, "p2wpkh": 84, "p2tr": 86 }[type];
  return [h(purpose), h(1), h(0), 0, i];
};

/** Every signature on every input checks out, ECDSA ones are low-S. */
function assertAllValid(tx: Transaction, label: string): void {
  for (let i = 0; i < tx.inputsLength; i++) {
    const report = verifyInputSignatures(tx, i);
    assert.equal(report.status, "valid", `${label}: input ${i}`);
    for (const s of report.signatures) {
      if (s.kind === "ecdsa") assert.equal(s.lowS, true, `${label}: input ${i} low-S`);
    }
  }
}

/** Finalize, extract, and check the network transaction re-parses to the same txid. */
function finalizeAndReparse(tx: Transaction, label: string): string {
  const finalized = finalizePsbt(tx);
  assertAllValid(finalized.tx, `${label} (finalized)`);
  const extracted = extractTransaction(finalized.tx);
  const reparsed = Transaction.fromRaw(hex.decode(extracted.hex));
  assert.equal(reparsed.id, extracted.txid, label);
  assert.equal(hex.encode(reparsed.toBytes(true, true)), extracted.hex, label);
  return extracted.hex;
}

for (const type of ["p2wpkh", "p2sh-p2wpkh", "p2pkh", "p2tr"] as const) {
  Deno.test(`signPsbt() signs a ${type} input, verifiably, and it finalizes into a valid transaction`, () => {
    const key = newKey();
    const coins = [coinFor(key, path(type, 0), type), coinFor(key, path(type, 1), type)];
    const tx = spendPsbt(coins);
    const before = psbtHex(tx);
    const result = signPsbt(tx, key, { network: NETWORK });
    assert.equal(psbtHex(tx), before, "the caller's PSBT is not modified");
    assert.deepEqual(
      result.signed.map((s) => [s.input, s.scheme, s.path, s.sighashType]),
      coins.map((c, i) => [
        i,
        type === "p2tr" ? "schnorr" : "ecdsa",
        c.path,
        type === "p2tr" ? SigHash.DEFAULT : SigHash.ALL,
      ]),
    );
    for (const [i, s] of result.signed.entries()) {
      const pub = key.publicKeyAt(coins[i]!.path);
      assert.equal(s.pubkeyHex, hex.encode(type === "p2tr" ? pub.subarray(1) : pub));
    }
    assert.deepEqual(result.alreadySigned, []);
    assertAllValid(result.tx, type);
    // The base64 is the returned transaction.
    assert.equal(
      hex.encode(
        Transaction.fromPSBT(Uint8Array.from(atob(result.psbtBase64), (c) => c.charCodeAt(0)))
          .toPSBT(),
      ),
      psbtHex(result.tx),
    );
    finalizeAndReparse(result.tx, type);
    key.dispose();
  });
}

Deno.test("signPsbt() signs P2WPKH, P2SH-P2WPKH, P2PKH and P2TR inputs of one PSBT together", () => {
  const key = newKey();
  const types = ["p2wpkh", "p2sh-p2wpkh", "p2pkh", "p2tr"] as const;
  const tx = spendPsbt(types.map((t, i) => coinFor(key, path(t, i), t)));
  const result = signPsbt(tx, key, { network: NETWORK });
  assert.deepEqual(result.signed.map((s) => s.scheme), ["ecdsa", "ecdsa", "ecdsa", "schnorr"]);
  assertAllValid(result.tx, "mixed types");
  finalizeAndReparse(result.tx, "mixed types");
});

for (const version of [0, 2] as const) {
  Deno.test(`signPsbtFields() + insertInputRecords(): the signed PSBT is the v${version} original plus the records, and equals signPsbt's`, () => {
    const key = newKey();
    const types = ["p2wpkh", "p2sh-p2wpkh", "p2pkh", "p2tr"] as const;
    const built = spendPsbt(types.map((t, i) => coinFor(key, path(t, i), t)));
    const bytes = built.toPSBT(version);
    const tx = Transaction.fromPSBT(bytes, PSBT_TX_OPTS);
    const aux = new Uint8Array(32).fill(3);
    const { fields, signed } = signPsbtFields(tx, key, { network: NETWORK, auxRand: aux });
    assert.equal(fields.length, 4);
    assert.deepEqual(signed.map((x) => x.input), [0, 1, 2, 3]);
    assert.deepEqual(tx.getInput(0).partialSig, undefined, "the parse is not modified");

    const out = insertInputRecords(bytes, fields);
    const before = splitPsbtMaps(bytes);
    const after = splitPsbtMaps(out);
    assert.ok(before.ok && after.ok);
    assert.equal(after.maps.length, before.maps.length);
    for (const [m, map] of before.maps.entries()) {
      const kept = after.maps[m]!.entries.slice(0, map.entries.length);
      assert.deepEqual(kept, map.entries, `map ${m} keeps its records, in order`);
      assert.equal(after.maps[m]!.entries.length - map.entries.length, m >= 1 && m <= 4 ? 1 : 0);
    }
    const reparsed = Transaction.fromPSBT(out, PSBT_TX_OPTS);
    const viaScure = signPsbt(tx, key, { network: NETWORK, auxRand: aux }).tx;
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(reparsed.getInput(i), viaScure.getInput(i), `input ${i}`);
    }
    assertAllValid(reparsed, `records v${version}`);
    finalizeAndReparse(reparsed, `records v${version}`);
  });
}

Deno.test("insertInputRecords() refuses a key already in the map, a repeated record and a missing input", () => {
  const key = newKey();
  const tx = spendPsbt([coinFor(key, path("p2wpkh", 0), "p2wpkh")]);
  const bytes = tx.toPSBT(0);
  const signed = signPsbt(tx, key, { network: NETWORK }).tx.toPSBT(0);
  const [pub, sig] = Transaction.fromPSBT(signed, PSBT_TX_OPTS).getInput(0).partialSig![0]!;
  const record = { input: 0, keyType: 0x02, keyData: pub, value: sig };
  assert.throws(() => insertInputRecords(signed, [record]), /input 0 has that key/);
  assert.throws(() => insertInputRecords(bytes, [record, record]), /input 0 has that key/);
  assert.throws(() => insertInputRecords(bytes, [{ ...record, input: 1 }]), /no input 1/);
  assert.throws(() => insertInputRecords(bytes.subarray(0, 20), [record]), /framing/);
  // Sanity: one record is accepted and parses.
  assert.ok(Transaction.fromPSBT(insertInputRecords(bytes, [record]), PSBT_TX_OPTS));
});

Deno.test("signPsbt() ECDSA signatures are deterministic (RFC 6979); Schnorr ones use fresh aux_rand", () => {
  const key = newKey();
  const tx = spendPsbt([
    coinFor(key, path("p2wpkh", 0), "p2wpkh"),
    coinFor(key, path("p2tr", 0), "p2tr"),
  ]);
  const a = signPsbt(tx, key, { network: NETWORK }).tx;
  const b = signPsbt(tx, key, { network: NETWORK }).tx;
  assert.deepEqual(a.getInput(0).partialSig, b.getInput(0).partialSig);
  assert.notDeepEqual(a.getInput(1).tapKeySig, b.getInput(1).tapKeySig);
  // With a fixed aux_rand, BIP340 is deterministic too.
  const aux = new Uint8Array(32).fill(7);
  const c = signPsbt(tx, key, { network: NETWORK, auxRand: aux }).tx;
  const d = signPsbt(tx, key, { network: NETWORK, auxRand: aux }).tx;
  assert.deepEqual(c.getInput(1).tapKeySig, d.getInput(1).tapKeySig);
  assert.deepEqual(aux, new Uint8Array(32).fill(7), "the caller's aux_rand is not wiped");
});

Deno.test("signPsbt() keeps the PSBT version (v2 in, v2 out)", () => {
  const key = newKey();
  const v0 = spendPsbt([coinFor(key, path("p2wpkh", 0), "p2wpkh")]);
  const v2 = Transaction.fromPSBT(v0.toPSBT(2), PSBT_TX_OPTS);
  const result = signPsbt(v2, key, { network: NETWORK });
  assert.equal(result.psbtVersion, 2);
  assert.equal(result.tx.opts.PSBTVersion, 2);
  finalizeAndReparse(result.tx, "psbt v2");
});

Deno.test("signPsbt() signs a taproot key-path input whose output also commits to a script tree", () => {
  const key = newKey();
  const p = path("p2tr", 3);
  const xOnly = key.publicKeyAt(p).subarray(1);
  // A leaf of someone else's key: key path still belongs to us, the leaf is never signed.
  const other = newKey().publicKeyAt([]).subarray(1);
  const leafScript = new Uint8Array([0x20, ...other, 0xac]);
  const pay = p2tr(xOnly, { script: leafScript });
  const tx = new Transaction({ version: 2 });
  tx.addInput({
    txid: "aa".repeat(32),
    index: 1,
    witnessUtxo: { script: pay.script, amount: 50_000n },
    tapInternalKey: xOnly,
    tapMerkleRoot: pay.tapMerkleRoot,
    tapLeafScript: pay.tapLeafScript!,
    tapBip32Derivation: [[xOnly, { hashes: [], der: { fingerprint: key.fingerprint, path: p } }]],
  });
  tx.addOutput({ script: pay.script, amount: 49_000n });
  const result = signPsbt(tx, key, { network: NETWORK });
  assert.equal(result.signed.length, 1);
  assert.equal(result.tx.getInput(0).tapScriptSig, undefined, "no script-path signature");
  assertAllValid(result.tx, "taproot with tree");
  finalizeAndReparse(result.tx, "taproot with tree");
});

Deno.test("signPsbt() on a mixed PSBT signs only its key's inputs; the other key completes it", () => {
  const a = newKey();
  const b = newKey();
  const tx = spendPsbt([
    coinFor(a, path("p2wpkh", 0), "p2wpkh"),
    coinFor(b, path("p2wpkh", 0), "p2wpkh"),
    coinFor(a, path("p2tr", 0), "p2tr"),
    coinFor(b, path("p2tr", 1), "p2tr"),
  ]);
  const first = signPsbt(tx, a, { network: NETWORK });
  assert.deepEqual(first.signed.map((s) => s.input), [0, 2]);
  assert.equal(first.tx.getInput(1).partialSig, undefined, "input 1 belongs to b");
  assert.equal(first.tx.getInput(3).tapKeySig, undefined, "input 3 belongs to b");
  assert.equal(verifyInputSignatures(first.tx, 1).status, "unsigned");
  assert.equal(verifyInputSignatures(first.tx, 3).status, "unsigned");
  assert.throws(() => finalizePsbt(first.tx), /input 1 has no signatures/);
  const second = signPsbt(first.tx, b, { network: NETWORK });
  assert.deepEqual(second.signed.map((s) => s.input), [1, 3]);
  finalizeAndReparse(second.tx, "mixed keys");
});

Deno.test("signPsbt() leaves inputs it already signed as they are and reports them", () => {
  const key = newKey();
  const tx = spendPsbt([
    coinFor(key, path("p2wpkh", 0), "p2wpkh"),
    coinFor(key, path("p2tr", 0), "p2tr"),
  ]);
  const once = signPsbt(tx, key, { network: NETWORK });
  const twice = signPsbt(once.tx, key, { network: NETWORK });
  assert.deepEqual(twice.signed, []);
  assert.deepEqual(twice.alreadySigned, [0, 1]);
  assert.equal(psbtHex(twice.tx), psbtHex(once.tx), "the taproot signature is not replaced");
});

Deno.test("signPsbt() skips finalized inputs", () => {
  const key = newKey();
  const tx = spendPsbt([
    coinFor(key, path("p2wpkh", 0), "p2wpkh"),
    coinFor(key, path("p2wpkh", 1), "p2wpkh"),
  ]);
  const signed = signPsbt(tx, key, { network: NETWORK }).tx;
  signed.finalizeIdx(0);
  // Input 0 is final (its derivation is gone, and it is not looked at); input 1 is signed already.
  const again = signPsbt(signed, key, { network: NETWORK });
  assert.deepEqual(again.signed, []);
  assert.deepEqual(again.alreadySigned, [1]);
  signed.finalizeIdx(1);
  assertRefused(signed, key, { check: "no-owned-input" });
});

Deno.test("signPsbt() with a single key signs inputs paying its key without any derivation", () => {
  const key = newKey("single");
  const types = ["p2wpkh", "p2sh-p2wpkh", "p2pkh", "p2tr"] as const;
  const tx = spendPsbt(types.map((t) => coinFor(key, [], t, 100_000n, { derivation: false })));
  const result = signPsbt(tx, key, { network: NETWORK });
  assert.deepEqual(result.signed.map((s) => [s.input, s.path]), [[0, []], [1, []], [2, []], [
    3,
    [],
  ]]);
  finalizeAndReparse(result.tx, "single key");
});

Deno.test("signPsbt() with a single key also honours a derivation record of its Core-style fingerprint", () => {
  const key = newKey("single");
  const coin = coinFor(key, [], "p2wpkh"); // bip32Derivation with fingerprint = HASH160(pubkey)[0..4], path m
  const result = signPsbt(spendPsbt([coin]), key, { network: NETWORK });
  assert.deepEqual(result.signed.map((s) => s.input), [0]);
});

// ---------------------------------------------------------------------------------------------
// Refusals: each leaves nothing signed (the call throws, the caller's PSBT is unchanged).
// ---------------------------------------------------------------------------------------------

function assertRefused(
  tx: Transaction,
  key: SigningKey,
  expected: {
    check: string;
    input?: number;
    type?: typeof ValidationError | typeof PolicyViolationError;
  },
  options: Partial<Parameters<typeof signPsbt>[2]> = {},
): void {
  const before = psbtHex(tx);
  assert.throws(() => signPsbt(tx, key, { network: NETWORK, ...options }), (e: unknown) => {
    assert.ok(e instanceof (expected.type ?? ValidationError), String(e));
    assert.equal(e.status, 422);
    assert.equal(e.extensions["check"], expected.check, e.message);
    if (expected.input !== undefined) assert.equal(e.extensions["input"], expected.input);
    assert.doesNotMatch(e.message, /[0-9a-f]{64}/, "no key material or hashes in the message");
    return true;
  });
  assert.equal(psbtHex(tx), before);
}

Deno.test("signPsbt() refuses a PSBT none of whose inputs belongs to the key: 422", () => {
  const mine = newKey();
  const theirs = newKey();
  const tx = spendPsbt([
    coinFor(theirs, path("p2wpkh", 0), "p2wpkh"),
    coinFor(theirs, path("p2tr", 0), "p2tr"),
  ]);
  assertRefused(tx, mine, { check: "no-owned-input" });
  assert.throws(
    () => signPsbt(tx, mine, { network: NETWORK }),
    new RegExp(
      `^ValidationError: Cannot sign PSBT: no input of this PSBT belongs to key ${mine.fingerprintHex}$`,
    ),
  );
});

Deno.test("signPsbt() refuses a derivation whose path derives another public key, signing nothing", () => {
  const key = newKey();
  const good = coinFor(key, path("p2wpkh", 0), "p2wpkh");
  const bad = coinFor(key, path("p2wpkh", 1), "p2wpkh");
  // Claims our fingerprint at path .../1 but names the key at .../2.
  const wrongPub = key.publicKeyAt(path("p2wpkh", 2));
  bad.input.bip32Derivation = [[wrongPub, { fingerprint: key.fingerprint, path: bad.path }]];
  assertRefused(spendPsbt([good, bad]), key, { check: "derivation-mismatch", input: 1 });
  assert.throws(
    () => signPsbt(spendPsbt([good, bad]), key, { network: NETWORK }),
    /input 1 derivation does not match key [0-9a-f]{8}: PSBT_IN_BIP32_DERIVATION at m\/84'\/1'\/0'\/0\/1/,
  );
});

Deno.test("signPsbt() refuses a taproot derivation that does not derive, or is not the internal key", () => {
  const key = newKey();
  const coin = coinFor(key, path("p2tr", 0), "p2tr");
  const other = key.publicKeyAt(path("p2tr", 9)).subarray(1);
  const der = { fingerprint: key.fingerprint, path: coin.path };
  const lying = {
    ...coin,
    input: { ...coin.input, tapBip32Derivation: [[other, { hashes: [], der }]] },
  };
  assertRefused(spendPsbt([lying as typeof coin]), key, { check: "derivation-mismatch", input: 0 });
  // Derives correctly but the PSBT says another key is the internal key.
  const mine = key.publicKeyAt(coin.path).subarray(1);
  const notInternal = {
    ...coin,
    input: {
      ...coin.input,
      tapInternalKey: other,
      tapBip32Derivation: [[mine, { hashes: [], der }]],
    },
  };
  assertRefused(spendPsbt([notInternal as typeof coin]), key, { check: "derivation-mismatch" });
});

Deno.test("signPsbt() does not sign taproot script-path keys (derivations with leaf hashes)", () => {
  const key = newKey();
  const coin = coinFor(key, path("p2tr", 0), "p2tr");
  const xOnly = key.publicKeyAt(coin.path).subarray(1);
  const scriptPathOnly = {
    ...coin,
    input: {
      ...coin.input,
      tapInternalKey: newKey().publicKeyAt([]).subarray(1),
      tapBip32Derivation: [[xOnly, {
        hashes: [new Uint8Array(32).fill(1)],
        der: { fingerprint: key.fingerprint, path: coin.path },
      }]],
    },
  };
  assertRefused(spendPsbt([scriptPathOnly as typeof coin]), key, { check: "no-owned-input" });
});

Deno.test("signPsbt() refuses a derivation of its key on an input whose script pays another key", () => {
  const key = newKey();
  const other = newKey();
  const coin = coinFor(other, path("p2wpkh", 0), "p2wpkh");
  const p = path("p2wpkh", 5);
  coin.input.bip32Derivation = [[key.publicKeyAt(p), { fingerprint: key.fingerprint, path: p }]];
  assertRefused(spendPsbt([coin]), key, { check: "key-not-in-script", input: 0 });
});

Deno.test("signPsbt() refuses a sighash type the policy does not allow, for any input", () => {
  const key = newKey();
  const coins = [
    coinFor(key, path("p2wpkh", 0), "p2wpkh"),
    coinFor(key, path("p2wpkh", 1), "p2wpkh"),
  ];
  coins[1]!.input.sighashType = SigHash.NONE;
  // Default policy: ALL only.
  assertRefused(spendPsbt(coins), key, {
    check: "sighash-not-allowed",
    input: 1,
    type: PolicyViolationError,
  });
  // An explicit policy that allows NONE signs both; one that allows only SINGLE refuses even the
  // input without a sighash field (it would be signed with ALL).
  const ok = signPsbt(spendPsbt(coins), key, {
    network: NETWORK,
    allowedSighashTypes: [SigHash.ALL, SigHash.NONE],
  });
  assert.deepEqual(ok.signed.map((s) => s.sighashType), [SigHash.ALL, SigHash.NONE]);
  assertAllValid(ok.tx, "ALL + NONE");
  assertRefused(spendPsbt([coinFor(key, path("p2wpkh", 2), "p2wpkh")]), key, {
    check: "sighash-not-allowed",
    type: PolicyViolationError,
  }, { allowedSighashTypes: [SigHash.SINGLE] });
});

Deno.test("signPsbt() taproot: implicit DEFAULT is allowed by a policy of ALL; explicit types must be listed", () => {
  const key = newKey();
  const coin = coinFor(key, path("p2tr", 0), "p2tr");
  const signed = signPsbt(spendPsbt([coin]), key, {
    network: NETWORK,
    allowedSighashTypes: [SigHash.ALL],
  });
  assert.equal(signed.signed[0]!.sighashType, SigHash.DEFAULT);
  assert.equal(signed.tx.getInput(0).tapKeySig!.length, 64);
  coin.input.sighashType = SigHash.ALL_ANYONECANPAY;
  assertRefused(spendPsbt([coin]), key, {
    check: "sighash-not-allowed",
    type: PolicyViolationError,
  });
  const acp = signPsbt(spendPsbt([coin]), key, {
    network: NETWORK,
    allowedSighashTypes: [SigHash.ALL_ANYONECANPAY],
  });
  assert.equal(acp.tx.getInput(0).tapKeySig!.length, 65);
  assert.equal(acp.tx.getInput(0).tapKeySig![64], SigHash.ALL_ANYONECANPAY);
  finalizeAndReparse(acp.tx, "taproot ALL|ANYONECANPAY");
});

Deno.test("signPsbt() refuses SIGHASH_SINGLE without a matching output, and undefined hash types", () => {
  const key = newKey();
  const coins = [
    coinFor(key, path("p2wpkh", 0), "p2wpkh"),
    coinFor(key, path("p2wpkh", 1), "p2wpkh"),
  ];
  coins[1]!.input.sighashType = SigHash.SINGLE;
  const allow = { allowedSighashTypes: [SigHash.ALL, SigHash.SINGLE, 0x04] };
  assertRefused(spendPsbt(coins), key, { check: "sighash-single-without-output", input: 1 }, allow);
  // With a second output, SINGLE has its output and is signed.
  const ok = signPsbt(spendPsbt(coins, 1), key, { network: NETWORK, ...allow });
  assertAllValid(ok.tx, "SINGLE");
  coins[1]!.input.sighashType = 0x04;
  assertRefused(spendPsbt(coins, 1), key, { check: "sighash-undefined", input: 1 }, allow);
});

Deno.test("signPsbt() refuses a P2PKH input that carries only a witness UTXO (BIP174)", () => {
  const key = newKey();
  const coin = coinFor(key, path("p2pkh", 0), "p2pkh");
  const witnessOnly = {
    ...coin,
    input: {
      txid: coin.input.txid,
      index: 0,
      witnessUtxo: { script: coin.script, amount: coin.amount },
      bip32Derivation: coin.input.bip32Derivation,
    },
  };
  assertRefused(spendPsbt([witnessOnly as typeof coin]), key, {
    check: "witness-utxo-for-non-witness-input",
    input: 0,
  });
});

Deno.test("signPsbt() refuses segwit inputs without their previous transaction when the policy demands it", () => {
  const key = newKey();
  const tx = spendPsbt([coinFor(key, path("p2wpkh", 0), "p2wpkh")]);
  assertRefused(tx, key, { check: "non-witness-utxo-required", input: 0 }, {
    requireNonWitnessUtxo: true,
  });
});

Deno.test("signPsbt() refuses taproot signing when another input's UTXO is unknown", () => {
  const key = newKey();
  const theirs = coinFor(newKey(), path("p2wpkh", 0), "p2wpkh");
  const { witnessUtxo: _dropped, ...noUtxo } = theirs.input;
  const tx = spendPsbt([coinFor(key, path("p2tr", 0), "p2tr"), { ...theirs, input: noUtxo }]);
  assertRefused(tx, key, { check: "taproot-prevouts-missing", input: 1 });
});

Deno.test("signPsbt() refuses a key opened for another network", () => {
  const material = generateKeyMaterial("bip32");
  const key = openKey("bip32", material, "mainnet");
  const tx = spendPsbt([coinFor(key, path("p2wpkh", 0), "p2wpkh")]);
  assertRefused(tx, key, { check: "network-mismatch" });
  assert.equal(signPsbt(tx, key, { network: "mainnet" }).signed.length, 1);
});

Deno.test("signPsbt() throws TypeError/RangeError on wrong argument types", () => {
  const key = newKey();
  const tx = spendPsbt([coinFor(key, path("p2wpkh", 0), "p2wpkh")]);
  const cases: [string, () => unknown, ErrorConstructor][] = [
    [
      "tx null",
      () => signPsbt(null as unknown as Transaction, key, { network: NETWORK }),
      TypeError,
    ],
    [
      "tx bytes",
      () => signPsbt(new Uint8Array() as unknown as Transaction, key, { network: NETWORK }),
      TypeError,
    ],
    [
      "key null",
      () => signPsbt(tx, null as unknown as SigningKey, { network: NETWORK }),
      TypeError,
    ],
    [
      "key bytes",
      () => signPsbt(tx, new Uint8Array(32) as unknown as SigningKey, { network: NETWORK }),
      TypeError,
    ],
    ["options null", () => signPsbt(tx, key, null as unknown as { network: "regtest" }), TypeError],
    ["network", () => signPsbt(tx, key, { network: "testnet3" as "regtest" }), TypeError],
    [
      "auxRand size",
      () => signPsbt(tx, key, { network: NETWORK, auxRand: new Uint8Array(31) }),
      RangeError,
    ],
    [
      "sighash list",
      () =>
        signPsbt(tx, key, { network: NETWORK, allowedSighashTypes: "ALL" as unknown as number[] }),
      TypeError,
    ],
    [
      "sighash byte",
      () => signPsbt(tx, key, { network: NETWORK, allowedSighashTypes: [256] }),
      RangeError,
    ],
  ];
  for (const [label, call, type] of cases) assert.throws(call, type, label);
});

Deno.test("signPsbt() refuses to use a disposed key", () => {
  const key = newKey();
  const tx = spendPsbt([coinFor(key, path("p2wpkh", 0), "p2wpkh")]);
  key.dispose();
  assert.throws(() => signPsbt(tx, key, { network: NETWORK }), /was disposed/);
});
