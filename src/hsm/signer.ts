/**
 * The `HsmSigner` port: everything the edge asks of a key holder. Keys never
 * live in the edge; an adapter talks to the holder (the remote HSM over mTLS
 * now, a PKCS#11 or cloud-KMS backed one later) and declares what it can do.
 *
 * @module
 */
import type { BitcoinNetwork } from "../bitcoin/network.ts";

/**
 * What a signer can do. A provider that only does ECDSA (AWS KMS
 * `ECC_SECG_P256K1`, YubiHSM2) declares no `schnorr`, and taproot inputs are
 * then refused with a 422 before any call.
 */
export type HsmCapability = "ecdsa" | "schnorr" | "message" | "digest";

/** Lifecycle of a key or one of its versions. */
export type HsmKeyStatus = "active" | "signing-disabled" | "destroyed";

/** One version of a key. */
export interface HsmKeyVersion {
  version: number;
  status: HsmKeyStatus;
  /** BIP32 master fingerprint, 8 hex digits. */
  fingerprint: string;
  publicKeyHex: string;
  /** Master xpub/tpub; null for single keys. */
  xpub: string | null;
  createdAt: string;
}

/** A key as the holder describes it: public data only. */
export interface HsmKey {
  id: string;
  label: string;
  kind: "bip32" | "single";
  usage: "transactions" | "oracle";
  network: BitcoinNetwork;
  status: HsmKeyStatus;
  currentVersion: number;
  /** The signing policy the holder enforces, as stored; null = nothing may be signed. */
  policy: unknown | null;
  policyRevision: number;
  createdAt: string;
  versions: HsmKeyVersion[];
}

/** A signed PSBT as the holder returned it (not yet checked by the edge). */
export interface HsmSignedPsbt {
  psbt: string;
  signatures: { input: number; pubkeyHex: string; scheme: "ecdsa" | "schnorr" }[];
  amountSats: string;
}

/** The key holder. `owner` is the edge tenant acting; keys are scoped to it. */
export interface HsmSigner {
  /** Adapter name, for logs and `/readyz`. */
  readonly kind: string;
  /** What the holder can sign. */
  readonly capabilities: ReadonlySet<HsmCapability>;

  listKeys(owner: string): Promise<HsmKey[]>;
  getKey(owner: string, keyId: string): Promise<HsmKey>;
  createKey(
    owner: string,
    spec: {
      label: string;
      kind: "bip32" | "single";
      usage: "transactions" | "oracle";
      network: BitcoinNetwork;
    },
  ): Promise<HsmKey>;
  rotateKey(owner: string, keyId: string): Promise<HsmKey>;
  setPolicy(owner: string, keyId: string, policy: unknown): Promise<HsmKey>;
  setKeyStatus(
    owner: string,
    keyId: string,
    change: { status: HsmKeyStatus; version?: number },
  ): Promise<HsmKey>;

  /**
   * Sign the inputs of `psbt` that belong to the key. Idempotent by
   * `idempotencyKey`: a repeat returns the first answer and signs nothing.
   */
  signPsbt(
    owner: string,
    req: { keyId: string; psbt: string; idempotencyKey: string },
  ): Promise<HsmSignedPsbt>;

  /** Sign a message (BIP-322 simple/full, or legacy) for an address of the key. */
  signMessage(
    owner: string,
    req: {
      keyId: string;
      path: number[];
      address: string;
      message: string;
      format: "simple" | "full" | "legacy";
      idempotencyKey: string;
    },
  ): Promise<{ signature: string; address: string }>;

  /** BIP340-sign a 32-byte digest with an oracle key. */
  signDigest(
    owner: string,
    req: { keyId: string; digestHex: string; path: number[]; idempotencyKey: string },
  ): Promise<{ signatureHex: string; publicKeyHex: string }>;
}
