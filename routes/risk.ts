/** Tenants' risk policies for signing: `/v1/risk/policy`. */
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
import type { RiskService } from "../src/ml/risk/risk_service.ts";
import { optionalDep } from "./_deps.ts";

const RiskPolicySchema = z.object({
  refuseDenyListed: z.boolean().openapi({
    description: "Refuse to sign a PSBT paying an address on the OFAC or ransomware lists",
  }),
  maxScore: z.number().gt(0).max(1).nullable().openapi({
    description:
      "Refuse to sign a PSBT whose tx-risk anomaly score is above this; null: no threshold. With a threshold and no model loaded, signing is refused (fail closed).",
  }),
}).strict().openapi("RiskPolicy");

/** Dependencies of {@linkcode riskRoutes}. */
export interface RiskRouteDeps {
  /** `null` when risk scoring is not enabled: the routes answer 503. */
  risk: RiskService | null;
}

/** `GET/PUT /v1/risk/policy`: the caller's tenant's rules; the HSM's policy still applies. */
export function riskRoutes(deps: RiskRouteDeps) {
  const need = optionalDep(deps.risk, "Risk scoring is not enabled on this edge");
  return createRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/risk/policy",
        tags: ["risk"],
        summary: "The tenant's risk rules for signing (they can only refuse)",
        security: BEARER,
        middleware: [requireScope("sign")] as const,
        responses: {
          200: jsonResponse(RiskPolicySchema, "The policy in force"),
          503: problem("Risk scoring is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => c.json(await need().policy(c.get("principal").tenant), 200),
    )
    .openapi(
      createRoute({
        method: "put",
        path: "/v1/risk/policy",
        tags: ["risk"],
        summary: "Set the tenant's risk rules for signing",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { body: jsonBody(RiskPolicySchema) },
        responses: {
          200: jsonResponse(RiskPolicySchema, "The new policy"),
          503: problem("Risk scoring is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const policy = c.req.valid("json");
        await need().setPolicy(c.get("principal").tenant, policy);
        return c.json(policy, 200);
      },
    );
}
