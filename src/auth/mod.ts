/**
 * Authentication: API key format and hashing, the
 * key management service and the authenticator the HTTP layer uses.
 *
 * @module
 */
export * from "./principal.ts";
export * from "./authenticator.ts";
export * from "./api_key.ts";
export * from "./api_key_service.ts";
export * from "./api_key_authenticator.ts";
