import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { EdgeSignService } from "../../src/hsm/sign_service.ts";
import type { HsmCapability, HsmKey, HsmSigner } from "../../src/hsm/signer.ts";
import { ValidationError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { hsmKeyView, keyPsbt } from "../_helpers/hsm_psbt.ts";

/** A key holder that can only do ECDSA, like AWS KMS ECC_SECG_P256K1; it must never be asked. */
class EcdsaOnlyHolder implements HsmSigner {
  readonly kind = "ecdsa-only-kms";
  readonly capabilities: ReadonlySet<HsmCapability> = new Set(["ecdsa"]);
  calls = 0;
  keyReads = 0;
  constructor(readonly key: HsmKey) {}
  getKey() {
    this.keyReads++;
    return Promise.resolve(this.key);
  }
  signPsbt(): never {
    this.calls++;
    throw new Error("must not be called");
  }
  listKeys = () => Promise.resolve([this.key]);
  createKey = () => Promise.resolve(this.key);
  rotateKey = () => Promise.resolve(this.key);
  setPolicy = () => Promise.resolve(this.key);
  setKeyStatus = () => Promise.resolve(this.key);
  signMessage = () => Promise.reject(new Error("unused"));
  signDigest = () => Promise.reject(new Error("unused"));
}

const root = HDKey.fromMasterSeed(new Uint8Array(32).fill(3));
const KEY: HsmKey = hsmKeyView(root, "hk_" + "cd".repeat(12), "kms");

Deno.test("taproot on an ECDSA-only key holder is a clear 422 and nothing is sent", async () => {
  const holder = new EcdsaOnlyHolder(KEY);
  const service = new EdgeSignService({
    signer: holder,
    network: "mainnet",
    logger: createLogger({ sink: () => {} }),
  });
  const { psbt } = keyPsbt(root.publicExtendedKey, ["p2wpkh", "p2tr"]);
  await assert.rejects(
    () => service.signPsbt("acme", { keyId: KEY.id, psbt, idempotencyKey: "kms-000001" }),
    (e: unknown) =>
      e instanceof ValidationError && e.status === 422 && /Schnorr/.test(e.message) &&
      e.extensions.missingCapability === "schnorr",
  );
  await assert.rejects(
    () => service.signPsbt("acme", { keyId: KEY.id, psbt, idempotencyKey: "kms-000003" }),
    ValidationError,
  );
  assert.equal(holder.calls, 0);
  assert.equal(holder.keyReads, 1, "the key's public data is reused, not fetched per request");
});

Deno.test("a PSBT with no input of the key is a 422 before the holder is asked", async () => {
  const holder = new EcdsaOnlyHolder(KEY);
  const service = new EdgeSignService({
    signer: holder,
    network: "mainnet",
    logger: createLogger({ sink: () => {} }),
  });
  const other = HDKey.fromMasterSeed(new Uint8Array(32).fill(4));
  const { psbt } = keyPsbt(other.publicExtendedKey, ["p2wpkh"]);
  await assert.rejects(
    () => service.signPsbt("acme", { keyId: KEY.id, psbt, idempotencyKey: "kms-000002" }),
    /No input of this PSBT carries a derivation of key/,
  );
  assert.equal(holder.calls, 0);
  assert.equal(holder.keyReads, 2, "no input of the cached key: fetched again before refusing");
});
