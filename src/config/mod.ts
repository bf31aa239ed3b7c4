/**
 * Configuration: one zod schema, a pure loader and the redaction every logger uses.
 *
 * @module
 */
export * from "./schema.ts";
export * from "./load.ts";
export * from "./redact.ts";
export * from "./upstreams.ts";
export * from "./permissions.ts";
