/**
 * The `Db` port: the one storage abstraction. Two adapters implement it
 * (PGlite embedded, PostgreSQL over the network) with identical value types:
 * `int8` → `bigint`, `numeric` → `string`, `timestamptz` → `Date`,
 * `jsonb` → parsed JSON, `bytea` → `Uint8Array`.
 *
 * SQL is plain PostgreSQL with `$1` parameters; JSON parameters are passed as
 * strings and cast (`$1::jsonb`).
 *
 * @module
 */

/** A value that may be bound to a `$n` parameter. */
export type SqlParam = string | number | bigint | boolean | null | Date | Uint8Array;

/** Something that runs SQL: the database itself or an open transaction. */
export interface Queryable {
  /**
   * Run one statement and return its rows.
   *
   * @param sql PostgreSQL text with `$1`… parameters
   * @param params bound values
   */
  query<T = Record<string, unknown>>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  /**
   * Run a script of several statements without parameters (migrations).
   *
   * @param sql one or more `;`-separated statements
   */
  exec(sql: string): Promise<void>;
}

/** The database, as the services and repositories see it. */
export interface Db extends Queryable {
  /** Which adapter is behind the port (reported by `/readyz`). */
  readonly kind: "pglite" | "postgres";
  /**
   * Run `fn` in one transaction: committed when it resolves, rolled back when it throws.
   *
   * @param fn work to do with the transaction handle
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Close connections; later calls fail. */
  close(): Promise<void>;
}
