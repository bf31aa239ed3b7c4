/**
 * `deno task train` regenerates the committed models byte for byte from the
 * committed data: the weights in `models/` are never ones the project cannot
 * reproduce, and every card's sha256 is its file's.
 */
import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { trainAll } from "../../scripts/train.ts";
import { parseModelCard } from "../../src/ml/model_card.ts";

Deno.test("trainAll() reproduces every committed model and card exactly", async () => {
  const { files } = await trainAll("models");
  assert.deepEqual(
    files.map((f) => f.path).sort(),
    ["fee-rate-0.1.0.md", "fee-rate-0.1.0.onnx", "tx-risk-0.1.0.md", "tx-risk-0.1.0.onnx"],
  );
  for (const f of files) {
    const committed = await Deno.readFile(`models/${f.path}`);
    assert.equal(hex.encode(sha256(committed)), hex.encode(sha256(f.bytes)), f.path);
    if (f.path.endsWith(".md")) {
      const { card } = parseModelCard(new TextDecoder().decode(f.bytes));
      const onnx = files.find((g) => g.path === f.path.replace(/\.md$/, ".onnx"))!;
      assert.equal(card.sha256, hex.encode(sha256(onnx.bytes)));
    }
  }
});
