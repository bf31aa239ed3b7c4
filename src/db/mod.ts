/**
 * Storage: the `Db` port, its two adapters and the migration runner.
 *
 * @module
 */
export * from "./db.ts";
export * from "./migrate.ts";
export * from "./open.ts";
export { type Migration, MIGRATIONS } from "./migrations/mod.ts";
export { openPgliteDb, PgliteDb, type PgliteDbOptions } from "./pglite_db.ts";
export { openPostgresDb, PostgresDb, type PostgresDbOptions } from "./postgres_db.ts";
