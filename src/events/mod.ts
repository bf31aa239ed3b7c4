/**
 * Domain events: the in-process bus.
 *
 * @module
 */
export * from "./event_bus.ts";
