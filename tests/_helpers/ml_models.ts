/**
 * Small real ONNX models for engine and route tests: tree ensembles written
 * by the project's own ONNX writer, with valid cards, in a temp models dir.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import {
  type Tree,
  type TreeEnsemble,
  treeEnsembleToOnnx,
} from "../../src/ml/train/tree_ensemble.ts";
import { type ModelCard, renderModelCard } from "../../src/ml/model_card.ts";

/**
 * A 2-feature, 2-target model: target 0 = `offset + (x0 <= 0.5 ? 1 : 2)`,
 * target 1 = `offset + (x1 <= 0.5 ? 10 : 20)`. Different `offset`s make
 * versions tell themselves apart.
 */
export function toyEnsemble(offset: number): TreeEnsemble {
  const tree = (target: number, feature: number, lo: number, hi: number) => ({
    target,
    nodes: [
      { kind: "split" as const, feature, threshold: 0.5, yes: 1, no: 2 },
      { kind: "leaf" as const, value: lo },
      { kind: "leaf" as const, value: hi },
    ],
  });
  return {
    nFeatures: 2,
    nTargets: 2,
    base: [offset, offset],
    trees: [tree(0, 0, 1, 2), tree(1, 1, 10, 20)],
    post: "none",
  };
}

/** The model file and card of a toy version. */
export function toyModel(name: string, version: string, offset: number) {
  const bytes = treeEnsembleToOnnx(toyEnsemble(offset), { inputName: "x", outputName: "y" });
  const card: ModelCard = {
    name,
    version,
    sha256: hex.encode(sha256(bytes)),
    task: "test",
    inputs: [{ name: "x", type: "float32", shape: [-1, 2] }],
    outputs: [{ name: "y", type: "float32", shape: [-1, 2] }],
    features: ["x0", "x1"],
    targets: ["a", "b"],
    training: { data: "none: a hand-built tree for tests" },
    metrics: {},
    baselines: {},
    licence: "MIT",
    intendedUse: "tests",
    limitations: [],
  };
  return { bytes, card, text: renderModelCard(card, `# ${name} ${version}\n\nA test model.`) };
}

/**
 * A temp models dir holding toy versions `versions` of model `name`.
 *
 * @param name model name
 * @param versions versions to write (offset = index * 100)
 */
export async function toyModelsDir(
  name: string,
  versions: readonly string[],
): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "anya_models_" });
  for (const [i, v] of versions.entries()) {
    const m = toyModel(name, v, i * 100);
    await Deno.writeFile(`${dir}/${name}-${v}.onnx`, m.bytes);
    await Deno.writeTextFile(`${dir}/${name}-${v}.md`, m.text);
  }
  return {
    dir,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * A full binary tree of `depth` splits on random features, from a seeded PRNG.
 *
 * @param rand the PRNG (e.g. `mulberry32(seed)`)
 * @param o the tree's target, input width, depth, and how thresholds and leaf values are drawn
 */
export function randomTree(
  rand: () => number,
  o: {
    target: number;
    nFeatures: number;
    depth: number;
    threshold: () => number;
    leaf: () => number;
  },
): Tree {
  const nodes: Tree["nodes"] = [];
  const grow = (d: number): number => {
    const at = nodes.length;
    if (d === o.depth) {
      nodes.push({ kind: "leaf", value: o.leaf() });
      return at;
    }
    nodes.push({ kind: "leaf", value: 0 }); // placeholder, replaced below
    const feature = Math.floor(rand() * o.nFeatures);
    const threshold = o.threshold();
    const yes = grow(d + 1);
    const no = grow(d + 1);
    nodes[at] = { kind: "split", feature, threshold, yes, no };
    return at;
  };
  grow(0);
  return { target: o.target, nodes };
}
