import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { p2ms, p2sh, p2tr, p2wpkh, p2wsh, SigHash, Transaction } from "@scure/btc-signer";
import { assertSignable, type SignerCheck } from "../../src/bitcoin/signing_check.ts";
import { PolicyViolationError, ValidationError } from "../../src/errors/app_error.ts";

const PRIV = [1, 2].map((n) => hex.decode(n.toString(16).padStart(64, "0")));
const PUB = PRIV.map((k) => secp256k1.getPublicKey(k, true));
const WPKH = p2wpkh(PUB[0]!);
const TR = p2tr(PUB[0]!.slice(1));
const OUT = p2wpkh(PUB[1]!).script;
const TXID = (n: number) => n.toString(16).padStart(2, "0").repeat(32);

/** A transaction built without scure's script checks, so inconsistent PSBTs can be made. */
function build(inputs: Parameters<Transaction["addInput"]>[0][]): Transaction {
  const tx = new Transaction({ disableScriptCheck: true, allowUnknownInputs: true });
  for (const i of inputs) tx.addInput(i);
  tx.addOutput({ script: OUT, amount: 1_000n });
  return tx;
}

function refused(fn: () => unknown, input: number, check: SignerCheck): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError || e instanceof PolicyViolationError, String(e));
    assert.equal(e.status, 422);
    assert.equal(e.extensions["input"], input, e.message);
    assert.equal(e.extensions["check"], check, e.message);
    assert.match(e.message, new RegExp(`^Cannot sign PSBT: input ${input} `));
    return true;
  });
}

const wpkhInput = (n: number, extra: object = {}) => ({
  txid: TXID(n),
  index: 0,
  witnessUtxo: { script: WPKH.script, amount: 10_000n },
  ...extra,
});

Deno.test("assertSignable() accepts SIGHASH_ALL and absent sighash, refuses others unless allowed", () => {
  assertSignable(build([wpkhInput(1)]));
  assertSignable(build([wpkhInput(1, { sighashType: SigHash.ALL })]));
  const single = build([wpkhInput(1, { sighashType: SigHash.SINGLE })]);
  assert.throws(() => assertSignable(single), (e: unknown) => {
    assert.ok(e instanceof PolicyViolationError);
    assert.deepEqual(e.extensions, { input: 0, check: "sighash-not-allowed", sighashType: 3 });
    assert.match(e.message, /sighash type 0x03, which is not allowed/);
    return true;
  });
  assertSignable(single, 0, { allowedSighashTypes: [SigHash.ALL, SigHash.SINGLE] });
  // SIGHASH_DEFAULT is a BIP341 type: refused on ECDSA inputs even when listed.
  const dflt = build([wpkhInput(1, { sighashType: SigHash.DEFAULT })]);
  refused(
    () => assertSignable(dflt, undefined, { allowedSighashTypes: [0, 1] }),
    0,
    "sighash-not-allowed",
  );
});

Deno.test("assertSignable() accepts taproot key-path inputs with SIGHASH_DEFAULT", () => {
  const tx = build([{
    txid: TXID(1),
    index: 0,
    witnessUtxo: { script: TR.script, amount: 10_000n },
    tapInternalKey: TR.tapInternalKey,
    sighashType: SigHash.DEFAULT,
  }]);
  assertSignable(tx);
});

Deno.test("assertSignable() refuses a taproot internal key that does not tweak to the output key", () => {
  const tx = build([{
    txid: TXID(1),
    index: 0,
    witnessUtxo: { script: TR.script, amount: 10_000n },
    tapInternalKey: PUB[1]!.slice(1),
  }]);
  refused(() => assertSignable(tx), 0, "taproot-internal-key-mismatch");
});

Deno.test("assertSignable() refuses taproot signing when another input's UTXO is unknown", () => {
  const tx = build([
    { txid: TXID(1), index: 0, witnessUtxo: { script: TR.script, amount: 10_000n } },
    { txid: TXID(2), index: 0 },
  ]);
  refused(() => assertSignable(tx, 0), 1, "taproot-prevouts-missing");
});

Deno.test("assertSignable() requires the previous transaction for segwit v0 inputs when asked", () => {
  const tx = build([wpkhInput(1)]);
  assertSignable(tx);
  refused(
    () => assertSignable(tx, 0, { requireNonWitnessUtxo: true }),
    0,
    "non-witness-utxo-required",
  );
});

Deno.test("assertSignable() refuses scripts that do not resolve", () => {
  const ms = p2ms(1, [PUB[0]!]);
  const wsh = p2wsh(ms);
  const shWsh = p2sh(p2wsh(ms));
  const cases: Array<[string, Parameters<Transaction["addInput"]>[0], SignerCheck]> = [
    [
      "redeemScript on P2WPKH",
      wpkhInput(1, { redeemScript: WPKH.script }),
      "redeem-script-without-p2sh",
    ],
    [
      "witnessScript on P2WPKH",
      wpkhInput(1, { witnessScript: ms.script }),
      "witness-script-without-p2wsh",
    ],
    [
      "P2SH without redeemScript",
      { txid: TXID(1), index: 0, witnessUtxo: { script: shWsh.script, amount: 1n } },
      "redeem-script-missing",
    ],
    [
      "P2WSH without witnessScript",
      { txid: TXID(1), index: 0, witnessUtxo: { script: wsh.script, amount: 1n } },
      "witness-script-missing",
    ],
    [
      "P2WSH with another witnessScript",
      {
        txid: TXID(1),
        index: 0,
        witnessUtxo: { script: wsh.script, amount: 1n },
        witnessScript: p2ms(1, [PUB[1]!]).script,
      },
      "witness-script-mismatch",
    ],
    [
      "witness v2 program",
      {
        txid: TXID(1),
        index: 0,
        witnessUtxo: { script: hex.decode("5210" + "11".repeat(16)), amount: 1n },
      },
      "unsupported-script",
    ],
  ];
  for (const [name, input, check] of cases) {
    try {
      assertSignable(build([input]));
      assert.fail(`${name}: accepted`);
    } catch (e) {
      assert.ok(e instanceof ValidationError, `${name}: ${String(e)}`);
      assert.equal(e.extensions["check"], check, name);
    }
  }
  // The consistent versions pass.
  assertSignable(
    build([{
      txid: TXID(1),
      index: 0,
      witnessUtxo: { script: wsh.script, amount: 1n },
      witnessScript: ms.script,
    }]),
  );
  assertSignable(build([{
    txid: TXID(1),
    index: 0,
    witnessUtxo: { script: shWsh.script, amount: 1n },
    redeemScript: shWsh.redeemScript!,
    witnessScript: ms.script,
  }]));
});

Deno.test("assertSignable() refuses a transaction spending one outpoint twice", () => {
  refused(() => assertSignable(build([wpkhInput(1), wpkhInput(1)])), 1, "duplicate-input");
});

Deno.test("assertSignable() skips finalized inputs but refuses to sign one by index", () => {
  const tx = build([wpkhInput(1), wpkhInput(2)]);
  tx.signIdx(PRIV[0]!, 0);
  tx.finalizeIdx(0);
  assertSignable(tx);
  assertSignable(tx, 1);
  refused(() => assertSignable(tx, 0), 0, "already-finalized");
});

/**
 * scure itself refuses PSBTs whose non-witness UTXO contradicts the outpoint
 * or the witness UTXO, so these checks (kept as defence in depth) are fed a
 * minimal object with the Transaction surface assertSignable reads.
 */
function fakeTx(input: Record<string, unknown>): Transaction {
  return {
    inputsLength: 1,
    getInput: () => structuredClone(input),
    preimageWitnessV0: () => new Uint8Array(32),
  } as unknown as Transaction;
}

Deno.test("assertSignable() checks the non-witness UTXO against the outpoint and the witness UTXO", () => {
  const prev = new Transaction();
  prev.addInput({ txid: TXID(7), index: 0 });
  prev.addOutput({ script: WPKH.script, amount: 5_000n });
  const nonWitnessUtxo = Transaction.fromRaw(prev.unsignedTx, { allowUnknownOutputs: true });
  const decoded = {
    version: nonWitnessUtxo.version,
    lockTime: nonWitnessUtxo.lockTime,
    inputs: [nonWitnessUtxo.getInput(0)].map((i) => ({
      txid: i.txid!,
      index: i.index!,
      finalScriptSig: new Uint8Array(0),
      sequence: i.sequence!,
    })),
    outputs: [{ script: WPKH.script, amount: 5_000n }],
  };
  const good = { txid: hex.decode(prev.id), index: 0, nonWitnessUtxo: decoded };
  assertSignable(fakeTx(good));
  refused(
    () => assertSignable(fakeTx({ ...good, txid: hex.decode(TXID(9)) })),
    0,
    "non-witness-utxo-txid-mismatch",
  );
  refused(
    () => assertSignable(fakeTx({ ...good, index: 3 })),
    0,
    "non-witness-utxo-missing-output",
  );
  refused(
    () => assertSignable(fakeTx({ ...good, witnessUtxo: { script: WPKH.script, amount: 4_999n } })),
    0,
    "witness-utxo-mismatch",
  );
});

Deno.test("assertSignable() rejects wrong argument types", () => {
  const tx = build([wpkhInput(1)]);
  const table: Array<[string, () => unknown, typeof TypeError | typeof RangeError]> = [
    ["tx null", () => assertSignable(null as never), TypeError],
    ["tx bytes", () => assertSignable(new Uint8Array(4) as never), TypeError],
    ["index string", () => assertSignable(tx, "0" as never), TypeError],
    ["index out of range", () => assertSignable(tx, 1), RangeError],
    ["index negative", () => assertSignable(tx, -1), RangeError],
    ["options null", () => assertSignable(tx, undefined, null as never), TypeError],
    [
      "allowed not array",
      () => assertSignable(tx, undefined, { allowedSighashTypes: 1 as never }),
      TypeError,
    ],
    [
      "allowed 256",
      () => assertSignable(tx, undefined, { allowedSighashTypes: [256] }),
      RangeError,
    ],
  ];
  for (const [name, fn, err] of table) assert.throws(fn, err, name);
});
