/**
 * `HsmSigner` over the HSM signer's HTTPS API (routes/hsm/app.ts), through the
 * one `HttpClient` configured with the edge's client certificate (mTLS),
 * deadlines and a breaker. Answers are validated before use; the signed PSBT
 * is checked by the edge's sign service, not trusted here.
 *
 * @module
 */
import { z } from "zod";
import type { HttpClient } from "../net/http_client.ts";
import type { UpstreamResponse } from "../net/types.ts";
import { parseReply } from "../net/upstream_reply.ts";
import {
  type AppError,
  ConflictError,
  NotFoundError,
  PolicyViolationError,
  UpstreamError,
  ValidationError,
} from "../errors/mod.ts";
import { BITCOIN_NETWORKS } from "../bitcoin/network.ts";
import type { HsmCapability, HsmKey, HsmSignedPsbt, HsmSigner } from "./signer.ts";

const STATUS = z.enum(["active", "signing-disabled", "destroyed"]);

const KeySchema = z.object({
  id: z.string(),
  label: z.string(),
  kind: z.enum(["bip32", "single"]),
  usage: z.enum(["transactions", "oracle"]),
  network: z.enum(BITCOIN_NETWORKS),
  status: STATUS,
  currentVersion: z.number().int(),
  policy: z.unknown().nullable(),
  policyRevision: z.number().int(),
  createdAt: z.string(),
  versions: z.array(z.object({
    version: z.number().int(),
    status: STATUS,
    fingerprint: z.string().regex(/^[0-9a-f]{8}$/),
    publicKeyHex: z.string().regex(/^[0-9a-f]{66}$/),
    xpub: z.string().nullable(),
    createdAt: z.string(),
  })),
});

const SignedSchema = z.object({
  psbt: z.string(),
  signatures: z.array(z.object({
    input: z.number().int().min(0),
    pubkeyHex: z.string().regex(/^[0-9a-f]+$/),
    scheme: z.enum(["ecdsa", "schnorr"]),
  })),
  amountSats: z.string().regex(/^\d+$/),
});

const ProblemSchema = z.object({
  type: z.string().optional(),
  status: z.number().optional(),
  detail: z.string().optional(),
  rules: z.array(z.object({ rule: z.string(), message: z.string() })).optional(),
}).passthrough();

/** The remote HSM signer service. */
export class RemoteHsmSigner implements HsmSigner {
  /** Adapter name. */
  readonly kind = "remote-hsm";
  /** The HSM service signs ECDSA and taproot, messages and oracle digests. */
  readonly capabilities: ReadonlySet<HsmCapability> = new Set([
    "ecdsa",
    "schnorr",
    "message",
    "digest",
  ]);
  readonly #client: HttpClient;

  /** @param client the HSM upstream's client, built with the mTLS client certificate */
  constructor(client: HttpClient) {
    this.#client = client;
  }

  /** The owner's keys. */
  async listKeys(owner: string): Promise<HsmKey[]> {
    const list = z.object({ keys: z.array(KeySchema) });
    return (await this.#call(list, owner, "GET", "/v1/keys", "/v1/keys")).keys;
  }
  /** One key. */
  getKey(owner: string, keyId: string): Promise<HsmKey> {
    return this.#call(KeySchema, owner, "GET", `/v1/keys/${enc(keyId)}`, "/v1/keys/:id");
  }
  /** Generate a key in the HSM. Not retried: a retry could create two keys. */
  createKey(owner: string, spec: Parameters<HsmSigner["createKey"]>[1]): Promise<HsmKey> {
    return this.#call(KeySchema, owner, "POST", "/v1/keys", "/v1/keys", spec);
  }
  /** Add a version. */
  rotateKey(owner: string, keyId: string): Promise<HsmKey> {
    const path = `/v1/keys/${enc(keyId)}/rotate`;
    return this.#call(KeySchema, owner, "POST", path, "/v1/keys/:id/rotate");
  }
  /** Replace the policy (a PUT: safe to repeat). */
  setPolicy(owner: string, keyId: string, policy: unknown): Promise<HsmKey> {
    const path = `/v1/keys/${enc(keyId)}/policy`;
    return this.#call(KeySchema, owner, "PUT", path, "/v1/keys/:id/policy", { policy }, true);
  }
  /** Change a status (setting the same status twice is harmless). */
  setKeyStatus(
    owner: string,
    keyId: string,
    change: Parameters<HsmSigner["setKeyStatus"]>[2],
  ): Promise<HsmKey> {
    const path = `/v1/keys/${enc(keyId)}/status`;
    return this.#call(KeySchema, owner, "POST", path, "/v1/keys/:id/status", change, true);
  }
  /** Sign a PSBT; retried safely, the HSM answers a repeated idempotency key from its record. */
  signPsbt(owner: string, req: Parameters<HsmSigner["signPsbt"]>[1]): Promise<HsmSignedPsbt> {
    return this.#call(SignedSchema, owner, "POST", "/v1/sign/psbt", "/v1/sign/psbt", req, true);
  }
  /** Sign a message. */
  signMessage(
    owner: string,
    req: Parameters<HsmSigner["signMessage"]>[1],
  ): Promise<{ signature: string; address: string }> {
    const signed = z.object({ signature: z.string(), address: z.string() });
    return this.#call(signed, owner, "POST", "/v1/sign/message", "/v1/sign/message", req, true);
  }
  /** Sign an oracle digest. */
  signDigest(
    owner: string,
    req: Parameters<HsmSigner["signDigest"]>[1],
  ): Promise<{ signatureHex: string; publicKeyHex: string }> {
    const signed = z.object({
      signatureHex: z.string().regex(/^[0-9a-f]{128}$/),
      publicKeyHex: z.string().regex(/^[0-9a-f]{64}$/),
    });
    return this.#call(signed, owner, "POST", "/v1/sign/digest", "/v1/sign/digest", req, true);
  }

  /** One request; a 2xx answer is checked against `schema`, anything else mapped by #problem. */
  async #call<S extends z.ZodType>(
    schema: S,
    owner: string,
    method: "GET" | "POST" | "PUT",
    path: string,
    route: string,
    json?: unknown,
    idempotent?: boolean,
  ): Promise<z.infer<S>> {
    const res = await this.#client.request({
      method,
      path,
      route,
      headers: { "Anya-Owner": owner },
      ...(json === undefined ? {} : { json }),
      ...(idempotent === undefined ? {} : { idempotent }),
    });
    if (res.status < 200 || res.status >= 300) throw this.#problem(res);
    return parseReply(schema, res.json(), "The HSM", `${method} ${route}`);
  }

  /** Map the HSM's problem to the edge's error: its refusals are the caller's business. */
  #problem(res: UpstreamResponse): AppError {
    let p: z.infer<typeof ProblemSchema> = {};
    try {
      p = ProblemSchema.parse(res.json());
    } catch {
      // Not a problem document: reported as an upstream error below.
    }
    const detail = (p.detail ?? "").slice(0, 500);
    switch (res.status) {
      case 400:
      case 422:
        if (p.type?.endsWith(":policy-violation")) {
          return new PolicyViolationError(`HSM refused: ${detail}`, {
            extensions: { rules: p.rules ?? [] },
          });
        }
        return new ValidationError(`HSM refused the request: ${detail}`, { status: 422 });
      case 404:
        return new NotFoundError("Key not found");
      case 409:
        return new ConflictError(`HSM: ${detail}`);
      case 403:
        return new UpstreamError("The HSM does not accept this edge's client certificate");
      default:
        return new UpstreamError(`HSM answered ${res.status}`);
    }
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
