/**
 * Model cards: `models/<name>-<version>.md`, JSON front matter between a
 * `---json` line and a `---` line, then markdown for people. The front matter
 * is what the engine trusts: the file's sha256, its tensors and features.
 *
 * @module
 */
import { z } from "zod";

const ModelNameSchema = z.string().regex(
  /^[a-z][a-z0-9-]{0,62}[a-z0-9]$/,
  "lowercase letters, digits, '-'",
);
const ModelVersionSchema = z.string().regex(
  /^\d{1,4}\.\d{1,4}\.\d{1,4}$/,
  "semver MAJOR.MINOR.PATCH",
);

const TensorSpecSchema = z.object({
  name: z.string().min(1),
  type: z.literal("float32"),
  /** -1 is the batch dimension. */
  shape: z.tuple([z.literal(-1), z.number().int().min(1).max(4096)]),
}).strict();

const ModelCardObject = z.object({
  name: ModelNameSchema,
  version: ModelVersionSchema,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  task: z.string().min(1),
  inputs: z.tuple([TensorSpecSchema]),
  outputs: z.tuple([TensorSpecSchema]),
  /** Input column names, in order; as many as the input width. */
  features: z.array(z.string().min(1)).min(1),
  /** Output column names, in order; as many as the output width. */
  targets: z.array(z.string().min(1)).min(1),
  training: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()),
  baselines: z.record(z.string(), z.unknown()),
  licence: z.string().min(1),
  intendedUse: z.string().min(1),
  limitations: z.array(z.string()).default([]),
}).passthrough().superRefine((card, ctx) => {
  if (card.features.length !== card.inputs[0].shape[1]) {
    ctx.addIssue({ code: "custom", message: "features must name every input column" });
  }
  if (card.targets.length !== card.outputs[0].shape[1]) {
    ctx.addIssue({ code: "custom", message: "targets must name every output column" });
  }
});

/** Validates a card's front matter (what {@linkcode parseModelCard} applies). */
export const ModelCardSchema: z.ZodType<ModelCard> = ModelCardObject as unknown as z.ZodType<
  ModelCard
>;

/** One tensor of a card: float32, `[batch, width]` (-1 is the batch dimension). */
export interface TensorSpec {
  /** Tensor name in the graph. */
  name: string;
  /** Element type. */
  type: "float32";
  /** `[-1, width]`. */
  shape: [-1, number];
}

/** The machine-read part of a card (JSON front matter). */
export interface ModelCard {
  /** Lowercase letters, digits and `-`. */
  name: string;
  /** `MAJOR.MINOR.PATCH`. */
  version: string;
  /** SHA-256 of the `.onnx` file, lowercase hex. */
  sha256: string;
  /** What the model predicts. */
  task: string;
  /** The input tensor. */
  inputs: [TensorSpec];
  /** The output tensor. */
  outputs: [TensorSpec];
  /** Input column names, in order. */
  features: string[];
  /** Output column names, in order. */
  targets: string[];
  /** Training data, provenance, split. */
  training: Record<string, unknown>;
  /** Metrics on the held-out split. */
  metrics: Record<string, unknown>;
  /** Baselines on the same rows. */
  baselines: Record<string, unknown>;
  /** Licence of the model and its data. */
  licence: string;
  /** What it is for. */
  intendedUse: string;
  /** Where it is known to fail. */
  limitations: string[];
  /** Further fields a card may carry. */
  [extra: string]: unknown;
}

const FRONT = /^---json\n([\s\S]*?)\n---\n?/;

/**
 * Parse a card file.
 *
 * @param text the `.md` file
 * @returns the validated front matter and the markdown after it
 * @throws SyntaxError when there is no front matter or it is not JSON
 * @throws Error naming every invalid field
 */
export function parseModelCard(text: string): { card: ModelCard; body: string } {
  if (typeof text !== "string") throw new TypeError("Invalid card: expected a string");
  const m = FRONT.exec(text);
  if (m === null) throw new SyntaxError("Invalid card: no ---json front matter");
  const json: unknown = JSON.parse(m[1]!);
  const parsed = ModelCardSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "card"}: ${i.message}`);
    throw new Error(`Invalid card: ${issues.join("; ")}`);
  }
  return { card: parsed.data, body: text.slice(m[0].length) };
}

/**
 * Render a card file.
 *
 * @param card the front matter (validated first)
 * @param body markdown for people
 */
export function renderModelCard(card: ModelCard, body: string): string {
  const valid = ModelCardSchema.parse(card);
  return `---json\n${JSON.stringify(valid, null, 2)}\n---\n\n${body.trim()}\n`;
}

/** `<name>-<version>`, the file stem of a model and its card. */
export function modelStem(card: Pick<ModelCard, "name" | "version">): string {
  return `${card.name}-${card.version}`;
}
