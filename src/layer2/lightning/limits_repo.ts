/**
 * `ln_limits`: per-tenant Lightning spending limits. A tenant without a row
 * has the defaults from config.
 *
 * @module
 */
import type { Queryable } from "../../db/db.ts";

/** Spending limits, in sats: per payment (amount + fee) and over a rolling 24 hours. */
export interface SpendingLimits {
  maxPaymentSat: bigint;
  maxDailySat: bigint;
}

/** Data access for limits. */
export class LimitsRepo {
  readonly #db: Queryable;

  /** @param db the database or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** The tenant's own limits, or null when it has the defaults. */
  async get(tenant: string): Promise<SpendingLimits | null> {
    const [row] = await this.#db.query<{ max_payment_sat: bigint; max_daily_sat: bigint }>(
      "SELECT max_payment_sat, max_daily_sat FROM ln_limits WHERE tenant = $1",
      [tenant],
    );
    return row === undefined
      ? null
      : { maxPaymentSat: BigInt(row.max_payment_sat), maxDailySat: BigInt(row.max_daily_sat) };
  }

  /** Give the tenant its own limits. */
  async set(tenant: string, limits: SpendingLimits): Promise<void> {
    await this.#db.query(
      `INSERT INTO ln_limits (tenant, max_payment_sat, max_daily_sat) VALUES ($1, $2, $3)
       ON CONFLICT (tenant) DO UPDATE SET max_payment_sat = EXCLUDED.max_payment_sat,
         max_daily_sat = EXCLUDED.max_daily_sat, updated_at = now()`,
      [tenant, limits.maxPaymentSat, limits.maxDailySat],
    );
  }
}
