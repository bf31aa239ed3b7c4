/**
 * The data-key file on disk: load it, generate it on first start when none is
 * configured, and append a key for rotation.
 *
 * - With `ANYA_DATA_KEY_FILE` set, the file must exist: it is never generated,
 *   so a typo in production cannot silently start a fresh, empty keyring.
 * - Without it, `<dataDir>/data.key` is created on first start. It is written
 *   to a temporary file opened with `createNew` and mode 0600, flushed, and
 *   hard-linked into place: a link, unlike a rename, fails when the target
 *   already exists, so two processes starting at once cannot replace each
 *   other's key; the loser simply loads the winner's file.
 * - A key file readable or writable by group or others is refused.
 *
 * @module
 */
import {
  type DataKeyEntry,
  DataKeyFileError,
  formatDataKeyLine,
  generateDataKey,
  Keyring,
  parseDataKeyFile,
  serializeDataKeyFile,
} from "./keyring.ts";

/** File name of the generated key file inside the data dir. */
export const DEFAULT_DATA_KEY_FILE_NAME = "data.key";
/** Largest key file read; a real one is a few hundred bytes per key. */
const MAX_FILE_BYTES = 1024 * 1024;
const GENERATED_COMMENT = [
  "anya-edge data keys: <keyId> <base64 of 32 bytes>, oldest first, newest last.",
  "New secrets are encrypted under the last key. Never delete a key while rows",
  "still use it (run `deno task data-key:rotate` first). Back this file up",
  "separately from the database: without it the encrypted secrets are lost.",
].join("\n");

/** Where the keys came from, as returned by {@linkcode loadOrCreateDataKeys}. */
export interface LoadedDataKeys {
  /** The imported keys, newest last. */
  keyring: Keyring;
  /** The key file that was read. */
  path: string;
  /** True when this call generated the file (first start); callers should log it. */
  created: boolean;
}

/** Options for {@linkcode loadOrCreateDataKeys}. */
export interface DataKeyFileOptions {
  /** `ANYA_DATA_KEY_FILE`: must exist when set. */
  dataKeyFile?: string | undefined;
  /** `ANYA_DATA_DIR`: home of the generated `data.key` when no file is configured. */
  dataDir: string;
}

/**
 * The key file path used when `ANYA_DATA_KEY_FILE` is unset.
 *
 * @param dataDir the data directory
 */
export function defaultDataKeyPath(dataDir: string): string {
  if (typeof dataDir !== "string") {
    throw new TypeError(`defaultDataKeyPath(): "dataDir" must be a string, got ${typeof dataDir}`);
  }
  if (dataDir === "") throw new RangeError('defaultDataKeyPath(): "dataDir" must not be empty');
  // "/srv/" and "/srv" give "/srv/data.key"; "/" gives "/data.key".
  return `${dataDir.replace(/[/\\]+$/, "")}/${DEFAULT_DATA_KEY_FILE_NAME}`;
}

/**
 * The key file path in effect: `dataKeyFile` when set, else `<dataDir>/data.key`.
 *
 * @param options the config's `dataKeyFile` and `dataDir`
 */
export function dataKeyPath(options: DataKeyFileOptions): string {
  return options.dataKeyFile ?? defaultDataKeyPath(options.dataDir);
}

/**
 * Load the data keys, generating `<dataDir>/data.key` on first start when no
 * key file is configured.
 *
 * @param options `dataKeyFile` (config `ANYA_DATA_KEY_FILE`) and `dataDir`
 * @returns the keyring, the file it came from, and whether it was just created
 * @throws DataKeyFileError when a configured file is missing, the file is
 *   group/other accessible, unreadable or malformed
 * @example
 * ```ts
 * const { keyring, path, created } = await loadOrCreateDataKeys({
 *   dataKeyFile: config.dataKeyFile,
 *   dataDir: config.dataDir,
 * });
 * if (created) logger.warn("Generated a new data key file: back it up", { path });
 * ```
 */
export async function loadOrCreateDataKeys(options: DataKeyFileOptions): Promise<LoadedDataKeys> {
  if (options === null || typeof options !== "object") {
    throw new TypeError('loadOrCreateDataKeys(): "options" must be an object');
  }
  if (options.dataKeyFile !== undefined && typeof options.dataKeyFile !== "string") {
    throw new TypeError('loadOrCreateDataKeys(): "dataKeyFile" must be a string or undefined');
  }
  if (options.dataKeyFile !== undefined) {
    const path = options.dataKeyFile;
    return { keyring: await importAndWipe(await readDataKeyFile(path)), path, created: false };
  }
  const path = defaultDataKeyPath(options.dataDir);
  let created = false;
  if (!(await exists(path))) created = await createKeyFile(path, options.dataDir);
  return { keyring: await importAndWipe(await readDataKeyFile(path)), path, created };
}

/**
 * Read and parse a key file after checking it is a regular file that only its
 * owner can access.
 *
 * @param path the key file
 * @returns the raw keys, oldest first; callers should wipe them when done
 * @throws DataKeyFileError when missing, too open, unreadable or malformed
 */
export async function readDataKeyFile(path: string): Promise<DataKeyEntry[]> {
  if (typeof path !== "string") {
    throw new TypeError(`readDataKeyFile(): "path" must be a string, got ${typeof path}`);
  }
  return parseInFile(path, await readCheckedText(path));
}

/**
 * Append a freshly generated key to an existing key file; it becomes the
 * newest key. The file is rewritten through a temporary file and a rename, so
 * readers see the old or the new content, never a mix; a `<path>.lock` file
 * (created exclusively) keeps two rotations from losing each other's key.
 *
 * Running servers keep their old keyring until restarted, so restart them
 * before re-encrypting rows under the new key.
 *
 * @param path the key file
 * @param options `now` fixes the date in the new key id (tests)
 * @returns the new key id and how many keys the file now holds
 * @throws DataKeyFileError when the file is missing, too open, malformed or locked
 */
export async function appendDataKey(
  path: string,
  options: { now?: Date } = {},
): Promise<{ keyId: string; keyCount: number }> {
  if (typeof path !== "string") {
    throw new TypeError(`appendDataKey(): "path" must be a string, got ${typeof path}`);
  }
  const lockPath = `${path}.lock`;
  let lock: Deno.FsFile;
  try {
    lock = await Deno.open(lockPath, { write: true, createNew: true, mode: 0o600 });
  } catch (cause) {
    if (cause instanceof Deno.errors.AlreadyExists) {
      throw new DataKeyFileError(
        `Data key file "${path}" is locked by another rotation: remove "${lockPath}" if none is running`,
        { cause },
      );
    }
    throw new DataKeyFileError(`Cannot lock data key file "${path}": ${errorText(cause)}`, {
      cause,
    });
  }
  try {
    const text = await readCheckedText(path);
    const entries = parseInFile(path, text);
    const ids = entries.map((e) => e.id);
    wipe(entries);
    const entry = generateDataKey({ ...options, existingIds: ids });
    const line = formatDataKeyLine(entry);
    entry.key.fill(0);
    const next = `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${line}\n`;
    const tmp = tempPath(path);
    await writeNewFile(tmp, next);
    try {
      await Deno.rename(tmp, path);
    } catch (cause) {
      await removeQuietly(tmp);
      throw new DataKeyFileError(`Cannot replace data key file "${path}": ${errorText(cause)}`, {
        cause,
      });
    }
    await syncDir(dirname(path));
    return { keyId: entry.id, keyCount: ids.length + 1 };
  } finally {
    lock.close();
    await removeQuietly(lockPath);
  }
}

/** Generate the first key file; false when another process created it first. */
async function createKeyFile(path: string, dataDir: string): Promise<boolean> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const entry = generateDataKey();
  const text = serializeDataKeyFile([entry], { comment: GENERATED_COMMENT });
  entry.key.fill(0);
  const tmp = tempPath(path);
  await writeNewFile(tmp, text);
  try {
    await Deno.link(tmp, path);
  } catch (cause) {
    if (cause instanceof Deno.errors.AlreadyExists) return false;
    throw new DataKeyFileError(`Cannot create data key file "${path}": ${errorText(cause)}`, {
      cause,
    });
  } finally {
    await removeQuietly(tmp);
  }
  await syncDir(dataDir);
  return true;
}

/** Create `path` exclusively with mode 0600, write `text`, and flush it to disk. */
async function writeNewFile(path: string, text: string): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    // The umask can only remove bits; set exactly 0600 regardless.
    if (Deno.build.os !== "windows") await Deno.chmod(path, 0o600);
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } catch (cause) {
    file.close();
    await removeQuietly(path);
    throw cause;
  }
  file.close();
}

/** The file's text, after checking it is a small regular file only its owner can access. */
async function readCheckedText(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new DataKeyFileError(
        `Data key file "${path}" does not exist: create it or fix ANYA_DATA_KEY_FILE`,
        { cause },
      );
    }
    throw new DataKeyFileError(`Cannot read data key file "${path}": ${errorText(cause)}`, {
      cause,
    });
  }
  if (!info.isFile) throw new DataKeyFileError(`Data key file "${path}" is not a regular file`);
  if (info.size > MAX_FILE_BYTES) {
    throw new DataKeyFileError(`Data key file "${path}" is larger than ${MAX_FILE_BYTES} bytes`);
  }
  assertOwnerOnly(path, info);
  try {
    return await Deno.readTextFile(path);
  } catch (cause) {
    throw new DataKeyFileError(`Cannot read data key file "${path}": ${errorText(cause)}`, {
      cause,
    });
  }
}

/** Parse, adding the path to the error (the parser knows only line numbers). */
function parseInFile(path: string, text: string): DataKeyEntry[] {
  try {
    return parseDataKeyFile(text);
  } catch (cause) {
    if (cause instanceof DataKeyFileError) {
      throw new DataKeyFileError(`${cause.message} (in "${path}")`, {
        ...(cause.line === undefined ? {} : { line: cause.line }),
        cause,
      });
    }
    throw cause;
  }
}

function assertOwnerOnly(path: string, info: Deno.FileInfo): void {
  // `mode` is null on Windows, where POSIX bits do not apply.
  if (info.mode === null) return;
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
    throw new DataKeyFileError(
      `Data key file "${path}" is accessible by group or others (mode ${mode}): run \`chmod 600 ${path}\``,
    );
  }
}

async function importAndWipe(entries: DataKeyEntry[]): Promise<Keyring> {
  try {
    return await Keyring.import(entries);
  } finally {
    wipe(entries);
  }
}

function wipe(entries: readonly DataKeyEntry[]): void {
  for (const e of entries) e.key.fill(0);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) return false;
    throw new DataKeyFileError(`Cannot read data key file "${path}": ${errorText(cause)}`, {
      cause,
    });
  }
}

/** Flush a directory entry change (new link, rename) so a crash cannot lose the key file. */
async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Best effort: some filesystems refuse fsync on directories.
  }
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Already gone, or never created.
  }
}

function tempPath(path: string): string {
  const rand = Array.from(
    crypto.getRandomValues(new Uint8Array(6)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `${path}.${rand}.tmp`;
}

function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (i < 0) return ".";
  return i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
