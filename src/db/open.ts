import type { Config } from "../config/schema.ts";
import type { Db } from "./db.ts";
import { openPgliteDb } from "./pglite_db.ts";
import { openPostgresDb } from "./postgres_db.ts";

/**
 * Open the database the config names: PGlite under the data dir, or PostgreSQL.
 *
 * @param db the config's `db` slice
 * @param password contents of `DATABASE_PASSWORD_FILE`, read by the caller
 */
export async function openDb(db: Config["db"], password?: string): Promise<Db> {
  switch (db.kind) {
    case "pglite":
      await Deno.mkdir(db.dataDir, { recursive: true, mode: 0o700 });
      return await openPgliteDb({ dataDir: db.dataDir });
    case "postgres":
      return await openPostgresDb({ url: db.url, password, poolSize: db.poolSize });
  }
}
