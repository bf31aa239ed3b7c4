/**
 * The inference engine: one onnxruntime-web session per model version,
 * created once at boot from the verified registry, and a batcher in front of
 * each. Several versions of a model are loaded at once (A/B, shadow).
 *
 * @module
 */
import { NotFoundError, ValidationError } from "../errors/app_error.ts";
import type { ModelCard } from "./model_card.ts";
import type { RegisteredModel } from "./registry.ts";
import { MicroBatcher } from "./batcher.ts";
import {
  float32Tensor,
  type InferenceSession,
  type OrtRuntime,
  type RuntimeInfo,
  type Tensor,
} from "./ort_runtime.ts";

/** Options of {@linkcode InferenceEngine.create}. */
export interface EngineOptions {
  /** Largest coalesced batch, in rows. */
  maxBatch: number;
  /** How long an idle model waits for more requests, in microseconds. */
  maxWaitMicros: number;
}

interface Loaded {
  card: ModelCard;
  /** Input row width. */
  width: number;
  session: InferenceSession;
  batcher: MicroBatcher<Record<string, Tensor>>;
  loadMs: number;
}

/** The models this process serves. */
export class InferenceEngine {
  readonly #runtime: OrtRuntime;
  readonly #models: Map<string, Loaded>;
  readonly #maxBatch: number;

  private constructor(runtime: OrtRuntime, models: Map<string, Loaded>, maxBatch: number) {
    this.#runtime = runtime;
    this.#models = models;
    this.#maxBatch = maxBatch;
  }

  /**
   * Create a session for every registered model.
   *
   * @param runtime the configured onnxruntime-web
   * @param models the verified registry
   * @param options batching
   * @throws Error naming a model whose session cannot be created or whose tensors differ from its card
   */
  static async create(
    runtime: OrtRuntime,
    models: readonly RegisteredModel[],
    options: EngineOptions,
  ): Promise<InferenceEngine> {
    const loaded = new Map<string, Loaded>();
    try {
      for (const { card, bytes } of models) {
        const t0 = performance.now();
        let session: InferenceSession;
        try {
          session = await runtime.createSession(bytes);
        } catch (err) {
          throw new Error(`Model ${card.name}-${card.version} does not load: ${String(err)}`);
        }
        loaded.set(key(card.name, card.version), {
          card,
          width: card.inputs[0].shape[1],
          session,
          loadMs: performance.now() - t0,
          batcher: batcherFor(card, session, options),
        });
        const [input] = card.inputs;
        const [output] = card.outputs;
        if (
          !session.inputNames.includes(input.name) || !session.outputNames.includes(output.name)
        ) {
          throw new Error(
            `Model ${card.name}-${card.version} has tensors ${session.inputNames}/${session.outputNames}, its card says ${input.name}/${output.name}`,
          );
        }
      }
    } catch (err) {
      for (const m of loaded.values()) await m.session.release();
      throw err;
    }
    return new InferenceEngine(runtime, loaded, options.maxBatch);
  }

  /** What the host offers and what the engine uses. */
  get runtime(): RuntimeInfo {
    return this.#runtime.info;
  }

  /** Every loaded model's card, by name then version. */
  cards(): ModelCard[] {
    return [...this.#models.values()].map((m) => m.card);
  }

  /** A loaded version's card, or null. */
  getCard(name: string, version: string): ModelCard | null {
    return this.#models.get(key(name, version))?.card ?? null;
  }

  /** Session creation time of each loaded version, in milliseconds. */
  loadTimes(): { name: string; version: string; loadMs: number }[] {
    return [...this.#models.values()].map((m) => ({
      name: m.card.name,
      version: m.card.version,
      loadMs: m.loadMs,
    }));
  }

  /** Runs and rows per loaded version (how much coalescing happened). */
  batchStats(name: string, version: string): { runs: number; rows: number } | null {
    const m = this.#models.get(key(name, version));
    return m === undefined ? null : { ...m.batcher.stats };
  }

  /**
   * Run rows through one model version, coalesced with concurrent callers.
   *
   * @param name model name
   * @param version model version (loaded)
   * @param rows row-major inputs, each row the card's input width; checked finite as float32
   * @returns row-major outputs, `rows * outputWidth`
   * @throws ValidationError 422 on a wrong width or a non-finite value; 404 for an unknown version
   */
  predict(name: string, version: string, rows: Float32Array): Promise<Float32Array> {
    const m = this.#models.get(key(name, version));
    if (m === undefined) {
      return Promise.reject(new NotFoundError(`Model ${name} has no version ${version}`));
    }
    const width = m.width;
    if (rows.length === 0 || rows.length % width !== 0) {
      return Promise.reject(
        new ValidationError(
          `Invalid input: each row must have ${width} features (${m.card.features.join(", ")})`,
          { status: 422 },
        ),
      );
    }
    for (let i = 0; i < rows.length; i++) {
      if (!Number.isFinite(rows[i]!)) {
        return Promise.reject(
          new ValidationError(
            `Invalid input: row ${Math.floor(i / width)} feature ${
              m.card.features[i % width]
            } is not a finite float32`,
            { status: 422 },
          ),
        );
      }
    }
    const count = rows.length / width;
    // A lone row is the common case: its promise is the batcher's own, with no hop added here.
    if (count <= this.#maxBatch) return m.batcher.submit(rows, count);
    const parts: Promise<Float32Array>[] = [];
    for (let r = 0; r < count; r += this.#maxBatch) {
      const n = Math.min(this.#maxBatch, count - r);
      parts.push(m.batcher.submit(rows.subarray(r * width, (r + n) * width), n));
    }
    return Promise.all(parts).then(concat);
  }

  /** Release every session. */
  async close(): Promise<void> {
    for (const m of this.#models.values()) await m.session.release();
    this.#models.clear();
  }
}

function key(name: string, version: string): string {
  return `${name}@${version}`;
}

function batcherFor(
  card: ModelCard,
  session: InferenceSession,
  options: EngineOptions,
): MicroBatcher<Record<string, Tensor>> {
  const [input] = card.inputs;
  const [output] = card.outputs;
  return new MicroBatcher(
    (rows, count) => session.run({ [input.name]: float32Tensor(rows, count, input.shape[1]) }),
    (result) => {
      const data = result[output.name]?.data;
      if (!(data instanceof Float32Array)) {
        throw new Error(`Model ${card.name}-${card.version} returned no float32 ${output.name}`);
      }
      return data;
    },
    {
      inWidth: input.shape[1],
      outWidth: output.shape[1],
      maxBatch: options.maxBatch,
      maxWaitMicros: options.maxWaitMicros,
      // Finite inputs can still overflow a model (an exp, a scale); that is the input's fault.
      checkOutputs: (outputs) => {
        for (let i = 0; i < outputs.length; i++) {
          if (!Number.isFinite(outputs[i]!)) {
            return new ValidationError(
              `Invalid input: row ${
                Math.floor(i / output.shape[1])
              } is outside what model ${card.name}-${card.version} can answer (its output is not finite)`,
              { status: 422 },
            );
          }
        }
        return undefined;
      },
    },
  );
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
