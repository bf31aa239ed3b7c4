/**
 * Data keys for encryption at rest: the text format of the data-key file and
 * the in-memory {@linkcode Keyring} built from it.
 *
 * File format (one key per line, newest last):
 *
 * ```text
 * # comments and blank lines are ignored
 * k2026-11-28-3f9a0c1d  <base64 of 32 random bytes>
 * ```
 *
 * Parsing is strict and never echoes key material in its errors: a line that
 * fails is named by its number only, because a mangled line may still hold most
 * of a key. Keys are imported as non-extractable AES-GCM `CryptoKey`s, so the
 * raw bytes cannot be read back out of the keyring.
 *
 * No I/O here; reading and writing the file is `data_key_file.ts`.
 *
 * @module
 */

/** Length of every data key: AES-256. */
export const DATA_KEY_BYTES = 32;
/** What a key id may look like. Ids are not secret and appear in logs and rows. */
export const KEY_ID_PATTERN: RegExp = /^[a-z0-9-]{1,32}$/;
/** Upper bound on keys in one file; a rotation every day for decades fits. */
export const MAX_DATA_KEYS = 10_000;

// Canonical padded base64 of exactly 32 bytes: 43 symbols then one "=".
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/;
const BASE64_ANY = /^[A-Za-z0-9+/]*={0,2}$/;

/** One raw key as read from or written to the file. */
export interface DataKeyEntry {
  /** Key id, matching {@linkcode KEY_ID_PATTERN}. */
  id: string;
  /** The 32 key bytes. */
  key: Uint8Array;
}

/** The data-key file (or its text) is unusable. Messages never contain key material. */
export class DataKeyFileError extends Error {
  /** 1-based line of the problem, when it is about one line. */
  readonly line: number | undefined;

  /**
   * Describe a key file problem.
   *
   * @param message what is wrong, safe to log
   * @param options the offending line number and the original error
   */
  constructor(message: string, options: { line?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DataKeyFileError";
    this.line = options.line;
  }
}

/**
 * Parse the text of a data-key file.
 *
 * @param text the whole file
 * @returns the keys in file order (oldest first, newest last)
 * @throws TypeError when `text` is not a string
 * @throws DataKeyFileError naming the first bad line (never its content), or when no key is present
 */
export function parseDataKeyFile(text: string): DataKeyEntry[] {
  if (typeof text !== "string") {
    throw new TypeError(`parseDataKeyFile(): "text" must be a string, got ${typeOf(text)}`);
  }
  const entries: DataKeyEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] ?? "").replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const fail = (what: string): never => {
      throw new DataKeyFileError(`Invalid data key file: line ${lineNo}: ${what}`, {
        line: lineNo,
      });
    };
    const fields = line.split(/[ \t]+/);
    if (fields.length !== 2) fail('expected "<keyId> <base64 key>"');
    const [id = "", encoded = ""] = fields;
    // Not echoed: a line with its fields swapped would put the key here.
    if (!KEY_ID_PATTERN.test(id)) fail("key id must match [a-z0-9-]{1,32}");
    const first = seen.get(id);
    if (first !== undefined) fail(`duplicate key id "${id}" (first on line ${first})`);
    const key = decodeKey(encoded);
    if (key === "bad-base64") fail("key is not valid base64");
    if (key === "bad-length") fail(`key must be ${DATA_KEY_BYTES} bytes of base64`);
    if (entries.length >= MAX_DATA_KEYS) fail(`more than ${MAX_DATA_KEYS} keys`);
    seen.set(id, lineNo);
    entries.push({ id, key: key as Uint8Array });
  }
  if (entries.length === 0) throw new DataKeyFileError("Invalid data key file: it holds no key");
  return entries;
}

/**
 * Format one key as a file line (without the newline).
 *
 * @param entry id and 32 key bytes
 * @throws TypeError / RangeError on a malformed entry
 */
export function formatDataKeyLine(entry: DataKeyEntry): string {
  assertEntry(entry, "formatDataKeyLine");
  return `${entry.id} ${encodeBase64(entry.key)}`;
}

/**
 * Serialize keys into the file format, oldest first.
 *
 * @param entries keys, newest last; ids must be unique
 * @param options `comment`: text written as leading `#` lines
 * @returns the file text, ending with a newline
 * @throws TypeError / RangeError on malformed entries, duplicates or an empty list
 */
export function serializeDataKeyFile(
  entries: readonly DataKeyEntry[],
  options: { comment?: string } = {},
): string {
  if (!Array.isArray(entries)) {
    throw new TypeError(
      `serializeDataKeyFile(): "entries" must be an array, got ${typeOf(entries)}`,
    );
  }
  if (entries.length === 0 || entries.length > MAX_DATA_KEYS) {
    throw new RangeError(
      `serializeDataKeyFile(): "entries" must hold 1..${MAX_DATA_KEYS} keys, got ${entries.length}`,
    );
  }
  const ids = new Set<string>();
  const lines: string[] = [];
  if (options.comment !== undefined) {
    for (const c of options.comment.split("\n")) lines.push(c === "" ? "#" : `# ${c}`);
  }
  for (const entry of entries) {
    const line = formatDataKeyLine(entry);
    if (ids.has(entry.id)) {
      throw new RangeError(`serializeDataKeyFile(): duplicate key id "${entry.id}"`);
    }
    ids.add(entry.id);
    lines.push(line);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * The key new data is encrypted under: the last one.
 *
 * @param entries keys in file order
 * @throws RangeError when the list is empty
 */
export function newestDataKey<T extends { id: string }>(entries: readonly T[]): T {
  const last = entries.at(-1);
  if (last === undefined) throw new RangeError("newestDataKey(): no keys");
  return last;
}

/**
 * A fresh random key with an id like `k2026-11-28-3f9a0c1d` (UTC date plus 32
 * random bits, so two keys made the same day do not collide).
 *
 * @param options `now` fixes the date (tests); `existingIds` are avoided
 */
export function generateDataKey(
  options: { now?: Date; existingIds?: Iterable<string> } = {},
): DataKeyEntry {
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new TypeError('generateDataKey(): "now" must be a valid Date');
  }
  const taken = new Set(options.existingIds ?? []);
  const date = now.toISOString().slice(0, 10);
  for (;;) {
    const suffix = Array.from(
      crypto.getRandomValues(new Uint8Array(4)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const id = `k${date}-${suffix}`;
    if (!taken.has(id)) return { id, key: crypto.getRandomValues(new Uint8Array(DATA_KEY_BYTES)) };
  }
}

const CONSTRUCT = Symbol("Keyring.import");

/** Imported data keys, by id, with the newest one used for new encryptions. */
export class Keyring {
  readonly #keys: ReadonlyMap<string, CryptoKey>;
  readonly #ids: readonly string[];
  readonly #newest: string;

  /**
   * Use {@linkcode Keyring.import}; the constructor only accepts what it built.
   *
   * @param token module-private construction token
   * @param keys imported keys by id, in file order
   */
  constructor(token: symbol, keys: Map<string, CryptoKey>) {
    if (token !== CONSTRUCT) throw new TypeError("Keyring: use Keyring.import()");
    this.#keys = keys;
    this.#ids = Object.freeze([...keys.keys()]);
    this.#newest = newestDataKey(this.#ids.map((id) => ({ id }))).id;
  }

  /**
   * Import raw keys as non-extractable AES-GCM keys. The caller may wipe the
   * raw bytes afterwards; the keyring keeps none of them.
   *
   * @param entries keys in file order, newest last
   * @throws TypeError / RangeError on malformed entries, duplicates or an empty list
   */
  static async import(entries: readonly DataKeyEntry[]): Promise<Keyring> {
    if (!Array.isArray(entries)) {
      throw new TypeError(`Keyring.import(): "entries" must be an array, got ${typeOf(entries)}`);
    }
    if (entries.length === 0) throw new RangeError("Keyring.import(): no keys");
    const keys = new Map<string, CryptoKey>();
    for (const entry of entries) {
      assertEntry(entry, "Keyring.import");
      if (keys.has(entry.id)) {
        throw new RangeError(`Keyring.import(): duplicate key id "${entry.id}"`);
      }
      const key = await crypto.subtle.importKey(
        "raw",
        new Uint8Array(entry.key),
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
      keys.set(entry.id, key);
    }
    return new Keyring(CONSTRUCT, keys);
  }

  /** Id of the key new data is encrypted under (the last one in the file). */
  get newestKeyId(): string {
    return this.#newest;
  }

  /** Every key id, oldest first. */
  get keyIds(): readonly string[] {
    return this.#ids;
  }

  /**
   * The key with this id.
   *
   * @param id a key id
   * @returns the key, or `undefined` when the keyring does not hold it
   */
  getKey(id: string): CryptoKey | undefined {
    return this.#keys.get(id);
  }
}

function assertEntry(entry: DataKeyEntry, fn: string): void {
  if (entry === null || typeof entry !== "object") {
    throw new TypeError(`${fn}(): each entry must be an object, got ${typeOf(entry)}`);
  }
  if (typeof entry.id !== "string") {
    throw new TypeError(`${fn}(): "id" must be a string, got ${typeOf(entry.id)}`);
  }
  if (!KEY_ID_PATTERN.test(entry.id)) {
    throw new RangeError(`${fn}(): "id" must match [a-z0-9-]{1,32}`);
  }
  if (!(entry.key instanceof Uint8Array)) {
    throw new TypeError(`${fn}(): "key" must be a Uint8Array, got ${typeOf(entry.key)}`);
  }
  if (entry.key.length !== DATA_KEY_BYTES) {
    throw new RangeError(
      `${fn}(): "key" must be ${DATA_KEY_BYTES} bytes, got ${entry.key.length}`,
    );
  }
}

function decodeKey(encoded: string): Uint8Array | "bad-base64" | "bad-length" {
  if (!BASE64_ANY.test(encoded) || encoded.length % 4 !== 0) return "bad-base64";
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
  } catch {
    return "bad-base64";
  }
  if (bytes.length !== DATA_KEY_BYTES) return "bad-length";
  // Reject non-canonical spellings (stray bits in the last symbol).
  if (!BASE64_32.test(encoded) || encodeBase64(bytes) !== encoded) return "bad-base64";
  return bytes;
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return "array";
  return typeof value;
}
