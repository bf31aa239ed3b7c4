/**
 * Signing inside the HSM. Each request runs in one database transaction:
 * idempotency slot → key and policy checks → sign → audit row → velocity →
 * stored answer. If any write fails the transaction rolls back and the
 * signature never leaves the process; a repeat of an answered request returns
 * the stored answer without signing or auditing again. Denials are audited in
 * a transaction of their own before the refusal is sent.
 *
 * @module
 */
import { base64, hex } from "@scure/base";
import { p2pkh, p2sh, p2tr, p2wpkh, type Transaction } from "@scure/btc-signer";
import { sha256 } from "@noble/hashes/sha2.js";
import type { Db, Queryable } from "../db/db.ts";
import type { AuditLog } from "../audit/audit_log.ts";
import {
  ConflictError,
  NotFoundError,
  PolicyViolationError,
  ValidationError,
} from "../errors/mod.ts";
import { networkParams } from "../bitcoin/network.ts";
import { parsePsbt } from "../bitcoin/psbt_parse.ts";
import { signMessage } from "../bitcoin/message.ts";
import { type KeyRecord, KeyRepo } from "./key_repo.ts";
import { type Caller, entry } from "./keys_service.ts";
import type { KeyStore } from "./signing/key_store.ts";
import { openKey, type SigningKey } from "./signing/key_material.ts";
import { signPsbt } from "./signing/psbt_signer.ts";
import { signDigestSchnorr } from "./signing/digest_signer.ts";
import {
  compilePolicy,
  evaluatePolicy,
  requestFacts,
  type SigningPolicy,
} from "./policy/policy.ts";
import { VelocityRepo } from "./policy/velocity_repo.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** A signed PSBT and what was signed. */
export interface SignPsbtAnswer {
  psbt: string;
  keyId: string;
  signatures: { input: number; pubkeyHex: string; scheme: "ecdsa" | "schnorr" }[];
  amountSats: string;
}

/** A BIP340 signature of a digest. */
export interface SignDigestAnswer {
  keyId: string;
  signatureHex: string;
  publicKeyHex: string;
}

/** A message signature. */
export interface SignMessageAnswer {
  keyId: string;
  address: string;
  signature: string;
}

/** Dependencies of {@linkcode SignService}. */
export interface SignServiceOptions {
  db: Db;
  audit: AuditLog;
  store: KeyStore;
}

/** Sign PSBTs, digests and messages under each key's status and policy. */
export class SignService {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #store: KeyStore;

  /** @param options database, audit log and the sealing key store */
  constructor(options: SignServiceOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#store = options.store;
  }

  /**
   * Sign every input of `psbt` that belongs to the key, if its policy allows.
   *
   * @throws PolicyViolationError 422 naming every failed rule (audited)
   */
  async signPsbt(
    caller: Caller,
    req: { keyId: string; psbt: string; idempotencyKey: string },
  ): Promise<SignPsbtAnswer> {
    return await this.#once(caller, req.idempotencyKey, req, async (tx, key) => {
      if (key.usage !== "transactions") {
        throw new ValidationError("This key signs oracle digests, not transactions", {
          status: 422,
        });
      }
      const parsed = parsePsbt(req.psbt, { network: key.network, rejectNetworkMismatch: true });
      const versions = await this.#open(tx, key);
      try {
        const owned = (i: number) => ownsOutput(parsed.tx, i, versions, key);
        const facts = requestFacts(parsed.tx, {
          network: key.network,
          isOwnOutput: owned,
          keyFingerprints: versions.map((v) => v.fingerprint),
        });
        // The fee leaves the key's control too: amount limits count it, so a
        // policy without maxFeeSats cannot be drained through the fee.
        const counted = { ...facts, amountSats: facts.amountSats + (facts.feeSats ?? 0n) };
        const compiled = key.policy === null
          ? null
          : compilePolicy(key.policy as SigningPolicy, key.network);
        const velocity = new VelocityRepo(tx);
        const spent = await velocity.spentSince(key.id, new Date(Date.now() - DAY_MS));
        const verdict = evaluatePolicy(compiled, counted, {
          network: key.network,
          spentLast24hSats: spent,
        });
        if (!verdict.allowed) throw new PolicyDenied(verdict.failures);
        const signatures: SignPsbtAnswer["signatures"] = [];
        // Each version signs its own inputs; signPsbt returns a signed copy.
        let signed = parsed.tx;
        for (const k of versions) {
          let out: ReturnType<typeof signPsbt>;
          try {
            out = signPsbt(signed, k, {
              network: key.network,
              ...(compiled?.sighashTypes === undefined
                ? {}
                : { allowedSighashTypes: [...compiled.sighashTypes] }),
            });
          } catch (err) {
            // Another version of the key may own the inputs; only "none at all" is an error.
            if (err instanceof ValidationError && err.extensions.check === "no-owned-input") {
              continue;
            }
            throw err;
          }
          signatures.push(
            ...out.signed.map((x) => ({
              input: x.input,
              pubkeyHex: x.pubkeyHex,
              scheme: x.scheme,
            })),
          );
          signed = out.tx;
        }
        if (signatures.length === 0) {
          throw new ValidationError(`No input of this PSBT belongs to key ${key.id}`, {
            status: 422,
          });
        }
        await velocity.record(key.id, verdict.amountSats, caller.requestId);
        await this.#audit.append(tx, {
          ...entry(caller, "sign.psbt", key.id),
          details: {
            inputs: signatures.length,
            amountSats: verdict.amountSats.toString(),
            policyRevision: key.policyRevision,
          },
        });
        return {
          psbt: base64.encode(signed.toPSBT(parsed.version)),
          keyId: key.id,
          signatures,
          amountSats: verdict.amountSats.toString(),
        };
      } finally {
        for (const k of versions) k.dispose();
      }
    });
  }

  /** BIP340-sign a 32-byte digest with an oracle key (at `path` for BIP32 keys). */
  async signDigest(
    caller: Caller,
    req: { keyId: string; digestHex: string; path: number[]; idempotencyKey: string },
  ): Promise<SignDigestAnswer> {
    return await this.#once(caller, req.idempotencyKey, req, async (tx, key) => {
      if (key.usage !== "oracle") {
        throw new ValidationError(
          "This key signs transactions; raw digests need a key created with usage 'oracle'",
          { status: 422 },
        );
      }
      const digest = hex.decode(req.digestHex);
      const [k] = await this.#open(tx, key, key.currentVersion);
      if (k === undefined) throw new ConflictError("The current key version cannot sign");
      try {
        const signature = signDigestSchnorr(k, req.path, digest);
        await this.#audit.append(tx, {
          ...entry(caller, "sign.digest", key.id),
          details: { digest: req.digestHex, path: req.path.join("/") },
        });
        return {
          keyId: key.id,
          signatureHex: hex.encode(signature),
          publicKeyHex: hex.encode(k.publicKeyAt(req.path).slice(1)),
        };
      } finally {
        k.dispose();
      }
    });
  }

  /** Sign a BIP-322 (or legacy) message for an address the key controls at `path`. */
  async signMessage(
    caller: Caller,
    req: {
      keyId: string;
      path: number[];
      address: string;
      message: string;
      format: "simple" | "full" | "legacy";
      idempotencyKey: string;
    },
  ): Promise<SignMessageAnswer> {
    return await this.#once(caller, req.idempotencyKey, req, async (tx, key) => {
      if (key.usage !== "transactions") {
        throw new ValidationError("Oracle keys sign digests only", { status: 422 });
      }
      const [k] = await this.#open(tx, key, key.currentVersion);
      if (k === undefined) throw new ConflictError("The current key version cannot sign");
      const priv = k.privateKeyAt(req.path);
      try {
        const signature = signMessage(priv, req.address, req.message, {
          network: key.network,
          format: req.format,
        });
        await this.#audit.append(tx, {
          ...entry(caller, "sign.message", key.id),
          details: { address: req.address, format: req.format },
        });
        return { keyId: key.id, address: req.address, signature };
      } finally {
        priv.fill(0);
        k.dispose();
      }
    });
  }

  /**
   * Run `work` once per idempotency key: a repeat with the same request gets
   * the stored answer; with a different request, a 409.
   */
  async #once<T>(
    caller: Caller,
    idempotencyKey: string,
    request: { keyId: string },
    work: (tx: Queryable, key: KeyRecord) => Promise<T>,
  ): Promise<T> {
    const requestHash = hex.encode(sha256(new TextEncoder().encode(JSON.stringify(request))));
    try {
      return await this.#db.transaction(async (tx) => {
        // Serialise requests of one key: the idempotency check and the velocity sum
        // must see every earlier signature of this key.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [request.keyId]);
        const [done] = await tx.query<{ request_hash: string; response: T }>(
          `SELECT request_hash, response FROM hsm_requests
           WHERE tenant = $1 AND owner = $2 AND idempotency_key = $3`,
          [caller.tenant, caller.owner, idempotencyKey],
        );
        if (done !== undefined) {
          if (done.request_hash !== requestHash) {
            throw new ConflictError(
              "This idempotency key was used for a different request",
              { code: "idempotency-key-reused" },
            );
          }
          return done.response;
        }
        const key = await new KeyRepo(tx).get(caller.tenant, caller.owner, request.keyId, true);
        if (key === null) throw new NotFoundError("Key not found");
        if (key.status !== "active") {
          throw new ConflictError(`Key ${key.id} is ${key.status}: it cannot sign`, {
            code: "key-not-active",
          });
        }
        const answer = await work(tx, key);
        await tx.query(
          `INSERT INTO hsm_requests (tenant, owner, idempotency_key, request_hash, response)
           VALUES ($1, $2, $3, $4, $5::jsonb)`,
          [caller.tenant, caller.owner, idempotencyKey, requestHash, JSON.stringify(answer)],
        );
        return answer;
      });
    } catch (err) {
      if (!(err instanceof PolicyDenied)) throw err;
      // The refusal is recorded before it is sent; if that fails, the caller gets an error.
      await this.#audit.record({
        ...entry(caller, "sign.psbt", request.keyId),
        outcome: "denied",
        details: { rules: err.failures.map((f) => f.rule).join(",") },
      });
      throw new PolicyViolationError(
        `Signing denied by policy: ${
          err.failures.map((f) => `${f.rule}: ${f.message}`).join("; ")
        }`,
        { extensions: { rules: err.failures } },
      );
    }
  }

  /** Unseal the key's signing versions (all active ones, or just `only`). */
  async #open(tx: Queryable, key: KeyRecord, only?: number): Promise<SigningKey[]> {
    const repo = new KeyRepo(tx);
    const opened: SigningKey[] = [];
    try {
      for (const v of key.versions) {
        if (v.status !== "active" || (only !== undefined && v.version !== only)) continue;
        const sealed = await repo.sealed(key.id, v.version);
        if (sealed === null) continue;
        const material = await this.#store.unseal(sealed, { keyId: key.id, version: v.version });
        try {
          opened.push(openKey(key.kind, material, key.network));
        } finally {
          material.fill(0);
        }
      }
    } catch (err) {
      for (const k of opened) k.dispose();
      throw err;
    }
    return opened;
  }
}

/** A policy refusal inside the transaction, turned into an audited 422 outside it. */
class PolicyDenied extends Error {
  constructor(readonly failures: readonly { rule: string; message: string }[]) {
    super("denied by policy");
  }
}

/**
 * Whether output `index` pays back to one of the key's own derivations: it
 * carries a derivation with a version's fingerprint, the key derived at that
 * path is the one listed, and the output script is a standard script of it.
 */
function ownsOutput(
  tx: Transaction,
  index: number,
  versions: readonly SigningKey[],
  key: KeyRecord,
): boolean {
  const out = tx.getOutput(index);
  const script = out.script;
  if (script === undefined) return false;
  const net = networkParams(key.network);
  const same = (a: Uint8Array) => a.length === script.length && a.every((b, i) => b === script[i]);
  for (const k of versions) {
    for (const [pub, d] of out.bip32Derivation ?? []) {
      if (d.fingerprint !== k.fingerprint) continue;
      if (!equal(k.publicKeyAt(d.path), pub)) continue;
      const w = p2wpkh(pub, net);
      if (same(w.script) || same(p2pkh(pub, net).script) || same(p2sh(w, net).script)) return true;
    }
    for (const [xonly, d] of out.tapBip32Derivation ?? []) {
      if (d.der.fingerprint !== k.fingerprint || d.hashes.length > 0) continue;
      if (!equal(k.publicKeyAt(d.der.path).slice(1), xonly)) continue;
      if (same(p2tr(xonly, undefined, net).script)) return true;
    }
  }
  return false;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
