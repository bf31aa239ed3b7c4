/**
 * Keys held by the HSM, seen through the edge: list and read (scope `sign`),
 * create, rotate, set policy and status (scope `admin`). The edge never sees
 * private material; these routes relay to the HSM and show public data.
 */
import { createRoute, z } from "@hono/zod-openapi";
import {
  AUTH_PROBLEMS,
  BEARER,
  createRouter,
  jsonBody,
  jsonResponse,
  problem,
} from "./_openapi.ts";
import { requireScope } from "./_middleware/auth.ts";
import { BITCOIN_NETWORKS, type BitcoinNetwork } from "../src/bitcoin/network.ts";
import type { HsmSigner } from "../src/hsm/signer.ts";
import type { AuditLog } from "../src/audit/audit_log.ts";
import { NO_HSM, optionalDep } from "./_deps.ts";

const STATUS = z.enum(["active", "signing-disabled", "destroyed"]);

const KeySchema = z.object({
  id: z.string(),
  label: z.string(),
  kind: z.enum(["bip32", "single"]),
  usage: z.enum(["transactions", "oracle"]),
  network: z.enum(BITCOIN_NETWORKS),
  status: STATUS,
  currentVersion: z.number().int(),
  policy: z.unknown().nullable().openapi({ description: "The signing policy the HSM enforces" }),
  policyRevision: z.number().int(),
  createdAt: z.string(),
  versions: z.array(z.object({
    version: z.number().int(),
    status: STATUS,
    fingerprint: z.string().openapi({ description: "BIP32 master fingerprint, hex" }),
    publicKeyHex: z.string(),
    xpub: z.string().nullable(),
    createdAt: z.string(),
  })),
}).openapi("HsmKey");

const KeyIdParam = z.object({
  id: z.string().regex(/^hk_[0-9a-f]{24}$/).openapi({ param: { name: "id", in: "path" } }),
});

const CreateKeyBody = z.object({
  label: z.string().min(1).max(100),
  kind: z.enum(["bip32", "single"]).default("bip32").openapi({
    description: "`bip32`: a root generated in the HSM (xpub exported); `single`: one key",
  }),
  usage: z.enum(["transactions", "oracle"]).default("transactions").openapi({
    description: "`transactions` signs PSBTs and messages; `oracle` signs raw digests only",
  }),
  network: z.enum(BITCOIN_NETWORKS).optional().openapi({
    description: "Default: the network this edge serves",
  }),
}).strict();

const PolicyBody = z.object({
  policy: z.record(z.string(), z.unknown()).openapi({
    description:
      "networks, maxAmountPerTxSats, maxAmountPer24hSats, destinations {addresses, descriptors}, maxFeeRateSatPerVb, maxFeeSats, sighashTypes, changeToOwnDerivations. Validated and enforced by the HSM.",
  }),
}).strict();

const StatusBody = z.object({
  status: STATUS,
  version: z.number().int().min(1).optional().openapi({
    description: "Change one version only (e.g. disable signing with an old version)",
  }),
}).strict();

const HSM_PROBLEMS = {
  502: problem("The HSM answered something the edge could not accept"),
  503: problem("No HSM configured, or it is unreachable"),
  504: problem("The HSM did not answer in time"),
} as const;

/** Dependencies of {@linkcode keyRoutes}. */
export interface KeyRouteDeps {
  signer: HsmSigner | null;
  audit: AuditLog;
  /** The network this edge serves: the default for new keys. */
  network: BitcoinNetwork;
}

/** `/v1/keys` routes. */
export function keyRoutes(deps: KeyRouteDeps) {
  const signer = optionalDep(deps.signer, NO_HSM);
  return createRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/keys",
        tags: ["keys"],
        summary: "The tenant's HSM keys (public data only)",
        security: BEARER,
        middleware: [requireScope("sign")] as const,
        responses: {
          200: jsonResponse(z.object({ keys: z.array(KeySchema) }), "Keys"),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => c.json({ keys: await signer().listKeys(c.get("principal").tenant) }, 200),
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/keys",
        tags: ["keys"],
        summary: "Generate a key inside the HSM",
        description:
          "The private key is generated and sealed in the HSM; only the xpub, fingerprint and public key come back.",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { body: jsonBody(CreateKeyBody) },
        responses: {
          201: jsonResponse(KeySchema, "The new key"),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const b = c.req.valid("json");
        const principal = c.get("principal");
        const key = await signer().createKey(principal.tenant, {
          label: b.label,
          kind: b.kind,
          usage: b.usage,
          network: b.network ?? deps.network,
        });
        await deps.audit.record(
          auditEntry(c.get("principal"), c.get("requestId"), "hsm_key.create", key.id),
        );
        return c.json(key, 201);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/keys/{id}/rotate",
        tags: ["keys"],
        summary: "Add a new key version and make it current",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { params: KeyIdParam },
        responses: {
          200: jsonResponse(KeySchema, "The key with its new version"),
          404: problem("No such key"),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const key = await signer().rotateKey(c.get("principal").tenant, id);
        await deps.audit.record(
          auditEntry(c.get("principal"), c.get("requestId"), "hsm_key.rotate", id),
        );
        return c.json(key, 200);
      },
    )
    .openapi(
      createRoute({
        method: "put",
        path: "/v1/keys/{id}/policy",
        tags: ["keys"],
        summary: "Replace the key's signing policy (enforced inside the HSM)",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { params: KeyIdParam, body: jsonBody(PolicyBody) },
        responses: {
          200: jsonResponse(KeySchema, "The key with its new policy"),
          404: problem("No such key"),
          422: problem("The HSM refused the policy"),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const key = await signer().setPolicy(
          c.get("principal").tenant,
          id,
          c.req.valid("json").policy,
        );
        await deps.audit.record(
          auditEntry(c.get("principal"), c.get("requestId"), "hsm_key.policy", id),
        );
        return c.json(key, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/keys/{id}/status",
        tags: ["keys"],
        summary: "Disable signing, re-enable, or destroy a key or one version",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { params: KeyIdParam, body: jsonBody(StatusBody) },
        responses: {
          200: jsonResponse(KeySchema, "The key"),
          404: problem("No such key"),
          409: problem("A destroyed key cannot be brought back"),
          ...HSM_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const b = c.req.valid("json");
        const key = await signer().setKeyStatus(
          c.get("principal").tenant,
          id,
          b.version === undefined ? { status: b.status } : { status: b.status, version: b.version },
        );
        await deps.audit.record(
          auditEntry(c.get("principal"), c.get("requestId"), "hsm_key.status", id),
        );
        return c.json(key, 200);
      },
    );
}

function auditEntry(
  p: { keyId: string; tenant: string },
  requestId: string,
  action: string,
  target: string,
) {
  return {
    actor: p.keyId,
    tenant: p.tenant,
    action,
    target,
    outcome: "success" as const,
    requestId,
  };
}
