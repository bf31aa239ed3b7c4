/** The ML engine: `/v1/ml`. */
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
import type { MlService } from "../src/ml/ml_service.ts";
import { optionalDep } from "./_deps.ts";

const NameParam = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,62}[a-z0-9]$/, "a model name"),
});
const Version = z.string().regex(/^\d{1,4}\.\d{1,4}\.\d{1,4}$/, "MAJOR.MINOR.PATCH");

const PredictBody = z.object({
  inputs: z.array(z.array(z.number()).min(1).max(4096)).min(1).max(1024).openapi({
    description: "Rows of features in the order the model card lists them; at most 1024 rows",
  }),
}).strict().openapi("PredictRequest");

const PredictResponse = z.object({
  model: z.string(),
  version: z.string(),
  targets: z.array(z.string()),
  outputs: z.array(z.array(z.number())),
  latencyMs: z.number(),
}).openapi("PredictResponse");

const RoutingBody = z.object({
  routes: z.array(
    z.object({ version: Version, weight: z.number().int().min(0).max(10_000) }).strict(),
  )
    .min(1).max(16),
  shadowVersion: Version.nullable().default(null),
}).strict().openapi("ModelRouting");

const RoutingResponse = z.object({
  model: z.string(),
  routes: z.array(z.object({ version: z.string(), weight: z.number() })),
  shadowVersion: z.string().nullable(),
}).openapi("ModelRoutingTable");

const ModelSummary = z.object({
  name: z.string(),
  version: z.string(),
  sha256: z.string(),
  task: z.string(),
  features: z.array(z.string()),
  targets: z.array(z.string()),
  metrics: z.record(z.string(), z.unknown()),
  baselines: z.record(z.string(), z.unknown()),
}).openapi("ModelSummary");

/** Dependencies of {@linkcode mlRoutes}. */
export interface MlRouteDeps {
  /** `null` when the edge runs without models (`ML_ENABLED=false`): the routes answer 503. */
  ml: MlService | null;
}

/** Every `/v1/ml` route. */
export function mlRoutes(deps: MlRouteDeps) {
  const need = optionalDep(deps.ml, "The ML engine is not enabled on this edge");
  const use = requireScope("ml");
  const admin = requireScope("admin");
  return createRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ml/runtime",
        tags: ["ml"],
        summary: "What the host offers (WASM SIMD, threads, WebGPU) and what the engine uses",
        security: BEARER,
        middleware: [use] as const,
        responses: {
          200: jsonResponse(z.record(z.string(), z.unknown()), "Runtime and loaded models"),
          503: problem("The ML engine is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      (c) => {
        const engine = need().engine;
        return c.json({ ...engine.runtime, models: engine.loadTimes() }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ml/models",
        tags: ["ml"],
        summary: "Loaded models and versions, with their cards' metrics and baselines",
        security: BEARER,
        middleware: [use] as const,
        responses: {
          200: jsonResponse(z.object({ models: z.array(ModelSummary) }), "Models"),
          503: problem("The ML engine is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      (c) =>
        c.json({
          models: need().engine.cards().map((m) => ({
            name: m.name,
            version: m.version,
            sha256: m.sha256,
            task: m.task,
            features: m.features,
            targets: m.targets,
            metrics: m.metrics,
            baselines: m.baselines,
          })),
        }, 200),
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/ml/models/{name}/predict",
        tags: ["ml"],
        summary: "Run rows through the version routing picks for this API key",
        description:
          "Concurrent requests for the same version are coalesced into one run. Every prediction is recorded (model, version, input hash, output, latency).",
        security: BEARER,
        middleware: [use] as const,
        request: { params: NameParam, body: jsonBody(PredictBody) },
        responses: {
          200: jsonResponse(PredictResponse, "One output row per input row"),
          404: problem("No such model"),
          422: problem("A row of the wrong width, or a value that is not a finite float32"),
          503: problem("The ML engine is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const p = c.get("principal");
        const { name } = c.req.valid("param");
        const r = await need().predict({ tenant: p.tenant, keyId: p.keyId }, name, {
          rows: c.req.valid("json").inputs,
        });
        return c.json(r, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ml/models/{name}/routing",
        tags: ["ml"],
        summary: "The routing table in force (the newest version takes all until one is set)",
        security: BEARER,
        middleware: [use] as const,
        request: { params: NameParam },
        responses: {
          200: jsonResponse(RoutingResponse, "Routing"),
          404: problem("No such model"),
          503: problem("The ML engine is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => c.json(await need().routing(c.req.valid("param").name), 200),
    )
    .openapi(
      createRoute({
        method: "put",
        path: "/v1/ml/models/{name}/routing",
        tags: ["ml"],
        summary:
          "Split traffic between versions by weight (sticky per API key), with an optional shadow",
        security: BEARER,
        middleware: [admin] as const,
        request: { params: NameParam, body: jsonBody(RoutingBody) },
        responses: {
          200: jsonResponse(RoutingResponse, "The new table"),
          404: problem("No such model"),
          422: problem("A version that is not loaded, or weights summing to 0"),
          503: problem("The ML engine is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const body = c.req.valid("json");
        const table = await need().setRouting(
          c.req.valid("param").name,
          body,
          c.get("principal").keyId,
        );
        return c.json(table, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ml/models/{name}/metrics",
        tags: ["ml"],
        summary:
          "Per version: predictions, latency p50/p99, and errors against truths that arrived",
        security: BEARER,
        middleware: [use] as const,
        request: { params: NameParam },
        responses: {
          200: jsonResponse(
            z.object({ model: z.string(), versions: z.array(z.record(z.string(), z.unknown())) }),
            "Metrics",
          ),
          404: problem("No such model"),
          503: problem("The ML engine is not enabled"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { name } = c.req.valid("param");
        return c.json({ model: name, versions: await need().metrics(name) }, 200);
      },
    );
}
