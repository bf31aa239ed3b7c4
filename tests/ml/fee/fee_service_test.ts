/**
 * FeeService: estimates are recorded with their height, and truths arrive
 * when the chain shows new blocks, whether on the next estimate or because a
 * tracked transaction confirmed (`observeChain`).
 */
import assert from "node:assert/strict";
import { dbTest } from "../../_helpers/db.ts";
import { dirModelFiles, loadRegistry } from "../../../src/ml/registry.ts";
import { OrtRuntime } from "../../../src/ml/ort_runtime.ts";
import { InferenceEngine } from "../../../src/ml/inference_engine.ts";
import { MlService } from "../../../src/ml/ml_service.ts";
import { FeeService } from "../../../src/ml/fee/fee_service.ts";
import { createLogger } from "../../../src/obs/logger.ts";
import { ScriptedChainBackend } from "../../_fakes/chain_backend.ts";

const runtime = OrtRuntime.create({ numThreads: 1 });
const models = (await loadRegistry(dirModelFiles("models"))).filter((m) =>
  m.card.name === "fee-rate"
);

dbTest(
  "observeChain() settles earlier estimates from the blocks that followed, and never throws",
  async (db) => {
    const logs: string[] = [];
    const logger = createLogger({ level: "warn", sink: (_l, line) => logs.push(line) });
    const engine = await InferenceEngine.create(runtime, models, {
      maxBatch: 64,
      maxWaitMicros: 0,
    });
    const ml = new MlService({ engine, db, logger });
    const chain = new ScriptedChainBackend();
    const fees = new FeeService({ ml, chain, logger });
    const base = chain.snapshot as Exclude<typeof chain.snapshot, Error>;
    const caller = { tenant: "acme", keyId: "k1" };

    const first = await fees.estimate(caller, 3);
    assert.equal(first.height, base.height);
    // Three blocks later (a tracked transaction confirmed in the last one).
    chain.snapshot = {
      ...base,
      height: base.height + 3,
      recentBlockMedianFeesSatVb: [5, 4, 6, ...base.recentBlockMedianFeesSatVb],
    };
    await fees.observeChain();
    const [v] = await ml.metrics("fee-rate");
    const byTarget = Object.fromEntries(v!.errors.map((e) => [e.target, e]));
    // Blocks h+1..h+3 have medians 6, 4, 5: truth for 1 block is 6, for 3 blocks min(6, 4, 5) = 4.
    assert.equal(byTarget["feerate_1_block_sat_vb"]!.count, 1);
    assert.equal(byTarget["feerate_3_blocks_sat_vb"]!.count, 1);
    const rows = await db.query<{ target: string; truth: number }>(
      "SELECT target, truth FROM ml_truths ORDER BY target",
    );
    assert.deepEqual(
      rows.map((r) => [r.target, Number(r.truth)]),
      [["feerate_1_block_sat_vb", 6], ["feerate_3_blocks_sat_vb", 4]],
    );
    // A chain that cannot be read is logged, not raised.
    chain.snapshot = new Error("backend down");
    await fees.observeChain();
    assert.ok(logs.some((l) => l.includes("chain not observed for fee truths")));
    await engine.close();
  },
);
