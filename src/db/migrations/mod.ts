/**
 * The numbered SQL migrations, in order. Imported as text so they ship inside
 * `deno compile` binaries and need no read permission at run time.
 *
 * @module
 */
import m0001 from "./0001_foundation.sql" with { type: "text" };
import m0002 from "./0002_chain_transactions.sql" with { type: "text" };
import m0003 from "./0003_lightning.sql" with { type: "text" };
import m0004 from "./0004_ml.sql" with { type: "text" };

/** One numbered migration. */
export interface Migration {
  /** Ascending number, from 1; recorded in `schema_migrations`. */
  version: number;
  /** File name without `.sql`, e.g. `0001_foundation`. */
  name: string;
  /** The script, run in one transaction. */
  sql: string;
}

/** Every migration this code knows, ascending by version. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  { version: 1, name: "0001_foundation", sql: m0001 },
  { version: 2, name: "0002_chain_transactions", sql: m0002 },
  { version: 3, name: "0003_lightning", sql: m0003 },
  { version: 4, name: "0004_ml", sql: m0004 },
]);
