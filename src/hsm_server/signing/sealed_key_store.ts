/**
 * {@linkcode SoftwareKeyStore}: key material sealed with AES-256-GCM under a
 * key-encryption key (KEK) read from a file at start, so the HSM database
 * alone never yields a key.
 *
 * The blob is `src/crypto`'s `SecretBox` envelope (NIST SP 800-38D through
 * WebCrypto), not a second format:
 *
 * ```text
 * byte 0          envelope version (1)
 * byte 1          KEK id length L
 * bytes 2..2+L    KEK id (ASCII), default "hsm-kek"
 * next 12 bytes   random 96-bit nonce
 * rest            ciphertext ‖ 128-bit tag
 * ```
 *
 * The associated data binds the header and the key version the blob belongs
 * to (`{ keyId, version }`), so a blob copied to another key or version, or
 * sealed under another KEK, fails authentication.
 *
 * KEK file: exactly 32 raw bytes, or 64 hex digits (one trailing newline
 * allowed); nothing else. On POSIX systems a file readable or writable by
 * group or others is refused, as the data-key file is.
 *
 * @module
 */
import { KEY_ID_PATTERN, Keyring } from "../../crypto/keyring.ts";
import { SecretBox, type SecretContext } from "../../crypto/secret_box.ts";
import type { KeyStore, SealContext } from "./key_store.ts";

/** KEK length: AES-256. */
export const KEK_BYTES = 32;
/** KEK id written into envelopes when none is given. */
export const DEFAULT_KEK_ID = "hsm-kek";
/** Longest key id accepted in a {@linkcode SealContext}. */
export const MAX_SEAL_KEY_ID_LENGTH = 200;

// Fixed coordinates of HSM key material inside SecretBox's associated data: they keep these
// blobs apart from every other secret sealed with the same envelope code.
const AAD_TABLE = "hsm-key-store";
const AAD_PURPOSE = "hsm.key-material";
const AAD_TENANT = "hsm";
// 64 hex digits, optionally followed by one newline.
const HEX_KEK = /^([0-9a-fA-F]{64})(\r?\n)?$/;
const ASCII_HEX_BYTE = /^[0-9a-fA-F]$/;
// The largest file that can be valid: 64 hex digits and "\r\n".
const MAX_KEK_FILE_BYTES = 66;

/** The KEK file is missing, too open or malformed. Messages never contain key bytes. */
export class KekFileError extends Error {
  /**
   * Describe a KEK file problem.
   *
   * @param message what is wrong, safe to log
   * @param options the original error
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KekFileError";
  }
}

/** Options of {@linkcode SoftwareKeyStore}. */
export interface SoftwareKeyStoreOptions {
  /** Id written into each blob (`[a-z0-9-]{1,32}`); a later KEK rotation tells blobs apart by it. */
  kekId?: string;
}

/** AES-256-GCM key store under a KEK held as a non-extractable WebCrypto key. */
export class SoftwareKeyStore implements KeyStore {
  /** Always `software`. */
  readonly kind = "software";
  /** Id of the KEK, written into every blob. */
  readonly kekId: string;
  readonly #box: Promise<SecretBox>;

  /**
   * Import a KEK. The bytes are copied and the copy is zeroed once imported;
   * the caller zeroes its own buffer.
   *
   * @param kek 32 random bytes
   * @param options the KEK id
   * @throws TypeError / RangeError on a wrong type or size, an all-zero KEK or a bad id
   */
  constructor(kek: Uint8Array, options: SoftwareKeyStoreOptions = {}) {
    if (!(kek instanceof Uint8Array)) {
      throw new TypeError('SoftwareKeyStore: "kek" must be a Uint8Array');
    }
    if (kek.length !== KEK_BYTES) {
      throw new RangeError(`SoftwareKeyStore: "kek" must be ${KEK_BYTES} bytes, got ${kek.length}`);
    }
    if (kek.every((b) => b === 0)) {
      throw new RangeError('SoftwareKeyStore: "kek" is all zeros, not a random key');
    }
    const kekId = options.kekId ?? DEFAULT_KEK_ID;
    if (typeof kekId !== "string" || !KEY_ID_PATTERN.test(kekId)) {
      throw new RangeError('SoftwareKeyStore: "kekId" must match [a-z0-9-]{1,32}');
    }
    this.kekId = kekId;
    const copy = Uint8Array.from(kek);
    this.#box = Keyring.import([{ id: kekId, key: copy }])
      .then((keyring) => new SecretBox(keyring))
      .finally(() => copy.fill(0));
    // Import of a checked 32-byte key does not fail; if it ever did, seal/unseal report it.
    this.#box.catch(() => {});
  }

  /**
   * Read the KEK from a file: 32 raw bytes or 64 hex digits (one trailing
   * newline allowed). The buffers read are zeroed.
   *
   * @param path the KEK file
   * @param options the KEK id
   * @returns the store
   * @throws KekFileError when the file is missing, not a regular file,
   *   accessible by group or others (POSIX), or not in one of the two formats
   * @example
   * ```ts
   * const store = await SoftwareKeyStore.fromFile(config.kekFile);
   * ```
   */
  static async fromFile(
    path: string,
    options: SoftwareKeyStoreOptions = {},
  ): Promise<SoftwareKeyStore> {
    if (typeof path !== "string" || path === "") {
      throw new TypeError('SoftwareKeyStore.fromFile(): "path" must be a non-empty string');
    }
    const bytes = await readKekFile(path);
    try {
      const kek = parseKek(path, bytes);
      try {
        return new SoftwareKeyStore(kek, options);
      } catch (cause) {
        throw new KekFileError(`KEK file "${path}" holds an unusable key: ${errorText(cause)}`, {
          cause,
        });
      } finally {
        kek.fill(0);
      }
    } finally {
      bytes.fill(0);
    }
  }

  /**
   * Seal key material for one key version.
   *
   * @param material the secret bytes (not modified)
   * @param context key id and version
   * @returns the envelope (see the module doc)
   * @throws TypeError / RangeError on wrong argument types or sizes
   */
  async seal(material: Uint8Array, context: SealContext): Promise<Uint8Array> {
    if (!(material instanceof Uint8Array)) {
      throw new TypeError('SoftwareKeyStore.seal(): "material" must be a Uint8Array');
    }
    if (material.length === 0) {
      throw new RangeError('SoftwareKeyStore.seal(): "material" must not be empty');
    }
    const aad = secretContext(context, "seal");
    const { envelope } = await (await this.#box).seal(material, aad);
    return envelope;
  }

  /**
   * Unseal the material of one key version.
   *
   * @param sealed the envelope from {@linkcode SoftwareKeyStore.seal}
   * @param context the key id and version it was sealed for
   * @returns the material; the caller zeroes it after use
   * @throws TypeError / RangeError on wrong argument types or sizes
   * @throws DecryptionError (from `src/crypto`) when the blob is malformed, names another KEK,
   *   or fails authentication (tampered, wrong KEK, other key id or version)
   */
  async unseal(sealed: Uint8Array, context: SealContext): Promise<Uint8Array> {
    if (!(sealed instanceof Uint8Array)) {
      throw new TypeError('SoftwareKeyStore.unseal(): "sealed" must be a Uint8Array');
    }
    const aad = secretContext(context, "unseal");
    return await (await this.#box).open(sealed, aad);
  }
}

/** `{ keyId, version }` as SecretBox coordinates; `version:keyId` is injective (no ":" in digits). */
function secretContext(context: SealContext, fn: string): SecretContext {
  if (context === null || typeof context !== "object") {
    throw new TypeError(`SoftwareKeyStore.${fn}(): "context" must be an object`);
  }
  const { keyId, version } = context;
  if (typeof keyId !== "string") {
    throw new TypeError(`SoftwareKeyStore.${fn}(): "context.keyId" must be a string`);
  }
  if (keyId.length === 0 || keyId.length > MAX_SEAL_KEY_ID_LENGTH) {
    throw new RangeError(
      `SoftwareKeyStore.${fn}(): "context.keyId" must be 1..${MAX_SEAL_KEY_ID_LENGTH} characters`,
    );
  }
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(
      `SoftwareKeyStore.${fn}(): "context.version" must be a non-negative integer`,
    );
  }
  return {
    table: AAD_TABLE,
    purpose: AAD_PURPOSE,
    tenant: AAD_TENANT,
    rowId: `${version}:${keyId}`,
  };
}

/** The file's bytes, after checking it is a small regular file only its owner can access. */
async function readKekFile(path: string): Promise<Uint8Array> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (cause) {
    if (cause instanceof Deno.errors.NotFound) {
      throw new KekFileError(`KEK file "${path}" does not exist`, { cause });
    }
    throw new KekFileError(`Cannot read KEK file "${path}": ${errorText(cause)}`, { cause });
  }
  try {
    // Stat the open handle, not the path: the checked file is the one read.
    const info = await file.stat();
    if (!info.isFile) throw new KekFileError(`KEK file "${path}" is not a regular file`);
    // `mode` is null on Windows, where POSIX bits do not apply.
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      throw new KekFileError(
        `KEK file "${path}" is accessible by group or others (mode ${mode}): run \`chmod 600 ${path}\``,
      );
    }
    if (info.size > MAX_KEK_FILE_BYTES) {
      throw new KekFileError(
        `KEK file "${path}" must hold ${KEK_BYTES} raw bytes or 64 hex digits, got ${info.size} bytes`,
      );
    }
    const buffer = new Uint8Array(MAX_KEK_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = await file.read(buffer.subarray(length));
      if (n === null) break;
      length += n;
      if (length > MAX_KEK_FILE_BYTES) {
        buffer.fill(0);
        throw new KekFileError(`KEK file "${path}" grew while being read`);
      }
    }
    const bytes = buffer.slice(0, length);
    buffer.fill(0);
    return bytes;
  } catch (cause) {
    if (cause instanceof KekFileError) throw cause;
    throw new KekFileError(`Cannot read KEK file "${path}": ${errorText(cause)}`, { cause });
  } finally {
    file.close();
  }
}

/** 32 raw bytes, or 64 hex digits; never echoes content. */
function parseKek(path: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length === KEK_BYTES) {
    // 32 hex characters are a 128-bit key written as hex, not 32 random bytes (those are all
    // hex digits with probability (22/256)^32).
    if (Array.from(bytes).every((b) => ASCII_HEX_BYTE.test(String.fromCharCode(b)))) {
      throw new KekFileError(
        `KEK file "${path}" holds 32 hex digits (128 bits): write 64 hex digits or 32 raw bytes`,
      );
    }
    return Uint8Array.from(bytes);
  }
  const text = new TextDecoder("latin1").decode(bytes);
  const match = HEX_KEK.exec(text);
  if (match === null) {
    throw new KekFileError(
      `KEK file "${path}" must hold ${KEK_BYTES} raw bytes or 64 hex digits, got ${bytes.length} bytes in neither form`,
    );
  }
  const digits = match[1]!;
  const kek = new Uint8Array(KEK_BYTES);
  for (let i = 0; i < KEK_BYTES; i++) kek[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return kek;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
