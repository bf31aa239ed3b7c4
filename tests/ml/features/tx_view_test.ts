/**
 * txViewFromRawTx on real mainnet transactions (block 739990, with Core's own
 * fee and vsize as the reference) and txViewFromPsbt on PSBTs built with
 * @scure/btc-signer.
 */
import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { NETWORK, p2pkh, p2wpkh, Transaction } from "@scure/btc-signer";
import { parsePsbt } from "../../../src/bitcoin/psbt_parse.ts";
import { btcToSats } from "../../../src/bitcoin/amount.ts";
import {
  guessRawTxChange,
  txViewFromPsbt,
  txViewFromRawTx,
} from "../../../src/ml/features/tx_view.ts";

interface BlockTx {
  txid: string;
  hex: string;
  vsize: number;
  fee?: number;
  vin: { coinbase?: string; prevout?: { value: number; scriptPubKey: { hex: string } } }[];
}
const block = JSON.parse(
  await Deno.readTextFile(
    new URL("../../../models/data/tx/block_739990.getblock3.json", import.meta.url),
  ),
) as { tx: BlockTx[] };

function prevoutsOf(t: BlockTx) {
  return t.vin.map((i) => ({
    amountSats: btcToSats(i.prevout!.value),
    scriptHex: i.prevout!.scriptPubKey.hex,
  }));
}
function findTx(txid: string): BlockTx {
  const t = block.tx.find((x) => x.txid === txid);
  assert.ok(t, txid);
  return t;
}

Deno.test("txViewFromRawTx() reads a real P2PKH payment of block 739990 (hand-checked)", () => {
  // 4e4800cf…: 1 P2PKH input of 385,000 sat; outputs 62,100 sat P2PKH and 320,000 sat P2WPKH;
  // fee 2,900 sat (Core: 0.000029 BTC), vsize 222, nLockTime 739988, nSequence 0xfffffffd.
  const t = findTx("4e4800cf43fe0d0d607e7a3dbf91c36af418859676b5d2b4855dc633fcb9c328");
  const view = txViewFromRawTx(t.hex, prevoutsOf(t), "mainnet");
  assert.deepEqual(view.inputs, [{
    amountSats: 385_000n,
    scriptType: "p2pkh",
    sequence: 0xfffffffd,
  }]);
  assert.equal(view.feeSats, 2_900n);
  assert.equal(view.vsize, 222);
  assert.equal(view.locktime, 739_988);
  assert.equal(view.version, 2);
  assert.deepEqual(view.outputs.map((o) => [o.amountSats, o.scriptType, o.address]), [
    [62_100n, "p2pkh", "1GKtCDt4qtEuUzfLGBw5PzxHnGzF6EjLG1"],
    [320_000n, "p2wpkh", "bc1qds3n2gzsh8rsvgns7ajxtzzwxn3ttwn2j6enpf"],
  ]);
  // Script-type heuristic: the only output of the inputs' type (P2PKH) is the change.
  assert.deepEqual(view.outputs.map((o) => o.isChange), [true, false]);
});

Deno.test("txViewFromRawTx() matches Core's fee and vsize for every non-coinbase tx of block 739990", () => {
  let n = 0;
  for (const t of block.tx) {
    if (t.vin.some((i) => i.coinbase !== undefined)) continue;
    const view = txViewFromRawTx(t.hex, prevoutsOf(t), "mainnet");
    assert.equal(view.feeSats, btcToSats(t.fee!), `fee of ${t.txid}`);
    assert.equal(view.vsize, t.vsize, `vsize of ${t.txid}`);
    n++;
  }
  assert.equal(n, 644);
});

Deno.test("txViewFromRawTx() refuses wrong argument types and a wrong prevout count", () => {
  const t = findTx("4e4800cf43fe0d0d607e7a3dbf91c36af418859676b5d2b4855dc633fcb9c328");
  const p = prevoutsOf(t);
  assert.throws(() => txViewFromRawTx(1 as unknown as string, p, "mainnet"), TypeError);
  assert.throws(() => txViewFromRawTx(t.hex, "x" as unknown as [], "mainnet"), TypeError);
  assert.throws(
    () => txViewFromRawTx(t.hex, [{ amountSats: 1, scriptHex: "" }] as unknown as [], "mainnet"),
    TypeError,
  );
  assert.throws(
    () => txViewFromRawTx(t.hex, [{ ...p[0]!, scriptHex: "zz" }], "mainnet"),
    TypeError,
  );
  assert.throws(() => txViewFromRawTx(t.hex, p, "bitcoin" as "mainnet"), TypeError);
  assert.throws(() => txViewFromRawTx(t.hex, [...p, ...p], "mainnet"), RangeError);
});

Deno.test("guessRawTxChange(): address reuse, single output, script type, round amount, undecided", () => {
  const pkh = (n: number) => p2pkh(secp256k1.getPublicKey(key(n), true)).script;
  const wpkh = (n: number) => p2wpkh(secp256k1.getPublicKey(key(n), true)).script;
  const out = (script: Uint8Array, sats: bigint, scriptType: string) => ({
    script,
    amountSats: sats,
    scriptType,
  });
  // Address reuse wins over everything.
  assert.deepEqual(
    guessRawTxChange([wpkh(1)], ["p2wpkh"], [
      out(wpkh(2), 1_000n, "p2wpkh"),
      out(wpkh(1), 5_000n, "p2wpkh"),
    ]),
    [false, true],
  );
  // One spendable output (plus OP_RETURN): no change.
  assert.deepEqual(
    guessRawTxChange([wpkh(1)], ["p2wpkh"], [
      out(wpkh(2), 1_000n, "p2wpkh"),
      out(Uint8Array.of(0x6a), 0n, "op_return"),
    ]),
    [false, false],
  );
  // Round payment (0.01 BTC) and an odd amount, same types: the odd one is change.
  assert.deepEqual(
    guessRawTxChange([pkh(1)], ["p2pkh"], [
      out(pkh(2), 1_000_000n, "p2pkh"),
      out(pkh(3), 123_457n, "p2pkh"),
    ]),
    [false, true],
  );
  // Nothing decides: null.
  assert.deepEqual(
    guessRawTxChange([pkh(1)], ["p2pkh"], [
      out(pkh(2), 123_456n, "p2pkh"),
      out(pkh(3), 654_321n, "p2pkh"),
    ]),
    [null, null],
  );
});

const key = (n: number) => hex.decode(n.toString(16).padStart(64, "0"));
const PUB = [1, 2, 3].map((n) => secp256k1.getPublicKey(key(n), true));

function psbtOf(tx: Transaction): Transaction {
  // Through the edge's strict parser, as the service would receive it.
  return parsePsbt(hex.encode(tx.toPSBT()), { network: "mainnet" }).tx;
}

Deno.test("txViewFromPsbt() reads values, types, RBF, locktime and wallet-marked change", () => {
  const spend = p2wpkh(PUB[0]!, NETWORK);
  const change = p2wpkh(PUB[1]!, NETWORK);
  const pay = p2pkh(PUB[2]!, NETWORK);
  const tx = new Transaction({ lockTime: 850_000 });
  tx.addInput({
    txid: new Uint8Array(32).fill(7),
    index: 1,
    sequence: 0xfffffffd,
    witnessUtxo: { script: spend.script, amount: 100_000n },
  });
  tx.addOutput({ script: pay.script, amount: 60_000n });
  tx.addOutput({
    script: change.script,
    amount: 38_590n,
    bip32Derivation: [[PUB[1]!, {
      fingerprint: 0x01020304,
      path: [0x80000054, 0x80000000, 0x80000000, 1, 0],
    }]],
  });
  const view = txViewFromPsbt(psbtOf(tx), "mainnet");
  assert.deepEqual(view.inputs, [{
    amountSats: 100_000n,
    scriptType: "p2wpkh",
    sequence: 0xfffffffd,
  }]);
  assert.equal(view.feeSats, 1_410n);
  assert.equal(view.locktime, 850_000);
  assert.equal(view.version, 2);
  // Worst-case estimate of inspectPsbt: 10.5 + 68 (P2WPKH input, 72-byte signature) + 34 + 31.
  assert.equal(view.vsize, 144);
  assert.deepEqual(view.outputs.map((o) => [o.amountSats, o.scriptType, o.address, o.isChange]), [
    [60_000n, "p2pkh", pay.address, false],
    [38_590n, "p2wpkh", change.address, true],
  ]);
  assert.deepEqual(view.outputs[1]!.script, change.script);
});

Deno.test("txViewFromPsbt() leaves fee and input type unknown without UTXO data", () => {
  const tx = new Transaction();
  tx.addInput({ txid: new Uint8Array(32).fill(9), index: 0 });
  tx.addOutput({ script: p2wpkh(PUB[1]!, NETWORK).script, amount: 5_000n });
  const view = txViewFromPsbt(psbtOf(tx), "mainnet");
  assert.deepEqual(view.inputs, [{
    amountSats: null,
    scriptType: "unknown",
    sequence: 0xffffffff,
  }]);
  assert.equal(view.feeSats, null);
  // Unsigned size (the lower bound): 4 + 1 + 41 + 1 + 31 + 4 = 82 vB.
  assert.equal(view.vsize, 82);
});

Deno.test("txViewFromPsbt() refuses a non-transaction and an unknown network", () => {
  assert.throws(() => txViewFromPsbt({} as Transaction, "mainnet"), TypeError);
  assert.throws(() => txViewFromPsbt(null as unknown as Transaction, "mainnet"), TypeError);
  assert.throws(() => txViewFromPsbt(new Transaction(), "main" as "mainnet"), TypeError);
});
