/**
 * Authenticated encryption of small secrets with AES-256-GCM (NIST SP 800-38D)
 * through WebCrypto, in a self-describing envelope:
 *
 * ```text
 * byte 0          version (1)
 * byte 1          key id length L (1..32)
 * bytes 2..2+L    key id (ASCII, [a-z0-9-])
 * next 12 bytes   nonce (96 bits, random per encryption)
 * rest            ciphertext ‖ 128-bit tag
 * ```
 *
 * The associated data is the envelope header (version, key id) followed by a
 * canonical JSON array of the row's coordinates (table, purpose, tenant, row
 * id). So a ciphertext copied into another row, another tenant or another
 * purpose fails authentication, as does any change to the header.
 *
 * Random 96-bit nonces keep the collision chance negligible while a key
 * encrypts well under 2^32 messages (SP 800-38D §8.3); rotation with a fresh
 * key keeps every key far below that.
 *
 * @module
 */
import { KEY_ID_PATTERN, type Keyring } from "./keyring.ts";

/** Envelope format version written by {@linkcode SecretBox.seal}. */
export const ENVELOPE_VERSION = 1;
/** AES-GCM nonce length in bytes (96 bits, the size GCM is designed for). */
export const NONCE_BYTES = 12;
/** AES-GCM tag length in bytes (128 bits, the full tag). */
export const TAG_BYTES = 16;
/** Largest plaintext accepted: these are credentials, not documents. */
export const MAX_PLAINTEXT_BYTES = 64 * 1024;
/** Longest accepted context field (table, purpose, tenant, row id). */
export const MAX_CONTEXT_FIELD_LENGTH = 256;

// Domain separation: associated data of this scheme can never equal another's.
const AAD_LABEL = "anya-edge/secret-box/v1";
const encoder = new TextEncoder();
const decoder = new TextDecoder("ascii");

/** Where a secret lives; bound into the associated data. */
export interface SecretContext {
  /** Table (or other store) holding the envelope, e.g. `encrypted_secrets`. */
  table: string;
  /** What the secret is for, e.g. `lnd.macaroon`. */
  purpose: string;
  /** Owner of the secret. */
  tenant: string;
  /** Id of the row holding the envelope. */
  rowId: string;
}

/** Output of {@linkcode SecretBox.seal}. */
export interface SealedSecret {
  /** Id of the key used; also inside the envelope. */
  keyId: string;
  /** Version, key id, nonce, ciphertext and tag, ready to store. */
  envelope: Uint8Array;
}

/** Why decryption failed. */
export type DecryptionFailure =
  | "malformed"
  | "unsupported-version"
  | "unknown-key"
  | "authentication-failed";

/**
 * An envelope cannot be decrypted: it is malformed, names a key the keyring
 * lacks, or fails authentication (tampered, wrong key, or moved to another
 * row). The message names the key id at most, never plaintext or key bytes.
 */
export class DecryptionError extends Error {
  /** Machine-readable reason. */
  readonly reason: DecryptionFailure;
  /** Key id read from the envelope, when it could be read. */
  readonly keyId: string | undefined;

  /**
   * Describe a decryption failure.
   *
   * @param reason why it failed
   * @param detail safe explanation
   * @param options key id and original error
   */
  constructor(
    reason: DecryptionFailure,
    detail: string,
    options: { keyId?: string | undefined; cause?: unknown } = {},
  ) {
    super(
      `Cannot decrypt secret: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "DecryptionError";
    this.reason = reason;
    this.keyId = options.keyId;
  }
}

/** Parsed envelope parts (views into the input). */
interface Envelope {
  header: Uint8Array<ArrayBuffer>;
  keyId: string;
  nonce: Uint8Array<ArrayBuffer>;
  sealed: Uint8Array<ArrayBuffer>;
}

/**
 * Read the key id from an envelope without decrypting it.
 *
 * @param envelope bytes produced by {@linkcode SecretBox.seal}
 * @throws TypeError when `envelope` is not a Uint8Array
 * @throws DecryptionError when the envelope is malformed
 */
export function envelopeKeyId(envelope: Uint8Array): string {
  assertBytes(envelope, "envelope", "envelopeKeyId");
  return parseEnvelope(envelope).keyId;
}

/** Encrypts under the keyring's newest key; decrypts under whichever key the envelope names. */
export class SecretBox {
  readonly #keyring: Keyring;

  /**
   * Wrap a keyring.
   *
   * @param keyring the data keys
   */
  constructor(keyring: Keyring) {
    this.#keyring = keyring;
  }

  /** Id of the key {@linkcode SecretBox.seal} uses. */
  get newestKeyId(): string {
    return this.#keyring.newestKeyId;
  }

  /**
   * Encrypt `plaintext` for the row `context` describes.
   *
   * @param plaintext secret bytes (at most {@linkcode MAX_PLAINTEXT_BYTES})
   * @param context where the envelope will be stored
   * @returns key id and envelope
   * @throws TypeError / RangeError on wrong input types or sizes
   * @example
   * ```ts
   * const { keyId, envelope } = await box.seal(bytes, {
   *   table: "encrypted_secrets", purpose: "lnd.macaroon", tenant: "t1", rowId: "sec_1",
   * });
   * ```
   */
  async seal(plaintext: Uint8Array, context: SecretContext): Promise<SealedSecret> {
    assertBytes(plaintext, "plaintext", "SecretBox.seal");
    if (plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new RangeError(
        `SecretBox.seal(): "plaintext" must be at most ${MAX_PLAINTEXT_BYTES} bytes, got ${plaintext.length}`,
      );
    }
    assertContext(context, "SecretBox.seal");
    const keyId = this.#keyring.newestKeyId;
    const key = this.#keyring.getKey(keyId);
    if (key === undefined) throw new Error(`Keyring lost its newest key "${keyId}"`);
    const header = encodeHeader(keyId);
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        {
          name: "AES-GCM",
          iv: nonce,
          additionalData: associatedData(header, context),
          tagLength: TAG_BYTES * 8,
        },
        key,
        // Copy: a SharedArrayBuffer-backed view is not accepted, and the caller may mutate theirs.
        new Uint8Array(plaintext),
      ),
    );
    const envelope = new Uint8Array(header.length + NONCE_BYTES + sealed.length);
    envelope.set(header, 0);
    envelope.set(nonce, header.length);
    envelope.set(sealed, header.length + NONCE_BYTES);
    return { keyId, envelope };
  }

  /**
   * Decrypt an envelope stored in the row `context` describes.
   *
   * @param envelope bytes from {@linkcode SecretBox.seal}
   * @param context where the envelope is stored; must equal the one used to seal
   * @returns the plaintext
   * @throws TypeError / RangeError on wrong input types or sizes
   * @throws DecryptionError when the envelope is malformed, its key is unknown or it fails authentication
   */
  async open(envelope: Uint8Array, context: SecretContext): Promise<Uint8Array> {
    assertBytes(envelope, "envelope", "SecretBox.open");
    assertContext(context, "SecretBox.open");
    const parsed = parseEnvelope(envelope);
    const key = this.#keyring.getKey(parsed.keyId);
    if (key === undefined) {
      throw new DecryptionError(
        "unknown-key",
        `key "${parsed.keyId}" is not in the data key file`,
        { keyId: parsed.keyId },
      );
    }
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          {
            name: "AES-GCM",
            iv: parsed.nonce,
            additionalData: associatedData(parsed.header, context),
            tagLength: TAG_BYTES * 8,
          },
          key,
          parsed.sealed,
        ),
      );
    } catch (cause) {
      // WebCrypto reports every authentication failure as one OperationError.
      throw new DecryptionError(
        "authentication-failed",
        `authentication failed under key "${parsed.keyId}" (tampered data, wrong key or wrong row)`,
        { keyId: parsed.keyId, cause },
      );
    }
  }
}

function encodeHeader(keyId: string): Uint8Array<ArrayBuffer> {
  const id = encoder.encode(keyId);
  const header = new Uint8Array(2 + id.length);
  header[0] = ENVELOPE_VERSION;
  header[1] = id.length;
  header.set(id, 2);
  return header;
}

function parseEnvelope(envelope: Uint8Array): Envelope {
  const malformed = (detail: string): never => {
    throw new DecryptionError("malformed", `malformed envelope: ${detail}`);
  };
  if (envelope.length < 2) malformed("too short");
  const version = envelope[0];
  if (version !== ENVELOPE_VERSION) {
    throw new DecryptionError("unsupported-version", `unsupported envelope version ${version}`);
  }
  const idLength = envelope[1] ?? 0;
  if (idLength < 1 || idLength > 32) malformed("bad key id length");
  const headerLength = 2 + idLength;
  if (envelope.length < headerLength + NONCE_BYTES + TAG_BYTES) malformed("too short");
  const keyId = decoder.decode(envelope.subarray(2, headerLength));
  if (!KEY_ID_PATTERN.test(keyId)) malformed("bad key id");
  return {
    header: envelope.slice(0, headerLength),
    keyId,
    nonce: envelope.slice(headerLength, headerLength + NONCE_BYTES),
    sealed: envelope.slice(headerLength + NONCE_BYTES),
  };
}

/** header ‖ UTF-8 of the canonical JSON array [label, table, purpose, tenant, rowId]. */
function associatedData(header: Uint8Array, context: SecretContext): Uint8Array<ArrayBuffer> {
  // JSON string escaping makes the encoding injective: no field can spill into the next.
  const canonical = encoder.encode(
    JSON.stringify([AAD_LABEL, context.table, context.purpose, context.tenant, context.rowId]),
  );
  const aad = new Uint8Array(header.length + canonical.length);
  aad.set(header, 0);
  aad.set(canonical, header.length);
  return aad;
}

function assertBytes(value: unknown, name: string, fn: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${fn}(): "${name}" must be a Uint8Array, got ${typeOf(value)}`);
  }
}

function assertContext(context: SecretContext, fn: string): void {
  if (context === null || typeof context !== "object") {
    throw new TypeError(`${fn}(): "context" must be an object, got ${typeOf(context)}`);
  }
  for (const field of ["table", "purpose", "tenant", "rowId"] as const) {
    const value: unknown = context[field];
    if (typeof value !== "string") {
      throw new TypeError(`${fn}(): "context.${field}" must be a string, got ${typeOf(value)}`);
    }
    if (value.length === 0 || value.length > MAX_CONTEXT_FIELD_LENGTH) {
      throw new RangeError(
        `${fn}(): "context.${field}" must be 1..${MAX_CONTEXT_FIELD_LENGTH} characters, got ${value.length}`,
      );
    }
  }
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof ArrayBuffer) return "ArrayBuffer";
  return typeof value;
}
