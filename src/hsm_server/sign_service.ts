/**
 * Signing inside the HSM. PSBT requests for one key are group-committed: a
 * batch runs in one database transaction (the key's lock → stored answers →
 * key status → policy with the rolling spend → sign → velocity, audit and
 * answer rows), and its answers leave only after the commit. If any write
 * fails the transaction rolls back and no signature of the batch leaves the
 * process; a repeat of an answered request returns the stored answer without
 * signing or auditing again. Policy denials are audited in the same batch.
 * Digest and message signatures run one request per transaction.
 *
 * @module
 */
import { base64, hex } from "@scure/base";
import { p2pkh, p2sh, p2tr, p2wpkh, type Transaction } from "@scure/btc-signer";
import type { Db, Queryable } from "../db/db.ts";
import type { AuditEntry, AuditLog } from "../audit/audit_log.ts";
import {
  ConflictError,
  NotFoundError,
  PolicyViolationError,
  ValidationError,
} from "../errors/mod.ts";
import { networkParams } from "../bitcoin/network.ts";
import { parsePsbt } from "../bitcoin/psbt_parse.ts";
import { insertInputRecords } from "../bitcoin/psbt_maps.ts";
import { signMessage } from "../bitcoin/message.ts";
import { type KeyRecord, KeyRepo } from "./key_repo.ts";
import { type Caller, entry } from "./keys_service.ts";
import type { KeyStore } from "./signing/key_store.ts";
import { openKey, type SigningKey } from "./signing/key_material.ts";
import { type NewInputField, type SignPsbtFields, signPsbtFields } from "./signing/psbt_signer.ts";
import { signDigestSchnorr } from "./signing/digest_signer.ts";
import {
  type CompiledPolicy,
  compilePolicy,
  evaluatePolicy,
  requestFacts,
  type SigningPolicy,
} from "./policy/policy.ts";
import { VelocityRepo } from "./policy/velocity_repo.ts";
import { type KeyLease, OpenKeyCache } from "./signing/open_key_cache.ts";
import { GroupCommit, type JobOutcome } from "./group_commit.ts";
import { requestHash, RequestRepo } from "./request_repo.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** A PSBT signing request. */
export interface PsbtRequest {
  keyId: string;
  psbt: string;
  idempotencyKey: string;
}

interface PsbtJob {
  caller: Caller;
  req: PsbtRequest;
}

// Most PSBT requests of one key committed together: bounds a batch's transaction and latency.
const PSBT_BATCH_MAX = 8;

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
  /** Opened keys kept between requests (shared with `KeysService`); default: none kept. */
  keyCache?: OpenKeyCache;
}

/** Sign PSBTs, digests and messages under each key's status and policy. */
export class SignService {
  readonly #db: Db;
  readonly #audit: AuditLog;
  readonly #store: KeyStore;
  readonly #keys: OpenKeyCache;
  readonly #psbtBatches: GroupCommit<PsbtJob, SignPsbtAnswer>;

  /** @param options database, audit log, the sealing key store and the open-key cache */
  constructor(options: SignServiceOptions) {
    this.#db = options.db;
    this.#audit = options.audit;
    this.#store = options.store;
    this.#keys = options.keyCache ?? new OpenKeyCache({ idleMs: 0, maxKeys: 1 });
    this.#psbtBatches = new GroupCommit((_, jobs) => this.#signPsbtBatch(jobs), {
      maxBatch: PSBT_BATCH_MAX,
    });
  }

  /**
   * Sign every input of `psbt` that belongs to the key, if its policy allows.
   * Requests for one key are group-committed (see `group_commit.ts`): each
   * answer is released only after its batch's transaction committed.
   *
   * @throws PolicyViolationError 422 naming every failed rule (audited)
   */
  async signPsbt(caller: Caller, req: PsbtRequest): Promise<SignPsbtAnswer> {
    const group = JSON.stringify([caller.tenant, caller.owner, req.keyId]);
    return await this.#psbtBatches.submit(group, { caller, req });
  }

  /**
   * One batch of PSBT requests of one key, in one transaction: the key's lock,
   * stored answers, the key, its spend; then each request in order (each
   * counts against the velocity limit what the ones before it signed); then
   * every velocity, audit and answer row; then commit.
   */
  async #signPsbtBatch(jobs: readonly PsbtJob[]): Promise<JobOutcome<SignPsbtAnswer>[]> {
    const { caller: { tenant, owner }, req: { keyId } } = jobs[0]!;
    const hashes = jobs.map((j) => requestHash(j.req));
    const outcomes: JobOutcome<SignPsbtAnswer>[] = [];
    await this.#db.transaction(async (tx) => {
      outcomes.length = 0;
      const velocity = new VelocityRepo(tx);
      await velocity.lock(keyId);
      const requests = new RequestRepo(tx);
      const stored = await requests.find<SignPsbtAnswer>(
        tenant,
        owner,
        jobs.map((j) => j.req.idempotencyKey),
      );
      // Repeats (stored, or earlier in this batch) are settled without signing.
      const firstWithKey = new Map<string, number>();
      const fresh: number[] = [];
      jobs.forEach((job, i) => {
        const idem = job.req.idempotencyKey;
        const done = stored.get(idem);
        const earlier = firstWithKey.get(idem);
        if (done !== undefined) {
          outcomes[i] = done.requestHash === hashes[i]
            ? { ok: true, value: done.response }
            : { ok: false, error: keyReused() };
        } else if (earlier !== undefined) {
          outcomes[i] = { ok: false, error: keyReused() }; // settled below when the hash matches
        } else {
          firstWithKey.set(idem, i);
          fresh.push(i);
        }
      });
      const done = fresh.length === 0
        ? { signed: [], denied: [], policyRevision: null }
        : await this.#signFresh(tx, velocity, jobs, fresh, outcomes);
      await velocity.recordMany(
        keyId,
        done.signed.map((i) => ({
          amountSats: BigInt(outcome(outcomes, i).amountSats),
          requestId: jobs[i]!.caller.requestId,
        })),
      );
      const audited = [...done.signed.map((i) => ({ i, denied: false })), ...done.denied]
        .sort((a, b) => a.i - b.i);
      await this.#audit.appendMany(
        tx,
        audited.map(({ i, denied }) =>
          psbtAuditEntry(jobs[i]!, outcomes[i]!, denied, done.policyRevision)
        ),
      );
      await requests.insertMany(
        tenant,
        owner,
        done.signed.map((i) => ({
          idempotencyKey: jobs[i]!.req.idempotencyKey,
          requestHash: hashes[i]!,
          response: outcome(outcomes, i),
        })),
      );
    });
    // A repeat inside the batch gets the first request's outcome (same request) or a 409.
    jobs.forEach((job, i) => {
      const first = jobs.findIndex((j) => j.req.idempotencyKey === job.req.idempotencyKey);
      if (first !== i && hashes[first] === hashes[i]) outcomes[i] = outcomes[first]!;
    });
    return outcomes;
  }

  /** Sign the batch's fresh requests; denials and failures become their outcomes. */
  async #signFresh(
    tx: Queryable,
    velocity: VelocityRepo,
    jobs: readonly PsbtJob[],
    fresh: readonly number[],
    outcomes: JobOutcome<SignPsbtAnswer>[],
  ): Promise<
    { signed: number[]; denied: { i: number; denied: true }[]; policyRevision: number | null }
  > {
    const { caller: { tenant, owner }, req: { keyId } } = jobs[fresh[0]!]!;
    const failAll = (error: unknown) => {
      for (const i of fresh) outcomes[i] = { ok: false, error };
      return { signed: [], denied: [], policyRevision: null };
    };
    const key = await new KeyRepo(tx).get(tenant, owner, keyId, true);
    if (key === null) return failAll(new NotFoundError("Key not found"));
    if (key.status !== "active") {
      this.#keys.evict(key.id);
      return failAll(notActive(key));
    }
    if (key.usage !== "transactions") {
      return failAll(
        new ValidationError("This key signs oracle digests, not transactions", { status: 422 }),
      );
    }
    const leases = await this.#open(tx, key);
    const signed: number[] = [];
    const denied: { i: number; denied: true }[] = [];
    try {
      const versions = leases.map((l) => l.key);
      const compiled = key.policy === null
        ? null
        : compilePolicy(key.policy as SigningPolicy, key.network);
      let spent = await velocity.spentSince(key.id, new Date(Date.now() - DAY_MS));
      for (const i of fresh) {
        try {
          const answer = signOnePsbt(jobs[i]!.req.psbt, key, versions, compiled, spent);
          spent += BigInt(answer.amountSats);
          outcomes[i] = { ok: true, value: answer };
          signed.push(i);
        } catch (err) {
          if (err instanceof PolicyDenied) {
            outcomes[i] = { ok: false, error: err.toProblem() };
            denied.push({ i, denied: true });
          } else {
            outcomes[i] = { ok: false, error: err };
          }
        }
      }
    } finally {
      for (const l of leases) l.release();
    }
    return { signed, denied, policyRevision: key.policyRevision };
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
      const [lease] = await this.#open(tx, key, key.currentVersion);
      if (lease === undefined) throw new ConflictError("The current key version cannot sign");
      const k = lease.key;
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
        lease.release();
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
      const [lease] = await this.#open(tx, key, key.currentVersion);
      if (lease === undefined) throw new ConflictError("The current key version cannot sign");
      const priv = lease.key.privateKeyAt(req.path);
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
        lease.release();
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
    const hash = requestHash(request);
    return await this.#db.transaction(async (tx) => {
      // Serialise requests of one key: the idempotency check must see every
      // earlier signature of this key.
      await new VelocityRepo(tx).lock(request.keyId);
      const requests = new RequestRepo(tx);
      const done = (await requests.find<T>(caller.tenant, caller.owner, [idempotencyKey]))
        .get(idempotencyKey);
      if (done !== undefined) {
        if (done.requestHash !== hash) throw keyReused();
        return done.response;
      }
      const key = await new KeyRepo(tx).get(caller.tenant, caller.owner, request.keyId, true);
      if (key === null) throw new NotFoundError("Key not found");
      if (key.status !== "active") {
        this.#keys.evict(key.id);
        throw notActive(key);
      }
      const answer = await work(tx, key);
      await requests.insertMany(caller.tenant, caller.owner, [
        { idempotencyKey, requestHash: hash, response: answer },
      ]);
      return answer;
    });
  }

  /**
   * Lease the key's signing versions (all active ones, or just `only`),
   * unsealing those the cache does not hold. The versions' statuses come from
   * the database row just read, so a version disabled elsewhere is never used.
   */
  async #open(tx: Queryable, key: KeyRecord, only?: number): Promise<KeyLease[]> {
    const repo = new KeyRepo(tx);
    const leases: KeyLease[] = [];
    try {
      for (const v of key.versions) {
        if (v.status !== "active") {
          this.#keys.evict(key.id, v.version);
          continue;
        }
        if (only !== undefined && v.version !== only) continue;
        const lease = await this.#keys.lease(key.id, v.version, async () => {
          const sealed = await repo.sealed(key.id, v.version);
          if (sealed === null) throw new Error(`Key ${key.id} v${v.version} has no material`);
          const material = await this.#store.unseal(sealed, { keyId: key.id, version: v.version });
          try {
            return openKey(key.kind, material, key.network);
          } finally {
            material.fill(0);
          }
        });
        leases.push(lease);
      }
    } catch (err) {
      for (const l of leases) l.release();
      throw err;
    }
    return leases;
  }
}

/** A policy refusal: audited with the batch, answered as a 422. */
class PolicyDenied extends Error {
  constructor(readonly failures: readonly { rule: string; message: string }[]) {
    super("denied by policy");
  }

  toProblem(): PolicyViolationError {
    return new PolicyViolationError(
      `Signing denied by policy: ${this.failures.map((f) => `${f.rule}: ${f.message}`).join("; ")}`,
      { extensions: { rules: this.failures } },
    );
  }
}

/**
 * Sign one PSBT with the key's open versions, if the policy allows it given
 * what the key signed in the last 24 hours. CPU only: no I/O.
 *
 * @throws PolicyDenied when a rule fails
 * @throws ValidationError 422 when the PSBT is bad or no input belongs to the key
 */
function signOnePsbt(
  psbt: string,
  key: KeyRecord,
  versions: readonly SigningKey[],
  compiled: CompiledPolicy | null,
  spentLast24hSats: bigint,
): SignPsbtAnswer {
  const parsed = parsePsbt(psbt, { network: key.network, rejectNetworkMismatch: true });
  const facts = requestFacts(parsed.tx, {
    psbtBytes: parsed.bytes,
    network: key.network,
    isOwnOutput: (i) => ownsOutput(parsed.tx, i, versions, key),
    keyFingerprints: versions.map((v) => v.fingerprint),
  });
  // The fee leaves the key's control too: amount limits count it, so a
  // policy without maxFeeSats cannot be drained through the fee.
  const counted = { ...facts, amountSats: facts.amountSats + (facts.feeSats ?? 0n) };
  const verdict = evaluatePolicy(compiled, counted, {
    network: key.network,
    spentLast24hSats,
  });
  if (!verdict.allowed) throw new PolicyDenied(verdict.failures);
  const signatures: SignPsbtAnswer["signatures"] = [];
  // Each version signs its own inputs; the records go into the PSBT as received.
  const fields: NewInputField[] = [];
  for (const k of versions) {
    let out: SignPsbtFields;
    try {
      out = signPsbtFields(parsed.tx, k, {
        network: key.network,
        ...(compiled?.sighashTypes === undefined
          ? {}
          : { allowedSighashTypes: [...compiled.sighashTypes] }),
      });
    } catch (err) {
      // Another version of the key may own the inputs; only "none at all" is an error.
      if (err instanceof ValidationError && err.extensions.check === "no-owned-input") continue;
      throw err;
    }
    signatures.push(
      ...out.signed.map((x) => ({ input: x.input, pubkeyHex: x.pubkeyHex, scheme: x.scheme })),
    );
    fields.push(...out.fields);
  }
  if (signatures.length === 0) {
    throw new ValidationError(`No input of this PSBT belongs to key ${key.id}`, { status: 422 });
  }
  return {
    psbt: base64.encode(insertInputRecords(parsed.bytes, fields)),
    keyId: key.id,
    signatures,
    amountSats: verdict.amountSats.toString(),
  };
}

/** The audit row of a signed or denied PSBT request. */
function psbtAuditEntry(
  job: PsbtJob,
  result: JobOutcome<SignPsbtAnswer>,
  denied: boolean,
  policyRevision: number | null,
): AuditEntry {
  if (denied) {
    const rules = (result.ok ? [] : (result.error as PolicyViolationError).extensions.rules) as {
      rule: string;
    }[];
    return {
      ...entry(job.caller, "sign.psbt", job.req.keyId),
      outcome: "denied",
      details: { rules: rules.map((r) => r.rule).join(",") },
    };
  }
  const answer = result.ok ? result.value : null;
  return {
    ...entry(job.caller, "sign.psbt", job.req.keyId),
    details: {
      inputs: answer?.signatures.length ?? 0,
      amountSats: answer?.amountSats ?? "0",
      policyRevision,
    },
  };
}

function outcome(outcomes: readonly JobOutcome<SignPsbtAnswer>[], i: number): SignPsbtAnswer {
  const o = outcomes[i];
  if (o === undefined || !o.ok) throw new Error(`Batch job ${i} has no answer`);
  return o.value;
}

function keyReused(): ConflictError {
  return new ConflictError("This idempotency key was used for a different request", {
    code: "idempotency-key-reused",
  });
}

function notActive(key: KeyRecord): ConflictError {
  return new ConflictError(`Key ${key.id} is ${key.status}: it cannot sign`, {
    code: "key-not-active",
  });
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
