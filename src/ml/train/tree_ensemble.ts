/**
 * Tree ensembles as the project trains them (quantile gradient boosting for
 * fees, isolation forests for risk), their reference evaluation in
 * TypeScript, and their ONNX form.
 *
 * ONNX: one `ai.onnx.ml` `TreeEnsembleRegressor` (opset 3, ONNX 1.10 operator
 * spec) per output column, with `aggregate_function = SUM`,
 * `post_transform = NONE` and `base_values`, joined by `Concat`; then an `Exp`
 * node when the ensemble was fitted in log space, and a `Mul` by a reference
 * input column when it models a ratio (`scaleBy`). Splits are `BRANCH_LEQ` (`x <= threshold` takes the true branch)
 * and a NaN feature takes the false branch (`missing_value_tracks_true = 0`).
 *
 * onnxruntime evaluates a float input with float32 thresholds and float32
 * sums, so {@linkcode predictTreeEnsemble} rounds the same way: trained
 * thresholds must be float32-exact for both to pick the same branches.
 *
 * @module
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** One node: a split on a feature, or a leaf. `yes`/`no` index the tree's nodes. */
export type TreeNode =
  | { kind: "split"; feature: number; threshold: number; yes: number; no: number }
  | { kind: "leaf"; value: number };

/** One regression tree contributing to one target; `nodes[0]` is the root. */
export interface Tree {
  /** Output column this tree adds to. */
  target: number;
  /** Nodes; every child index is greater than its parent's, so trees are acyclic. */
  nodes: TreeNode[];
}

/** A sum of trees per target plus a base value, optionally exponentiated. */
export interface TreeEnsemble {
  /** Input width. */
  nFeatures: number;
  /** Output width. */
  nTargets: number;
  /** Per-target value added to the sum of that target's trees. */
  base: number[];
  /** The trees. */
  trees: Tree[];
  /** `exp`: the output is `exp(base + sum)` (a model fitted in log space). */
  post: "none" | "exp";
  /**
   * Multiply every output by `max(x[feature], min)`: a model of the ratio to
   * a reference input (e.g. the projected next-block median), which carries
   * over level shifts better than a model of the level itself.
   */
  scaleBy?: { feature: number; min: number };
}

/**
 * Check an ensemble's structure.
 *
 * @param e the ensemble
 * @throws TypeError / RangeError naming the first problem
 */
export function assertTreeEnsemble(e: TreeEnsemble): void {
  if (typeof e !== "object" || e === null) throw new TypeError("Invalid ensemble: not an object");
  if (!Number.isInteger(e.nFeatures) || e.nFeatures < 1) {
    throw new RangeError(`Invalid ensemble.nFeatures: ${String(e.nFeatures)}`);
  }
  if (!Number.isInteger(e.nTargets) || e.nTargets < 1) {
    throw new RangeError(`Invalid ensemble.nTargets: ${String(e.nTargets)}`);
  }
  if (!Array.isArray(e.base) || e.base.length !== e.nTargets || !e.base.every(Number.isFinite)) {
    throw new RangeError(`Invalid ensemble.base: expected ${e.nTargets} finite numbers`);
  }
  if (e.post !== "none" && e.post !== "exp") {
    throw new RangeError(`Invalid ensemble.post: ${String(e.post)}`);
  }
  if (e.scaleBy !== undefined) {
    const { feature, min } = e.scaleBy;
    if (!Number.isInteger(feature) || feature < 0 || feature >= e.nFeatures) {
      throw new RangeError(`Invalid ensemble.scaleBy.feature: ${String(feature)}`);
    }
    if (!Number.isFinite(min) || Math.fround(min) !== min) {
      throw new RangeError("Invalid ensemble.scaleBy.min: not a finite float32");
    }
  }
  if (!Array.isArray(e.trees) || e.trees.length === 0) {
    throw new RangeError("Invalid ensemble.trees: expected at least one tree");
  }
  for (let t = 0; t < e.nTargets; t++) {
    if (!e.trees.some((tree) => tree.target === t)) {
      throw new RangeError(`Invalid ensemble: target ${t} has no tree`);
    }
  }
  e.trees.forEach((t, ti) => {
    if (!Number.isInteger(t.target) || t.target < 0 || t.target >= e.nTargets) {
      throw new RangeError(`Invalid tree ${ti}: target ${String(t.target)}`);
    }
    if (!Array.isArray(t.nodes) || t.nodes.length === 0) {
      throw new RangeError(`Invalid tree ${ti}: no nodes`);
    }
    t.nodes.forEach((n, ni) => {
      if (n.kind === "leaf") {
        if (!Number.isFinite(n.value)) throw new RangeError(`Invalid tree ${ti} node ${ni}: value`);
        return;
      }
      if (n.kind !== "split") throw new TypeError(`Invalid tree ${ti} node ${ni}: kind`);
      if (!Number.isInteger(n.feature) || n.feature < 0 || n.feature >= e.nFeatures) {
        throw new RangeError(`Invalid tree ${ti} node ${ni}: feature ${String(n.feature)}`);
      }
      if (!Number.isFinite(n.threshold) || Math.fround(n.threshold) !== n.threshold) {
        throw new RangeError(`Invalid tree ${ti} node ${ni}: threshold is not a finite float32`);
      }
      for (const child of [n.yes, n.no]) {
        if (!Number.isInteger(child) || child <= ni || child >= t.nodes.length) {
          throw new RangeError(`Invalid tree ${ti} node ${ni}: child ${String(child)}`);
        }
      }
    });
  });
}

/**
 * Evaluate the ensemble on one row as onnxruntime does (float32 features,
 * thresholds and sums; trees added in order, then the base).
 *
 * @param e the ensemble
 * @param row `e.nFeatures` numbers
 * @returns `e.nTargets` outputs
 */
export function predictTreeEnsemble(e: TreeEnsemble, row: ArrayLike<number>): Float64Array {
  if (row === null || typeof row !== "object" || row.length !== e.nFeatures) {
    throw new RangeError(`Invalid row: expected ${e.nFeatures} features`);
  }
  const x = Float32Array.from(row as ArrayLike<number>);
  const sums = new Float64Array(e.nTargets);
  for (const tree of e.trees) {
    let i = 0;
    for (;;) {
      const node = tree.nodes[i]!;
      if (node.kind === "leaf") {
        sums[tree.target] = Math.fround(sums[tree.target]! + Math.fround(node.value));
        break;
      }
      // NaN compares false: the false branch, as missing_value_tracks_true = 0.
      i = x[node.feature]! <= node.threshold ? node.yes : node.no;
    }
  }
  const out = new Float64Array(e.nTargets);
  // NaN propagates through max as it does through ONNX Max.
  const scale = e.scaleBy === undefined
    ? 1
    : Number.isNaN(x[e.scaleBy.feature]!)
    ? NaN
    : Math.max(x[e.scaleBy.feature]!, e.scaleBy.min);
  for (let t = 0; t < e.nTargets; t++) {
    const v = Math.fround(sums[t]! + Math.fround(e.base[t]!));
    const y = e.post === "exp" ? Math.fround(Math.exp(v)) : v;
    out[t] = e.scaleBy === undefined ? y : Math.fround(y * scale);
  }
  return out;
}

/** Names and documentation of the ONNX graph. */
export interface OnnxMeta {
  /** Input tensor name (float32 [N, nFeatures]). */
  inputName: string;
  /** Output tensor name (float32 [N, nTargets]). */
  outputName: string;
  /** Graph doc string (what the model is). */
  docString?: string;
}

const INT = onnx.AttributeProto.AttributeType.INT;
const INTS = onnx.AttributeProto.AttributeType.INTS;
const FLOATS = onnx.AttributeProto.AttributeType.FLOATS;
const STRING = onnx.AttributeProto.AttributeType.STRING;
const STRINGS = onnx.AttributeProto.AttributeType.STRINGS;
const FLOAT_TENSOR = onnx.TensorProto.DataType.FLOAT;
const utf8 = new TextEncoder();

/**
 * The ensemble as an ONNX model (IR 8, opsets ai.onnx 15 and ai.onnx.ml 3).
 *
 * @param e the ensemble
 * @param meta tensor names and doc string
 * @returns the serialised `ModelProto`
 */
export function treeEnsembleToOnnx(e: TreeEnsemble, meta: OnnxMeta): Uint8Array {
  assertTreeEnsemble(e);
  const scaled = e.scaleBy !== undefined;
  const expOut = scaled ? `${meta.outputName}_ratio` : meta.outputName;
  const treesOut = e.post === "exp" ? `${meta.outputName}_log` : expOut;
  // One single-target TreeEnsembleRegressor per output column, then Concat: onnxruntime has a
  // fast path for one target, and the multi-target one allocates per row (4x slower per row).
  const nodes = e.nTargets === 1
    ? [regressorNode("trees", e.trees, e.base[0]!, meta.inputName, treesOut)]
    : [
      ...e.base.map((base, t) =>
        regressorNode(
          `trees_${t}`,
          e.trees.filter((tree) => tree.target === t),
          base,
          meta.inputName,
          `${treesOut}_${t}`,
        )
      ),
      onnx.NodeProto.create({
        name: "columns",
        opType: "Concat",
        domain: "",
        input: e.base.map((_, t) => `${treesOut}_${t}`),
        output: [treesOut],
        attribute: [attr("axis", INT, { i: 1 })],
      }),
    ];
  if (e.post === "exp") {
    nodes.push(onnx.NodeProto.create({
      name: "exp",
      opType: "Exp",
      domain: "",
      input: [treesOut],
      output: [expOut],
    }));
  }
  const initializer = [];
  if (e.scaleBy !== undefined) {
    // reference = max(x[:, feature:feature+1], min); output = ratio * reference (broadcast [N,1]).
    initializer.push(
      onnx.TensorProto.create({
        name: "scale_index",
        dataType: onnx.TensorProto.DataType.INT64,
        dims: [1],
        int64Data: [e.scaleBy.feature],
      }),
      onnx.TensorProto.create({
        name: "scale_min",
        dataType: FLOAT_TENSOR,
        dims: [],
        floatData: [e.scaleBy.min],
      }),
    );
    nodes.push(
      onnx.NodeProto.create({
        name: "reference",
        opType: "Gather",
        domain: "",
        input: [meta.inputName, "scale_index"],
        output: ["reference_raw"],
        attribute: [attr("axis", INT, { i: 1 })],
      }),
      onnx.NodeProto.create({
        name: "reference_floor",
        opType: "Max",
        domain: "",
        input: ["reference_raw", "scale_min"],
        output: ["reference"],
      }),
      onnx.NodeProto.create({
        name: "scale",
        opType: "Mul",
        domain: "",
        input: [expOut, "reference"],
        output: [meta.outputName],
      }),
    );
  }
  const tensor = (name: string, width: number) =>
    onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: {
          elemType: FLOAT_TENSOR,
          shape: { dim: [{ dimParam: "N" }, { dimValue: width }] },
        },
      },
    });
  const graph = onnx.GraphProto.create({
    name: "tree_ensemble",
    node: nodes,
    input: [tensor(meta.inputName, e.nFeatures)],
    output: [tensor(meta.outputName, e.nTargets)],
    initializer,
    ...(meta.docString === undefined ? {} : { docString: meta.docString }),
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "anya-edge train",
    opsetImport: [{ domain: "", version: 15 }, { domain: "ai.onnx.ml", version: 3 }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

function attr(name: string, type: number, value: Record<string, unknown>) {
  return { name, type, ...value };
}

/** One `TreeEnsembleRegressor` with one output column: `base` plus the sum of `trees`' leaves. */
function regressorNode(
  name: string,
  trees: readonly Tree[],
  base: number,
  input: string,
  output: string,
) {
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const values: number[] = [];
  const modes: Uint8Array[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const targetTreeIds: number[] = [];
  const targetNodeIds: number[] = [];
  const targetWeights: number[] = [];
  trees.forEach((tree, ti) => {
    tree.nodes.forEach((n, ni) => {
      treeIds.push(ti);
      nodeIds.push(ni);
      if (n.kind === "split") {
        featureIds.push(n.feature);
        values.push(n.threshold);
        modes.push(utf8.encode("BRANCH_LEQ"));
        trueIds.push(n.yes);
        falseIds.push(n.no);
      } else {
        featureIds.push(0);
        values.push(0);
        modes.push(utf8.encode("LEAF"));
        trueIds.push(0);
        falseIds.push(0);
        targetTreeIds.push(ti);
        targetNodeIds.push(ni);
        targetWeights.push(n.value);
      }
    });
  });
  return onnx.NodeProto.create({
    name,
    opType: "TreeEnsembleRegressor",
    domain: "ai.onnx.ml",
    input: [input],
    output: [output],
    attribute: [
      attr("n_targets", INT, { i: 1 }),
      attr("aggregate_function", STRING, { s: utf8.encode("SUM") }),
      attr("post_transform", STRING, { s: utf8.encode("NONE") }),
      attr("base_values", FLOATS, { floats: [base] }),
      attr("nodes_treeids", INTS, { ints: treeIds }),
      attr("nodes_nodeids", INTS, { ints: nodeIds }),
      attr("nodes_featureids", INTS, { ints: featureIds }),
      attr("nodes_values", FLOATS, { floats: values }),
      attr("nodes_modes", STRINGS, { strings: modes }),
      attr("nodes_truenodeids", INTS, { ints: trueIds }),
      attr("nodes_falsenodeids", INTS, { ints: falseIds }),
      attr("nodes_missing_value_tracks_true", INTS, { ints: treeIds.map(() => 0) }),
      attr("target_treeids", INTS, { ints: targetTreeIds }),
      attr("target_nodeids", INTS, { ints: targetNodeIds }),
      attr("target_ids", INTS, { ints: targetTreeIds.map(() => 0) }),
      attr("target_weights", FLOATS, { floats: targetWeights }),
    ],
  });
}
