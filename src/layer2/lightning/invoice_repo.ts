/**
 * `ln_invoices`: the invoices the edge created on the node for its tenants.
 * The node's payment hash is the key (it is unique on the node); states only
 * move forward (`open` → `settled` | `canceled` | `expired`).
 *
 * @module
 */
import type { Queryable } from "../../db/db.ts";
import type { Invoice, InvoiceState } from "./backend.ts";

/** A stored invoice: the node's view plus its tenant. */
export interface InvoiceRecord extends Omit<Invoice, "preimage"> {
  tenant: string;
  updatedAt: Date;
}

interface Row {
  payment_hash: string;
  tenant: string;
  bolt11: string;
  amount_msat: bigint | null;
  received_msat: bigint | null;
  description: string | null;
  description_hash: string | null;
  state: InvoiceState;
  created_at: Date;
  expires_at: Date;
  settled_at: Date | null;
  updated_at: Date;
}

function toRecord(r: Row): InvoiceRecord {
  return {
    tenant: r.tenant,
    paymentHash: r.payment_hash,
    bolt11: r.bolt11,
    amountMsat: r.amount_msat === null ? null : BigInt(r.amount_msat),
    amountReceivedMsat: r.received_msat === null ? null : BigInt(r.received_msat),
    description: r.description,
    descriptionHash: r.description_hash,
    state: r.state,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    settledAt: r.settled_at,
    updatedAt: r.updated_at,
  };
}

// Which states may follow which: nothing leaves a final state.
const FORWARD: Record<InvoiceState, readonly InvoiceState[]> = {
  open: ["settled", "canceled", "expired"],
  settled: [],
  canceled: [],
  expired: ["settled"],
};

/** Data access for invoices. */
export class InvoiceRepo {
  readonly #db: Queryable;

  /** @param db the database or an open transaction */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /** Store a freshly created invoice of `tenant`. */
  async insert(tenant: string, inv: Invoice): Promise<InvoiceRecord> {
    const [row] = await this.#db.query<Row>(
      `INSERT INTO ln_invoices (payment_hash, tenant, bolt11, amount_msat, received_msat,
         description, description_hash, state, created_at, expires_at, settled_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [
        inv.paymentHash,
        tenant,
        inv.bolt11,
        inv.amountMsat,
        inv.amountReceivedMsat,
        inv.description,
        inv.descriptionHash,
        inv.state,
        inv.createdAt,
        inv.expiresAt,
        inv.settledAt,
      ],
    );
    return toRecord(row!);
  }

  /** The tenant's invoice (another tenant's reads as absent). */
  async get(tenant: string, paymentHash: string): Promise<InvoiceRecord | null> {
    const [row] = await this.#db.query<Row>(
      "SELECT * FROM ln_invoices WHERE tenant = $1 AND payment_hash = $2",
      [tenant, paymentHash],
    );
    return row === undefined ? null : toRecord(row);
  }

  /** Any tenant's invoice with this hash (the node's stream does not know tenants). */
  async byHash(paymentHash: string): Promise<InvoiceRecord | null> {
    const [row] = await this.#db.query<Row>(
      "SELECT * FROM ln_invoices WHERE payment_hash = $1",
      [paymentHash],
    );
    return row === undefined ? null : toRecord(row);
  }

  /** The tenant's invoices, newest first. */
  async list(tenant: string, limit: number): Promise<InvoiceRecord[]> {
    const rows = await this.#db.query<Row>(
      "SELECT * FROM ln_invoices WHERE tenant = $1 ORDER BY created_at DESC LIMIT $2",
      [tenant, limit],
    );
    return rows.map(toRecord);
  }

  /** Open invoices, oldest first: what the reconciler asks the node about. */
  async open(limit: number): Promise<InvoiceRecord[]> {
    const rows = await this.#db.query<Row>(
      "SELECT * FROM ln_invoices WHERE state = 'open' ORDER BY created_at LIMIT $1",
      [limit],
    );
    return rows.map(toRecord);
  }

  /**
   * Apply the node's view when it moves the invoice forward.
   *
   * @returns the updated record, or null when nothing changed (unknown hash or not forward)
   */
  async advance(inv: Invoice): Promise<InvoiceRecord | null> {
    const current = await this.byHash(inv.paymentHash);
    if (current === null || !FORWARD[current.state].includes(inv.state)) return null;
    const [row] = await this.#db.query<Row>(
      `UPDATE ln_invoices SET state = $2, received_msat = $3, settled_at = $4, updated_at = now()
       WHERE payment_hash = $1 AND state = $5 RETURNING *`,
      [inv.paymentHash, inv.state, inv.amountReceivedMsat, inv.settledAt, current.state],
    );
    return row === undefined ? null : toRecord(row);
  }
}
