/**
 * Outbound networking: the one HTTP client (with circuit breaker, retries and
 * line streams), its pinned-certificate `node:https` transport,
 * the reconnecting WebSocket client and their readiness check.
 *
 * @module
 */
export * from "./types.ts";
export * from "./http_client.ts";
export * from "./circuit_breaker.ts";
export * from "./retry.ts";
export * from "./readiness.ts";
export * from "./ws_client.ts";
export * from "./pinned_tls_transport.ts";
