import type { Config } from "../config/schema.ts";
import type { Db } from "./db.ts";
import { openPgliteDb } from "./pglite_db.ts";

/** Another process holds the embedded database. */
export class DataDirBusyError extends Error {
  /**
   * Build the error naming the directory.
   *
   * @param dir the PGlite data directory
   */
  constructor(dir: string) {
    super(
      `The embedded database "${dir}" is in use by another process (stop the running server first, or set DATABASE_URL)`,
    );
    this.name = "DataDirBusyError";
  }
}
import { openPostgresDb } from "./postgres_db.ts";

/**
 * Open the database the config names: PGlite under the data dir, or PostgreSQL.
 *
 * @param db the config's `db` slice; for PostgreSQL its password file is read here
 */
export async function openDb(db: Config["db"]): Promise<Db> {
  switch (db.kind) {
    case "pglite": {
      await Deno.mkdir(db.dataDir, { recursive: true, mode: 0o700 });
      // PGlite is single-process: a second process on the same directory would
      // corrupt it, so hold an exclusive lock for as long as the database is open.
      const lock = await Deno.open(`${db.dataDir}.lock`, {
        create: true,
        write: true,
        mode: 0o600,
      });
      if (!(await lock.tryLock(true))) {
        lock.close();
        throw new DataDirBusyError(db.dataDir);
      }
      try {
        return await openPgliteDb({ dataDir: db.dataDir, onClose: () => lock.close() });
      } catch (err) {
        lock.close();
        throw err;
      }
    }
    case "postgres":
      return await openPostgresDb({
        url: db.url,
        password: db.passwordFile === undefined
          ? undefined
          : await readPasswordFile(db.passwordFile),
        poolSize: db.poolSize,
      });
  }
}

/** The password in `path`, without the trailing newline editors and `echo` add. */
async function readPasswordFile(path: string): Promise<string> {
  return (await Deno.readTextFile(path)).replace(/\r?\n$/, "");
}
