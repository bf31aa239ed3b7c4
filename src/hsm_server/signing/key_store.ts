/**
 * The HSM's boundary around private key material at rest. The key service
 * stores what {@linkcode KeyStore.seal} returns (a row per key version) and
 * hands it back to {@linkcode KeyStore.unseal} when it needs to sign.
 *
 * Today's implementation is `SoftwareKeyStore` (AES-256-GCM under a KEK file,
 * `sealed_key_store.ts`); a PKCS#11 store can implement the same interface by
 * returning an opaque handle (or a wrapped key) from `seal`.
 *
 * @module
 */

/** The key version a sealed blob belongs to; bound into it so blobs cannot be swapped. */
export interface SealContext {
  /** Id of the key (stable across versions). */
  keyId: string;
  /** Version of the key (a new one per rotation). */
  version: number;
}

/** Seals and unseals private key material, one blob per key version. */
export interface KeyStore {
  /** Implementation name recorded with each blob, e.g. `software`. */
  readonly kind: string;
  /**
   * Protect `material` for storage.
   *
   * @param material the secret bytes; not modified, the caller zeroes it afterwards
   * @param context key id and version the blob belongs to
   * @returns bytes safe to store in the database
   */
  seal(material: Uint8Array, context: SealContext): Promise<Uint8Array>;
  /**
   * Recover material sealed for exactly this `context`.
   *
   * @param sealed bytes from {@linkcode KeyStore.seal}
   * @param context the key id and version used to seal
   * @returns the material; the caller zeroes it after use
   * @throws when the blob was tampered with, sealed under another key-encryption
   *   key, or sealed for another key id or version
   */
  unseal(sealed: Uint8Array, context: SealContext): Promise<Uint8Array>;
}
