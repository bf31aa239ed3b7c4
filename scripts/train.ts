/**
 * `deno task train`: train every model from the data committed under
 * `models/data/`, deterministically (each trainer's fixed default seed), and write
 * `models/<name>-<version>.onnx` with its card (`.md`, the sha256 of the file
 * it describes). Running it again on the same data writes the same bytes.
 *
 * `--check` trains without writing and fails when a committed file differs
 * from what training produces (the weights in `models/` can be regenerated).
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { writeLine } from "./_io.ts";
import { treeEnsembleToOnnx } from "../src/ml/train/tree_ensemble.ts";
import { type ModelCard, modelStem, renderModelCard } from "../src/ml/model_card.ts";
import { FEE_ONNX_TENSORS, trainFeeModel } from "../src/ml/train/fee/train_fee.ts";
import { formatFeeEvalTable } from "../src/ml/train/fee/evaluate.ts";
import {
  RISK_INPUT_NAME,
  RISK_OUTPUT_NAME,
  trainRiskModel,
} from "../src/ml/train/risk/train_risk.ts";

/** Version of the models this training code produces; bump it when the code or data change. */
export const FEE_MODEL_VERSION = "0.1.0";
/** The committed fee snapshots (see `models/data/fee/PROVENANCE.md`). */
export const FEE_DATA = "data/fee/satcast_mempool_snapshots_5min_2025-03-05_2025-04-27.csv";
/** The committed blocks (see `models/data/tx/PROVENANCE.md`). */
export const TX_DATA = [
  "data/tx/block_361582.getblock3.json",
  "data/tx/block_739990.getblock3.json",
];

/** A file training writes, relative to the models dir. */
export interface TrainedFile {
  path: string;
  bytes: Uint8Array;
}

/** What training produced: the files and a report for people. */
export interface TrainingOutput {
  files: TrainedFile[];
  report: string[];
}

/**
 * Train both models from the data under `modelsDir`.
 *
 * @param modelsDir the models directory (holding `data/`)
 */
export async function trainAll(modelsDir: string): Promise<TrainingOutput> {
  const files: TrainedFile[] = [];
  const report: string[] = [];
  const utf8 = new TextEncoder();
  const add = (card: ModelCard, onnx: Uint8Array, body: string) => {
    const stem = modelStem(card);
    files.push({ path: `${stem}.onnx`, bytes: onnx });
    files.push({ path: `${stem}.md`, bytes: utf8.encode(renderModelCard(card, body)) });
  };

  const fee = trainFeeModel(await Deno.readTextFile(`${modelsDir}/${FEE_DATA}`));
  const feeOnnx = treeEnsembleToOnnx(fee.ensemble, {
    ...FEE_ONNX_TENSORS,
    docString: "anya-edge fee-rate model: sat/vB needed within 1, 3, 6 and 144 blocks",
  });
  add(
    { ...fee.cardContent, version: FEE_MODEL_VERSION, sha256: hex.encode(sha256(feeOnnx)) },
    feeOnnx,
    fee.cardBody,
  );
  report.push("fee-rate: held-out test split", formatFeeEvalTable(fee.evaluation));

  const blocks = await Promise.all(
    TX_DATA.map(async (f) => JSON.parse(await Deno.readTextFile(`${modelsDir}/${f}`)) as unknown),
  );
  const risk = trainRiskModel({ blocks });
  const riskOnnx = treeEnsembleToOnnx(risk.ensemble, {
    inputName: RISK_INPUT_NAME,
    outputName: RISK_OUTPUT_NAME,
    docString: "anya-edge transaction risk: isolation-forest anomaly score in (0, 1]",
  });
  add({ ...risk.cardContent, sha256: hex.encode(sha256(riskOnnx)) }, riskOnnx, risk.cardBody);
  report.push(
    `tx-risk: held-out p99 ${
      risk.evaluation.shipped.heldOut.p99.toFixed(3)
    }; constructed anomalies: ${
      risk.evaluation.anomalies.map((a) => `${a.name} ${a.score.toFixed(3)}`).join(", ")
    }`,
  );
  return { files, report };
}

async function main(args: readonly string[]): Promise<number> {
  const check = args.includes("--check");
  const dir = "models";
  const { files, report } = await trainAll(dir);
  let stale = 0;
  for (const f of files) {
    const path = `${dir}/${f.path}`;
    if (check) {
      const committed = await Deno.readFile(path).catch(() => null);
      const same = committed !== null && hex.encode(committed) === hex.encode(f.bytes);
      if (!same) stale++;
      await writeLine(Deno.stdout, `${same ? "same" : "DIFFERS"} ${path}`);
    } else {
      await Deno.writeFile(path, f.bytes);
      await writeLine(Deno.stdout, `wrote ${path} (${f.bytes.length} bytes)`);
    }
  }
  for (const line of report) await writeLine(Deno.stdout, line);
  return stale === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
