/** Broadcast signed transactions and follow them: `/v1/tx`. */
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
import { type IdempotencyDeps, optionalIdempotency } from "./_middleware/idempotency.ts";
import { SatsString, TxidParam } from "./_schemas.ts";
import { TX_STATES, type TxRecord } from "../src/bitcoin/tx_repo.ts";
import type { TxService } from "../src/bitcoin/tx_service.ts";

const TxRecordSchema = z.object({
  txid: z.string(),
  state: z.enum(TX_STATES).openapi({
    description:
      "broadcasting/unknown: sent or being sent, outcome not yet known (never treated as failed); mempool; confirmed; final (reached TX_CONFIRMATIONS); rejected; replaced; dropped",
  }),
  confirmations: z.number().int(),
  blockHeight: z.number().int().nullable(),
  blockHash: z.string().nullable(),
  rejectReason: z.string().nullable(),
  vsize: z.number().int().nullable(),
  feeSats: SatsString.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  history: z.array(z.object({
    state: z.enum(TX_STATES),
    confirmations: z.number().int(),
    blockHeight: z.number().int().nullable(),
    at: z.string(),
  })).optional(),
}).openapi("TrackedTransaction");

const BroadcastBody = z.object({
  hex: z.string().min(2).max(800_000).regex(/^[0-9a-fA-F\s]+$/, "must be hex").openapi({
    description: "The signed raw transaction, hex",
  }),
}).strict().openapi("BroadcastRequest");

function view(r: TxRecord) {
  return {
    txid: r.txid,
    state: r.state,
    confirmations: r.confirmations,
    blockHeight: r.blockHeight,
    blockHash: r.blockHash,
    rejectReason: r.rejectReason,
    vsize: r.vsize,
    feeSats: r.feeSats === null ? null : r.feeSats.toString(),
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** Dependencies of {@linkcode txRoutes}. */
export interface TxRouteDeps extends IdempotencyDeps {
  txs: TxService;
}

/** `POST /v1/tx/broadcast` and `GET /v1/tx/{txid}`. */
export function txRoutes(deps: TxRouteDeps) {
  return createRouter()
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/tx/broadcast",
        tags: ["transactions"],
        summary: "Broadcast a signed transaction once and track it",
        description:
          "Idempotent by txid per tenant: resubmitting returns the tracked record without sending again. When the chain backend's answer is lost the record is `unknown` (202) and the txid is looked up before anything is retried. An optional `Idempotency-Key` header replays the first response.",
        security: BEARER,
        middleware: [
          requireScope("psbt"),
          optionalIdempotency(deps),
        ] as const,
        request: { body: jsonBody(BroadcastBody) },
        responses: {
          200: jsonResponse(TxRecordSchema, "Already submitted: the tracked record"),
          201: jsonResponse(TxRecordSchema, "Sent: the new tracked record"),
          202: jsonResponse(TxRecordSchema, "Outcome unknown: being looked up"),
          409: problem(
            "A broadcast of the same transaction is in flight: retry after `Retry-After`",
          ),
          422: problem("Malformed, unsigned, or refused by the network"),
          503: problem("No chain backend, or it is unreachable (nothing was sent)"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { hex } = c.req.valid("json");
        const out = await deps.txs.broadcast(c.get("principal").tenant, hex.replace(/\s+/g, ""));
        const body = view(out.record);
        if (!out.created) return c.json(body, 200);
        return out.record.state === "unknown" || out.record.state === "broadcasting"
          ? c.json(body, 202)
          : c.json(body, 201);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/tx/{txid}",
        tags: ["transactions"],
        summary: "Tracked status of a broadcast transaction, with its history",
        security: BEARER,
        middleware: [requireScope("read")] as const,
        request: { params: TxidParam },
        responses: {
          200: jsonResponse(TxRecordSchema, "The tracked record"),
          404: problem("Not broadcast through this tenant"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { txid } = c.req.valid("param");
        const tenant = c.get("principal").tenant;
        const record = await deps.txs.get(tenant, txid);
        const history = await deps.txs.history(tenant, txid);
        return c.json({
          ...view(record),
          history: history.map((h) => ({ ...h, at: h.at.toISOString() })),
        }, 200);
      },
    );
}
