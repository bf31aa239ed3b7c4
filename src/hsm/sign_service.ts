/**
 * The edge's signing path: decide which inputs the key may sign, refuse what
 * the holder cannot do (taproot on an ECDSA-only provider), ask the holder,
 * and release the result only after checking it: the PSBT must be unchanged
 * apart from new, valid signatures by the key on its own inputs. Anything else
 * is a 502 and the PSBT is not released.
 *
 * @module
 */
import { base64, hex } from "@scure/base";
import { p2pkh, p2sh, p2tr, p2wpkh, type Transaction } from "@scure/btc-signer";
import { UpstreamError, ValidationError } from "../errors/mod.ts";
import type { Logger } from "../obs/logger.ts";
import type { BitcoinNetwork } from "../bitcoin/network.ts";
import { type ParsedPsbt, parsePsbt } from "../bitcoin/psbt_parse.ts";
import { psbtPrevout } from "../bitcoin/signatures.ts";
import { type AddedSignature, checkReturnedPsbt } from "./returned_psbt_check.ts";
import type { HsmKey, HsmSigner } from "./signer.ts";

/** A checked, signed PSBT. */
export interface SignedPsbt {
  psbt: string;
  keyId: string;
  signatures: AddedSignature[];
  amountSats: string;
}

/**
 * Checks the edge makes before asking the key holder, from the tenant's risk
 * policy. It can only refuse (throw); it never lets through what the HSM's
 * own policy would deny, because the HSM still decides.
 */
export interface SigningRiskGate {
  /**
   * Throw a `PolicyViolationError` when the tenant's risk policy refuses `tx`.
   *
   * @param caller tenant and API key
   * @param tx the PSBT to be signed
   */
  checkSigning(caller: { tenant: string; keyId: string }, tx: Transaction): Promise<void>;
}

/** Dependencies of {@linkcode EdgeSignService}. */
export interface EdgeSignServiceOptions {
  signer: HsmSigner;
  network: BitcoinNetwork;
  logger: Logger;
  /** The tenant risk policy's gate, when risk scoring is enabled. */
  risk?: SigningRiskGate;
}

/** Sign PSBTs through the key holder and check what comes back. */
export class EdgeSignService {
  readonly #risk: SigningRiskGate | null;
  readonly #signer: HsmSigner;
  readonly #network: BitcoinNetwork;
  readonly #logger: Logger;
  readonly #keys = new Map<string, { key: HsmKey; at: number }>();

  /** @param options the key holder, network and logger */
  constructor(options: EdgeSignServiceOptions) {
    this.#signer = options.signer;
    this.#network = options.network;
    this.#logger = options.logger;
    this.#risk = options.risk ?? null;
  }

  /**
   * The key's public data, reused for {@linkcode KEY_CACHE_TTL_MS}: it only
   * decides which inputs and public keys the edge accepts signatures for, and
   * the HSM enforces status and policy on every request, so a stale view can
   * refuse a valid answer but never accept a wrong one.
   */
  async #publicKey(owner: string, keyId: string, fresh: boolean): Promise<HsmKey> {
    const id = `${owner}\n${keyId}`;
    const hit = this.#keys.get(id);
    if (!fresh && hit !== undefined && Date.now() - hit.at < KEY_CACHE_TTL_MS) return hit.key;
    const key = await this.#signer.getKey(owner, keyId);
    if (this.#keys.size >= KEY_CACHE_MAX) this.#keys.clear();
    this.#keys.set(id, { key, at: Date.now() });
    return key;
  }

  /**
   * Have `keyId` sign `psbtText`.
   *
   * @param owner the tenant acting
   * @param req key, PSBT (base64 or hex) and the caller's idempotency key
   * @throws ValidationError 422 when no input belongs to the key or the PSBT is bad
   * @throws ValidationError 422 when taproot is needed and the holder has no Schnorr
   * @throws UpstreamError 502 when the holder's answer fails the checks
   */
  async signPsbt(
    owner: string,
    req: { keyId: string; psbt: string; idempotencyKey: string; apiKeyId?: string },
  ): Promise<SignedPsbt> {
    const original = parsePsbt(req.psbt, { network: this.#network, rejectNetworkMismatch: true });
    await this.#risk?.checkSigning({ tenant: owner, keyId: req.apiKeyId ?? owner }, original.tx);
    let key = await this.#publicKey(owner, req.keyId, false);
    let expectation = expectationFor(original.tx, key);
    if (expectation.signableInputs.size === 0) {
      // The cached view may predate a rotation: ask once more before refusing.
      key = await this.#publicKey(owner, req.keyId, true);
      expectation = expectationFor(original.tx, key);
    }
    if (key.network !== this.#network) {
      throw new ValidationError(
        `Key ${key.id} is for ${key.network}; this edge serves ${this.#network}`,
        { status: 422 },
      );
    }
    if (expectation.signableInputs.size === 0) {
      throw new ValidationError(
        `No input of this PSBT carries a derivation of key ${key.id} (fingerprints ${
          key.versions.map((v) => v.fingerprint).join(", ")
        })`,
        { status: 422 },
      );
    }
    if (expectation.taproot && !this.#signer.capabilities.has("schnorr")) {
      // The request is what cannot be served by this holder: a 422, not a 501.
      throw new ValidationError(
        `The key holder (${this.#signer.kind}) cannot make taproot (Schnorr) signatures; sign this PSBT's taproot inputs with another key`,
        { status: 422, extensions: { missingCapability: "schnorr" } },
      );
    }
    const answer = await this.#signer.signPsbt(owner, {
      keyId: key.id,
      psbt: base64.encode(original.bytes),
      idempotencyKey: req.idempotencyKey,
    });
    let returned: ParsedPsbt;
    try {
      returned = parsePsbt(answer.psbt, { network: this.#network });
    } catch {
      throw new UpstreamError("The HSM returned a PSBT that does not parse");
    }
    let added: AddedSignature[];
    try {
      added = checkReturnedPsbt(original.tx, returned.tx, expectation, {
        original: original.bytes,
        returned: returned.bytes,
      });
    } catch (err) {
      // The holder misbehaved: that is an incident, not a client error.
      this.#logger.error("hsm answer failed the edge's checks; PSBT not released", {
        keyId: key.id,
        reason: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
    return {
      // Exactly what was checked: the bytes sent plus the signatures.
      psbt: base64.encode(returned.bytes),
      keyId: key.id,
      signatures: added,
      amountSats: answer.amountSats,
    };
  }
}

/** How long the edge reuses a key's public data (fingerprints, public keys). */
export const KEY_CACHE_TTL_MS = 30_000;
const KEY_CACHE_MAX = 1_000;

/**
 * Which inputs the key may sign and with which public keys: the derivation
 * entries carrying one of the key's fingerprints. The holder derives and
 * checks them; the edge only accepts signatures by exactly those keys.
 */
export function expectationFor(tx: Transaction, key: HsmKey) {
  const fingerprints = new Set(
    key.versions.filter((v) => v.status === "active").map((v) => parseInt(v.fingerprint, 16)),
  );
  const singles = key.kind === "single"
    ? key.versions.filter((v) => v.status === "active").map((v) => v.publicKeyHex)
    : [];
  const signableInputs = new Set<number>();
  const allowedPubkeys = new Map<number, Uint8Array[]>();
  let taproot = false;
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    const keys: Uint8Array[] = [];
    for (const [pub, d] of input.bip32Derivation ?? []) {
      if (fingerprints.has(d.fingerprint) || singles.includes(hex.encode(pub))) keys.push(pub);
    }
    for (const [xonly, d] of input.tapBip32Derivation ?? []) {
      if (d.hashes.length > 0) continue;
      if (
        fingerprints.has(d.der.fingerprint) || singles.some((s) => s.slice(2) === hex.encode(xonly))
      ) {
        keys.push(xonly);
        taproot = true;
      }
    }
    // A single key also signs inputs that pay it directly, derivation listed or not.
    const prev = singles.length > 0 ? psbtPrevout(input) : null;
    if (prev !== null) {
      for (const pubHex of singles) {
        const pub = hex.decode(pubHex);
        const paid = payingScripts(pub).find((p) => sameBytes(p.script, prev.script));
        if (paid === undefined) continue;
        keys.push(paid.taproot ? pub.slice(1) : pub);
        taproot ||= paid.taproot;
      }
    }
    if (keys.length > 0) {
      signableInputs.add(i);
      allowedPubkeys.set(i, keys);
    }
  }
  return { signableInputs, allowedPubkeys, taproot };
}

/** The standard scripts paying a public key, as a single-key HSM signs them. */
function payingScripts(pub: Uint8Array): { script: Uint8Array; taproot: boolean }[] {
  const wpkh = p2wpkh(pub);
  return [
    { script: wpkh.script, taproot: false },
    { script: p2pkh(pub).script, taproot: false },
    { script: p2sh(wpkh).script, taproot: false },
    { script: p2tr(pub.slice(1)).script, taproot: true },
  ];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
