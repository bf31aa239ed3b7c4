/**
 * ML storage: routing tables, recorded predictions, truths and block fee
 * medians (`0004_ml.sql`), and the per-version metrics computed from them.
 *
 * @module
 */
import type { Queryable } from "../db/db.ts";
import type { Route, RoutingTable } from "./routing.ts";

/** A prediction to record. */
export interface PredictionRecord {
  /** Model name. */
  model: string;
  /** Version that ran. */
  version: string;
  /** Run as shadow (recorded, not returned). */
  shadow: boolean;
  /** Caller's tenant. */
  tenant: string;
  /** SHA-256 of the input row's float32 bytes. */
  inputHash: string;
  /** The output row. */
  output: number[];
  /** Engine latency, milliseconds. */
  latencyMs: number;
  /** What a later truth is matched on. */
  context: Record<string, unknown> | null;
}

/** Per-version figures of `GET /v1/ml/models/{name}/metrics`. */
export interface VersionMetrics {
  /** Model version. */
  version: string;
  /** Predictions answered (not shadow). */
  count: number;
  /** Shadow predictions. */
  shadowCount: number;
  /** Median engine latency, milliseconds. */
  latencyMsP50: number | null;
  /** 99th percentile engine latency, milliseconds. */
  latencyMsP99: number | null;
  /** Per output column with truths: count, mean absolute error, hit rate (predicted >= truth), median overpayment. */
  errors: {
    target: string;
    count: number;
    meanAbsoluteError: number;
    hitRate: number;
    medianOverpayment: number | null;
  }[];
}

/** Data access for the ML tables. */
export class MlRepo {
  readonly #db: Queryable;

  /** @param db the database or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** A model's stored table, or null. */
  async getRouting(model: string): Promise<RoutingTable | null> {
    const [row] = await this.#db.query<{ routes: Route[]; shadow_version: string | null }>(
      "SELECT routes, shadow_version FROM ml_routing WHERE model = $1",
      [model],
    );
    return row === undefined
      ? null
      : { model, routes: row.routes, shadowVersion: row.shadow_version };
  }

  /** Store a model's table. */
  async setRouting(table: RoutingTable, updatedBy: string): Promise<void> {
    await this.#db.query(
      `INSERT INTO ml_routing (model, routes, shadow_version, updated_by) VALUES ($1, $2::jsonb, $3, $4)
       ON CONFLICT (model) DO UPDATE SET routes = EXCLUDED.routes,
         shadow_version = EXCLUDED.shadow_version, updated_by = EXCLUDED.updated_by, updated_at = now()`,
      [table.model, JSON.stringify(table.routes), table.shadowVersion, updatedBy],
    );
  }

  /** Record predictions; returns their ids in order. */
  async recordPredictions(records: readonly PredictionRecord[]): Promise<bigint[]> {
    if (records.length === 0) return [];
    const rows = await this.#db.query<{ id: bigint }>(
      `INSERT INTO ml_predictions (model, version, shadow, tenant, input_hash, output, latency_ms, context)
       SELECT r->>'model', r->>'version', (r->>'shadow')::boolean, r->>'tenant', r->>'inputHash',
              r->'output', (r->>'latencyMs')::double precision, r->'context'
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, n) ORDER BY n
       RETURNING id`,
      [JSON.stringify(records)],
    );
    return rows.map((r) => BigInt(r.id));
  }

  /** Remember a block's median fee rate. */
  async recordBlockFee(height: number, medianFeeSatVb: number): Promise<void> {
    await this.#db.query(
      `INSERT INTO ml_block_fees (height, median_fee_sat_vb) VALUES ($1, $2)
       ON CONFLICT (height) DO UPDATE SET median_fee_sat_vb = EXCLUDED.median_fee_sat_vb`,
      [height, medianFeeSatVb],
    );
  }

  /**
   * Write the truths that became known: for each prediction of `model` made
   * at height h (context.height) and each target N in `targets` (output
   * column i), once blocks h+1..h+N are all recorded, truth = the lowest
   * median of those blocks. Idempotent.
   *
   * @returns how many truths were written
   */
  async settleFeeTruths(
    model: string,
    targets: readonly { name: string; blocks: number; column: number }[],
  ): Promise<number> {
    let written = 0;
    for (const t of targets) {
      const rows = await this.#db.query<{ n: bigint }>(
        `WITH due AS (
           SELECT p.id, (p.context->>'height')::int AS h, (p.output->>$3::int)::double precision AS predicted
           FROM ml_predictions p
           WHERE p.model = $1 AND p.context ? 'height'
             AND NOT EXISTS (SELECT 1 FROM ml_truths x WHERE x.prediction_id = p.id AND x.target = $2)
         ), known AS (
           SELECT d.id, d.predicted, min(b.median_fee_sat_vb) AS truth, count(b.height) AS blocks
           FROM due d JOIN ml_block_fees b ON b.height > d.h AND b.height <= d.h + $4::int
           GROUP BY d.id, d.predicted
         ), ins AS (
           INSERT INTO ml_truths (prediction_id, target, predicted, truth)
           SELECT id, $2, predicted, truth FROM known WHERE blocks = $4::int AND predicted IS NOT NULL
           ON CONFLICT DO NOTHING RETURNING 1
         )
         SELECT count(*) AS n FROM ins`,
        [model, t.name, t.column, t.blocks],
      );
      written += Number(rows[0]?.n ?? 0);
    }
    return written;
  }

  /** Per-version metrics of a model. */
  async metrics(model: string): Promise<VersionMetrics[]> {
    const base = await this.#db.query<{
      version: string;
      count: bigint;
      shadow_count: bigint;
      p50: number | null;
      p99: number | null;
    }>(
      `SELECT version,
              count(*) FILTER (WHERE NOT shadow) AS count,
              count(*) FILTER (WHERE shadow) AS shadow_count,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99
       FROM ml_predictions WHERE model = $1 GROUP BY version ORDER BY version`,
      [model],
    );
    const errs = await this.#db.query<{
      version: string;
      target: string;
      n: bigint;
      mae: number;
      hit: number;
      overpay: number | null;
    }>(
      `SELECT p.version, t.target, count(*) AS n,
              avg(abs(t.predicted - t.truth)) AS mae,
              avg(CASE WHEN t.predicted >= t.truth THEN 1.0 ELSE 0.0 END) AS hit,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY t.predicted - t.truth)
                FILTER (WHERE t.predicted >= t.truth) AS overpay
       FROM ml_truths t JOIN ml_predictions p ON p.id = t.prediction_id
       WHERE p.model = $1 GROUP BY p.version, t.target ORDER BY p.version, t.target`,
      [model],
    );
    return base.map((b) => ({
      version: b.version,
      count: Number(b.count),
      shadowCount: Number(b.shadow_count),
      latencyMsP50: b.p50 === null ? null : Number(b.p50),
      latencyMsP99: b.p99 === null ? null : Number(b.p99),
      errors: errs.filter((e) => e.version === b.version).map((e) => ({
        target: e.target,
        count: Number(e.n),
        meanAbsoluteError: Number(e.mae),
        hitRate: Number(e.hit),
        medianOverpayment: e.overpay === null ? null : Number(e.overpay),
      })),
    }));
  }
}
