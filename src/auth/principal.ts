/**
 * Who is calling: the identity the auth layer derives from an API key.
 *
 * @module
 */

/** Every scope a key can hold. Routes name the one they need. */
export const SCOPES = [
  "read",
  "psbt",
  "sign",
  "lightning:read",
  "lightning:write",
  "rgb",
  "dlc",
  "ml",
  "admin",
] as const;

/** One access scope. */
export type Scope = typeof SCOPES[number];

/** An authenticated caller. */
export interface Principal {
  /** Public id of the API key (never its secret). */
  keyId: string;
  /** Every owned row carries this; other tenants' objects answer 404. */
  tenant: string;
  /** Scopes granted to the key; each protected route demands a specific one. */
  scopes: ReadonlySet<Scope>;
}

/** Whether `value` names a scope. */
export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
