/**
 * Idempotency keys (draft-ietf-httpapi-idempotency-key-header): header
 * parsing, request fingerprints and the database-backed record store used by
 * every money path.
 *
 * @module
 */
export * from "./idempotency_key.ts";
export * from "./fingerprint.ts";
export * from "./idempotency_store.ts";
