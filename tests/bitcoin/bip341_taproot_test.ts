import assert from "node:assert/strict";
import { Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import {
  describeAddress,
  taprootOutput,
  type TaprootTreeInput,
} from "../../src/bitcoin/address.ts";
import { type PrevOut, taprootSighash, verifySchnorr } from "../../src/bitcoin/sighash.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";

interface Leaf {
  id: number;
  script: string;
  leafVersion: number;
}
type Tree = Leaf | [Tree, Tree];
interface SpkCase {
  given: { internalPubkey: string; scriptTree: Tree | null };
  intermediary: { merkleRoot: string | null; tweakedPubkey: string };
  expected: { scriptPubKey: string; bip350Address: string; scriptPathControlBlocks?: string[] };
}
interface KeyPathSpending {
  given: { rawUnsignedTx: string; utxosSpent: { scriptPubKey: string; amountSats: number }[] };
  inputSpending: {
    given: { txinIndex: number; hashType: number };
    intermediary: { sigHash: string };
    expected: { witness: string[] };
  }[];
  auxiliary: { fullySignedTx: string };
}

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/bip341/wallet-test-vectors.json", import.meta.url)),
) as { scriptPubKey: SpkCase[]; keyPathSpending: KeyPathSpending[] };

function toTree(t: Tree): TaprootTreeInput {
  return Array.isArray(t)
    ? [toTree(t[0]), toTree(t[1])]
    : { script: hex.decode(t.script), leafVersion: t.leafVersion };
}

// The vector transactions pay a non-standard 32-byte script; scure needs these flags to load them.
const RAW_OPTS = { allowUnknownOutputs: true, allowUnknownVersion: true, disableScriptCheck: true };

const kp = vectors.keyPathSpending[0]!;
const prevouts: PrevOut[] = kp.given.utxosSpent.map((u) => ({
  script: hex.decode(u.scriptPubKey),
  amountSats: BigInt(u.amountSats),
}));

Deno.test("BIP341 vectors: 7 scriptPubKey cases, 1 key-path spending with 7 inputs", () => {
  assert.equal(vectors.scriptPubKey.length, 7);
  assert.equal(vectors.keyPathSpending.length, 1);
  assert.equal(kp.inputSpending.length, 7);
});

Deno.test("taprootOutput() builds each BIP341 scriptPubKey case: output key, script, address, control blocks", () => {
  vectors.scriptPubKey.forEach((c, i) => {
    const msg = `BIP341 scriptPubKey case ${i}`;
    const tree = c.given.scriptTree === null ? null : toTree(c.given.scriptTree);
    const out = taprootOutput(hex.decode(c.given.internalPubkey), tree, "mainnet");
    assert.equal(hex.encode(out.outputKey), c.intermediary.tweakedPubkey, msg);
    assert.equal(hex.encode(out.scriptPubKey), c.expected.scriptPubKey, msg);
    assert.equal(out.address, c.expected.bip350Address, msg);
    assert.equal(
      out.merkleRoot === null ? null : hex.encode(out.merkleRoot),
      c.intermediary.merkleRoot,
      msg,
    );
    assert.deepEqual(
      out.controlBlocks.map(hex.encode),
      c.expected.scriptPathControlBlocks ?? [],
      msg,
    );
  });
});

Deno.test("describeAddress() decodes each BIP341 address to its scriptPubKey as p2tr", () => {
  vectors.scriptPubKey.forEach((c, i) => {
    const d = describeAddress(c.expected.bip350Address, "mainnet");
    assert.deepEqual(d, {
      valid: true,
      network: "mainnet",
      type: "p2tr",
      scriptPubKeyHex: c.expected.scriptPubKey,
      witnessVersion: 1,
    }, `BIP341 scriptPubKey case ${i}`);
  });
});

Deno.test("taprootSighash() computes each BIP341 key-path input's sigHash", () => {
  const tx = Transaction.fromRaw(hex.decode(kp.given.rawUnsignedTx), RAW_OPTS);
  for (const input of kp.inputSpending) {
    const { txinIndex, hashType } = input.given;
    assert.equal(
      hex.encode(taprootSighash(tx, txinIndex, prevouts, hashType)),
      input.intermediary.sigHash,
      `BIP341 keyPathSpending input ${txinIndex} (hashType ${hashType})`,
    );
  }
});

Deno.test("verifyInputSignatures() accepts the expected witness of each BIP341 key-path input", () => {
  const signed = Transaction.fromRaw(hex.decode(kp.auxiliary.fullySignedTx), RAW_OPTS);
  for (const input of kp.inputSpending) {
    const { txinIndex, hashType } = input.given;
    const msg = `BIP341 keyPathSpending input ${txinIndex}`;
    // The fully signed transaction carries exactly the expected witness.
    assert.deepEqual(
      signed.getInput(txinIndex).finalScriptWitness!.map(hex.encode),
      input.expected.witness,
      msg,
    );
    const r = verifyInputSignatures(signed, txinIndex, { prevouts });
    assert.equal(r.status, "valid", `${msg}: ${JSON.stringify(r)}`);
    assert.equal(r.signatures.length, 1, msg);
    assert.equal(r.signatures[0]!.sighashType, hashType, msg);
    assert.equal(r.signatures[0]!.source, "final_script_witness", msg);
    // The same signature over the vector's sigHash, directly through verifySchnorr.
    const sig = hex.decode(input.expected.witness[0]!).subarray(0, 64);
    const outputKey = prevouts[txinIndex]!.script.subarray(2);
    assert.ok(verifySchnorr(outputKey, hex.decode(input.intermediary.sigHash), sig), msg);
  }
  // The two non-taproot inputs (P2PKH, P2WPKH) of the vector transaction verify too.
  for (const i of [2, 5]) {
    assert.equal(verifyInputSignatures(signed, i, { prevouts }).status, "valid", `input ${i}`);
  }
});

Deno.test("verifyInputSignatures() rejects a BIP341 key-path signature when an amount it commits to changes", () => {
  const signed = Transaction.fromRaw(hex.decode(kp.auxiliary.fullySignedTx), RAW_OPTS);
  // Input 3 signs SIGHASH_ALL (all amounts): lie about input 0's amount.
  const lied = prevouts.map((p, i) => i === 0 ? { ...p, amountSats: p.amountSats + 1n } : p);
  assert.equal(verifyInputSignatures(signed, 3, { prevouts: lied }).status, "invalid");
  // Input 1 signs SINGLE|ANYONECANPAY: other inputs' amounts are not committed to.
  assert.equal(verifyInputSignatures(signed, 1, { prevouts: lied }).status, "valid");
});

Deno.test("taprootSighash() throws TypeError/RangeError for wrong arguments", () => {
  const tx = Transaction.fromRaw(hex.decode(kp.given.rawUnsignedTx), RAW_OPTS);
  const table: [string, () => unknown, ErrorConstructor][] = [
    ["tx not a Transaction", () => taprootSighash({} as Transaction, 0, prevouts, 0), TypeError],
    ["index out of range", () => taprootSighash(tx, 9, prevouts, 0), RangeError],
    ["index not integer", () => taprootSighash(tx, 0.5, prevouts, 0), TypeError],
    ["prevouts not array", () => taprootSighash(tx, 0, {} as PrevOut[], 0), TypeError],
    ["prevouts too short", () => taprootSighash(tx, 0, prevouts.slice(1), 0), RangeError],
    [
      "amount number",
      () =>
        taprootSighash(
          tx,
          0,
          prevouts.map((p) => ({ ...p, amountSats: 1 as unknown as bigint })),
          0,
        ),
      TypeError,
    ],
    ["hashType 0x04", () => taprootSighash(tx, 0, prevouts, 4), RangeError],
    ["hashType string", () => taprootSighash(tx, 0, prevouts, "1" as unknown as number), TypeError],
  ];
  for (const [name, call, type] of table) assert.throws(call, type, name);
});

Deno.test("taprootOutput() throws TypeError/RangeError for wrong arguments", () => {
  const key = hex.decode(vectors.scriptPubKey[0]!.given.internalPubkey);
  const table: [string, () => unknown, ErrorConstructor][] = [
    ["key string", () => taprootOutput("00" as unknown as Uint8Array, null, "mainnet"), TypeError],
    ["key 33 bytes", () => taprootOutput(new Uint8Array(33), null, "mainnet"), RangeError],
    ["network unknown", () => taprootOutput(key, null, "testnet" as "mainnet"), TypeError],
    [
      "leaf without script",
      () => taprootOutput(key, { leafVersion: 0xc0 } as unknown as TaprootTreeInput, "mainnet"),
      TypeError,
    ],
  ];
  for (const [name, call, type] of table) assert.throws(call, type, name);
});
