/**
 * `deno task eval:fee <snapshots.csv> [--model <path.onnx>]`: run the fee-rate
 * ONNX model with onnxruntime-web on every labelled row of a SatCast-format CSV
 * (any slice, including rows the model never saw), compute the three
 * baselines on the same rows and print the metrics table.
 *
 * Without `--model` it loads the newest `models/fee-rate-<version>.onnx`.
 *
 * @module
 */
import { parseModelCard } from "../src/ml/model_card.ts";
import { float32Tensor, OrtRuntime } from "../src/ml/ort_runtime.ts";
import { FEE_FEATURE_NAMES } from "../src/ml/features/fee_features.ts";
import { type FeeTargetEvaluation, formatFeeEvalTable } from "../src/ml/train/fee/evaluate.ts";
import { FEE_TARGETS } from "../src/ml/train/fee/labels.ts";
import { buildFeeDataset, evaluableRows, evaluateFeeRows } from "../src/ml/train/fee/train_fee.ts";
import { writeLine } from "./_io.ts";

const MODEL_FILE = /^fee-rate-(\d+)\.(\d+)\.(\d+)\.onnx$/;

/** The newest `fee-rate-<semver>.onnx` in `dir`, or null. */
async function newestFeeModel(dir: string): Promise<string | null> {
  let best: { path: string; v: number[] } | null = null;
  for await (const entry of Deno.readDir(dir)) {
    const m = MODEL_FILE.exec(entry.name);
    if (!entry.isFile || m === null) continue;
    const v = [Number(m[1]), Number(m[2]), Number(m[3])];
    const newer = best === null ||
      v[0]! > best.v[0]! ||
      (v[0] === best.v[0] && (v[1]! > best.v[1]! || (v[1] === best.v[1] && v[2]! > best.v[2]!)));
    if (newer) best = { path: `${dir}/${entry.name}`, v };
  }
  return best?.path ?? null;
}

/** Quantile levels from the model's card, when it has one (NaN otherwise). */
async function cardQuantiles(modelPath: string): Promise<number[]> {
  const unknown = FEE_TARGETS.map(() => Number.NaN);
  try {
    const { card } = parseModelCard(await Deno.readTextFile(modelPath.replace(/\.onnx$/, ".md")));
    const q = (card.training as { quantiles?: Record<string, unknown> }).quantiles ?? {};
    return FEE_TARGETS.map((n) =>
      typeof q[`n${n}`] === "number" ? q[`n${n}`] as number : Number.NaN
    );
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return unknown;
    throw e;
  }
}

async function main(args: string[]): Promise<number> {
  let csvPath: string | undefined;
  let modelPath: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--model") modelPath = args[++i];
    else csvPath ??= args[i];
  }
  if (csvPath === undefined && Deno.stdin.isTerminal()) {
    await writeLine(
      Deno.stderr,
      "Usage: deno task eval:fee <snapshots.csv> [--model <path.onnx>]   (or the CSV on stdin)",
    );
    return 2;
  }
  modelPath ??= (await newestFeeModel("models")) ?? undefined;
  if (modelPath === undefined) {
    await writeLine(
      Deno.stderr,
      "Cannot evaluate: no models/fee-rate-<version>.onnx; pass --model",
    );
    return 1;
  }
  // A CSV on stdin needs no read permission beyond the repo: `deno task eval:fee < any.csv`.
  let ds: ReturnType<typeof buildFeeDataset>;
  try {
    const csvText = csvPath === undefined
      ? await new Response(Deno.stdin.readable).text()
      : await Deno.readTextFile(csvPath);
    ds = buildFeeDataset(csvText);
  } catch (e) {
    // A user's file: say what is wrong with it, not where in our code that was noticed.
    if (
      !(e instanceof SyntaxError || e instanceof RangeError || e instanceof Deno.errors.NotFound)
    ) {
      throw e;
    }
    await writeLine(Deno.stderr, `Cannot evaluate ${csvPath ?? "stdin"}: ${e.message}`);
    return 1;
  }
  const d = FEE_FEATURE_NAMES.length;
  const all = { start: 0, end: ds.rows.length };
  // Targets whose label window runs past the CSV's end have no rows; the others are still reported.
  const targets = FEE_TARGETS.map((targetBlocks, t) => ({
    targetBlocks,
    t,
    rows: evaluableRows(ds, all, t),
  }));
  const evaluable = targets.filter((x) => x.rows.length > 0);
  const needed = [...new Set(evaluable.flatMap((x) => x.rows))].sort((a, b) => a - b);
  if (needed.length === 0) {
    await writeLine(
      Deno.stderr,
      "Cannot evaluate: no labelled rows (the CSV covers too few block arrivals)",
    );
    return 1;
  }

  const session = await OrtRuntime.create({ numThreads: 1 }).createSession(
    await Deno.readFile(modelPath),
  );
  const input = new Float32Array(needed.length * d);
  needed.forEach((r, i) => input.set(ds.x.subarray(r * d, (r + 1) * d), i * d));
  const feeds = { [session.inputNames[0]!]: float32Tensor(input, needed.length, d) };
  const result = await session.run(feeds);
  const output = result[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  const nT = FEE_TARGETS.length;
  if (output.length !== needed.length * nT) {
    await writeLine(Deno.stderr, `Cannot evaluate: model output has ${output.length} values`);
    return 1;
  }
  const position = new Map(needed.map((r, i) => [r, i]));

  const quantiles = await cardQuantiles(modelPath);
  const evaluation: FeeTargetEvaluation[] = evaluable.map(({ targetBlocks, t, rows }) => ({
    targetBlocks,
    quantile: quantiles[t]!,
    methods: evaluateFeeRows(ds, {
      rows,
      t,
      predict: (r) => output[position.get(r)! * nT + t]!,
    }),
  }));
  const first = new Date(ds.rows[0]!.timestampSec * 1000).toISOString();
  const last = new Date(ds.rows[ds.rows.length - 1]!.timestampSec * 1000).toISOString();
  await writeLine(Deno.stdout, `model: ${modelPath}`);
  await writeLine(
    Deno.stdout,
    `data: ${csvPath ?? "stdin"} (${ds.rows.length} rows, ${first} to ${last})`,
  );
  await writeLine(Deno.stdout, formatFeeEvalTable(evaluation));
  const missing = targets.filter((x) => x.rows.length === 0).map((x) => x.targetBlocks);
  if (missing.length > 0) {
    await writeLine(
      Deno.stdout,
      `no labelled rows for N = ${
        missing.join(", ")
      }: the CSV ends before those targets' windows do`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
