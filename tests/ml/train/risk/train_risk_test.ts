/**
 * trainRiskModel on the committed blocks: deterministic, the split by block,
 * constructed anomalies above the held-out p99, a card the model-card schema
 * accepts, and the ONNX export equal to predictTreeEnsemble on real rows
 * (onnxruntime-web, 1e-5).
 */
import assert from "node:assert/strict";
import { btcToSats } from "../../../../src/bitcoin/amount.ts";
import { txViewFromRawTx } from "../../../../src/ml/features/tx_view.ts";
import { txRiskFeatures } from "../../../../src/ml/features/tx_risk_features.ts";
import {
  RISK_INPUT_NAME,
  RISK_OUTPUT_NAME,
  trainRiskModel,
} from "../../../../src/ml/train/risk/train_risk.ts";
import { predictTreeEnsemble, treeEnsembleToOnnx } from "../../../../src/ml/train/tree_ensemble.ts";
import { parseModelCard, renderModelCard } from "../../../../src/ml/model_card.ts";
import { float32Tensor, OrtRuntime } from "../../../../src/ml/ort_runtime.ts";

interface BlockTx {
  hex: string;
  vin: { coinbase?: string; prevout?: { value: number; scriptPubKey: { hex: string } } }[];
}
const blocks = await Promise.all(
  [361582, 739990].map(async (h) =>
    JSON.parse(
      await Deno.readTextFile(
        new URL(`../../../../models/data/tx/block_${h}.getblock3.json`, import.meta.url),
      ),
    ) as { height: number; tx: BlockTx[] }
  ),
);
const result = trainRiskModel({ blocks });

function realRows(estimate: number): Float32Array[] {
  return blocks.flatMap((b) =>
    b.tx.filter((t) => t.vin.every((i) => i.coinbase === undefined)).map((t) =>
      txRiskFeatures(
        txViewFromRawTx(
          t.hex,
          t.vin.map((i) => ({
            amountSats: btcToSats(i.prevout!.value),
            scriptHex: i.prevout!.scriptPubKey.hex,
          })),
          "mainnet",
        ),
        { feeRateEstimateSatVb: estimate },
      )
    )
  );
}

Deno.test("trainRiskModel() is deterministic for a seed", () => {
  // Blocks in another order: the split goes by height, not by argument order.
  const again = trainRiskModel({ blocks: [blocks[1], blocks[0]] });
  assert.deepEqual(again.ensemble, result.ensemble);
  assert.deepEqual(again.evaluation, result.evaluation);
});

Deno.test("trainRiskModel() splits by block: shipped on 739990, held out 361582, forward reported", () => {
  const { shipped, forward } = result.evaluation;
  assert.deepEqual([shipped.trainBlocks, shipped.testBlocks], [[739990], [361582]]);
  assert.deepEqual([forward.trainBlocks, forward.testBlocks], [[361582], [739990]]);
  assert.equal(shipped.train.n, 644);
  assert.equal(shipped.heldOut.n, 276);
  assert.ok(shipped.heldOut.p50 > 0.3 && shipped.heldOut.p50 < 0.55, String(shipped.heldOut.p50));
  // False-positive proxy of the shipped split: about 1 % of held-out real txs above train p99.
  assert.ok(shipped.heldOutFlagRateAtTrainP99 < 0.03, String(shipped.heldOutFlagRateAtTrainP99));
});

Deno.test("trainRiskModel() scores every constructed anomaly above the held-out p99, the control below", () => {
  const p99 = result.evaluation.shipped.heldOut.p99;
  for (const a of result.evaluation.anomalies) {
    if (a.control) {
      assert.ok(!a.aboveHeldOutP99 && a.score < p99, `${a.name}: ${a.score}`);
      assert.deepEqual(a.reasons, []);
    } else {
      assert.ok(a.aboveHeldOutP99 && a.score > p99, `${a.name}: ${a.score} vs p99 ${p99}`);
      assert.ok(a.reasons.length > 0, a.name);
    }
  }
  const byName = Object.fromEntries(result.evaluation.anomalies.map((a) => [a.name, a]));
  const dust = Object.values(byName).find((a) => a.name.startsWith("dust spray"))!;
  assert.ok(dust.reasons.some((r) => r.feature === "near_dust_output_count_log2"));
});

Deno.test("trainRiskModel() card passes the model-card schema and names its data and split", () => {
  const { card, body } = parseModelCard(
    renderModelCard({ ...result.cardContent, sha256: "0".repeat(64) }, result.cardBody),
  );
  assert.equal(card.name, "tx-risk");
  assert.deepEqual(card.features, result.featureNames);
  assert.deepEqual(card.targets, [RISK_OUTPUT_NAME]);
  assert.equal(card.inputs[0].shape[1], result.featureNames.length);
  assert.match(JSON.stringify(card.training), /0xB10C\/transactionfee-info/);
  assert.match(card.task, /Unsupervised/);
  assert.match(body, /\*\*Unsupervised\.\*\*/);
  assert.match(body, /Jack Cable, Ian W Gray, Damon McCoy \(2024\)/);
  assert.deepEqual(result.cardContent.featureQuantiles, result.featureQuantiles);
});

Deno.test("trainRiskModel() ensemble in onnxruntime-web equals predictTreeEnsemble on real rows (1e-5)", async () => {
  const e = result.ensemble;
  const runtime = OrtRuntime.create({ numThreads: 1 });
  const session = await runtime.createSession(
    treeEnsembleToOnnx(e, { inputName: RISK_INPUT_NAME, outputName: RISK_OUTPUT_NAME }),
  );
  const rows = realRows(result.evaluation.blockFeeRateEstimates[1]!.satVb);
  assert.equal(rows.length, 920);
  const flat = new Float32Array(rows.length * e.nFeatures);
  rows.forEach((r, i) => flat.set(r, i * e.nFeatures));
  const out = await session.run({
    [RISK_INPUT_NAME]: float32Tensor(flat, rows.length, e.nFeatures),
  });
  const got = out[RISK_OUTPUT_NAME]!.data as Float32Array;
  rows.forEach((row, i) => {
    const want = predictTreeEnsemble(e, row)[0]!;
    assert.ok(Math.abs(got[i]! - want) <= 1e-5, `row ${i}: ${got[i]} vs ${want}`);
  });
  await session.release();
});

Deno.test("trainRiskModel() refuses fewer than two blocks and malformed blocks", () => {
  assert.throws(() => trainRiskModel({ blocks: [blocks[0]] }), RangeError);
  assert.throws(() => trainRiskModel(null as unknown as { blocks: [] }), TypeError);
  assert.throws(() => trainRiskModel({ blocks: [{}, {}] }), TypeError);
  assert.throws(() => trainRiskModel({ blocks, seed: 0.5 }), RangeError);
});
