/** Liveness and readiness probes. Unauthenticated and not rate limited, for orchestrators. */
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter, jsonResponse } from "./_openapi.ts";
import { checkReadiness, type ReadinessCheck } from "../src/health/readiness.ts";

const Health = z.object({ status: z.literal("ok") }).openapi("Health");
const CheckResult = z.object({ ok: z.boolean(), detail: z.string() });
const Readiness = z.object({
  ready: z.boolean(),
  checks: z.record(z.string(), CheckResult),
}).openapi("Readiness");

/** `GET /healthz` and `GET /readyz`. */
export function healthRoutes(deps: { readiness: readonly ReadinessCheck[] }) {
  return createRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/healthz",
        tags: ["health"],
        summary: "Liveness: the process is up",
        responses: { 200: jsonResponse(Health, "Alive") },
      }),
      (c) => c.json({ status: "ok" as const }, 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/readyz",
        tags: ["health"],
        summary: "Readiness: database reachable and migrated",
        responses: {
          200: jsonResponse(Readiness, "Ready"),
          503: jsonResponse(Readiness, "Not ready"),
        },
      }),
      async (c) => {
        const report = await checkReadiness(deps.readiness);
        c.header("Cache-Control", "no-store");
        return report.ready ? c.json(report, 200) : c.json(report, 503);
      },
    );
}
