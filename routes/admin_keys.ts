/**
 * Admin management of API keys (scope `admin`), always within the caller's
 * own tenant: another tenant's key answers 404.
 *
 * Revocation is `POST /v1/admin/keys/{id}/revoke` rather than `DELETE`: the
 * key is kept (for the audit trail and `GET`), only marked revoked.
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
import { KEY_ID_PATTERN } from "../src/auth/api_key.ts";
import {
  type ApiKeyService,
  type ApiKeyView,
  MAX_GRACE_SECONDS,
  MAX_NAME_LENGTH,
  TENANT_PATTERN,
} from "../src/auth/api_key_service.ts";
import { SCOPES } from "../src/auth/principal.ts";
import { ForbiddenError } from "../src/errors/mod.ts";

const ScopeSchema = z.enum(SCOPES).openapi("Scope");
const DateTime = z.string().openapi({ format: "date-time" });

const ApiKey = z.object({
  id: z.string().openapi({ example: "3f9a0c1d2e4b5a6c" }),
  tenant: z.string(),
  name: z.string().nullable(),
  scopes: z.array(ScopeSchema),
  status: z.enum(["active", "expired", "revoked"]),
  createdAt: DateTime,
  expiresAt: DateTime.nullable(),
  revokedAt: DateTime.nullable(),
  lastUsedAt: DateTime.nullable().openapi({
    description: "Updated at most about once a minute per key",
  }),
  rotatedAt: DateTime.nullable(),
  previousSecretExpiresAt: DateTime.nullable().openapi({
    description: "Until when the secret replaced by the last rotation still works",
  }),
}).openapi("ApiKey");

const ApiKeyWithSecret = ApiKey.extend({
  secret: z.string().openapi({
    description: "The full key for `Authorization: Bearer`. Shown only in this response",
    example: "anya_live_3f9a0c1d2e4b5a6c_" + "A".repeat(43),
  }),
}).openapi("ApiKeyWithSecret");

const ApiKeyList = z.object({ items: z.array(ApiKey) }).openapi("ApiKeyList");

const CreateApiKey = z.object({
  tenant: z.string().regex(TENANT_PATTERN, "must be a tenant id").optional().openapi({
    description: "Defaults to the caller's tenant; no other tenant is allowed",
  }),
  scopes: z.array(ScopeSchema).min(1).refine(
    (s) => new Set(s).size === s.length,
    "must not repeat a scope",
  ),
  name: z.string().min(1).max(MAX_NAME_LENGTH).optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional().openapi({
    description: "ISO 8601 date-time in the future; omit for a key that does not expire",
  }),
}).strict().openapi("CreateApiKey");

const RotateApiKey = z.object({
  graceSeconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).optional().openapi({
    description: "How long the old secret keeps working: default 86400 (24 h), at most 7 days",
  }),
}).strict().openapi("RotateApiKey");

const KeyParams = z.object({
  id: z.string().regex(KEY_ID_PATTERN, "must be a key id").openapi({
    param: { name: "id", in: "path" },
    example: "3f9a0c1d2e4b5a6c",
  }),
});

const NOT_FOUND = { 404: problem("No such key for this tenant") };

function toJson(k: ApiKeyView) {
  return {
    ...k,
    createdAt: k.createdAt.toISOString(),
    expiresAt: k.expiresAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    rotatedAt: k.rotatedAt?.toISOString() ?? null,
    previousSecretExpiresAt: k.previousSecretExpiresAt?.toISOString() ?? null,
  };
}

/** `/v1/admin/keys`: create, list, get, rotate and revoke API keys (scope `admin`). */
export function adminKeyRoutes(deps: { apiKeys: ApiKeyService }) {
  return createRouter()
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/admin/keys",
        tags: ["admin"],
        summary: "Create an API key; its secret is returned only in this response",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { body: jsonBody(CreateApiKey) },
        responses: {
          201: jsonResponse(ApiKeyWithSecret, "The new key with its secret"),
          ...AUTH_PROBLEMS,
          422: problem("The expiry is not in the future"),
        },
      }),
      async (c) => {
        const body = c.req.valid("json");
        const principal = c.get("principal");
        const tenant = body.tenant ?? principal.tenant;
        if (tenant !== principal.tenant) {
          throw new ForbiddenError("Cannot create API keys for another tenant");
        }
        const { key, secret } = await deps.apiKeys.create(
          {
            tenant,
            scopes: body.scopes,
            name: body.name,
            expiresAt: body.expiresAt === undefined ? undefined : new Date(body.expiresAt),
          },
          { actor: principal.keyId, requestId: c.get("requestId") },
        );
        c.header("Cache-Control", "no-store");
        return c.json({ ...toJson(key), secret }, 201);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/admin/keys",
        tags: ["admin"],
        summary: "List the caller tenant's API keys",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        responses: { 200: jsonResponse(ApiKeyList, "The tenant's keys"), ...AUTH_PROBLEMS },
      }),
      async (c) => {
        const keys = await deps.apiKeys.list(c.get("principal").tenant);
        return c.json({ items: keys.map(toJson) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/admin/keys/{id}",
        tags: ["admin"],
        summary: "Show one API key",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { params: KeyParams },
        responses: { 200: jsonResponse(ApiKey, "The key"), ...AUTH_PROBLEMS, ...NOT_FOUND },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        return c.json(toJson(await deps.apiKeys.get(c.get("principal").tenant, id)), 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/admin/keys/{id}/rotate",
        tags: ["admin"],
        summary: "Issue a new secret; the old one works until the grace period ends",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: {
          params: KeyParams,
          body: { ...jsonBody(RotateApiKey, "Optional grace period"), required: false },
        },
        responses: {
          200: jsonResponse(ApiKeyWithSecret, "The key with its new secret"),
          ...AUTH_PROBLEMS,
          ...NOT_FOUND,
          409: problem("The key is revoked or expired"),
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const { graceSeconds } = c.req.valid("json");
        const principal = c.get("principal");
        const { key, secret } = await deps.apiKeys.rotate(
          { tenant: principal.tenant, id, graceSeconds },
          { actor: principal.keyId, requestId: c.get("requestId") },
        );
        c.header("Cache-Control", "no-store");
        return c.json({ ...toJson(key), secret }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/admin/keys/{id}/revoke",
        tags: ["admin"],
        summary: "Revoke an API key for good (idempotent)",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { params: KeyParams },
        responses: { 200: jsonResponse(ApiKey, "The revoked key"), ...AUTH_PROBLEMS, ...NOT_FOUND },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const principal = c.get("principal");
        const key = await deps.apiKeys.revoke(
          { tenant: principal.tenant, id },
          { actor: principal.keyId, requestId: c.get("requestId") },
        );
        return c.json(toJson(key), 200);
      },
    );
}
