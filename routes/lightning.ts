/** Lightning through the edge's node: `/v1/ln`. */
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
import {
  idempotency,
  type IdempotencyDeps,
  optionalIdempotency,
} from "./_middleware/idempotency.ts";
import type { LightningService } from "../src/layer2/lightning/lightning_service.ts";
import type { PaymentRecord } from "../src/layer2/lightning/payment_repo.ts";
import type { InvoiceRecord } from "../src/layer2/lightning/invoice_repo.ts";
import type { Channel } from "../src/layer2/lightning/backend.ts";

const Msat = z.string().regex(/^\d{1,19}$/, "a whole number of millisatoshis, as a string");
const Sat = z.string().regex(/^\d{1,16}$/, "a whole number of satoshis, as a string");
const Hash = z.string().regex(/^[0-9a-f]{64}$/, "64 lowercase hex characters");
const HashParam = z.object({ paymentHash: Hash });
const Limit = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const Bolt11 = z.string().min(10).max(8192).regex(
  /^(lightning:)?ln[a-z0-9]+$/i,
  "a BOLT11 invoice (lnbc…, lntb…, lntbs…, lnbcrt…)",
).transform((s) => s.replace(/^lightning:/i, ""));

const PaymentSchema = z.object({
  paymentHash: z.string(),
  state: z.enum(["pending", "succeeded", "failed"]).openapi({
    description:
      "pending: sent or being sent, outcome not yet known (never treated as failed); succeeded (preimage checked against the hash); failed (reason)",
  }),
  amountMsat: z.string(),
  maxFeeMsat: z.string(),
  feeMsat: z.string().nullable(),
  preimage: z.string().nullable(),
  failureReason: z.string().nullable(),
  attempts: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
}).openapi("LightningPayment");

const InvoiceSchema = z.object({
  paymentHash: z.string(),
  bolt11: z.string(),
  state: z.enum(["open", "settled", "canceled", "expired"]),
  amountMsat: z.string().nullable(),
  amountReceivedMsat: z.string().nullable(),
  description: z.string().nullable(),
  descriptionHash: z.string().nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
  settledAt: z.string().nullable(),
}).openapi("LightningInvoice");

const ChannelSchema = z.object({
  channelPoint: z.string(),
  shortChannelId: z.string().nullable(),
  peerPubkey: z.string(),
  state: z.enum(["opening", "active", "inactive", "closing", "closed"]),
  capacitySat: z.string(),
  localBalanceMsat: z.string(),
  remoteBalanceMsat: z.string(),
  private: z.boolean(),
  initiator: z.boolean(),
}).openapi("LightningChannel");

const Fee = z.union([
  z.object({ satPerVbyte: z.number().positive().max(100_000) }).strict(),
  z.object({ targetConf: z.number().int().min(1).max(1008) }).strict(),
]);

const PayBody = z.object({
  invoice: Bolt11,
  amountMsat: Msat.optional().openapi({ description: "Only for an invoice without an amount" }),
  maxFeeMsat: Msat.optional(),
  maxFeePpm: z.number().int().min(0).max(1_000_000).optional(),
  timeoutSeconds: z.number().int().min(1).max(3600).optional(),
}).strict().refine((b) => b.maxFeeMsat === undefined || b.maxFeePpm === undefined, {
  message: "give maxFeeMsat or maxFeePpm, not both",
}).openapi("PayInvoiceRequest");

const CreateInvoiceBody = z.object({
  amountMsat: Msat.nullable().default(null).openapi({ description: "null: any amount" }),
  description: z.string().max(639).optional(),
  descriptionHash: Hash.optional(),
  expirySeconds: z.number().int().min(60).max(31_536_000).default(3600),
}).strict().refine((b) => b.description === undefined || b.descriptionHash === undefined, {
  message: "give description or descriptionHash, not both",
}).openapi("CreateInvoiceRequest");

const OpenChannelBody = z.object({
  peerPubkey: z.string().regex(/^0[23][0-9a-f]{64}$/, "a 33-byte compressed public key, hex"),
  peerAddress: z.string().max(300).optional(),
  amountSat: Sat,
  pushMsat: Msat.optional(),
  private: z.boolean().default(false),
  fee: Fee.optional(),
}).strict().openapi("OpenChannelRequest");

const CloseChannelBody = z.object({
  channelPoint: z.string().regex(/^[0-9a-f]{64}:\d{1,5}$/, "txid:vout"),
  force: z.boolean().default(false).openapi({
    description: "Unilateral close: funds wait out the CSV delay. Must be asked for explicitly.",
  }),
  fee: Fee.optional(),
}).strict().openapi("CloseChannelRequest");

const LimitsSchema = z.object({
  maxPaymentSat: Sat,
  maxDailySat: Sat,
}).strict().openapi("LightningLimits");

const NODE_PROBLEMS = {
  503: problem("No Lightning node configured, or it is unreachable"),
  502: problem("The node answered with an error"),
  504: problem("The node did not answer in time"),
} as const;

/** Amounts (bigint) as decimal strings, dates as ISO text, bytes as hex: JSON without loss. */
function jsonSafe(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) {
    return Array.from(value, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  }
  return value;
}

function paymentView(p: PaymentRecord) {
  return {
    paymentHash: p.paymentHash,
    state: p.state,
    amountMsat: p.amountMsat.toString(),
    maxFeeMsat: p.maxFeeMsat.toString(),
    feeMsat: p.feeMsat?.toString() ?? null,
    preimage: p.preimage,
    failureReason: p.failureReason,
    attempts: p.attempts,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

function invoiceView(i: InvoiceRecord) {
  return {
    paymentHash: i.paymentHash,
    bolt11: i.bolt11,
    state: i.state,
    amountMsat: i.amountMsat?.toString() ?? null,
    amountReceivedMsat: i.amountReceivedMsat?.toString() ?? null,
    description: i.description,
    descriptionHash: i.descriptionHash,
    createdAt: i.createdAt.toISOString(),
    expiresAt: i.expiresAt.toISOString(),
    settledAt: i.settledAt?.toISOString() ?? null,
  };
}

function channelView(c: Channel) {
  return {
    ...c,
    capacitySat: c.capacitySat.toString(),
    localBalanceMsat: c.localBalanceMsat.toString(),
    remoteBalanceMsat: c.remoteBalanceMsat.toString(),
  };
}

/** Dependencies of {@linkcode lightningRoutes}. */
export interface LightningRouteDeps extends IdempotencyDeps {
  lightning: LightningService;
}

/** Every `/v1/ln` route. */
export function lightningRoutes(deps: LightningRouteDeps) {
  const ln = deps.lightning;
  const requiredIdempotency = idempotency(deps.idempotency, {
    required: true,
    ttlHours: deps.idempotencyTtlHours,
    lockMs: deps.idempotencyLockMs,
    logger: deps.logger,
  });
  const read = requireScope("lightning:read");
  const write = requireScope("lightning:write");
  const admin = requireScope("admin");
  return createRouter()
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/ln/invoices/decode",
        tags: ["lightning"],
        summary: "Decode and verify a BOLT11 invoice locally (no node needed)",
        description:
          "Checks the checksum, fields and signature and recovers the payee. An expired invoice or one for another network still decodes, flagged (`expired`, `networkMatches`); paying it is refused.",
        security: BEARER,
        middleware: [read] as const,
        request: { body: jsonBody(z.object({ invoice: Bolt11 }).strict()) },
        responses: {
          200: jsonResponse(z.record(z.string(), z.unknown()), "The decoded invoice"),
          422: problem("Not a valid BOLT11 invoice (the reason is named)"),
          ...AUTH_PROBLEMS,
        },
      }),
      (c) => {
        const decoded = ln.decode(c.req.valid("json").invoice);
        return c.json(jsonSafe(decoded) as Record<string, unknown>, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/ln/payments",
        tags: ["lightning"],
        summary: "Pay a BOLT11 invoice, at most once per payment hash",
        description:
          "Requires `Idempotency-Key`. The invoice is decoded and checked first (network, expiry, amount, the tenant's limits); the pending payment is recorded before the node is called. A timeout leaves it `pending` (202), never failed: poll `GET /v1/ln/payments/{paymentHash}`.",
        security: BEARER,
        middleware: [write, requiredIdempotency] as const,
        request: { body: jsonBody(PayBody) },
        responses: {
          200: jsonResponse(PaymentSchema, "Paid or being paid already: the recorded payment"),
          201: jsonResponse(PaymentSchema, "Paid or failed now"),
          202: jsonResponse(PaymentSchema, "Pending: the outcome is not known yet"),
          422: problem("Bad, expired or other-network invoice, or over the spending limits"),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const body = c.req.valid("json");
        const { record, created } = await ln.pay(c.get("principal").tenant, {
          bolt11: body.invoice,
          ...(body.amountMsat === undefined ? {} : { amountMsat: BigInt(body.amountMsat) }),
          ...(body.maxFeeMsat !== undefined
            ? { maxFee: { msat: BigInt(body.maxFeeMsat) } }
            : body.maxFeePpm !== undefined
            ? { maxFee: { ppm: BigInt(body.maxFeePpm) } }
            : {}),
          ...(body.timeoutSeconds === undefined ? {} : { timeoutSeconds: body.timeoutSeconds }),
        });
        const view = paymentView(record);
        if (record.state === "pending") return c.json(view, 202);
        return created ? c.json(view, 201) : c.json(view, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/payments/{paymentHash}",
        tags: ["lightning"],
        summary: "A payment's tracked state (asked from the node while pending)",
        security: BEARER,
        middleware: [read] as const,
        request: { params: HashParam },
        responses: {
          200: jsonResponse(PaymentSchema, "The payment"),
          404: problem("No payment to this hash by this tenant"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { paymentHash } = c.req.valid("param");
        return c.json(paymentView(await ln.payment(c.get("principal").tenant, paymentHash)), 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/payments",
        tags: ["lightning"],
        summary: "The tenant's payments, newest first",
        security: BEARER,
        middleware: [read] as const,
        request: { query: Limit },
        responses: {
          200: jsonResponse(z.object({ payments: z.array(PaymentSchema) }), "Payments"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { limit } = c.req.valid("query");
        const list = await ln.payments(c.get("principal").tenant, limit);
        return c.json({ payments: list.map(paymentView) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/ln/invoices",
        tags: ["lightning"],
        summary: "Create an invoice on the node",
        description:
          "Settlement is detected from the node (its invoice stream, or long-polling) and published as an `ln.invoice.settled` event. An optional `Idempotency-Key` replays the first response.",
        security: BEARER,
        middleware: [write, optionalIdempotency(deps)] as const,
        request: { body: jsonBody(CreateInvoiceBody) },
        responses: {
          201: jsonResponse(InvoiceSchema, "The invoice"),
          501: problem("The node cannot create an invoice from a description hash"),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const body = c.req.valid("json");
        const record = await ln.createInvoice(c.get("principal").tenant, {
          amountMsat: body.amountMsat === null ? null : BigInt(body.amountMsat),
          ...(body.description === undefined ? {} : { description: body.description }),
          ...(body.descriptionHash === undefined ? {} : { descriptionHash: body.descriptionHash }),
          expirySeconds: body.expirySeconds,
        });
        return c.json(invoiceView(record), 201);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/invoices/{paymentHash}",
        tags: ["lightning"],
        summary: "An invoice of the tenant (refreshed from the node while open)",
        security: BEARER,
        middleware: [read] as const,
        request: { params: HashParam },
        responses: {
          200: jsonResponse(InvoiceSchema, "The invoice"),
          404: problem("No invoice with this hash for this tenant"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { paymentHash } = c.req.valid("param");
        return c.json(invoiceView(await ln.invoice(c.get("principal").tenant, paymentHash)), 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/invoices",
        tags: ["lightning"],
        summary: "The tenant's invoices, newest first",
        security: BEARER,
        middleware: [read] as const,
        request: { query: Limit },
        responses: {
          200: jsonResponse(z.object({ invoices: z.array(InvoiceSchema) }), "Invoices"),
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const { limit } = c.req.valid("query");
        const list = await ln.invoices(c.get("principal").tenant, limit);
        return c.json({ invoices: list.map(invoiceView) }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/node",
        tags: ["lightning"],
        summary: "The node: identity, network, chain sync, channel counts",
        security: BEARER,
        middleware: [read] as const,
        responses: {
          200: jsonResponse(z.record(z.string(), z.unknown()), "Node info"),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => c.json({ ...(await ln.nodeInfo()) }, 200),
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/balances",
        tags: ["lightning"],
        summary: "On-chain and channel balances of the node",
        security: BEARER,
        middleware: [read] as const,
        responses: {
          200: jsonResponse(z.record(z.string(), z.unknown()), "Balances (amounts as strings)"),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const b = await ln.balances();
        return c.json({
          onchain: {
            confirmedSat: b.onchain.confirmedSat.toString(),
            unconfirmedSat: b.onchain.unconfirmedSat.toString(),
          },
          channels: {
            localMsat: b.channels.localMsat.toString(),
            remoteMsat: b.channels.remoteMsat.toString(),
            pendingOpenLocalMsat: b.channels.pendingOpenLocalMsat.toString(),
          },
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/channels",
        tags: ["lightning"],
        summary: "The node's channels",
        security: BEARER,
        middleware: [read] as const,
        responses: {
          200: jsonResponse(z.object({ channels: z.array(ChannelSchema) }), "Channels"),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => c.json({ channels: (await ln.channels()).map(channelView) }, 200),
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/ln/channels",
        tags: ["lightning"],
        summary: "Open a channel (the node is shared: needs admin too)",
        security: BEARER,
        middleware: [write, admin, optionalIdempotency(deps)] as const,
        request: { body: jsonBody(OpenChannelBody) },
        responses: {
          201: jsonResponse(
            z.object({
              fundingTxid: z.string(),
              outputIndex: z.number(),
              channelPoint: z.string(),
            }),
            "The funding transaction",
          ),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const b = c.req.valid("json");
        const opened = await ln.openChannel({
          peerPubkey: b.peerPubkey,
          ...(b.peerAddress === undefined ? {} : { peerAddress: b.peerAddress }),
          amountSat: BigInt(b.amountSat),
          ...(b.pushMsat === undefined ? {} : { pushMsat: BigInt(b.pushMsat) }),
          private: b.private,
          ...(b.fee === undefined ? {} : { fee: b.fee }),
        });
        return c.json(opened, 201);
      },
    )
    .openapi(
      createRoute({
        method: "post",
        path: "/v1/ln/channels/close",
        tags: ["lightning"],
        summary: "Close a channel: cooperative, or forced when `force` is true (needs admin too)",
        security: BEARER,
        middleware: [write, admin, optionalIdempotency(deps)] as const,
        request: { body: jsonBody(CloseChannelBody) },
        responses: {
          202: jsonResponse(z.object({ closingTxid: z.string().nullable() }), "Closing"),
          501: problem("The node cannot force-close"),
          ...NODE_PROBLEMS,
          ...AUTH_PROBLEMS,
        },
      }),
      async (c) => {
        const b = c.req.valid("json");
        const closed = await ln.closeChannel({
          channelPoint: b.channelPoint,
          force: b.force,
          ...(b.fee === undefined ? {} : { fee: b.fee }),
        });
        return c.json(closed, 202);
      },
    )
    .openapi(
      createRoute({
        method: "get",
        path: "/v1/ln/limits",
        tags: ["lightning"],
        summary: "The tenant's spending limits",
        security: BEARER,
        middleware: [read] as const,
        responses: { 200: jsonResponse(LimitsSchema, "Limits"), ...AUTH_PROBLEMS },
      }),
      async (c) => {
        const l = await ln.limits(c.get("principal").tenant);
        return c.json({
          maxPaymentSat: l.maxPaymentSat.toString(),
          maxDailySat: l.maxDailySat.toString(),
        }, 200);
      },
    )
    .openapi(
      createRoute({
        method: "put",
        path: "/v1/ln/limits",
        tags: ["lightning"],
        summary: "Set the tenant's spending limits (admin)",
        security: BEARER,
        middleware: [admin] as const,
        request: { body: jsonBody(LimitsSchema) },
        responses: { 200: jsonResponse(LimitsSchema, "Limits"), ...AUTH_PROBLEMS },
      }),
      async (c) => {
        const b = c.req.valid("json");
        await ln.setLimits(c.get("principal").tenant, {
          maxPaymentSat: BigInt(b.maxPaymentSat),
          maxDailySat: BigInt(b.maxDailySat),
        });
        return c.json(b, 200);
      },
    );
}
