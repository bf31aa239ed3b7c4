/**
 * Encryption at rest for secret columns: data keys (file format, loading,
 * first-start generation, rotation), AES-256-GCM envelopes bound to their row,
 * the `encrypted_secrets` repository and the re-encryption task.
 *
 * @module
 */
export * from "./keyring.ts";
export * from "./secret_box.ts";
export * from "./data_key_file.ts";
export * from "./encrypted_secret_repo.ts";
export * from "./reencrypt.ts";
