/**
 * Rotate the data encryption key and re-encrypt stored secrets:
 *
 * ```sh
 * deno task data-key:rotate [--new-key] [--key-only] [--batch-size <n>] [--max-rows <n>]
 * ```
 *
 * - `--new-key` appends a fresh key to the key file (`ANYA_DATA_KEY_FILE`, or
 *   `<ANYA_DATA_DIR>/data.key`); the last key in the file is the newest.
 * - Then every `encrypted_secrets` row not under the newest key is re-encrypted,
 *   one small guarded transaction per row, so the run can be interrupted
 *   (Ctrl-C stops between rows) and simply started again.
 * - `--key-only` adds the key without re-encrypting.
 *
 * Without downtime: `--new-key --key-only`, restart every server (they then
 * encrypt under the new key and still read the old ones), then run again
 * without flags. Servers that do not know the new key cannot read rows already
 * moved to it. Never remove an old key before a run reports `"complete":true`.
 *
 * Progress goes to stderr; one JSON summary line goes to stdout. Exit status:
 * 0 when every row is under the newest key, 3 when some remain (failed rows,
 * rows changed meanwhile, or a bounded/interrupted run), 1 on errors. With the
 * embedded database, stop the server first.
 *
 * @module
 */
import { loadConfig } from "../src/config/load.ts";
import { redactText } from "../src/config/redact.ts";
import { appendDataKey, loadOrCreateDataKeys } from "../src/crypto/data_key_file.ts";
import { reencryptSecrets } from "../src/crypto/reencrypt.ts";
import { SecretBox } from "../src/crypto/secret_box.ts";
import type { Db } from "../src/db/db.ts";
import { migrate } from "../src/db/migrate.ts";
import { MIGRATIONS } from "../src/db/migrations/mod.ts";
import { openDb } from "../src/db/open.ts";
import { parseOptions, UsageError } from "./_cli.ts";
import { writeLineSync as writeLine } from "./_io.ts";

const USAGE =
  `Usage: deno task data-key:rotate [--new-key] [--key-only] [--batch-size <n>] [--max-rows <n>]

  --new-key         append a fresh key to the data key file (it becomes the newest)
  --key-only        do not re-encrypt rows (restart servers, then run without it)
  --batch-size <n>  rows read per batch (1..10000, default 100)
  --max-rows <n>    stop after examining this many rows; run again to continue`;

/** Exit status when rows remain under older keys. */
export const EXIT_INCOMPLETE = 3;

/** Parsed command-line arguments. */
export interface DataKeyRotateArgs {
  /** `--new-key`: append a fresh key first. */
  newKey: boolean;
  /** `--key-only`: do not re-encrypt. */
  keyOnly: boolean;
  /** `--batch-size`. */
  batchSize: number | undefined;
  /** `--max-rows`. */
  maxRows: number | undefined;
}

/**
 * Parse and check the arguments.
 *
 * @param args command-line arguments
 * @returns the parsed arguments, or `"help"` when help was asked for
 * @throws UsageError on unknown or malformed arguments
 */
export function parseDataKeyRotateArgs(args: readonly string[]): DataKeyRotateArgs | "help" {
  const values = parseOptions(args, {
    "new-key": { type: "boolean" },
    "key-only": { type: "boolean" },
    "batch-size": { type: "string" },
    "max-rows": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) return "help";
  const count = (name: string, value: string | undefined, min: number, max: number) => {
    if (value === undefined) return undefined;
    if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`Invalid --${name}: expected a whole number in ${min}..${max}`);
    }
    return Number(value);
  };
  return {
    newKey: values["new-key"] === true,
    keyOnly: values["key-only"] === true,
    batchSize: count("batch-size", values["batch-size"], 1, 10_000),
    maxRows: count("max-rows", values["max-rows"], 0, 999_999_999),
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
    parsed = parseDataKeyRotateArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    writeLine(Deno.stderr, `data-key:rotate: ${err.message}\n\n${USAGE}`);
    return 1;
  }
  if (parsed === "help") {
    writeLine(Deno.stderr, USAGE);
    return 0;
  }
  const log = (line: string) => writeLine(Deno.stderr, `data-key:rotate: ${line}`);
  let db: Db | undefined;
  const abort = new AbortController();
  const onInterrupt = () => abort.abort();
  let listening = false;
  try {
    const config = loadConfig(env);
    const keyOptions = { dataKeyFile: config.dataKeyFile, dataDir: config.dataDir };
    let keys = await loadOrCreateDataKeys(keyOptions);
    if (keys.created) log(`generated data key file "${keys.path}": back it up`);
    let addedKeyId: string | null = null;
    if (parsed.newKey) {
      const added = await appendDataKey(keys.path);
      addedKeyId = added.keyId;
      log(`added key ${added.keyId} to "${keys.path}" (${added.keyCount} keys)`);
      if (!parsed.keyOnly) {
        log(
          "servers still running with the old key file cannot read re-encrypted rows: restart them",
        );
      }
      keys = await loadOrCreateDataKeys(keyOptions);
    }
    const newestKeyId = keys.keyring.newestKeyId;
    if (parsed.keyOnly) {
      log("rows not re-encrypted (--key-only): restart servers, then run again");
      writeLine(Deno.stdout, JSON.stringify({ newestKeyId, addedKeyId, reencrypted: 0 }));
      return 0;
    }
    db = await openDb(config.db);
    await migrate(db, MIGRATIONS);
    Deno.addSignalListener("SIGINT", onInterrupt);
    listening = true;
    log(`re-encrypting secrets under key ${newestKeyId}`);
    const result = await reencryptSecrets(db, new SecretBox(keys.keyring), {
      ...(parsed.batchSize === undefined ? {} : { batchSize: parsed.batchSize }),
      ...(parsed.maxRows === undefined ? {} : { maxRows: parsed.maxRows }),
      signal: abort.signal,
      onProgress: (p) => {
        log(
          `examined ${p.examined}: re-encrypted ${p.reencrypted}, skipped ${p.skipped}, failed ${p.failed}`,
        );
      },
    });
    for (const f of result.failures) log(`row "${f.id}" not re-encrypted: ${f.reason}`);
    if (abort.signal.aborted) log("interrupted: run again to continue");
    if (!result.complete) {
      log(`${result.remaining} rows remain under older keys: run again`);
    }
    writeLine(
      Deno.stdout,
      JSON.stringify({
        newestKeyId,
        addedKeyId,
        examined: result.examined,
        reencrypted: result.reencrypted,
        skipped: result.skipped,
        failed: result.failed,
        remaining: result.remaining,
        complete: result.complete,
      }),
    );
    return result.complete ? 0 : EXIT_INCOMPLETE;
  } catch (err) {
    // Redacted: a driver error may quote a connection URL.
    log(redactText(err instanceof Error ? err.message : String(err)));
    return 1;
  } finally {
    if (listening) Deno.removeSignalListener("SIGINT", onInterrupt);
    await db?.close();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
