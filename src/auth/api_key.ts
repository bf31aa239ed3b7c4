/**
 * API key format, generation, hashing and comparison. Pure: no I/O.
 *
 * A key reads `anya_<env>_<keyId>_<secret>`:
 *
 * - `env` is `live` or `test`, so a leaked key says where it belongs and secret
 *   scanners (and our own log redactor, `src/config/redact.ts`) can spot it;
 * - `keyId` is 16 lower-case hex characters: public, the primary key of the
 *   `api_keys` row, used to find the row in one indexed lookup;
 * - `secret` is 32 random bytes (256 bits) from the platform CSPRNG
 *   (`crypto.getRandomValues`, Web Crypto §10.1.1), base64url without padding
 *   (RFC 4648 §5): always 43 characters.
 *
 * Only SHA-256 (FIPS 180-4) of the whole key is stored. A slow password hash
 * (scrypt, Argon2) exists to make guessing low-entropy passwords expensive; a
 * 256-bit random secret cannot be guessed, so one fast hash is enough and keeps
 * authentication cheap. Hashing the whole key rather than the secret alone
 * binds the hash to its key id and environment.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { base64urlnopad } from "@scure/base";

/** Environments a key can be issued for; part of the key text. */
export const API_KEY_ENVS = ["live", "test"] as const;

/** The environment label inside a key. */
export type ApiKeyEnv = typeof API_KEY_ENVS[number];

/** Bytes of randomness in a secret (256 bits). */
export const SECRET_BYTES = 32;
/** Length of the base64url text of a secret: ceil(32 * 8 / 6). */
export const SECRET_LENGTH = 43;
/** Bytes of randomness in a key id (64 bits: collisions are negligible, and the id is public). */
const KEY_ID_BYTES = 8;

/** A key id: lower-case hex, no underscores (the separator of the key format). */
export const KEY_ID_PATTERN: RegExp = /^[0-9a-f]{16}$/;

// Anchored, bounded pattern of a whole key. The secret class excludes nothing
// base64url allows; canonical encoding is checked by decoding.
const API_KEY_PATTERN = /^anya_(live|test)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** Longest possible key; anything longer is rejected before matching. */
export const API_KEY_MAX_LENGTH: number = "anya_live__".length + 16 + SECRET_LENGTH;

/** The parts of a well-formed key. */
export interface ParsedApiKey {
  /** `live` or `test`. */
  env: ApiKeyEnv;
  /** Public id: 16 lower-case hex characters. */
  keyId: string;
  /** The base64url secret text. */
  secret: string;
}

/** A freshly generated key: its parts and its full text. */
export interface GeneratedApiKey extends ParsedApiKey {
  /** The full key, shown to its owner once and never stored. */
  token: string;
}

/** Source of random bytes; tests pass a deterministic one. */
export type RandomSource = (bytes: Uint8Array) => Uint8Array;

function defaultRandom(bytes: Uint8Array): Uint8Array {
  return crypto.getRandomValues(bytes);
}

function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`${name}: expected string, got ${describe(value)}`);
  }
}

function assertBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name}: expected Uint8Array, got ${describe(value)}`);
  }
}

function assertEnv(value: unknown): asserts value is ApiKeyEnv {
  assertString(value, "env");
  if (!(API_KEY_ENVS as readonly string[]).includes(value)) {
    throw new RangeError(`env: expected "live" or "test", got "${value}"`);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  return Array.isArray(value) ? "array" : typeof value;
}

function randomBytes(random: RandomSource, length: number): Uint8Array {
  const out = random(new Uint8Array(length));
  if (!(out instanceof Uint8Array) || out.length !== length) {
    throw new TypeError(`random: expected ${length} bytes from the random source`);
  }
  return out;
}

/**
 * Generate a new key id: 64 random bits as 16 hex characters.
 *
 * @param random byte source; defaults to the CSPRNG
 */
export function generateKeyId(random: RandomSource = defaultRandom): string {
  const bytes = randomBytes(random, KEY_ID_BYTES);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Generate a new secret: 256 random bits as 43 base64url characters.
 *
 * @param random byte source; defaults to the CSPRNG
 */
export function generateSecret(random: RandomSource = defaultRandom): string {
  return base64urlnopad.encode(randomBytes(random, SECRET_BYTES));
}

/**
 * Generate a complete new key (new id and secret).
 *
 * @param env `live` (default) or `test`
 * @param random byte source; defaults to the CSPRNG
 * @returns the parts and the full key text
 * @example
 * ```ts
 * const { keyId, token } = generateApiKey("live");
 * ```
 */
export function generateApiKey(
  env: ApiKeyEnv = "live",
  random: RandomSource = defaultRandom,
): GeneratedApiKey {
  assertEnv(env);
  const parts = { env, keyId: generateKeyId(random), secret: generateSecret(random) };
  return { ...parts, token: formatApiKey(parts) };
}

/**
 * Join parts into the key text.
 *
 * @param parts env, key id and secret
 * @throws TypeError on wrong types, RangeError when a part is malformed
 */
export function formatApiKey(parts: ParsedApiKey): string {
  if (parts === null || typeof parts !== "object") {
    throw new TypeError(`parts: expected object, got ${describe(parts)}`);
  }
  assertEnv(parts.env);
  assertString(parts.keyId, "keyId");
  assertString(parts.secret, "secret");
  if (!KEY_ID_PATTERN.test(parts.keyId)) {
    throw new RangeError("keyId: expected 16 lower-case hex characters");
  }
  if (!isCanonicalSecret(parts.secret)) {
    throw new RangeError(`secret: expected ${SECRET_LENGTH} base64url characters (32 bytes)`);
  }
  return `anya_${parts.env}_${parts.keyId}_${parts.secret}`;
}

/**
 * Split presented key text into its parts. Untrusted input: a malformed key is
 * an expected outcome, so it returns `null` rather than throwing.
 *
 * @param token the text after `Bearer `
 * @returns the parts, or `null` when the text is not a well-formed key
 * @throws TypeError when `token` is not a string
 */
export function parseApiKey(token: string): ParsedApiKey | null {
  assertString(token, "token");
  if (token.length > API_KEY_MAX_LENGTH) return null;
  const m = API_KEY_PATTERN.exec(token);
  if (m === null) return null;
  const [, env, keyId, secret] = m;
  if (env === undefined || keyId === undefined || secret === undefined) return null;
  // Exactly one text per secret: reject encodings with non-zero padding bits,
  // so the hash of a key cannot be matched by a second spelling of it.
  if (!isCanonicalSecret(secret)) return null;
  return { env: env as ApiKeyEnv, keyId, secret };
}

function isCanonicalSecret(secret: string): boolean {
  if (secret.length !== SECRET_LENGTH || !/^[A-Za-z0-9_-]+$/.test(secret)) return false;
  try {
    return base64urlnopad.decode(secret).length === SECRET_BYTES;
  } catch {
    return false;
  }
}

/**
 * SHA-256 of the full key text, the only form in which a key is stored.
 *
 * @param parts a parsed or generated key
 * @returns 32-byte digest
 * @throws TypeError on wrong types, RangeError when a part is malformed
 */
export function hashApiKey(parts: ParsedApiKey): Uint8Array {
  return sha256(new TextEncoder().encode(formatApiKey(parts)));
}

/**
 * Compare two byte strings in time that depends only on their length, so a
 * caller cannot learn from response timing how many leading bytes of a stored
 * hash it guessed right. Lengths are public (digests are always 32 bytes).
 *
 * @param a first value
 * @param b second value
 * @returns whether they are equal
 * @throws TypeError when either is not a Uint8Array
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  assertBytes(a, "a");
  assertBytes(b, "b");
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}
