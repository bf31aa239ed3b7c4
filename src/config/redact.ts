/**
 * Redaction used by every logger: values under secret-looking keys, bearer
 * tokens, API keys and URL passwords are replaced before anything is written.
 *
 * @module
 */

const SECRET_KEY =
  /(pass(word)?|secret|token|authorization|api[-_]?key|macaroon|rune|private|seed|xprv|cookie|credential|signature|^key$|_key$|idempotency)/i;
const API_KEY_IN_TEXT = /\banya_(live|test)_[A-Za-z0-9]+_[A-Za-z0-9_-]+/g;
const BEARER_IN_TEXT = /\b(Bearer)\s+[A-Za-z0-9._~+/=-]+/gi;
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]*@/gi;

/** The marker that replaces a redacted value. */
export const REDACTED = "[REDACTED]";

/** Redact secrets inside free text (URLs with passwords, bearer tokens, API keys). */
export function redactText(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}@`).replace(BEARER_IN_TEXT, `$1 ${REDACTED}`)
    .replace(API_KEY_IN_TEXT, REDACTED);
}

/**
 * Return a deep copy of `value` that is safe to log.
 *
 * @param value anything
 * @returns a copy with secrets replaced by `[REDACTED]`
 */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[…]";
  if (typeof value === "string") return redactText(value);
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) {
    return { name: value.name, message: redactText(value.message) };
  }
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v !== undefined && v !== null
        ? REDACTED
        : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}
