/**
 * Small helpers with no domain knowledge, shared by every layer.
 *
 * @module
 */
export * from "./deadline.ts";
export * from "./describe_type.ts";
