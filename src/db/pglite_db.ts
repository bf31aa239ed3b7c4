/**
 * `Db` adapter over PGlite (PostgreSQL compiled to WASM), persisted in a data
 * directory. The default store, so the service runs with no database server.
 * See https://pglite.dev/docs/api.
 *
 * @module
 */
import { PGlite, type Transaction } from "@electric-sql/pglite";
import type { Db, Queryable, SqlParam } from "./db.ts";
import { dbMetrics, withSpan } from "../obs/telemetry.ts";

/** Options for {@linkcode openPgliteDb}. */
export interface PgliteDbOptions {
  /** Data directory; `undefined` keeps the database in memory. */
  dataDir?: string | undefined;
  /** Schema every statement runs in (created if missing); default `public`. */
  schema?: string;
  /** Called after the instance is closed (releases the data-dir lock). */
  onClose?: () => void;
}

/** `Db` over one PGlite instance. */
export class PgliteDb implements Db {
  readonly kind = "pglite" as const;
  readonly #pg: PGlite;
  readonly #ownsInstance: boolean;
  readonly #onClose: (() => void) | undefined;

  /**
   * Wrap an open instance; {@linkcode openPgliteDb} is the usual way in.
   *
   * @param pg an open PGlite instance
   * @param ownsInstance whether `close()` closes the instance
   * @param onClose called once the instance is closed
   */
  constructor(pg: PGlite, ownsInstance = true, onClose?: () => void) {
    this.#pg = pg;
    this.#ownsInstance = ownsInstance;
    this.#onClose = onClose;
  }

  query<T = Record<string, unknown>>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return run(this.#pg, sql, params);
  }

  async exec(sql: string): Promise<void> {
    await this.#pg.exec(sql);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#pg.transaction((tx) =>
      fn({
        query: <R>(sql: string, params: readonly SqlParam[] = []) => run<R>(tx, sql, params),
        exec: async (sql: string) => {
          await tx.exec(sql);
        },
      })
    );
  }

  async close(): Promise<void> {
    if (this.#ownsInstance && !this.#pg.closed) {
      await this.#pg.close();
      this.#onClose?.();
    }
  }
}

async function run<T>(
  target: PGlite | Transaction,
  sql: string,
  params: readonly SqlParam[],
): Promise<T[]> {
  const started = performance.now();
  try {
    return await withSpan(
      "db.query",
      { "db.system.name": "postgresql", "db.client": "pglite" },
      async () => {
        const result = await target.query<T>(sql, params as unknown[]);
        return result.rows;
      },
    );
  } finally {
    dbMetrics.duration.record((performance.now() - started) / 1000, { "db.client": "pglite" });
  }
}

/**
 * PGlite options that make its value types match the PostgreSQL adapter's:
 * PGlite turns small int8 values into numbers, so parse every int8 as bigint.
 */
export const PGLITE_TYPE_OPTIONS = Object.freeze({
  parsers: { 20: (value: string) => BigInt(value) },
});

/**
 * Open (creating if needed) a PGlite database.
 *
 * @param options data dir and schema
 */
export async function openPgliteDb(options: PgliteDbOptions = {}): Promise<PgliteDb> {
  const pg = await PGlite.create(options.dataDir, PGLITE_TYPE_OPTIONS);
  const db = new PgliteDb(pg, true, options.onClose);
  if (options.schema !== undefined) await useSchema(db, options.schema);
  return db;
}

/**
 * Create `schema` if needed and make it the only schema on the search path.
 * PGlite has one session, so this holds for every later statement.
 */
export async function useSchema(db: Queryable, schema: string): Promise<void> {
  assertIdentifier(schema);
  await db.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await db.query(`SET search_path TO "${schema}"`);
}

/** Throw unless `name` is a plain lower-case SQL identifier (it is interpolated). */
export function assertIdentifier(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new RangeError(`Invalid SQL identifier: expected [a-z_][a-z0-9_]*, got "${name}"`);
  }
}
