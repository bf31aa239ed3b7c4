/**
 * The error hierarchy shared by every layer.
 *
 * @module
 */
export * from "./app_error.ts";
