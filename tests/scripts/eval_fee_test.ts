/**
 * `deno task eval:fee` as a user runs it (the task's own permission flags) on
 * CSVs the model was not trained on: the held-out test week as a file and on
 * stdin, a slice too short for the longer targets, and files that are not
 * snapshot CSVs (a clear message, no stack trace).
 */
import assert from "node:assert/strict";
import { parseModelCard } from "../../src/ml/model_card.ts";
import { FEE_TARGETS } from "../../src/ml/train/fee/labels.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const DATA = `${ROOT}models/data/fee/satcast_mempool_snapshots_5min_2025-03-05_2025-04-27.csv`;

async function evalFee(args: string[], stdin?: string) {
  const child = new Deno.Command("deno", {
    args: ["task", "--quiet", "eval:fee", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** `| N | method | rows | hit rate | ...` data rows of the printed table. */
function tableRows(stdout: string): string[][] {
  return stdout.split("\n").filter((l) => /^\| \d+ \|/.test(l)).map((l) =>
    l.split("|").slice(1, -1).map((c) => c.trim())
  );
}

/** The card's held-out test rows: the CSV header plus everything from `split.test`'s first row. */
async function testWeekCsv(): Promise<{ csv: string; card: Record<string, unknown> }> {
  const { card } = parseModelCard(await Deno.readTextFile(`${ROOT}models/fee-rate-0.1.0.md`));
  const split = (card.training as { split: { test: string } }).split.test;
  const first = Number(/^rows (\d+)/.exec(split)![1]);
  const lines = (await Deno.readTextFile(DATA)).trimEnd().split("\n");
  return { csv: [lines[0]!, ...lines.slice(1 + first)].join("\n") + "\n", card };
}

Deno.test("eval:fee on the held-out week reproduces the card's test metrics, from a file and from stdin", async () => {
  const { csv, card } = await testWeekCsv();
  const path = await Deno.makeTempFile({ prefix: "anya-eval-", suffix: ".csv" });
  try {
    await Deno.writeTextFile(path, csv);
    const fromFile = await evalFee([path]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const rows = tableRows(fromFile.stdout);
    assert.equal(rows.length, FEE_TARGETS.length * 4);
    const metrics = card.metrics as Record<string, { rows: number; hitRate: number }>;
    for (const n of FEE_TARGETS) {
      const methods = rows.filter((r) => r[0] === String(n)).map((r) => r[1]!.split(" ")[0]);
      assert.deepEqual(methods, ["model", "mempool_space", "percentile_rule", "projected_median"]);
      const model = rows.find((r) => r[0] === String(n) && r[1]!.startsWith("model"))!;
      assert.equal(Number(model[2]), metrics[`n${n}`]!.rows, `N=${n} rows`);
      // The slice starts cold (no earlier blocks for the recent-median features), so allow a point.
      const hit = Number(model[3]!.replace("%", "")) / 100;
      assert.ok(Math.abs(hit - metrics[`n${n}`]!.hitRate) <= 0.01, `N=${n}: ${hit}`);
    }
    const fromStdin = await evalFee([], csv);
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.deepEqual(tableRows(fromStdin.stdout), rows);
    assert.match(fromStdin.stdout, /data: stdin \(\d+ rows/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("eval:fee reports the targets a short CSV can label and names the ones it cannot", async () => {
  const lines = (await Deno.readTextFile(DATA)).split("\n");
  const r = await evalFee([], lines.slice(0, 200).join("\n") + "\n");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...new Set(tableRows(r.stdout).map((row) => row[0]))], ["1", "3", "6"]);
  assert.match(r.stdout, /no labelled rows for N = 144/);
});

Deno.test("eval:fee refuses what is not a snapshot CSV with one clear line and exit 1", async () => {
  for (
    const [input, message] of [
      ["a,b\n1,2\n", /Cannot evaluate stdin: .*no column "timestamp"/],
      ["", /Cannot evaluate stdin: /],
    ] as const
  ) {
    const r = await evalFee([], input);
    assert.equal(r.code, 1);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
  const missing = await evalFee(["/tmp/anya-no-such-snapshots.csv"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot evaluate \/tmp\/anya-no-such-snapshots\.csv: /);
});
