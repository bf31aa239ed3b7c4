/** Admin access to the audit trail: page it, and re-check its hash chain. */
import { createRoute, z } from "@hono/zod-openapi";
import { AUTH_PROBLEMS, BEARER, createRouter, jsonResponse } from "./_openapi.ts";
import { requireScope } from "./_middleware/auth.ts";
import type { AuditLog } from "../src/audit/audit_log.ts";

const AuditRecord = z.object({
  seq: z.string().openapi({ description: "Position in the chain (decimal string)" }),
  at: z.string().openapi({ format: "date-time" }),
  actor: z.string(),
  tenant: z.string(),
  action: z.string(),
  target: z.string(),
  outcome: z.enum(["success", "denied", "failure"]),
  requestId: z.string(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  prevHash: z.string(),
  hash: z.string(),
}).openapi("AuditRecord");

const AuditPage = z.object({
  items: z.array(AuditRecord),
  nextBefore: z.string().nullable().openapi({
    description: "Pass as `before` for the next (older) page; null at the end",
  }),
}).openapi("AuditPage");

const AuditVerification = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  headSeq: z.string().nullable().optional(),
  firstBrokenSeq: z.string().optional(),
  reason: z.string().optional(),
}).openapi("AuditVerification");

const PageQuery = z.object({
  before: z.string().regex(/^[1-9]\d{0,18}$/, "must be a positive integer").optional(),
  limit: z.string().regex(/^\d{1,3}$/, "must be 1..500").transform(Number)
    .pipe(z.number().int().min(1).max(500)).optional(),
});

/** `GET /v1/admin/audit` and `GET /v1/admin/audit/verify` (scope `admin`). */
export function adminAuditRoutes(deps: { audit: AuditLog }) {
  return createRouter()
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/admin/audit",
        tags: ["admin"],
        summary: "Page the caller tenant's audit trail, newest first",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        request: { query: PageQuery },
        responses: { 200: jsonResponse(AuditPage, "A page of audit records"), ...AUTH_PROBLEMS },
      }),
      async (c) => {
        const { before, limit = 100 } = c.req.valid("query");
        const rows = await deps.audit.list(c.get("principal").tenant, {
          before: before === undefined ? undefined : BigInt(before),
          limit,
        });
        const items = rows.map((r) => ({ ...r, seq: r.seq.toString(), at: r.at.toISOString() }));
        const nextBefore = rows.length === limit ? (items.at(-1)?.seq ?? null) : null;
        return c.json({ items, nextBefore }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/admin/audit/verify",
        tags: ["admin"],
        summary: "Re-check the whole hash chain and report the first broken link",
        security: BEARER,
        middleware: [requireScope("admin")] as const,
        responses: {
          200: jsonResponse(AuditVerification, "Verification result"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => c.json(await deps.audit.verify(), 200),
    );
}
