/**
 * The `Idempotency-Key` request header
 * (https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/).
 * The draft defines it as a Structured Field String (RFC 8941 §3.3.3), e.g.
 * `Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`; many clients send
 * the bare value instead. Both are accepted and name the same key.
 *
 * @module
 */
import { ValidationError } from "../errors/mod.ts";

/** Name of the request header. */
export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";

/** Longest key accepted, in characters. */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

/** 1–255 printable ASCII characters (space to tilde). */
const KEY = /^[\x20-\x7e]{1,255}$/;

/**
 * Whether `key` is a valid key: 1–255 printable ASCII characters.
 *
 * @param key the unquoted key
 */
export function isIdempotencyKey(key: unknown): key is string {
  return typeof key === "string" && KEY.test(key);
}

/**
 * The key carried by an `Idempotency-Key` header value, quoted (sf-string) or bare.
 *
 * @param value the header value as received
 * @returns the key
 * @throws {ValidationError} 400 naming the header when the value is not a valid key
 */
export function parseIdempotencyKey(value: string): string {
  const key = value.startsWith('"') ? unquote(value) : value;
  if (key === undefined || !isIdempotencyKey(key)) {
    throw new ValidationError(
      `Invalid ${IDEMPOTENCY_KEY_HEADER} header: expected 1-${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters`,
      {
        issues: [{
          path: `header.${IDEMPOTENCY_KEY_HEADER}`,
          message: `Must be 1-${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters`,
        }],
      },
    );
  }
  return key;
}

/** RFC 8941 §4.2.5: a quoted string with `\"` and `\\` escapes; undefined if malformed. */
function unquote(value: string): string | undefined {
  let out = "";
  for (let i = 1; i < value.length; i++) {
    const ch = value[i];
    if (ch === "\\") {
      const next = value[++i];
      if (next !== '"' && next !== "\\") return undefined;
      out += next;
    } else if (ch === '"') {
      return i === value.length - 1 ? out : undefined;
    } else {
      out += ch;
    }
  }
  return undefined;
}
