/**
 * What identifies "the same request" for an idempotency key: method, path
 * (with query) and a SHA-256 of the raw body bytes.
 *
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** The request a key was first used with. */
export interface RequestFingerprint {
  /** Upper-case HTTP method. */
  method: string;
  /** Path and query string, e.g. `/v1/psbt/sign?dry=1`. */
  path: string;
  /** Lower-case hex SHA-256 of the raw body bytes (of zero bytes when there is no body). */
  bodyHash: string;
}

/**
 * Fingerprint a request.
 *
 * @param request method, path with query, raw body bytes
 */
export function requestFingerprint(
  request: { method: string; path: string; body: Uint8Array },
): RequestFingerprint {
  if (typeof request.method !== "string" || request.method.length === 0) {
    throw new TypeError(`Invalid method: expected a non-empty string, got "${request.method}"`);
  }
  if (typeof request.path !== "string" || !request.path.startsWith("/")) {
    throw new TypeError(`Invalid path: expected a string starting with "/", got "${request.path}"`);
  }
  if (!(request.body instanceof Uint8Array)) {
    throw new TypeError(`Invalid body: expected Uint8Array, got ${typeof request.body}`);
  }
  return {
    method: request.method.toUpperCase(),
    path: request.path,
    bodyHash: bytesToHex(sha256(request.body)),
  };
}
