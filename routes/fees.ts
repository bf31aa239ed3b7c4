/** Fee-rate estimates from the fee model: `GET /v1/fees/estimate`. */
import { createRoute, z } from "@hono/zod-openapi";
import { AUTH_PROBLEMS, BEARER, createRouter, jsonResponse, problem } from "./_openapi.ts";
import { requireScope } from "./_middleware/auth.ts";
import type { FeeService } from "../src/ml/fee/fee_service.ts";
import { optionalDep } from "./_deps.ts";

const Query = z.object({
  target: z.coerce.number().int().min(1).max(1008).default(6).openapi({
    description: "Confirmation target in blocks (1..1008)",
  }),
});

const EstimateSchema = z.object({
  targetBlocks: z.number().int(),
  modelTargetBlocks: z.number().int().openapi({
    description:
      "The model target used: the largest of 1, 3, 6, 144 not above targetBlocks (a faster, dearer estimate, never a cheaper one)",
  }),
  feeRateSatVb: z.number(),
  model: z.object({ name: z.string(), version: z.string() }),
  backend: z.object({ feeRateSatVb: z.number(), targetBlocks: z.number().int() }).nullable()
    .openapi({ description: "The chain backend's own estimate for the same target" }),
  height: z.number().int(),
}).openapi("FeeRateEstimate");

/** Dependencies of {@linkcode feeRoutes}. */
export interface FeeRouteDeps {
  /** `null` without models: the route answers 503. */
  fees: FeeService | null;
}

/** `GET /v1/fees/estimate`. */
export function feeRoutes(deps: FeeRouteDeps) {
  const fees = optionalDep(deps.fees, "Fee estimation is not enabled on this edge");
  return createRouter().openapi(
    createRoute({
      method: "get",
      path: "/v1/fees/estimate",
      tags: ["fees"],
      summary:
        "Fee rate to confirm within `target` blocks, from the fee model on a live mempool snapshot",
      description:
        "Features come from the configured chain backend (mempool histogram, projected next block, recent block medians). The answer names the model version and shows the backend's own estimate beside it. Each estimate is recorded; when later blocks arrive, its error is computed (`GET /v1/ml/models/fee-rate/metrics`).",
      security: BEARER,
      middleware: [requireScope("read")] as const,
      request: { query: Query },
      responses: {
        200: jsonResponse(EstimateSchema, "The estimate"),
        503: problem("No chain backend or no fee model"),
        502: problem("The chain backend answered with an error"),
        504: problem("The chain backend did not answer in time"),
        ...AUTH_PROBLEMS,
      },
    }),
    async (c) => {
      const { tenant, keyId } = c.get("principal");
      return c.json(await fees().estimate({ tenant, keyId }, c.req.valid("query").target), 200);
    },
  );
}
