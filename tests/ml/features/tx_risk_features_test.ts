/**
 * txRiskFeatures on a real transaction of block 739990 with hand-checked
 * values, neutral values for unknown facts, and argument checks.
 */
import assert from "node:assert/strict";
import { btcToSats } from "../../../src/bitcoin/amount.ts";
import { type TxView, txViewFromRawTx } from "../../../src/ml/features/tx_view.ts";
import {
  NEUTRAL_FEE_SHARE,
  RISK_FEATURE_DOCS,
  RISK_FEATURE_NAMES,
  txRiskFeatures,
} from "../../../src/ml/features/tx_risk_features.ts";

interface BlockTx {
  txid: string;
  hex: string;
  vin: { coinbase?: string; prevout?: { value: number; scriptPubKey: { hex: string } } }[];
}
const block = JSON.parse(
  await Deno.readTextFile(
    new URL("../../../models/data/tx/block_739990.getblock3.json", import.meta.url),
  ),
) as { tx: BlockTx[] };

function realView(txid: string): TxView {
  const t = block.tx.find((x) => x.txid === txid)!;
  return txViewFromRawTx(
    t.hex,
    t.vin.map((i) => ({
      amountSats: btcToSats(i.prevout!.value),
      scriptHex: i.prevout!.scriptPubKey.hex,
    })),
    "mainnet",
  );
}

function byName(row: Float32Array): Record<string, number> {
  return Object.fromEntries(RISK_FEATURE_NAMES.map((n, i) => [n, row[i]!]));
}

const TXID = "4e4800cf43fe0d0d607e7a3dbf91c36af418859676b5d2b4855dc633fcb9c328";

Deno.test("txRiskFeatures() on real tx 4e4800cf… of block 739990 gives the hand-computed values", () => {
  const f = byName(txRiskFeatures(realView(TXID), { feeRateEstimateSatVb: 5 }));
  // Fee 2,900 sat over 222 vB = 13.063 sat/vB; log2(13.063 / 5) = 1.38548.
  // Fee share 2,900 / 385,000 = 0.0075325. Outputs 62,100 (P2PKH, dust threshold 546) and
  // 320,000 (P2WPKH, dust threshold 294): min log2(62,100 / 546) = 6.82956.
  const want: Record<string, number> = {
    fee_rate_vs_estimate_log2: Math.log2(2900 / 222 / 5),
    fee_share_of_inputs: 2900 / 385000,
    input_count_log2: 1,
    output_count_log2: Math.log2(3),
    min_output_vs_dust_log2: Math.log2(62100 / 546),
    near_dust_output_count_log2: 0,
    op_return_output_count: 0,
    output_type_not_in_inputs_share: 0.5, // the P2WPKH output; inputs are all P2PKH
    unusual_script_output_share: 0,
    round_output_share: 0, // neither is a whole number of 0.001 BTC
    rbf_signalled: 1, // nSequence 0xfffffffd
    locktime_kind: 1, // block height 739988
    change_identified: 1, // the P2PKH output, by the script-type heuristic
  };
  assert.deepEqual(Object.keys(f), Object.keys(want));
  for (const [name, value] of Object.entries(want)) {
    assert.ok(Math.abs(f[name]! - value) < 1e-5, `${name}: ${f[name]} vs ${value}`);
  }
});

Deno.test("txRiskFeatures() uses neutral values when the fee or the estimate is unknown", () => {
  const view = realView(TXID);
  const noEstimate = byName(txRiskFeatures(view, { feeRateEstimateSatVb: null }));
  assert.equal(noEstimate.fee_rate_vs_estimate_log2, 0);
  assert.ok(Math.abs(noEstimate.fee_share_of_inputs! - 2900 / 385000) < 1e-7);
  const noFee = byName(
    txRiskFeatures(
      { ...view, feeSats: null, inputs: view.inputs.map((i) => ({ ...i, amountSats: null })) },
      { feeRateEstimateSatVb: 5 },
    ),
  );
  assert.equal(noFee.fee_rate_vs_estimate_log2, 0);
  assert.equal(noFee.fee_share_of_inputs, Math.fround(NEUTRAL_FEE_SHARE));
});

Deno.test("txRiskFeatures() never returns NaN, even for empty or extreme views", () => {
  const empty: TxView = {
    inputs: [],
    outputs: [],
    locktime: 0,
    version: 1,
    vsize: 10,
    feeSats: 0n,
  };
  const extreme: TxView = {
    inputs: [{ amountSats: 21_000_000n * 100_000_000n, scriptType: "unknown", sequence: 0 }],
    outputs: [{
      amountSats: 0n,
      script: Uint8Array.of(0x51),
      scriptType: "nonstandard",
      address: null,
      isChange: null,
    }],
    locktime: 0xffffffff,
    version: 0x7fffffff,
    vsize: 1,
    feeSats: 21_000_000n * 100_000_000n,
  };
  for (const view of [empty, extreme]) {
    for (const est of [null, 1e-9, 1e9]) {
      const row = txRiskFeatures(view, { feeRateEstimateSatVb: est });
      assert.equal(row.length, RISK_FEATURE_NAMES.length);
      assert.ok(row.every(Number.isFinite), `${[...row]}`);
    }
  }
});

Deno.test("txRiskFeatures() refuses wrong types and ranges", () => {
  const view = realView(TXID);
  const ctx = { feeRateEstimateSatVb: 5 };
  assert.throws(() => txRiskFeatures(null as unknown as TxView, ctx), TypeError);
  assert.throws(() => txRiskFeatures({ ...view, inputs: 1 } as unknown as TxView, ctx), TypeError);
  assert.throws(() => txRiskFeatures({ ...view, vsize: 0 }, ctx), RangeError);
  assert.throws(() => txRiskFeatures({ ...view, vsize: 1.5 }, ctx), RangeError);
  assert.throws(() => txRiskFeatures({ ...view, feeSats: 5 as unknown as bigint }, ctx), TypeError);
  assert.throws(
    () =>
      txRiskFeatures(
        { ...view, outputs: [{ ...view.outputs[0]!, amountSats: -1n }] },
        ctx,
      ),
    TypeError,
  );
  assert.throws(() => txRiskFeatures(view, null as unknown as typeof ctx), TypeError);
  assert.throws(() => txRiskFeatures(view, { feeRateEstimateSatVb: 0 }), RangeError);
  assert.throws(() => txRiskFeatures(view, { feeRateEstimateSatVb: NaN }), RangeError);
  assert.throws(
    () => txRiskFeatures(view, { feeRateEstimateSatVb: "5" as unknown as number }),
    RangeError,
  );
});

Deno.test("RISK_FEATURE_DOCS documents every feature", () => {
  assert.deepEqual(Object.keys(RISK_FEATURE_DOCS).sort(), [...RISK_FEATURE_NAMES].sort());
});
