/**
 * SQL over `chain_transactions` and its event history. Every query is scoped
 * by tenant except the tracker's claim, which works across tenants.
 *
 * @module
 */
import type { Queryable } from "../db/db.ts";

/** Lifecycle states of a broadcast transaction. */
export const TX_STATES = [
  "broadcasting",
  "unknown",
  "mempool",
  "confirmed",
  "final",
  "rejected",
  "replaced",
  "dropped",
] as const;

/** One of {@linkcode TX_STATES}. */
export type TxState = typeof TX_STATES[number];

/** A tracked transaction. */
export interface TxRecord {
  tenant: string;
  txid: string;
  rawHex: string;
  state: TxState;
  rejectReason: string | null;
  blockHeight: number | null;
  blockHash: string | null;
  confirmations: number;
  feeSats: bigint | null;
  vsize: number | null;
  misses: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A state change to record. */
export interface TxUpdate {
  state: TxState;
  confirmations?: number;
  blockHeight?: number | null;
  blockHash?: string | null;
  rejectReason?: string | null;
  misses?: number;
}

interface Row {
  tenant: string;
  txid: string;
  raw_hex: string;
  state: TxState;
  reject_reason: string | null;
  block_height: number | null;
  block_hash: string | null;
  confirmations: number;
  fee_sats: bigint | null;
  vsize: number | null;
  misses: number;
  created_at: Date;
  updated_at: Date;
}

function fromRow(r: Row): TxRecord {
  return {
    tenant: r.tenant,
    txid: r.txid,
    rawHex: r.raw_hex,
    state: r.state,
    rejectReason: r.reject_reason,
    blockHeight: r.block_height,
    blockHash: r.block_hash,
    confirmations: r.confirmations,
    feeSats: r.fee_sats,
    vsize: r.vsize,
    misses: r.misses,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Tracked-transaction storage. */
export class TxRepo {
  readonly #db: Queryable;

  /** @param db database or open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /**
   * Insert a new `broadcasting` row unless the tenant already has this txid.
   *
   * @returns the new record, or null when it existed
   */
  async insertBroadcasting(
    tx: { tenant: string; txid: string; rawHex: string; vsize: number; feeSats: bigint | null },
    holdMs: number,
  ): Promise<TxRecord | null> {
    const rows = await this.#db.query<Row>(
      `INSERT INTO chain_transactions (tenant, txid, raw_hex, state, vsize, fee_sats, next_check_at)
       VALUES ($1, $2, $3, 'broadcasting', $4, $5, now() + ($6::int8 * interval '1 millisecond'))
       ON CONFLICT (tenant, txid) DO NOTHING RETURNING *`,
      [tx.tenant, tx.txid, tx.rawHex, tx.vsize, tx.feeSats, holdMs],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /** The tenant's record of `txid`, or null. */
  async get(tenant: string, txid: string): Promise<TxRecord | null> {
    const rows = await this.#db.query<Row>(
      "SELECT * FROM chain_transactions WHERE tenant = $1 AND txid = $2",
      [tenant, txid],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /**
   * Move a record from one of `from` to a new state; records the event when
   * anything changed. Returns the updated record, or null if its state was not
   * in `from` (another instance moved it first).
   */
  async transition(
    key: { tenant: string; txid: string },
    from: readonly TxState[],
    update: TxUpdate,
    nextCheckInMs: number,
  ): Promise<TxRecord | null> {
    const rows = await this.#db.query<Row>(
      `UPDATE chain_transactions SET
         state = $4,
         confirmations = COALESCE($5, confirmations),
         block_height = CASE WHEN $6::boolean THEN $7 ELSE block_height END,
         block_hash = CASE WHEN $6::boolean THEN $8 ELSE block_hash END,
         reject_reason = CASE WHEN $9::boolean THEN $10 ELSE reject_reason END,
         misses = COALESCE($11, misses),
         updated_at = now(),
         next_check_at = now() + ($12::int8 * interval '1 millisecond')
       WHERE tenant = $1 AND txid = $2 AND state = ANY($3::text[])
       RETURNING *`,
      [
        key.tenant,
        key.txid,
        `{${from.join(",")}}`,
        update.state,
        update.confirmations ?? null,
        update.blockHeight !== undefined,
        update.blockHeight ?? null,
        update.blockHash ?? null,
        update.rejectReason !== undefined,
        update.rejectReason ?? null,
        update.misses ?? null,
        nextCheckInMs,
      ],
    );
    return rows[0] === undefined ? null : fromRow(rows[0]);
  }

  /** Append a history entry for a state change. */
  async recordEvent(r: TxRecord): Promise<void> {
    await this.#db.query(
      `INSERT INTO chain_transaction_events (tenant, txid, state, confirmations, block_height)
       VALUES ($1, $2, $3, $4, $5)`,
      [r.tenant, r.txid, r.state, r.confirmations, r.blockHeight],
    );
  }

  /** Delete a `broadcasting` row whose broadcast never left this process. */
  async deleteBroadcasting(tenant: string, txid: string): Promise<void> {
    await this.#db.query(
      "DELETE FROM chain_transactions WHERE tenant = $1 AND txid = $2 AND state = 'broadcasting'",
      [tenant, txid],
    );
  }

  /** The tenant's history of `txid`, oldest first. */
  async history(
    tenant: string,
    txid: string,
  ): Promise<{ state: TxState; confirmations: number; blockHeight: number | null; at: Date }[]> {
    const rows = await this.#db.query<
      { state: TxState; confirmations: number; block_height: number | null; at: Date }
    >(
      `SELECT state, confirmations, block_height, at FROM chain_transaction_events
       WHERE tenant = $1 AND txid = $2 ORDER BY id`,
      [tenant, txid],
    );
    return rows.map((r) => ({
      state: r.state,
      confirmations: r.confirmations,
      blockHeight: r.block_height,
      at: r.at,
    }));
  }

  /**
   * Claim up to `limit` due records across tenants: each claimed row's next
   * check moves `holdMs` ahead, so concurrent trackers on other instances skip it.
   */
  async claimDue(limit: number, holdMs: number): Promise<TxRecord[]> {
    const rows = await this.#db.query<Row>(
      `UPDATE chain_transactions SET next_check_at = now() + ($2::int8 * interval '1 millisecond')
       WHERE (tenant, txid) IN (
         SELECT tenant, txid FROM chain_transactions
         WHERE state IN ('broadcasting', 'unknown', 'mempool', 'confirmed') AND next_check_at <= now()
         ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [limit, holdMs],
    );
    return rows.map(fromRow);
  }
}
