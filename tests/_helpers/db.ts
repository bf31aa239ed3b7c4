/**
 * Test databases. Every storage test runs on PGlite and, when CI sets
 * `DATABASE_URL_TEST`, on a real PostgreSQL too. Isolation is by schema: each
 * test gets a fresh, migrated schema that is dropped afterwards. One PGlite
 * instance is shared per test process because creating one costs seconds.
 */
import { PGlite } from "@electric-sql/pglite";
import { type Db, migrate, MIGRATIONS, openPostgresDb, PgliteDb } from "../../src/db/mod.ts";
import { PGLITE_TYPE_OPTIONS, useSchema } from "../../src/db/pglite_db.ts";

/** Database kinds available to this run. */
export type TestDbKind = "pglite" | "postgres";

/** URL of the PostgreSQL used by tests, if any. */
export const POSTGRES_TEST_URL: string | undefined = Deno.env.get("DATABASE_URL_TEST") || undefined;

/** `["pglite"]`, plus `"postgres"` when `DATABASE_URL_TEST` is set. */
export const DB_KINDS: readonly TestDbKind[] = POSTGRES_TEST_URL === undefined
  ? ["pglite"]
  : ["pglite", "postgres"];

let shared: Promise<PGlite> | undefined;

/** The process-wide PGlite instance. */
export function sharedPglite(): Promise<PGlite> {
  shared ??= PGlite.create(PGLITE_TYPE_OPTIONS);
  return shared;
}

/** A migrated database in its own schema, dropped on dispose. */
export type TestDb = Db & AsyncDisposable & { schema: string };

/**
 * Open a fresh migrated schema on the given kind of database.
 *
 * @param kind pglite or postgres
 */
export async function openTestDb(
  kind: TestDbKind,
  options: { migrate?: boolean } = {},
): Promise<TestDb> {
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
  let db: Db;
  if (kind === "pglite") {
    const pg = await sharedPglite();
    db = new PgliteDb(pg, false);
    await useSchema(db, schema);
  } else {
    if (POSTGRES_TEST_URL === undefined) throw new Error("DATABASE_URL_TEST is not set");
    // Fails loudly when CI set the URL but the server is down.
    db = await openPostgresDb({
      url: POSTGRES_TEST_URL,
      schema,
      poolSize: 4,
      connectTimeoutSeconds: 5,
    });
  }
  if (options.migrate !== false) await migrate(db, MIGRATIONS);
  const dispose = async () => {
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.close();
  };
  return Object.assign(Object.create(null), {
    kind: db.kind,
    schema,
    query: db.query.bind(db),
    exec: db.exec.bind(db),
    transaction: db.transaction.bind(db),
    close: dispose,
    [Symbol.asyncDispose]: dispose,
  }) as TestDb;
}

/**
 * Register one `Deno.test` per available database kind.
 *
 * @param name test name; the kind is appended
 * @param fn body, given a fresh migrated database
 * @param options `kinds`: only these (for tests whose subject is not the edge's database)
 */
export function dbTest(
  name: string,
  fn: (db: TestDb) => Promise<void>,
  options: { kinds?: readonly TestDbKind[] } = {},
): void {
  for (const kind of options.kinds ?? DB_KINDS) {
    Deno.test({
      name: `${name} [${kind}]`,
      // PGlite keeps its WASM instance and its timers for the whole process.
      sanitizeResources: false,
      sanitizeOps: false,
      fn: async () => {
        await using db = await openTestDb(kind);
        await fn(db);
      },
    });
  }
}
