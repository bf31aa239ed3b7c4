/**
 * The rolling 24-hour spend of each HSM key (`hsm_velocity`, migration
 * `0002_velocity.sql`), read by the `max-amount-per-24h` policy rule. Rows
 * live in the HSM's database, so the limit survives restarts.
 *
 * Concurrency contract: the caller runs check-then-record in ONE transaction
 * it holds, on the handle `db.transaction` gives it:
 *
 * ```ts
 * await db.transaction(async (tx) => {
 *   const velocity = new VelocityRepo(tx);
 *   const spent = await velocity.spentSince(keyId, new Date(Date.now() - VELOCITY_WINDOW_MS));
 *   const decision = evaluatePolicy(compiled, facts, { network, spentLast24hSats: spent });
 *   if (!decision.allowed) throw ...;          // rolls back, releases the lock
 *   ... sign ...
 *   await velocity.record(keyId, decision.amountSats, requestId);
 * });                                          // commit releases the lock
 * ```
 *
 * `spentSince` first takes a transaction-scoped advisory lock on the key
 * (`pg_advisory_xact_lock`), held until commit or rollback, so a second
 * request for the same key waits until the first has recorded its amount and
 * then sees it: two concurrent signs cannot both pass the limit. Requests for
 * other keys do not wait (barring a 32-bit hash collision, which only
 * serialises). Outside a transaction the lock would be released as soon as
 * the statement ends, and the guarantee is lost.
 *
 * @module
 */
import type { Queryable } from "../../db/db.ts";

/** The window of the `max-amount-per-24h` rule, in milliseconds. */
export const VELOCITY_WINDOW_MS = 24 * 60 * 60 * 1000;

// First key of the two-int advisory lock (ASCII "hsmv"): keeps these locks apart from
// other advisory locks, which use the one-bigint form or other namespaces.
const VELOCITY_LOCK_NAMESPACE = 0x68736d76;

/** Spend history of HSM keys. */
export class VelocityRepo {
  readonly #db: Queryable;
  // Keys this repo's transaction already holds the lock of: retaking it is a wasted round trip.
  readonly #locked = new Set<string>();

  /**
   * Work on `db`.
   *
   * @param db an open transaction (see the module's concurrency contract), or the database
   */
  constructor(db: Queryable) {
    this.#db = db;
  }

  /**
   * Lock the key for the rest of the transaction and sum what it signed since `since`.
   *
   * @param keyId the key
   * @param since start of the window, inclusive (usually now − {@linkcode VELOCITY_WINDOW_MS})
   * @returns satoshis recorded for the key at or after `since`
   */
  async spentSince(keyId: string, since: Date): Promise<bigint> {
    assertKeyId(keyId);
    if (!(since instanceof Date) || Number.isNaN(since.getTime())) {
      throw new TypeError("Invalid since: expected a valid Date");
    }
    await this.lock(keyId);
    const rows = await this.#db.query<{ total: bigint }>(
      `SELECT coalesce(sum(amount_sats), 0)::int8 AS total
       FROM hsm_velocity WHERE key_id = $1 AND signed_at >= $2`,
      [keyId, since],
    );
    return BigInt(rows[0]?.total ?? 0n);
  }

  /**
   * Record that the key signed `amountSats` for request `requestId`, now.
   *
   * @param keyId the key
   * @param amountSats what left the key's control (`PolicyDecision.amountSats`)
   * @param requestId the signing request, for audit
   */
  async record(keyId: string, amountSats: bigint, requestId: string): Promise<void> {
    assertKeyId(keyId);
    if (typeof amountSats !== "bigint") {
      throw new TypeError(`Invalid amountSats: expected a bigint, got ${typeof amountSats}`);
    }
    if (amountSats < 0n) throw new RangeError("Invalid amountSats: negative");
    if (typeof requestId !== "string" || requestId === "") {
      throw new TypeError("Invalid requestId: expected a non-empty string");
    }
    await this.lock(keyId);
    await this.#db.query(
      "INSERT INTO hsm_velocity (key_id, amount_sats, request_id) VALUES ($1, $2, $3)",
      [keyId, amountSats, requestId],
    );
  }

  /**
   * Record several signed requests of one key at once (a group commit's batch).
   *
   * @param keyId the key
   * @param rows amount and request id of each
   */
  async recordMany(
    keyId: string,
    rows: readonly { amountSats: bigint; requestId: string }[],
  ): Promise<void> {
    assertKeyId(keyId);
    for (const r of rows) {
      if (typeof r.amountSats !== "bigint" || r.amountSats < 0n) {
        throw new RangeError("Invalid amountSats: expected a bigint ≥ 0");
      }
      if (typeof r.requestId !== "string" || r.requestId === "") {
        throw new TypeError("Invalid requestId: expected a non-empty string");
      }
    }
    if (rows.length === 0) return;
    await this.lock(keyId);
    const params: (string | bigint)[] = [keyId];
    const values = rows.map((r) => {
      params.push(r.amountSats, r.requestId);
      return `($1, $${params.length - 1}, $${params.length})`;
    });
    await this.#db.query(
      `INSERT INTO hsm_velocity (key_id, amount_sats, request_id) VALUES ${values.join(", ")}`,
      params,
    );
  }

  /**
   * Take the key's transaction-scoped lock (re-entrant; `spentSince` and
   * `record` take it themselves). The signing path takes it first, so it
   * also serialises idempotency checks and status reads of the key.
   *
   * @param keyId the key
   */
  async lock(keyId: string): Promise<void> {
    assertKeyId(keyId);
    if (this.#locked.has(keyId)) return;
    await this.#db.query("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", [
      VELOCITY_LOCK_NAMESPACE,
      keyId,
    ]);
    this.#locked.add(keyId);
  }

  /**
   * Delete rows older than `before` (outside every window still checked).
   *
   * @param before cut-off, exclusive
   * @returns rows deleted
   */
  async prune(before: Date): Promise<number> {
    if (!(before instanceof Date) || Number.isNaN(before.getTime())) {
      throw new TypeError("Invalid before: expected a valid Date");
    }
    const rows = await this.#db.query<{ n: bigint }>(
      `WITH gone AS (DELETE FROM hsm_velocity WHERE signed_at < $1 RETURNING 1)
       SELECT count(*)::int8 AS n FROM gone`,
      [before],
    );
    return Number(rows[0]?.n ?? 0n);
  }
}

function assertKeyId(keyId: unknown): asserts keyId is string {
  if (typeof keyId !== "string" || keyId === "") {
    throw new TypeError("Invalid keyId: expected a non-empty string");
  }
}
