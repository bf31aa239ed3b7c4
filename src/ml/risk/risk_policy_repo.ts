/**
 * `risk_policies`: per-tenant rules the signing path applies on top of the
 * HSM's policy. A tenant without a row refuses deny-listed destinations and
 * has no score threshold.
 *
 * @module
 */
import type { Queryable } from "../../db/db.ts";

/** A tenant's risk rules for signing. */
export interface RiskPolicy {
  /** Refuse a PSBT with an output paying a deny-listed address. */
  refuseDenyListed: boolean;
  /** Refuse a PSBT whose anomaly score is above this; null for no threshold. */
  maxScore: number | null;
}

/** The policy of a tenant that set none. */
export const DEFAULT_RISK_POLICY: Readonly<RiskPolicy> = Object.freeze({
  refuseDenyListed: true,
  maxScore: null,
});

/** Data access for risk policies. */
export class RiskPolicyRepo {
  readonly #db: Queryable;

  /** @param db the database or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** The tenant's policy, or the default. */
  async get(tenant: string): Promise<RiskPolicy> {
    const [row] = await this.#db.query<{ refuse_deny_listed: boolean; max_score: number | null }>(
      "SELECT refuse_deny_listed, max_score FROM risk_policies WHERE tenant = $1",
      [tenant],
    );
    return row === undefined ? { ...DEFAULT_RISK_POLICY } : {
      refuseDenyListed: row.refuse_deny_listed,
      maxScore: row.max_score === null ? null : Number(row.max_score),
    };
  }

  /** Set the tenant's policy. */
  async set(tenant: string, policy: RiskPolicy): Promise<void> {
    await this.#db.query(
      `INSERT INTO risk_policies (tenant, refuse_deny_listed, max_score) VALUES ($1, $2, $3)
       ON CONFLICT (tenant) DO UPDATE SET refuse_deny_listed = EXCLUDED.refuse_deny_listed,
         max_score = EXCLUDED.max_score, updated_at = now()`,
      [tenant, policy.refuseDenyListed, policy.maxScore],
    );
  }
}
