/**
 * Create an API key from the command line (for bootstrapping the first admin
 * key, which the HTTP API cannot do without one):
 *
 * ```sh
 * deno task keys:create --tenant acme --scopes admin,read [--name ops] [--expires-in-days 90]
 * ```
 *
 * Uses the same configuration as the server (`DATABASE_URL`, `ANYA_DATA_DIR`, …),
 * applies pending migrations, and records the creation in the audit trail with
 * actor `cli:keys:create`. Human-readable details go to stderr; the key alone
 * is the last line of stdout, so `key=$(deno task keys:create … | tail -n1)`
 * works. With the embedded database, stop the server first.
 *
 * @module
 */
import { AuditLog } from "../src/audit/audit_log.ts";
import { ApiKeyService } from "../src/auth/api_key_service.ts";
import { isScope, type Scope, SCOPES } from "../src/auth/principal.ts";
import { loadConfig } from "../src/config/load.ts";
import { redactText } from "../src/config/redact.ts";
import { CONFIG_ENV_KEYS } from "../src/config/schema.ts";
import { migrate } from "../src/db/migrate.ts";
import { MIGRATIONS } from "../src/db/migrations/mod.ts";
import { openDb } from "../src/db/open.ts";
import { parseOptions, UsageError } from "./_cli.ts";
import { writeLine } from "./_io.ts";

const USAGE = `Usage: deno task keys:create --tenant <tenant> --scopes <scope>[,<scope>...] \\
         [--name <name>] [--expires-in-days <days>]

Scopes: ${SCOPES.join(", ")}`;

/** Parsed command-line arguments. */
export interface KeysCreateArgs {
  tenant: string;
  scopes: Scope[];
  name: string | undefined;
  expiresInDays: number | undefined;
}

/**
 * Parse and check the arguments.
 *
 * @param args command-line arguments
 * @returns the parsed arguments, or `"help"` when help was asked for
 * @throws UsageError on unknown, missing or malformed arguments
 */
export function parseKeysCreateArgs(args: readonly string[]): KeysCreateArgs | "help" {
  const values = parseOptions(args, {
    tenant: { type: "string" },
    scopes: { type: "string" },
    name: { type: "string" },
    "expires-in-days": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) return "help";
  if (values.tenant === undefined || values.tenant === "") {
    throw new UsageError("Missing --tenant");
  }
  if (values.scopes === undefined || values.scopes === "") {
    throw new UsageError("Missing --scopes");
  }
  const scopes = values.scopes.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const unknown = scopes.filter((s) => !isScope(s));
  if (unknown.length > 0) {
    throw new UsageError(`Unknown scope: ${unknown.map((s) => `"${s}"`).join(", ")}`);
  }
  if (scopes.length === 0) throw new UsageError("Missing --scopes");
  let expiresInDays: number | undefined;
  const days = values["expires-in-days"];
  if (days !== undefined) {
    if (!/^\d{1,5}$/.test(days) || Number(days) < 1) {
      throw new UsageError(
        `Invalid --expires-in-days: expected a whole number >= 1, got "${days}"`,
      );
    }
    expiresInDays = Number(days);
  }
  return {
    tenant: values.tenant,
    scopes: [...new Set(scopes)] as Scope[],
    name: values.name,
    expiresInDays,
  };
}

/**
 * Run the command.
 *
 * @param args command-line arguments
 * @param env environment variables (passed to `loadConfig`)
 * @returns the process exit code
 */
export async function main(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseKeysCreateArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    await writeLine(Deno.stderr, `keys:create: ${err.message}\n\n${USAGE}`);
    return 1;
  }
  if (parsed === "help") {
    await writeLine(Deno.stderr, USAGE);
    return 0;
  }
  let db;
  try {
    const config = loadConfig(env);
    db = await openDb(config.db);
    await migrate(db, MIGRATIONS);
    const service = new ApiKeyService({ db, audit: new AuditLog(db) });
    const expiresAt = parsed.expiresInDays === undefined
      ? undefined
      : new Date(Date.now() + parsed.expiresInDays * 86_400_000);
    const { key, secret } = await service.create(
      { tenant: parsed.tenant, scopes: parsed.scopes, name: parsed.name, expiresAt },
      { actor: "cli:keys:create", requestId: `cli-${crypto.randomUUID()}` },
    );
    await writeLine(
      Deno.stderr,
      [
        `Created API key ${key.id} for tenant "${key.tenant}"`,
        `  scopes:  ${key.scopes.join(", ")}`,
        ...(key.name === null ? [] : [`  name:    ${key.name}`]),
        `  expires: ${key.expiresAt?.toISOString() ?? "never"}`,
        "Store the key below now: it is shown only once.",
      ].join("\n"),
    );
    await writeLine(Deno.stdout, secret);
    return 0;
  } catch (err) {
    // Redacted: a driver error may quote a connection URL.
    await writeLine(
      Deno.stderr,
      `keys:create: ${redactText(err instanceof Error ? err.message : String(err))}`,
    );
    return 1;
  } finally {
    await db?.close();
  }
}

/**
 * The variables the config schema names, read one by one so the task can run
 * with `--allow-env=<CONFIG_ENV_KEYS>` rather than the whole environment.
 */
function configEnv(): Record<string, string | undefined> {
  return Object.fromEntries(CONFIG_ENV_KEYS.map((k) => [k, Deno.env.get(k)]));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, configEnv()));
}
