/**
 * `Db` adapter over a PostgreSQL server through the `postgres` npm client
 * (https://github.com/porsager/postgres), with a connection pool.
 *
 * @module
 */
import postgres from "postgres";
import type { Db, Queryable, SqlParam } from "./db.ts";
import { assertIdentifier } from "./pglite_db.ts";
import { dbMetrics, withSpan } from "../obs/telemetry.ts";

type Sql = postgres.Sql<{ bigint: bigint; json: unknown }>;

/** Options for {@linkcode openPostgresDb}. */
export interface PostgresDbOptions {
  /** `postgres://` connection URL. */
  url: string;
  /** Password read from `DATABASE_PASSWORD_FILE`, if any. */
  password?: string | undefined;
  /** Most connections the pool opens; default 10. */
  poolSize?: number;
  /** Schema every connection uses (created if missing); default `public`. */
  schema?: string;
  /** Seconds to wait for a connection. */
  connectTimeoutSeconds?: number;
}

/** `Db` over a `postgres` connection pool. */
export class PostgresDb implements Db {
  readonly kind = "postgres" as const;
  readonly #sql: Sql;

  /**
   * Wrap a configured pool; {@linkcode openPostgresDb} is the usual way in.
   *
   * @param sql a configured `postgres` client
   */
  constructor(sql: Sql) {
    this.#sql = sql;
  }

  query<T = Record<string, unknown>>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return run<T>(this.#sql, sql, params);
  }

  async exec(sql: string): Promise<void> {
    await this.#sql.unsafe(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const result = await this.#sql.begin((tx) => {
      const handle = tx as unknown as Sql;
      return fn({
        query: <R>(sql: string, params: readonly SqlParam[] = []) => run<R>(handle, sql, params),
        exec: async (sql: string) => {
          await handle.unsafe(sql);
        },
      });
    });
    return result as T;
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

async function run<T>(sql: Sql, text: string, params: readonly SqlParam[]): Promise<T[]> {
  const started = performance.now();
  try {
    return await withSpan(
      "db.query",
      { "db.system.name": "postgresql", "db.client": "postgres" },
      async () => {
        const rows = await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[]);
        // Copy out of the driver's array subclass so callers see plain objects.
        return Array.from(rows) as T[];
      },
    );
  } finally {
    dbMetrics.duration.record((performance.now() - started) / 1000, { "db.client": "postgres" });
  }
}

/**
 * Connect a pool and check the server answers.
 *
 * @param options URL, password, pool size and schema
 */
export async function openPostgresDb(options: PostgresDbOptions): Promise<PostgresDb> {
  const schema = options.schema;
  if (schema !== undefined) assertIdentifier(schema);
  const sql = postgres(options.url, {
    max: options.poolSize ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    idle_timeout: 60,
    onnotice: () => {},
    ...(options.password === undefined ? {} : { password: options.password }),
    ...(schema === undefined ? {} : { connection: { search_path: schema } }),
    types: {
      // int8 as bigint, as PGlite does: amounts in satoshis never pass through floats.
      bigint: {
        to: 20,
        from: [20],
        serialize: (v: bigint) => v.toString(),
        parse: (v: string) => BigInt(v),
      },
      // JSON parameters arrive already serialised (the port's contract), as with
      // PGlite; without this the driver would encode the string a second time.
      json: {
        to: 3802,
        from: [114, 3802],
        serialize: (v: unknown) => typeof v === "string" ? v : JSON.stringify(v),
        parse: (v: string) => JSON.parse(v),
      },
    },
  }) as unknown as Sql;
  const db = new PostgresDb(sql);
  try {
    if (schema !== undefined) await db.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await db.query("SELECT 1");
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw err;
  }
  return db;
}
