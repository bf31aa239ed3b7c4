/** `GET /v1/me`: the calling key's identity; any valid key may ask. */
import { createRoute, z } from "@hono/zod-openapi";
import { AUTH_PROBLEMS, BEARER, createRouter, jsonResponse } from "./_openapi.ts";
import { SCOPES } from "../src/auth/principal.ts";

const Me = z.object({
  keyId: z.string(),
  tenant: z.string(),
  scopes: z.array(z.enum(SCOPES)),
}).openapi("Me");

/** Mounts `GET /v1/me`. */
export function meRoutes() {
  return createRouter().openapi(
    createRoute({
      method: "get",
      path: "/v1/me",
      tags: ["identity"],
      summary: "Identity of the calling API key: tenant and scopes",
      security: BEARER,
      responses: { 200: jsonResponse(Me, "The caller"), ...AUTH_PROBLEMS },
    }),
    (c) => {
      const p = c.get("principal");
      return c.json({ keyId: p.keyId, tenant: p.tenant, scopes: [...p.scopes].sort() }, 200);
    },
  );
}
