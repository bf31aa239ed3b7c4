/**
 * `ln_payments`: the edge's ledger of its tenants' Lightning payments, one
 * row per (tenant, payment hash). States only move forward: `pending` →
 * `succeeded` | `failed`; a failed payment may be tried again by a new
 * request (back to `pending`, attempts + 1); `succeeded` is final.
 *
 * @module
 */
import type { Queryable } from "../../db/db.ts";

/** Payment states. */
export const PAYMENT_STATES = ["pending", "succeeded", "failed"] as const;
/** A payment's state. */
export type PaymentState = typeof PAYMENT_STATES[number];

/** A stored payment. */
export interface PaymentRecord {
  tenant: string;
  paymentHash: string;
  bolt11: string;
  amountMsat: bigint;
  maxFeeMsat: bigint;
  state: PaymentState;
  preimage: string | null;
  feeMsat: bigint | null;
  failureReason: string | null;
  attempts: number;
  leaseUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  tenant: string;
  payment_hash: string;
  bolt11: string;
  amount_msat: bigint;
  max_fee_msat: bigint;
  state: PaymentState;
  preimage: string | null;
  fee_msat: bigint | null;
  failure_reason: string | null;
  attempts: number;
  lease_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

function toRecord(r: Row): PaymentRecord {
  return {
    tenant: r.tenant,
    paymentHash: r.payment_hash,
    bolt11: r.bolt11,
    amountMsat: BigInt(r.amount_msat),
    maxFeeMsat: BigInt(r.max_fee_msat),
    state: r.state,
    preimage: r.preimage,
    feeMsat: r.fee_msat === null ? null : BigInt(r.fee_msat),
    failureReason: r.failure_reason,
    attempts: r.attempts,
    leaseUntil: r.lease_until,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

// First key of the two-int advisory lock (ASCII "lnpy"): one tenant's payments are decided one
// at a time, so the 24-hour sum and the pending row are consistent.
const PAYMENT_LOCK_NAMESPACE = 0x6c6e7079;

/** Data access for payments; run it on a transaction where the docs say so. */
export class PaymentRepo {
  readonly #db: Queryable;

  /** @param db the database or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** Serialise the tenant's payment decisions until the transaction ends. */
  async lockTenant(tenant: string): Promise<void> {
    await this.#db.query("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", [
      PAYMENT_LOCK_NAMESPACE,
      tenant,
    ]);
  }

  /** The tenant's payment to `paymentHash`, or null. */
  async get(tenant: string, paymentHash: string): Promise<PaymentRecord | null> {
    const [row] = await this.#db.query<Row>(
      "SELECT * FROM ln_payments WHERE tenant = $1 AND payment_hash = $2",
      [tenant, paymentHash],
    );
    return row === undefined ? null : toRecord(row);
  }

  /**
   * What the tenant committed in the window: succeeded payments with their
   * fee, pending ones with their maximum fee (they may still succeed).
   */
  async committedSince(tenant: string, since: Date): Promise<bigint> {
    const [row] = await this.#db.query<{ total: bigint }>(
      `SELECT coalesce(sum(CASE state
           WHEN 'succeeded' THEN amount_msat + coalesce(fee_msat, 0)
           WHEN 'pending' THEN amount_msat + max_fee_msat
           ELSE 0 END), 0)::int8 AS total
       FROM ln_payments WHERE tenant = $1 AND created_at >= $2`,
      [tenant, since],
    );
    return BigInt(row?.total ?? 0n);
  }

  /**
   * Write the pending row before the node is called (new, or a failed one
   * tried again), holding the lease until `leaseUntil`.
   */
  async startAttempt(
    p: Pick<PaymentRecord, "tenant" | "paymentHash" | "bolt11" | "amountMsat" | "maxFeeMsat">,
    leaseUntil: Date,
  ): Promise<PaymentRecord> {
    const [row] = await this.#db.query<Row>(
      `INSERT INTO ln_payments
         (tenant, payment_hash, bolt11, amount_msat, max_fee_msat, state, attempts, lease_until)
       VALUES ($1, $2, $3, $4, $5, 'pending', 1, $6)
       ON CONFLICT (tenant, payment_hash) DO UPDATE SET
         bolt11 = EXCLUDED.bolt11, amount_msat = EXCLUDED.amount_msat,
         max_fee_msat = EXCLUDED.max_fee_msat, state = 'pending', preimage = NULL,
         fee_msat = NULL, failure_reason = NULL, attempts = ln_payments.attempts + 1,
         lease_until = EXCLUDED.lease_until, created_at = now(), updated_at = now()
       WHERE ln_payments.state = 'failed'
       RETURNING *`,
      [p.tenant, p.paymentHash, p.bolt11, p.amountMsat, p.maxFeeMsat, leaseUntil],
    );
    if (row === undefined) {
      throw new Error(`PaymentRepo.startAttempt: ${p.paymentHash} is not new and not failed`);
    }
    return toRecord(row);
  }

  /** Take the lease of a pending payment for one more node call. */
  async renewLease(tenant: string, paymentHash: string, leaseUntil: Date): Promise<void> {
    await this.#db.query(
      `UPDATE ln_payments SET lease_until = $3, attempts = attempts + 1, updated_at = now()
       WHERE tenant = $1 AND payment_hash = $2 AND state = 'pending'`,
      [tenant, paymentHash, leaseUntil],
    );
  }

  /**
   * Record what the node said. Only forward: a final state is never
   * overwritten, and `pending` changes nothing but the lease.
   *
   * @returns the record after the change, and whether the state changed
   */
  async settle(
    tenant: string,
    paymentHash: string,
    outcome:
      | { state: "succeeded"; preimage: string; feeMsat: bigint }
      | { state: "failed"; reason: string }
      | { state: "pending" },
  ): Promise<{ record: PaymentRecord; changed: boolean } | null> {
    if (outcome.state === "pending") {
      const [row] = await this.#db.query<Row>(
        `UPDATE ln_payments SET lease_until = NULL, updated_at = now()
         WHERE tenant = $1 AND payment_hash = $2 RETURNING *`,
        [tenant, paymentHash],
      );
      return row === undefined ? null : { record: toRecord(row), changed: false };
    }
    const [row] = await this.#db.query<Row>(
      `UPDATE ln_payments SET state = $3, preimage = $4, fee_msat = $5, failure_reason = $6,
         lease_until = NULL, updated_at = now()
       WHERE tenant = $1 AND payment_hash = $2 AND state = 'pending' RETURNING *`,
      [
        tenant,
        paymentHash,
        outcome.state,
        outcome.state === "succeeded" ? outcome.preimage : null,
        outcome.state === "succeeded" ? outcome.feeMsat : null,
        outcome.state === "failed" ? outcome.reason : null,
      ],
    );
    if (row !== undefined) return { record: toRecord(row), changed: true };
    const current = await this.get(tenant, paymentHash);
    return current === null ? null : { record: current, changed: false };
  }

  /** Pending payments whose lease has run out (or never held), oldest first. */
  async duePending(now: Date, limit: number): Promise<PaymentRecord[]> {
    const rows = await this.#db.query<Row>(
      `SELECT * FROM ln_payments
       WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < $1)
       ORDER BY updated_at LIMIT $2`,
      [now, limit],
    );
    return rows.map(toRecord);
  }

  /** The tenant's payments, newest first. */
  async list(tenant: string, limit: number): Promise<PaymentRecord[]> {
    const rows = await this.#db.query<Row>(
      "SELECT * FROM ln_payments WHERE tenant = $1 ORDER BY created_at DESC LIMIT $2",
      [tenant, limit],
    );
    return rows.map(toRecord);
  }
}
