import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { p2ms, p2pkh, p2sh, p2tr, p2wpkh, p2wsh, Transaction } from "@scure/btc-signer";
import {
  compactSizeLength,
  dustThreshold,
  inputWeight,
  isDust,
  MAX_STANDARD_TX_WEIGHT,
  outputWeight,
  sumInputs,
  txWeight,
  weightToVsize,
} from "../../src/bitcoin/tx_size.ts";

const PRIV = [1, 2, 3].map((n) => hex.decode(n.toString(16).padStart(64, "0")));
const PUB = PRIV.map((k) => secp256k1.getPublicKey(k, true));
const xonly = (pub: Uint8Array) => pub.slice(1);

Deno.test("dustThreshold() matches Core's GetDustThreshold at 3 sat/vB per script type", () => {
  const cases: Array<[string, Uint8Array, bigint]> = [
    ["p2pkh", p2pkh(PUB[0]!).script, 546n],
    ["p2sh", p2sh(p2wpkh(PUB[0]!)).script, 540n],
    ["p2wpkh", p2wpkh(PUB[0]!).script, 294n],
    ["p2wsh", p2wsh(p2ms(1, [PUB[0]!])).script, 330n],
    ["p2tr", p2tr(xonly(PUB[0]!)).script, 330n],
    ["op_return", hex.decode("6a0401020304"), 0n],
  ];
  for (const [name, script, expected] of cases) {
    assert.equal(dustThreshold(script), expected, name);
    assert.equal(isDust(script, expected), false, `${name} at threshold`);
    if (expected > 0n) assert.equal(isDust(script, expected - 1n), true, `${name} below threshold`);
  }
});

Deno.test("inputWeight() gives Core's well-known input sizes", () => {
  assert.equal(inputWeight({ kind: "p2pkh" }).weight, 148 * 4);
  assert.deepEqual(inputWeight({ kind: "p2wpkh" }), { weight: 272, witness: true });
  assert.equal(inputWeight({ kind: "p2sh-p2wpkh" }).weight, 364);
  assert.equal(inputWeight({ kind: "p2tr-keypath" }).weight, 230);
  assert.equal(inputWeight({ kind: "p2pkh" }).witness, false);
  // 2-of-3 P2WSH: witness = count + empty + 2×(1+72) + (1+105) = 254; 41×4 base.
  assert.equal(inputWeight({ kind: "p2wsh-multisig", m: 2, scriptBytes: 105 }).weight, 164 + 254);
});

Deno.test("txWeight() of a 1-in-2-out P2WPKH transaction is 141 vB", () => {
  const spk = p2wpkh(PUB[0]!).script;
  const w = txWeight(sumInputs([inputWeight({ kind: "p2wpkh" })]), [spk, spk]);
  assert.equal(w, 562);
  assert.equal(weightToVsize(w), 141);
  // No inputs at all: no marker and flag.
  assert.equal(txWeight({ count: 0, weight: 0, nonWitnessCount: 0 }, []), 40);
  assert.equal(outputWeight(spk), 124);
  assert.equal(compactSizeLength(252), 1);
  assert.equal(compactSizeLength(253), 3);
  assert.equal(compactSizeLength(0x10000), 5);
  assert.ok(MAX_STANDARD_TX_WEIGHT === 400_000);
});

/** Sign a transaction spending one input of each kind and compare with the estimate. */
Deno.test("txWeight() estimates are upper bounds within 2 vB per input of really signed transactions", () => {
  const ms = p2ms(2, [PUB[0]!, PUB[1]!, PUB[2]!]);
  const spends = [
    { pay: p2wpkh(PUB[0]!), spend: { kind: "p2wpkh" as const } },
    { pay: p2sh(p2wpkh(PUB[0]!)), spend: { kind: "p2sh-p2wpkh" as const } },
    { pay: p2tr(xonly(PUB[0]!)), spend: { kind: "p2tr-keypath" as const } },
    {
      pay: p2wsh(ms),
      spend: { kind: "p2wsh-multisig" as const, m: 2, scriptBytes: ms.script.length },
    },
    {
      pay: p2sh(p2wsh(ms)),
      spend: { kind: "p2sh-p2wsh-multisig" as const, m: 2, scriptBytes: ms.script.length },
    },
    { pay: p2pkh(PUB[0]!), spend: { kind: "p2pkh" as const }, legacy: true },
    {
      pay: p2sh(ms),
      spend: { kind: "p2sh-multisig" as const, m: 2, scriptBytes: ms.script.length },
      legacy: true,
    },
  ];
  for (const { pay, spend, legacy } of spends) {
    // The previous transaction, for legacy inputs (signed over in full).
    const prev = new Transaction();
    prev.addInput({ txid: "22".repeat(32), index: 0 });
    prev.addOutput({ script: pay.script, amount: 100_000n });
    const tx = new Transaction();
    tx.addInput({
      txid: legacy ? prev.id : "11".repeat(32),
      index: 0,
      ...(legacy
        ? { nonWitnessUtxo: prev.unsignedTx }
        : { witnessUtxo: { script: pay.script, amount: 100_000n } }),
      ...("redeemScript" in pay && pay.redeemScript ? { redeemScript: pay.redeemScript } : {}),
      ...("witnessScript" in pay && pay.witnessScript ? { witnessScript: pay.witnessScript } : {}),
      ...("tapInternalKey" in pay && pay.tapInternalKey
        ? { tapInternalKey: pay.tapInternalKey }
        : {}),
    });
    const out = p2wpkh(PUB[1]!).script;
    tx.addOutput({ script: out, amount: 90_000n });
    for (const k of PRIV) {
      try {
        tx.sign(k);
      } catch {
        // keys not in this script
      }
    }
    tx.finalize();
    const estimate = txWeight(sumInputs([inputWeight(spend)]), [out]);
    assert.ok(estimate >= tx.weight, `${spend.kind}: estimate ${estimate} < actual ${tx.weight}`);
    assert.ok(estimate - tx.weight <= 8 * 2, `${spend.kind}: estimate ${estimate} vs ${tx.weight}`);
  }
});

Deno.test("tx_size functions reject wrong types and ranges", () => {
  const table: Array<[string, () => unknown, typeof TypeError | typeof RangeError]> = [
    ["dustThreshold(string)", () => dustThreshold("0014" as unknown as Uint8Array), TypeError],
    ["outputWeight(null)", () => outputWeight(null as unknown as Uint8Array), TypeError],
    ["isDust(number)", () => isDust(new Uint8Array(22), 5 as unknown as bigint), TypeError],
    ["inputWeight(null)", () => inputWeight(null as never), TypeError],
    ["inputWeight(kind?)", () => inputWeight({ kind: "p2pk" } as never), TypeError],
    [
      "inputWeight(m=0)",
      () => inputWeight({ kind: "p2wsh-multisig", m: 0, scriptBytes: 71 }),
      RangeError,
    ],
    [
      "inputWeight(scriptBytes=1.5)",
      () => inputWeight({ kind: "p2sh-multisig", m: 1, scriptBytes: 1.5 }),
      RangeError,
    ],
    ["txWeight(null)", () => txWeight(null as never, []), TypeError],
    [
      "txWeight(outputs)",
      () => txWeight({ count: 0, weight: 0, nonWitnessCount: 0 }, {} as never),
      TypeError,
    ],
    [
      "txWeight(count=-1)",
      () => txWeight({ count: -1, weight: 0, nonWitnessCount: 0 }, []),
      RangeError,
    ],
    [
      "txWeight(legacy>count)",
      () => txWeight({ count: 1, weight: 4, nonWitnessCount: 2 }, []),
      RangeError,
    ],
    ["sumInputs(null)", () => sumInputs(null as never), TypeError],
    ["weightToVsize(-1)", () => weightToVsize(-1), RangeError],
    ["weightToVsize(NaN)", () => weightToVsize(Number.NaN), RangeError],
    ["compactSizeLength(-1)", () => compactSizeLength(-1), RangeError],
  ];
  for (const [name, fn, err] of table) assert.throws(fn, err, name);
});
