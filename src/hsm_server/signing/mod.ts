/**
 * Signing inside the HSM process: key material (BIP32 roots and single
 * keys), the PSBT signer, 32-byte digest signing (BIP340 / ECDSA) and the
 * key store that seals material at rest. Pure code: no HTTP, no database.
 *
 * @module
 */
export * from "../../bitcoin/derivation_path.ts";
export * from "./key_material.ts";
export * from "./psbt_signer.ts";
export * from "./digest_signer.ts";
export * from "./key_store.ts";
export * from "./sealed_key_store.ts";
// `SignPsbtResult` extends it; callers need no second import to name it.
export type { PsbtResult } from "../../bitcoin/psbt_ops.ts";
