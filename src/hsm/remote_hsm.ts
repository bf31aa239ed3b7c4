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
    const res = await this.#call(owner, "GET", "/v1/keys", "/v1/keys");
    return this.#parse(z.object({ keys: z.array(KeySchema) }), res).keys;
  }
  /** One key. */
  async getKey(owner: string, keyId: string): Promise<HsmKey> {
    return this.#parse(
      KeySchema,
      await this.#call(owner, "GET", `/v1/keys/${enc(keyId)}`, "/v1/keys/:id"),
    );
  }
  /** Generate a key in the HSM. Not retried: a retry could create two keys. */
  async createKey(owner: string, spec: Parameters<HsmSigner["createKey"]>[1]): Promise<HsmKey> {
    return this.#parse(KeySchema, await this.#call(owner, "POST", "/v1/keys", "/v1/keys", spec));
  }
  /** Add a version. */
  async rotateKey(owner: string, keyId: string): Promise<HsmKey> {
    const path = `/v1/keys/${enc(keyId)}/rotate`;
    return this.#parse(KeySchema, await this.#call(owner, "POST", path, "/v1/keys/:id/rotate"));
  }
  /** Replace the policy (a PUT: safe to repeat). */
  async setPolicy(owner: string, keyId: string, policy: unknown): Promise<HsmKey> {
    const path = `/v1/keys/${enc(keyId)}/policy`;
    const res = await this.#call(owner, "PUT", path, "/v1/keys/:id/policy", { policy }, true);
    return this.#parse(KeySchema, res);
  }
  /** Change a status (setting the same status twice is harmless). */
  async setKeyStatus(
    owner: string,
    keyId: string,
    change: Parameters<HsmSigner["setKeyStatus"]>[2],
  ): Promise<HsmKey> {
    const path = `/v1/keys/${enc(keyId)}/status`;
    const res = await this.#call(owner, "POST", path, "/v1/keys/:id/status", change, true);
    return this.#parse(KeySchema, res);
  }
  /** Sign a PSBT; retried safely, the HSM answers a repeated idempotency key from its record. */
  async signPsbt(owner: string, req: Parameters<HsmSigner["signPsbt"]>[1]): Promise<HsmSignedPsbt> {
    const res = await this.#call(owner, "POST", "/v1/sign/psbt", "/v1/sign/psbt", req, true);
    return this.#parse(SignedSchema, res);
  }
  /** Sign a message. */
  async signMessage(
    owner: string,
    req: Parameters<HsmSigner["signMessage"]>[1],
  ): Promise<{ signature: string; address: string }> {
    const res = await this.#call(owner, "POST", "/v1/sign/message", "/v1/sign/message", req, true);
    return this.#parse(z.object({ signature: z.string(), address: z.string() }), res);
  }
  /** Sign an oracle digest. */
  async signDigest(
    owner: string,
    req: Parameters<HsmSigner["signDigest"]>[1],
  ): Promise<{ signatureHex: string; publicKeyHex: string }> {
    const res = await this.#call(owner, "POST", "/v1/sign/digest", "/v1/sign/digest", req, true);
    return this.#parse(
      z.object({
        signatureHex: z.string().regex(/^[0-9a-f]{128}$/),
        publicKeyHex: z.string().regex(/^[0-9a-f]{64}$/),
      }),
      res,
    );
  }

  async #call(
    owner: string,
    method: "GET" | "POST" | "PUT",
    path: string,
    route: string,
    json?: unknown,
    idempotent?: boolean,
  ): Promise<UpstreamResponse> {
    const res = await this.#client.request({
      method,
      path,
      route,
      headers: { "Anya-Owner": owner },
      ...(json === undefined ? {} : { json }),
      ...(idempotent === undefined ? {} : { idempotent }),
    });
    if (res.status >= 200 && res.status < 300) return res;
    throw this.#problem(res);
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

  #parse<T extends z.ZodType>(schema: T, res: UpstreamResponse): z.infer<T> {
    const parsed = schema.safeParse(res.json());
    if (!parsed.success) throw new UpstreamError("HSM answered in an unexpected format");
    return parsed.data;
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}
