/**
 * The audit trail: an append-only, hash-chained table. Each row stores the
 * hash of the previous row, so editing or deleting any row breaks every later
 * link and {@linkcode AuditLog.verify} reports the first break.
 *
 * hash_n = SHA-256(prev_hash ‖ "\n" ‖ canonical JSON of row n's fields)
 *
 * Appends take a transaction-scoped advisory lock, so several instances sharing
 * one database still produce a single linear chain.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Db, Queryable, SqlParam } from "../db/db.ts";

/** Hash that precedes the first row. */
export const GENESIS_HASH: string = "0".repeat(64);
/** Advisory lock id serialising appends (ASCII "audt"). */
const AUDIT_LOCK_ID = 0x61756474;

/** Outcome of an audited action. */
export type AuditOutcome = "success" | "denied" | "failure";

/** What a caller records. */
export interface AuditEntry {
  /** Who acted: an API key id, `system`, or a CLI name. */
  actor: string;
  /** Tenant the action belongs to; {@linkcode AuditLog.list} filters by it. */
  tenant: string;
  /** Dotted verb, e.g. `api_key.create`. */
  action: string;
  /** What was acted on, e.g. a key id. */
  target: string;
  /** Whether the action succeeded, was refused, or failed. */
  outcome: AuditOutcome;
  /** Id of the request that caused the action, to join with logs. */
  requestId: string;
  /** Small, non-secret facts (strings, integers, booleans). */
  details?: Record<string, string | number | boolean | null>;
}

/** A stored row. */
export interface AuditRecord extends Required<AuditEntry> {
  /** Position in the chain, from 1 without gaps. */
  seq: bigint;
  /** When the row was appended (millisecond precision). */
  at: Date;
  /** Hash of the preceding row, or {@linkcode GENESIS_HASH} for the first. */
  prevHash: string;
  /** Hex SHA-256 over `prevHash` and this row's fields. */
  hash: string;
}

/** The result of re-checking the chain. */
export type AuditVerification =
  | { ok: true; checked: number; headSeq: string | null }
  | { ok: false; checked: number; firstBrokenSeq: string; reason: string };

interface AuditRow {
  seq: bigint;
  at: Date;
  actor: string;
  tenant: string;
  action: string;
  target: string;
  outcome: AuditOutcome;
  request_id: string;
  details: Record<string, string | number | boolean | null>;
  prev_hash: string;
  hash: string;
}

/** Appends to, pages through and verifies the audit trail. */
export class AuditLog {
  readonly #db: Db;

  /**
   * Bind the log to a database.
   *
   * @param db the database
   */
  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Append an entry inside the caller's transaction, so the action and its
   * audit row commit together or not at all (fail closed).
   *
   * @param tx an open transaction
   * @param entry what happened
   */
  async append(tx: Queryable, entry: AuditEntry): Promise<AuditRecord> {
    const [record] = await this.appendMany(tx, [entry]);
    return record!;
  }

  /**
   * Append several entries, in order, inside the caller's transaction: one
   * lock, one read of the head and one insert, however many entries (the
   * HSM's group commit writes a batch of signatures this way).
   *
   * @param tx an open transaction
   * @param entries what happened, oldest first
   */
  async appendMany(tx: Queryable, entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    if (entries.length === 0) return [];
    await tx.query("SELECT pg_advisory_xact_lock($1)", [AUDIT_LOCK_ID]);
    const [head] = await tx.query<{ seq: bigint; hash: string }>(
      "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
    );
    let seq = head?.seq ?? 0n;
    let prevHash = head?.hash ?? GENESIS_HASH;
    // Millisecond precision: what JavaScript dates carry, so the hash is reproducible.
    const at = new Date(Math.floor(Date.now()));
    const records: AuditRecord[] = [];
    const params: SqlParam[] = [];
    const rows: string[] = [];
    for (const entry of entries) {
      seq += 1n;
      const record = { ...entry, details: entry.details ?? {}, seq, at, prevHash, hash: "" };
      record.hash = hashRecord(record);
      prevHash = record.hash;
      records.push(record);
      const n = params.length;
      // Placeholders in a plain VALUES list take the target columns' types; details is JSON text.
      rows.push(
        `(${Array.from({ length: 11 }, (_, i) => `$${n + i + 1}${i === 8 ? "::jsonb" : ""}`)})`,
      );
      params.push(
        record.seq,
        record.at,
        record.actor,
        record.tenant,
        record.action,
        record.target,
        record.outcome,
        record.requestId,
        JSON.stringify(record.details),
        record.prevHash,
        record.hash,
      );
    }
    await tx.query(
      `INSERT INTO audit_log (seq, at, actor, tenant, action, target, outcome, request_id, details, prev_hash, hash)
       VALUES ${rows.join(", ")}`,
      params,
    );
    return records;
  }

  /**
   * Append in a transaction of its own.
   *
   * @param entry what happened
   */
  record(entry: AuditEntry): Promise<AuditRecord> {
    return this.#db.transaction((tx) => this.append(tx, entry));
  }

  /**
   * One tenant's rows, newest first.
   *
   * @param tenant whose rows
   * @param options `before` (exclusive seq cursor) and `limit`
   */
  async list(
    tenant: string,
    options: { before?: bigint | undefined; limit: number },
  ): Promise<AuditRecord[]> {
    const rows = await this.#db.query<AuditRow>(
      `SELECT * FROM audit_log WHERE tenant = $1 AND ($2::int8 IS NULL OR seq < $2::int8)
       ORDER BY seq DESC LIMIT $3`,
      [tenant, options.before ?? null, options.limit],
    );
    return rows.map(fromRow);
  }

  /**
   * Re-check every link of the chain, oldest first, in pages.
   *
   * @returns ok, or the first row whose link or content does not match
   */
  async verify(pageSize = 1000): Promise<AuditVerification> {
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1n;
    let checked = 0;
    while (true) {
      const rows = await this.#db.query<AuditRow>(
        "SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq ASC LIMIT $2",
        [expectedSeq, pageSize],
      );
      for (const row of rows) {
        const record = fromRow(row);
        const broken = (reason: string): AuditVerification => ({
          ok: false,
          checked,
          firstBrokenSeq: record.seq.toString(),
          reason,
        });
        if (record.seq !== expectedSeq) return broken(`row ${expectedSeq} is missing`);
        if (record.prevHash !== prevHash) return broken("previous-hash link does not match");
        if (hashRecord(record) !== record.hash) {
          return broken("row content does not match its hash");
        }
        prevHash = record.hash;
        expectedSeq += 1n;
        checked += 1;
      }
      if (rows.length < pageSize) break;
    }
    return { ok: true, checked, headSeq: checked === 0 ? null : (expectedSeq - 1n).toString() };
  }
}

function fromRow(r: AuditRow): AuditRecord {
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    tenant: r.tenant,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    requestId: r.request_id,
    details: r.details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** The hash of a row: its predecessor's hash and its own fields, canonically encoded. */
export function hashRecord(r: Omit<AuditRecord, "hash">): string {
  const body = canonicalJson({
    seq: r.seq.toString(),
    at: r.at.toISOString(),
    actor: r.actor,
    tenant: r.tenant,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    requestId: r.requestId,
    details: r.details,
  });
  return bytesToHex(sha256(new TextEncoder().encode(`${r.prevHash}\n${body}`)));
}

/** JSON with object keys sorted at every level (jsonb does not keep key order). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
