/**
 * What the routes ask of the ML engine: predictions routed between versions
 * (sticky per API key), shadow runs, the record of every prediction, routing
 * changes, per-version metrics, and fee truths as blocks arrive.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hex } from "@scure/base";
import type { Db } from "../db/db.ts";
import { NotFoundError, ValidationError } from "../errors/app_error.ts";
import type { Logger } from "../obs/logger.ts";
import type { InferenceEngine } from "./inference_engine.ts";
import type { ModelCard } from "./model_card.ts";
import { MlRepo, type VersionMetrics } from "./ml_repo.ts";
import { compareVersions } from "./registry.ts";
import { defaultRouting, pickVersion, type RoutingTable } from "./routing.ts";

/** Who asks: the tenant owns the record, the key id makes routing sticky. */
export interface MlCaller {
  /** Owner of the recorded predictions. */
  tenant: string;
  /** API key id: the same key is routed to the same version. */
  keyId: string;
}

/** A prediction request. */
export interface PredictRequest {
  /** Input rows, each the model's input width. */
  rows: readonly (readonly number[])[];
  /** What a later truth is matched on (e.g. `{ height }` for fees); recorded with the prediction. */
  context?: Record<string, unknown>;
}

/** A prediction answer. */
export interface PredictResult {
  /** Model name. */
  model: string;
  /** The version that answered. */
  version: string;
  /** Output column names. */
  targets: string[];
  /** One output row per input row. */
  outputs: number[][];
  /** Engine time, milliseconds. */
  latencyMs: number;
}

/** How fee predictions are settled: output column `column` is the rate for `blocks` blocks. */
export interface FeeTruthTarget {
  /** Output column name (e.g. `blocks_6`). */
  name: string;
  /** Confirmation target in blocks. */
  blocks: number;
  /** Output column index. */
  column: number;
}

/** Dependencies of {@linkcode MlService}. */
export interface MlServiceDeps {
  /** Loaded models. */
  engine: InferenceEngine;
  /** Routing tables and the prediction record. */
  db: Db;
  /** For shadow failures. */
  logger: Logger;
}

/** The ML use cases. */
export class MlService {
  readonly #engine: InferenceEngine;
  readonly #repo: MlRepo;
  readonly #logger: Logger;
  readonly #shadows = new Set<Promise<void>>();

  /**
   * Build the service.
   *
   * @param deps engine, database, logger
   */
  constructor(deps: MlServiceDeps) {
    this.#engine = deps.engine;
    this.#repo = new MlRepo(deps.db);
    this.#logger = deps.logger;
  }

  /** The engine (runtime report, cards). */
  get engine(): InferenceEngine {
    return this.#engine;
  }

  /** Loaded versions of `name`, oldest first; 404 when none. */
  versions(name: string): ModelCard[] {
    const cards = this.#engine.cards().filter((c) => c.name === name)
      .sort((a, b) => compareVersions(a.version, b.version));
    if (cards.length === 0) throw new NotFoundError(`No model named ${JSON.stringify(name)}`);
    return cards;
  }

  /** The routing table in force for `name`. */
  async routing(name: string): Promise<RoutingTable> {
    const versions = this.versions(name).map((c) => c.version);
    const stored = await this.#repo.getRouting(name);
    // A table naming a version no longer loaded falls back to the default rather than failing calls.
    const usable = stored !== null &&
      stored.routes.every((r) => versions.includes(r.version)) &&
      (stored.shadowVersion === null || versions.includes(stored.shadowVersion));
    return usable ? stored : defaultRouting(name, versions);
  }

  /**
   * Replace the routing table of `name`.
   *
   * @throws ValidationError 422 naming a version that is not loaded, or weights that sum to 0
   */
  async setRouting(
    name: string,
    table: Omit<RoutingTable, "model">,
    by: string,
  ): Promise<RoutingTable> {
    const versions = this.versions(name).map((c) => c.version);
    const unknown = [...table.routes.map((r) => r.version), table.shadowVersion]
      .filter((v): v is string => v !== null && !versions.includes(v));
    if (unknown.length > 0) {
      throw new ValidationError(
        `Model ${name} has no version ${unknown.join(", ")} (loaded: ${versions.join(", ")})`,
        { status: 422 },
      );
    }
    if (!(table.routes.reduce((n, r) => n + r.weight, 0) > 0)) {
      throw new ValidationError("Routing weights must sum to more than 0", { status: 422 });
    }
    if (new Set(table.routes.map((r) => r.version)).size !== table.routes.length) {
      throw new ValidationError("Each version may appear once in the routes", { status: 422 });
    }
    const full: RoutingTable = {
      model: name,
      routes: table.routes,
      shadowVersion: table.shadowVersion,
    };
    await this.#repo.setRouting(full, by);
    return full;
  }

  /**
   * Predict with the version routing picks for this caller; run the shadow
   * version too, after answering, and record everything.
   *
   * @example
   * ```ts
   * const r = await ml.predict({ tenant, keyId }, "fee-rate", { rows: [features] });
   * r.outputs[0]; // one value per target
   * ```
   */
  async predict(caller: MlCaller, name: string, req: PredictRequest): Promise<PredictResult> {
    const table = await this.routing(name);
    const version = pickVersion(table, caller.keyId);
    const card = this.#engine.getCard(name, version)!;
    const width = card.inputs[0].shape[1];
    const input = toFloat32(req.rows, width, card);
    const t0 = performance.now();
    const flat = await this.#engine.predict(name, version, input);
    const latencyMs = performance.now() - t0;
    const outputs = splitRows(flat, card.outputs[0].shape[1]);
    const hashes = req.rows.map((_, i) => rowHash(input, i, width));
    await this.#repo.recordPredictions(outputs.map((output, i) => ({
      model: name,
      version,
      shadow: false,
      tenant: caller.tenant,
      inputHash: hashes[i]!,
      output,
      latencyMs,
      context: req.context ?? null,
    })));
    const shadow = table.shadowVersion;
    if (shadow !== null && shadow !== version) {
      this.#runShadow(caller, name, shadow, input, hashes, req.context ?? null);
    }
    return { model: name, version, targets: card.targets, outputs, latencyMs };
  }

  /** The shadow's answer is recorded, never returned; its failure is logged, never raised. */
  #runShadow(
    caller: MlCaller,
    name: string,
    version: string,
    input: Float32Array,
    hashes: string[],
    context: Record<string, unknown> | null,
  ): void {
    const card = this.#engine.getCard(name, version)!;
    const job = (async () => {
      try {
        const t0 = performance.now();
        const flat = await this.#engine.predict(name, version, input);
        const latencyMs = performance.now() - t0;
        await this.#repo.recordPredictions(
          splitRows(flat, card.outputs[0].shape[1]).map((output, i) => ({
            model: name,
            version,
            shadow: true,
            tenant: caller.tenant,
            inputHash: hashes[i]!,
            output,
            latencyMs,
            context,
          })),
        );
      } catch (err) {
        this.#logger.warn("shadow prediction failed", {
          model: name,
          version,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    })();
    this.#shadows.add(job);
    void job.finally(() => this.#shadows.delete(job));
  }

  /** Wait for shadow runs in flight (shutdown, tests). */
  async drainShadows(): Promise<void> {
    while (this.#shadows.size > 0) await Promise.all([...this.#shadows]);
  }

  /** Per-version metrics of `name`. */
  metrics(name: string): Promise<VersionMetrics[]> {
    this.versions(name);
    return this.#repo.metrics(name);
  }

  /**
   * A block arrived: remember its median fee rate and settle every fee
   * prediction whose window it completes.
   *
   * @param height block height
   * @param medianFeeSatVb the block's median fee rate
   * @param model the fee model's name
   * @param targets output columns and their block counts
   * @returns truths written
   */
  async recordBlockFee(
    height: number,
    medianFeeSatVb: number,
    model: string,
    targets: readonly FeeTruthTarget[],
  ): Promise<number> {
    if (!Number.isInteger(height) || height < 0) throw new RangeError(`Invalid height: ${height}`);
    if (!Number.isFinite(medianFeeSatVb) || medianFeeSatVb < 0) {
      throw new RangeError(`Invalid medianFeeSatVb: ${medianFeeSatVb}`);
    }
    await this.#repo.recordBlockFee(height, medianFeeSatVb);
    return await this.#repo.settleFeeTruths(model, targets);
  }
}

function toFloat32(
  rows: readonly (readonly number[])[],
  width: number,
  card: ModelCard,
): Float32Array {
  if (rows.length === 0) throw new ValidationError("Invalid input: no rows", { status: 422 });
  const out = new Float32Array(rows.length * width);
  rows.forEach((row, r) => {
    if (row.length !== width) {
      throw new ValidationError(
        `Invalid input: row ${r} has ${row.length} values; ${card.name} takes ${width} (${
          card.features.join(", ")
        })`,
        { status: 422 },
      );
    }
    // Stored as float32; the engine refuses what is not finite after that (1e39, NaN).
    out.set(row, r * width);
  });
  return out;
}

function splitRows(values: Float32Array, width: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < values.length; i += width) {
    rows.push(Array.from(values.subarray(i, i + width)));
  }
  return rows;
}

function rowHash(input: Float32Array, row: number, width: number): string {
  const bytes = new Uint8Array(input.buffer, input.byteOffset + row * width * 4, width * 4);
  return hex.encode(sha256(bytes));
}
