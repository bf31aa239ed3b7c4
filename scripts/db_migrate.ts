/**
 * `deno task db:migrate`: apply pending migrations to the configured database
 * (PGlite under the data dir, or `DATABASE_URL`) and report what was applied.
 * The server also migrates at boot; this is for running it ahead of a deploy.
 * With the embedded database, stop the server first.
 *
 * @module
 */
import { loadConfig } from "../src/config/load.ts";
import { redactText } from "../src/config/redact.ts";
import { type Db, migrate } from "../src/db/mod.ts";
import { MIGRATIONS } from "../src/db/migrations/mod.ts";
import { openDb } from "../src/db/open.ts";
import { writeLine } from "./_io.ts";

/**
 * Run the migrations.
 *
 * @param env environment variables (passed to `loadConfig`)
 * @returns 0 on success, 1 on failure (the reason goes to stderr)
 */
export async function main(env: Readonly<Record<string, string | undefined>>): Promise<number> {
  let db: Db | undefined;
  try {
    const config = loadConfig(env);
    db = await openDb(config.db);
    const result = await migrate(db, MIGRATIONS);
    const applied = result.applied.length === 0
      ? "none pending"
      : `applied ${result.applied.join(", ")}`;
    await writeLine(
      Deno.stdout,
      `db:migrate: ${db.kind} schema at version ${result.version} (${applied})`,
    );
    return 0;
  } catch (err) {
    // Redacted: a driver error may quote a connection URL.
    await writeLine(
      Deno.stderr,
      `db:migrate: ${redactText(err instanceof Error ? err.message : String(err))}`,
    );
    return 1;
  } finally {
    await db?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.env.toObject()));
