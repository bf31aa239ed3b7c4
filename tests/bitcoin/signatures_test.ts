import assert from "node:assert/strict";
import { Script, Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { btcToSats } from "../../src/bitcoin/amount.ts";
import { type PrevOut, segwitV0Sighash, verifyEcdsa } from "../../src/bitcoin/sighash.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";

// Every input of every transaction of two mainnet blocks (Bitcoin Core `getblock <hash> 3`,
// tests/fixtures/blocks/README.md). BIP340/BIP341 vectors are covered by bip340_schnorr_test.ts
// and bip341_taproot_test.ts; this file is the real-chain check of the legacy, P2SH, segwit v0
// and taproot paths of `verifyInputSignatures`.
interface BlockTx {
  txid: string;
  hex: string;
  vin: {
    coinbase?: string;
    txinwitness?: string[];
    prevout?: { value: number; scriptPubKey: { hex: string; type: string } };
  }[];
}
interface Block {
  height: number;
  tx: BlockTx[];
}

async function loadBlock(name: string): Promise<Block> {
  const url = new URL(`../fixtures/blocks/${name}.getblock3.json`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url)) as Block;
}

// Mainnet transactions may pay scripts scure does not name (bare multisig, OP_RETURN variants).
const RAW_OPTS = { allowUnknownOutputs: true, allowUnknownVersion: true, disableScriptCheck: true };

interface LoadedTx {
  block: number;
  txid: string;
  hex: string;
  tx: Transaction;
  prevouts: PrevOut[];
  /** Core's name of each spent output's type (`pubkeyhash`, `witness_v0_keyhash`...). */
  types: string[];
  witnesses: string[][];
}

const TXS: LoadedTx[] = [];
for (const name of ["block_361582", "block_739990"]) {
  const block = await loadBlock(name);
  for (const t of block.tx) {
    if (t.vin[0]?.coinbase !== undefined) continue;
    TXS.push({
      block: block.height,
      txid: t.txid,
      hex: t.hex,
      tx: Transaction.fromRaw(hex.decode(t.hex), RAW_OPTS),
      // btcToSats is exact on Core's amounts: tx_metrics_test.ts checks it on every one of them.
      prevouts: t.vin.map((i) => ({
        script: hex.decode(i.prevout!.scriptPubKey.hex),
        amountSats: btcToSats(i.prevout!.value),
      })),
      types: t.vin.map((i) => i.prevout!.scriptPubKey.type),
      witnesses: t.vin.map((i) => i.txinwitness ?? []),
    });
  }
}

/**
 * Inputs whose script `verifyInputSignatures` does not evaluate (it reports them `unverifiable`):
 * Lightning/atomic-swap HTLC and to_local witness scripts, and one P2SH `OP_1` redeemScript.
 */
const NON_TEMPLATE_INPUTS = new Set([
  "361582:ed83ab48cabb8e20fe4b862e78d7176e286020cb247a71c8db3681dafbd3b90d:0",
  "739990:5c69686d851cf5ae34ce1c69c37d957c75532735810a1e87b1f613ea81434934:0",
  "739990:93faef6b64ca916987f64e4a866a6c1b407145cabab61f33f96a86a8cf362c28:0",
  "739990:593e1b9602bb3deaf0c2c84c80e3fec374163f35a14948911ff6b8d12d062a5c:0",
  "739990:7aa4c50b746e279bb6bb77b34c4801e7489676bffa941e171226213e32b893c2:0",
  "739990:7119198ac7a3e8fa6b01fda14451f9d51b3d6bddc685013601998967a9aafc36:0",
  "739990:748388e387ca8f1ceaa15611cfe51e0ced54c9ed7dfcc20e778a9157a3b67f11:0",
  "739990:59b57842f4e29514fcf4c29903ed7d692f18e9867b08bb7eb5d2fab9bd759cb1:0",
  "739990:f9f753784617728efbf37d0ee347d9a6575906cc130790cdcfb1e4de0c7b6e4f:0",
]);

const where = (t: LoadedTx, i: number) => `block ${t.block} tx ${t.txid} input ${i}`;

interface BlockPass {
  byType: Record<string, number>;
  failures: string[];
  nonTemplate: { t: LoadedTx; index: number; reason: string }[];
  inputs: number;
  signatures: number;
  highS: number;
}
let cachedPass: BlockPass | undefined;

/** Every input of both blocks through verifyInputSignatures, once (the slow part, ~3,800 checks). */
function wholeBlockPass(): BlockPass {
  cachedPass ??= runWholeBlockPass();
  return cachedPass;
}

function runWholeBlockPass(): BlockPass {
  const byType: Record<string, number> = {};
  const failures: string[] = [];
  const nonTemplate: BlockPass["nonTemplate"] = [];
  let inputs = 0;
  let signatures = 0;
  let highS = 0;
  for (const t of TXS) {
    for (let i = 0; i < t.tx.inputsLength; i++) {
      inputs++;
      const r = verifyInputSignatures(t.tx, i, { prevouts: t.prevouts });
      if (!r.finalized) failures.push(`${where(t, i)}: not finalized`);
      if (r.status === "unverifiable" && NON_TEMPLATE_INPUTS.has(`${t.block}:${t.txid}:${i}`)) {
        nonTemplate.push({ t, index: i, reason: r.reason ?? "" });
        continue;
      }
      if (r.status !== "valid" || r.signatures.some((s) => s.status !== "valid")) {
        failures.push(`${where(t, i)}: ${JSON.stringify(r)}`);
      }
      byType[t.types[i]!] = (byType[t.types[i]!] ?? 0) + 1;
      signatures += r.signatures.length;
      highS += r.signatures.filter((s) => s.lowS === false).length;
    }
  }
  return { byType, failures, nonTemplate, inputs, signatures, highS };
}

Deno.test("verifyInputSignatures() accepts every signature of every input of mainnet blocks 361582 and 739990", () => {
  const pass = wholeBlockPass();
  assert.equal(TXS.length, 920);
  assert.equal(pass.inputs, 3087);
  assert.deepEqual(pass.failures, []);
  // 3078 template inputs checked through signatures.ts: legacy, P2SH (multisig, P2SH-P2WPKH,
  // P2SH-P2WSH), P2WPKH, P2WSH multisig and the block's one taproot key-path spend.
  assert.deepEqual(pass.byType, {
    pubkeyhash: 898 + 211,
    scripthash: 19 + 1354,
    witness_v0_keyhash: 557,
    witness_v0_scripthash: 38,
    witness_v1_taproot: 1,
  });
  assert.equal(pass.signatures, 3833);
  assert.equal(pass.nonTemplate.length, NON_TEMPLATE_INPUTS.size);
});

Deno.test("verifyInputSignatures() accepts the high-S signatures of block 361582 and reports them (lowS false)", () => {
  // BIP146 low-S is policy, not consensus: such signatures are valid and only flagged.
  const pass = wholeBlockPass();
  // All in block 361582 (2015); counted independently from the DER S values of the fixture.
  assert.equal(pass.highS, 73);
});

Deno.test("sighash.ts verifies the signatures of the mainnet inputs whose scripts signatures.ts does not evaluate", () => {
  // The witness scripts (HTLCs, to_local) are not templates, so check each DER signature in the
  // witness directly: BIP143 digest with the witnessScript as scriptCode, against a key it pushes.
  let checked = 0;
  for (const { t, index, reason } of wholeBlockPass().nonTemplate) {
    const msg = where(t, index);
    assert.match(
      reason,
      /^cannot evaluate a (P2SH redeemScript|witnessScript) of type nonstandard$/,
    );
    const witness = t.witnesses[index]!.map((w) => hex.decode(w));
    if (witness.length === 0) {
      // P2SH whose redeemScript is OP_1: anyone can spend it, there is no signature to check.
      assert.deepEqual(t.tx.getInput(index).finalScriptSig, hex.decode("0151"), msg);
      continue;
    }
    const script = witness[witness.length - 1]!;
    const keys = Script.decode(script).filter((op): op is Uint8Array =>
      op instanceof Uint8Array && op.length === 33
    );
    const sigs = witness.slice(0, -1).filter((w) => w.length >= 9 && w[0] === 0x30);
    assert.ok(sigs.length > 0, msg);
    for (const sig of sigs) {
      const digest = segwitV0Sighash(
        t.tx,
        index,
        script,
        t.prevouts[index]!.amountSats,
        sig[sig.length - 1]!,
      );
      const ok = keys.some((k) => verifyEcdsa(k, digest, sig.subarray(0, -1)).valid);
      assert.ok(ok, `${msg}: signature ${hex.encode(sig)}`);
      checked++;
    }
  }
  assert.equal(checked, 15);
});

/** The raw transaction with byte 10 of `sig` flipped (inside R for DER, inside r for Schnorr). */
function flipSignatureByte(t: LoadedTx, sig: Uint8Array): Transaction {
  const sigHex = hex.encode(sig);
  assert.equal(t.hex.split(sigHex).length, 2, "the signature occurs once in the transaction");
  const flipped = sig.slice();
  flipped[10]! ^= 0x01;
  return Transaction.fromRaw(hex.decode(t.hex.replace(sigHex, hex.encode(flipped))), RAW_OPTS);
}

/** The first signature in an input's scriptSig or witness. */
function firstSignature(t: LoadedTx, index: number): Uint8Array {
  const input = t.tx.getInput(index);
  const items = [
    ...(input.finalScriptWitness ?? []),
    ...Script.decode(input.finalScriptSig ?? new Uint8Array()).filter((op) =>
      op instanceof Uint8Array
    ) as Uint8Array[],
  ];
  const sig = items.find((w) =>
    (w.length >= 9 && w.length <= 73 && w[0] === 0x30) || w.length === 64 || w.length === 65
  );
  assert.ok(sig, where(t, index));
  return sig;
}

Deno.test("verifyInputSignatures() reports a flipped signature byte as invalid, for each spend type in the blocks", () => {
  // One input per (block, spent output type), plus a multisig input's second signature and a
  // high-S signature; the transaction's other inputs keep verifying.
  const picked = new Map<string, { t: LoadedTx; index: number }>();
  for (const t of TXS) {
    if (t.tx.inputsLength > 20) continue; // keep the re-verification cheap
    for (let i = 0; i < t.tx.inputsLength; i++) {
      if (NON_TEMPLATE_INPUTS.has(`${t.block}:${t.txid}:${i}`)) continue;
      const key = `${t.block}:${t.types[i]}`;
      if (!picked.has(key)) picked.set(key, { t, index: i });
    }
  }
  assert.equal(picked.size, 7);
  let flipped = 0;
  for (const [key, { t, index }] of picked) {
    const tampered = flipSignatureByte(t, firstSignature(t, index));
    const r = verifyInputSignatures(tampered, index, { prevouts: t.prevouts });
    assert.equal(r.status, "invalid", `${key}: ${where(t, index)}`);
    assert.ok(r.signatures.some((s) => s.status === "invalid"), key);
    for (let i = 0; i < tampered.inputsLength; i++) {
      if (i === index || NON_TEMPLATE_INPUTS.has(`${t.block}:${t.txid}:${i}`)) continue;
      const other = verifyInputSignatures(tampered, i, { prevouts: t.prevouts }).status;
      assert.equal(other, "valid", `${key}: other input ${i}`);
    }
    flipped++;
  }
  assert.equal(flipped, 7);
});

Deno.test("verifyInputSignatures() reports a flipped byte in a multisig input's second signature, and in a high-S signature", () => {
  const multisig = TXS.find((t) => t.block === 739990 && t.types[0] === "witness_v0_scripthash")!;
  const second = multisig.tx.getInput(0).finalScriptWitness![2]!;
  const r = verifyInputSignatures(flipSignatureByte(multisig, second), 0, {
    prevouts: multisig.prevouts,
  });
  assert.equal(r.status, "invalid", where(multisig, 0));
  assert.deepEqual(r.signatures.map((s) => s.status), ["valid", "invalid"]);

  let found = false;
  for (const t of TXS.filter((x) => x.block === 361582 && x.tx.inputsLength <= 20)) {
    for (let i = 0; i < t.tx.inputsLength && !found; i++) {
      const before = verifyInputSignatures(t.tx, i, { prevouts: t.prevouts });
      if (before.signatures[0]?.lowS !== false) continue;
      const after = verifyInputSignatures(flipSignatureByte(t, firstSignature(t, i)), i, {
        prevouts: t.prevouts,
      });
      assert.equal(after.status, "invalid", where(t, i));
      found = true;
    }
    if (found) break;
  }
  assert.ok(found, "a high-S signature in block 361582");
});

Deno.test("verifyInputSignatures() reports an input as invalid when the spent amount is wrong (BIP143 commits to it)", () => {
  const t = TXS.find((x) => x.types[0] === "witness_v0_keyhash")!;
  const lied = t.prevouts.map((p, i) => i === 0 ? { ...p, amountSats: p.amountSats + 1n } : p);
  assert.equal(verifyInputSignatures(t.tx, 0, { prevouts: t.prevouts }).status, "valid");
  assert.equal(verifyInputSignatures(t.tx, 0, { prevouts: lied }).status, "invalid");
  // A legacy signature does not commit to the amount.
  const legacy = TXS.find((x) => x.types[0] === "pubkeyhash" && x.tx.inputsLength === 1)!;
  const legacyLied = [{ ...legacy.prevouts[0]!, amountSats: 1n }];
  assert.equal(verifyInputSignatures(legacy.tx, 0, { prevouts: legacyLied }).status, "valid");
});

Deno.test("verifyInputSignatures() is unverifiable without prevouts for raw transactions, and checks its arguments", () => {
  const t = TXS[0]!;
  const r = verifyInputSignatures(t.tx, 0);
  assert.equal(r.status, "unverifiable");
  assert.equal(r.reason, "missing UTXO data");
  assert.equal(verifyInputSignatures(t.tx, 0, { prevouts: [null] }).status, "unverifiable");
  const table: [string, () => unknown, ErrorConstructor][] = [
    ["tx not a Transaction", () => verifyInputSignatures({} as Transaction, 0), TypeError],
    ["index out of range", () => verifyInputSignatures(t.tx, 5), RangeError],
    ["index not an integer", () => verifyInputSignatures(t.tx, 0.5), TypeError],
    [
      "prevouts not an array",
      () => verifyInputSignatures(t.tx, 0, { prevouts: {} as PrevOut[] }),
      TypeError,
    ],
    [
      "prevouts too long",
      () => verifyInputSignatures(t.tx, 0, { prevouts: [null, null] }),
      RangeError,
    ],
  ];
  for (const [name, call, type] of table) assert.throws(call, type, name);
});
