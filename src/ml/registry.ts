/**
 * The model registry: every `<name>-<version>.onnx` in the models directory
 * with its card, checked before any session exists. A file whose sha256 is
 * not the one its card states, a card without its file, or a file without a
 * card refuses the boot, naming the file.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import { type ModelCard, modelStem, parseModelCard } from "./model_card.ts";

/** A model file and its card, verified. */
export interface RegisteredModel {
  /** Its card. */
  card: ModelCard;
  /** The `.onnx` bytes whose sha256 matched the card. */
  bytes: Uint8Array;
}

/** Where the registry reads files; `Deno.readFile`-shaped so tests can point at a temp dir. */
export interface ModelFiles {
  /** File names in the directory. */
  list(): Promise<string[]>;
  /** A file's bytes. */
  read(name: string): Promise<Uint8Array>;
}

/** {@linkcode ModelFiles} over a directory. */
export function dirModelFiles(dir: string): ModelFiles {
  return {
    async list() {
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
      return names.sort();
    },
    read: (name) => Deno.readFile(`${dir}/${name}`),
  };
}

/**
 * Read and verify every model.
 *
 * @param files the models directory
 * @returns the models, by name then version
 * @throws Error naming the first file that fails a check
 */
export async function loadRegistry(files: ModelFiles): Promise<RegisteredModel[]> {
  const names = await files.list();
  const onnx = names.filter((n) => n.endsWith(".onnx"));
  const cards = names.filter((n) => /^[a-z][a-z0-9-]*-\d+\.\d+\.\d+\.md$/.test(n));
  const out: RegisteredModel[] = [];
  for (const cardFile of cards) {
    const stem = cardFile.slice(0, -3);
    let card: ModelCard;
    try {
      card = parseModelCard(new TextDecoder().decode(await files.read(cardFile))).card;
    } catch (err) {
      throw new Error(`Model card ${cardFile} is invalid: ${(err as Error).message}`);
    }
    if (modelStem(card) !== stem) {
      throw new Error(`Model card ${cardFile} describes ${modelStem(card)}, not ${stem}`);
    }
    const modelFile = `${stem}.onnx`;
    if (!onnx.includes(modelFile)) {
      throw new Error(`Model card ${cardFile} has no model file ${modelFile}`);
    }
    const bytes = await files.read(modelFile);
    const digest = hex.encode(sha256(bytes));
    if (digest !== card.sha256) {
      throw new Error(
        `Model ${modelFile} does not match its card: sha256 ${digest}, card says ${card.sha256}`,
      );
    }
    out.push({ card, bytes });
  }
  for (const file of onnx) {
    if (!out.some((m) => `${modelStem(m.card)}.onnx` === file)) {
      throw new Error(`Model ${file} has no card ${file.slice(0, -5)}.md`);
    }
  }
  return out.sort((a, b) =>
    a.card.name === b.card.name
      ? compareVersions(a.card.version, b.card.version)
      : a.card.name < b.card.name
      ? -1
      : 1
  );
}

/** Semver order of `MAJOR.MINOR.PATCH`. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
