/**
 * Health: the readiness checks behind `/readyz` and the runner that combines them.
 *
 * @module
 */
export * from "./readiness.ts";
