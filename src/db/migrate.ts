/**
 * Applies numbered SQL migrations, each in its own transaction, recording them
 * in `schema_migrations`. Idempotent; several instances booting at once are
 * serialised by an advisory lock. A database that has a migration newer than
 * this code knows is refused: running old code against it could corrupt it.
 *
 * @module
 */
import type { Db } from "./db.ts";
import type { Migration } from "./migrations/mod.ts";

/** Arbitrary constant naming the migration lock (the ASCII of "anya"). */
const MIGRATION_LOCK_ID = 0x616e7961;

/** The database is ahead of this code. */
export class SchemaTooNewError extends Error {
  /**
   * Build the error naming both versions.
   *
   * @param dbVersion newest migration applied to the database
   * @param codeVersion newest migration this build knows
   */
  constructor(dbVersion: number, codeVersion: number) {
    super(
      `Database schema is at version ${dbVersion} but this build knows only up to ${codeVersion}: refusing to start`,
    );
    this.name = "SchemaTooNewError";
  }
}

/** What {@linkcode migrate} did. */
export interface MigrateResult {
  /** Versions applied by this call, ascending; empty when already current. */
  applied: number[];
  /** The database's schema version afterwards. */
  version: number;
}

/**
 * Bring the database up to the newest migration.
 *
 * @param db the database
 * @param migrations ascending list
 * @returns versions applied now and the resulting version
 */
export async function migrate(db: Db, migrations: readonly Migration[]): Promise<MigrateResult> {
  const latest = migrations.at(-1)?.version ?? 0;
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_ID]);
      const current = await currentVersion(tx);
      if (current > latest) throw new SchemaTooNewError(current, latest);
      const rows = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [
        m.version,
      ]);
      if (rows.length > 0) return false;
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        m.version,
        m.name,
      ]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  const version = await currentVersion(db);
  if (version > latest) throw new SchemaTooNewError(version, latest);
  return { applied, version };
}

/** Highest applied migration, 0 when none. */
export async function currentVersion(db: Pick<Db, "query">): Promise<number> {
  const rows = await db.query<{ v: number | null }>(
    "SELECT max(version) AS v FROM schema_migrations",
  );
  return rows[0]?.v ?? 0;
}
