/**
 * The HSM database's migrations, a sequence of their own (the HSM never shares
 * the edge's database). Imported as text so they ship inside compiled binaries.
 *
 * @module
 */
import type { Migration } from "../../db/migrations/mod.ts";
import m0001 from "./0001_hsm.sql" with { type: "text" };
import m0002 from "./0002_velocity.sql" with { type: "text" };

/** Every HSM migration, ascending by version. */
export const HSM_MIGRATIONS: readonly Migration[] = Object.freeze([
  { version: 1, name: "0001_hsm", sql: m0001 },
  { version: 2, name: "0002_velocity", sql: m0002 },
]);
