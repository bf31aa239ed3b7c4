/**
 * The authentication contract the HTTP layer depends on.
 *
 * @module
 */
import type { Principal } from "./principal.ts";

/** Turns a presented API key into a {@linkcode Principal}. */
export interface Authenticator {
  /**
   * Verify a bearer secret.
   *
   * @param secret the token after `Bearer `
   * @returns the caller
   * @throws UnauthorizedError when unknown, malformed, expired or revoked
   */
  authenticate(secret: string): Promise<Principal>;
}
