/** The registry: cards and files must agree before any session exists. */
import assert from "node:assert/strict";
import { dirModelFiles, loadRegistry } from "../../src/ml/registry.ts";
import { parseModelCard, renderModelCard } from "../../src/ml/model_card.ts";
import { toyModel, toyModelsDir } from "../_helpers/ml_models.ts";

Deno.test("loadRegistry() loads every version with a matching card, ordered by version", async () => {
  await using models = await toyModelsDir("toy", ["1.10.0", "1.2.0"]);
  const loaded = await loadRegistry(dirModelFiles(models.dir));
  assert.deepEqual(loaded.map((m) => m.card.version), ["1.2.0", "1.10.0"]);
});

Deno.test("loadRegistry() refuses a model whose sha256 is not its card's, naming the file", async () => {
  await using models = await toyModelsDir("toy", ["1.0.0"]);
  const path = `${models.dir}/toy-1.0.0.onnx`;
  const bytes = await Deno.readFile(path);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  await Deno.writeFile(path, bytes);
  await assert.rejects(
    () => loadRegistry(dirModelFiles(models.dir)),
    /Model toy-1\.0\.0\.onnx does not match its card: sha256 [0-9a-f]{64}, card says [0-9a-f]{64}/,
  );
});

Deno.test("loadRegistry() refuses a model without a card and a card without a model", async () => {
  await using a = await toyModelsDir("toy", ["1.0.0"]);
  await Deno.remove(`${a.dir}/toy-1.0.0.md`);
  await assert.rejects(() => loadRegistry(dirModelFiles(a.dir)), /toy-1\.0\.0\.onnx has no card/);
  await using b = await toyModelsDir("toy", ["1.0.0"]);
  await Deno.remove(`${b.dir}/toy-1.0.0.onnx`);
  await assert.rejects(
    () => loadRegistry(dirModelFiles(b.dir)),
    /has no model file toy-1\.0\.0\.onnx/,
  );
});

Deno.test("loadRegistry() refuses a card that names another model or version", async () => {
  await using models = await toyModelsDir("toy", ["1.0.0"]);
  const other = toyModel("toy", "2.0.0", 0);
  await Deno.writeTextFile(`${models.dir}/toy-1.0.0.md`, other.text);
  await assert.rejects(() => loadRegistry(dirModelFiles(models.dir)), /describes toy-2\.0\.0/);
});

Deno.test("parseModelCard() round-trips renderModelCard() and names invalid fields", () => {
  const { card, text } = toyModel("toy", "1.0.0", 0);
  assert.deepEqual(parseModelCard(text).card, card);
  assert.throws(() => parseModelCard("# no front matter"), SyntaxError);
  const broken = text.replace(/"sha256": "[0-9a-f]+"/, '"sha256": "xyz"');
  assert.throws(() => parseModelCard(broken), /Invalid card: sha256/);
  const wide = text.replace('"features": [\n    "x0",\n    "x1"\n  ]', '"features": ["x0"]');
  assert.throws(() => parseModelCard(wide), /features must name every input column/);
  assert.throws(() => renderModelCard({ ...card, version: "1" }, ""), Error);
});
