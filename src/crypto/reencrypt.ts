/**
 * Key rotation for `encrypted_secrets`: re-encrypt every row whose `key_id` is
 * not the keyring's newest key.
 *
 * Rows are read in batches by ascending id (a keyset cursor, so rows that fail
 * are passed over instead of being read again forever). Each row is updated in
 * its own small transaction guarded by `WHERE key_id = <old> AND ciphertext =
 * <old>` (plus tenant and purpose, which the ciphertext is bound to): a row
 * changed meanwhile by a `put` or by a concurrent rotation is left alone and
 * counted as skipped. Stopping at any point therefore leaves every row valid
 * under one key or the other, and running again resumes where it stopped.
 * `updated_at` is left alone: the secret's value does not change.
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import {
  encryptedSecretContext,
  type EncryptedSecretRow,
  openRow,
} from "./encrypted_secret_repo.ts";
import { DecryptionError, type SecretBox } from "./secret_box.ts";

/** Rows read per batch unless told otherwise. */
export const DEFAULT_REENCRYPT_BATCH_SIZE = 100;
/** How many failed row ids a result lists (the count is always complete). */
const MAX_LISTED_FAILURES = 1000;

/** Counters reported after every batch. */
export interface ReencryptProgress {
  /** Key every row is being moved to. */
  newestKeyId: string;
  /** Rows under an older key read so far. */
  examined: number;
  /** Rows now under the newest key. */
  reencrypted: number;
  /** Rows changed by someone else between read and update (left for the next run). */
  skipped: number;
  /** Rows that did not decrypt (damaged, or their key is not in the keyring). */
  failed: number;
}

/** What {@linkcode reencryptSecrets} did. */
export interface ReencryptResult extends ReencryptProgress {
  /** Ids of failed rows (at most the first 1000) with the reason; never secret values. */
  failures: { id: string; reason: string }[];
  /** Rows still under an older key when the run ended. */
  remaining: number;
  /** True when no row remains under an older key. */
  complete: boolean;
}

/** Options for {@linkcode reencryptSecrets}. */
export interface ReencryptOptions {
  /** Rows read per batch (1..10000), default 100. */
  batchSize?: number;
  /** Stop after examining this many rows (a bounded run; the next run resumes). */
  maxRows?: number;
  /** Called after each batch. */
  onProgress?: (progress: ReencryptProgress) => void;
  /** Stops the run between rows; the result then reports what was done. */
  signal?: AbortSignal;
}

type CandidateRow = EncryptedSecretRow;

/**
 * Re-encrypt every `encrypted_secrets` row not under the newest data key.
 * Resumable and safe to run concurrently with the service and with itself.
 *
 * @param db the database
 * @param box holds the old keys (to decrypt) and the newest one (to encrypt)
 * @param options batch size, row limit, progress callback, abort signal
 * @returns counters, failures and how many rows remain under old keys
 * @throws TypeError / RangeError on malformed options
 * @example
 * ```ts
 * const result = await reencryptSecrets(db, new SecretBox(keyring), {
 *   onProgress: (p) => logger.info("Re-encrypting secrets", { ...p }),
 * });
 * ```
 */
export async function reencryptSecrets(
  db: Db,
  box: SecretBox,
  options: ReencryptOptions = {},
): Promise<ReencryptResult> {
  const batchSize = options.batchSize ?? DEFAULT_REENCRYPT_BATCH_SIZE;
  assertCount(batchSize, "batchSize", 1, 10_000);
  const maxRows = options.maxRows ?? Number.MAX_SAFE_INTEGER;
  assertCount(maxRows, "maxRows", 0, Number.MAX_SAFE_INTEGER);
  const newestKeyId = box.newestKeyId;
  const progress: ReencryptProgress = {
    newestKeyId,
    examined: 0,
    reencrypted: 0,
    skipped: 0,
    failed: 0,
  };
  const failures: { id: string; reason: string }[] = [];
  let cursor: string | null = null;

  scan: while (progress.examined < maxRows) {
    const limit = Math.min(batchSize, maxRows - progress.examined);
    const rows: CandidateRow[] = await db.query<CandidateRow>(
      `SELECT id, tenant, purpose, key_id, ciphertext FROM encrypted_secrets
       WHERE key_id <> $1 AND ($2::text IS NULL OR id > $2::text)
       ORDER BY id LIMIT $3`,
      [newestKeyId, cursor, limit],
    );
    for (const row of rows) {
      if (options.signal?.aborted) break scan;
      progress.examined++;
      cursor = row.id;
      const outcome = await reencryptRow(db, box, row);
      if (outcome === "done") progress.reencrypted++;
      else if (outcome === "skipped") progress.skipped++;
      else {
        progress.failed++;
        if (failures.length < MAX_LISTED_FAILURES) failures.push({ id: row.id, reason: outcome });
      }
    }
    options.onProgress?.({ ...progress });
    if (rows.length < limit) break;
  }

  const [count] = await db.query<{ n: bigint }>(
    "SELECT count(*) AS n FROM encrypted_secrets WHERE key_id <> $1",
    [newestKeyId],
  );
  const remaining = Number(count?.n ?? 0n);
  return { ...progress, failures, remaining, complete: remaining === 0 };
}

/** Move one row to the newest key; returns "done", "skipped" or a failure reason. */
async function reencryptRow(db: Db, box: SecretBox, row: CandidateRow): Promise<string> {
  let plaintext: Uint8Array;
  try {
    plaintext = await openRow(box, row);
  } catch (error) {
    if (error instanceof DecryptionError) return error.reason;
    throw error;
  }
  try {
    const sealed = await box.seal(plaintext, encryptedSecretContext(row));
    const updated = await db.transaction((tx) =>
      tx.query(
        `UPDATE encrypted_secrets SET key_id = $1, ciphertext = $2
         WHERE id = $3 AND tenant = $4 AND purpose = $5 AND key_id = $6 AND ciphertext = $7
         RETURNING id`,
        [
          sealed.keyId,
          sealed.envelope,
          row.id,
          row.tenant,
          row.purpose,
          row.key_id,
          row.ciphertext,
        ],
      )
    );
    return updated.length > 0 ? "done" : "skipped";
  } finally {
    plaintext.fill(0);
  }
}

function assertCount(value: unknown, name: string, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`reencryptSecrets(): "${name}" must be an integer, got ${typeof value}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`reencryptSecrets(): "${name}" must be in ${min}..${max}, got ${value}`);
  }
}
