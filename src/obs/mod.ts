/**
 * Observability: structured logs, tracer and meter.
 *
 * @module
 */
export * from "./logger.ts";
export * from "./telemetry.ts";
