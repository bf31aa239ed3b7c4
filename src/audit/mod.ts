/**
 * The hash-chained audit trail.
 *
 * @module
 */
export * from "./audit_log.ts";
