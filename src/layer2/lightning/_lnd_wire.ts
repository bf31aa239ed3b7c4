/**
 * LND's REST wire format, for `lnd_rest.ts`: the replies it reads (zod
 * schemas named after the swagger definitions of `lnrpc/lightning.swagger.json`
 * and `lnrpc/routerrpc/router.swagger.json`), their translation into the
 * port's types, and LND errors (`rpcStatus`) into `AppError`s.
 *
 * Encoding rules of LND's grpc-gateway (protojson with proto field names):
 * 64-bit integers are JSON strings, 32-bit ones numbers, `bytes` are standard
 * base64, enums are their names. Proto3 omits nothing on LND's REST (it emits
 * unpopulated fields), but a missing field is read as its zero value anyway.
 *
 * @module
 */
import { z } from "zod";
import { base64, hex } from "@scure/base";
import {
  type AppError,
  ConflictError,
  NotFoundError,
  UnavailableError,
  UnsupportedFeatureError,
  UpstreamError,
  UpstreamTimeoutError,
  ValidationError,
} from "../../errors/app_error.ts";
import { parseReply, unexpectedReply } from "../../net/upstream_reply.ts";
import type {
  Channel,
  ChannelState,
  Invoice,
  InvoiceState,
  NodeInfo,
  PaymentResult,
} from "./backend.ts";

/** 64 lowercase hex digits (a hash or preimage). */
export const HASH_HEX = /^[0-9a-f]{64}$/;
/** A compressed public key, hex. */
export const PUBKEY_HEX = /^0[23][0-9a-f]{64}$/;

const int64 = z.string().regex(/^-?\d{1,19}$/).transform((v) => BigInt(v));
const uint64 = z.string().regex(/^\d{1,20}$/).transform((v) => BigInt(v));
const int32 = z.number().int();
const bytes = z.string().transform((v, ctx) => {
  try {
    return decodeBase64(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "not base64" });
    return z.NEVER;
  }
});
const hexString = z.string().regex(/^(?:[0-9a-f]{2})*$/);

/** `rpcStatus`: the body of an error answer, and of a stream's `error` record. */
const RpcStatus = z.object({
  code: int32.default(2),
  message: z.string().default(""),
});

/** `lnrpcGetInfoResponse`, the fields the port needs. */
export const GetInfoResponse = z.object({
  version: z.string().default(""),
  identity_pubkey: z.string().regex(PUBKEY_HEX),
  alias: z.string().default(""),
  num_pending_channels: int32.default(0),
  num_active_channels: int32.default(0),
  num_peers: int32.default(0),
  block_height: int32.default(0),
  synced_to_chain: z.boolean().default(false),
  chains: z.array(z.object({ network: z.string().default("") })).default([]),
});

/** `lnrpcWalletBalanceResponse`. */
export const WalletBalanceResponse = z.object({
  confirmed_balance: int64.default(0n),
  unconfirmed_balance: int64.default(0n),
});

const Amount = z.object({ msat: uint64.default(0n) }).default({ msat: 0n });

/** `lnrpcChannelBalanceResponse`. */
export const ChannelBalanceResponse = z.object({
  local_balance: Amount,
  remote_balance: Amount,
  pending_open_local_balance: Amount,
});

const LnrpcChannel = z.object({
  active: z.boolean().default(false),
  remote_pubkey: z.string(),
  channel_point: z.string(),
  chan_id: uint64.default(0n),
  capacity: int64.default(0n),
  local_balance: int64.default(0n),
  remote_balance: int64.default(0n),
  private: z.boolean().default(false),
  initiator: z.boolean().default(false),
});

/** `lnrpcListChannelsResponse`. */
export const ListChannelsResponse = z.object({ channels: z.array(LnrpcChannel).default([]) });

const PendingChannel = z.object({
  remote_node_pub: z.string(),
  channel_point: z.string(),
  capacity: int64.default(0n),
  local_balance: int64.default(0n),
  remote_balance: int64.default(0n),
  initiator: z.string().default("INITIATOR_UNKNOWN"),
  private: z.boolean().default(false),
});
const WithChannel = z.object({ channel: PendingChannel });

/** `lnrpcPendingChannelsResponse`. */
export const PendingChannelsResponse = z.object({
  pending_open_channels: z.array(WithChannel).default([]),
  pending_closing_channels: z.array(WithChannel).default([]),
  pending_force_closing_channels: z.array(WithChannel).default([]),
  waiting_close_channels: z.array(WithChannel).default([]),
});

/** `lnrpcChannelPoint`: the reply of `OpenChannelSync`; the txid is one of two forms. */
export const ChannelPointResponse = z.object({
  funding_txid_bytes: bytes.optional(),
  funding_txid_str: z.string().optional(),
  output_index: int32.default(0),
});

/** `lnrpcCloseStatusUpdate`, one record of the `CloseChannel` stream. */
export const CloseStatusUpdate = z.object({
  close_pending: z.object({ txid: bytes.default(new Uint8Array()) }).optional().nullable(),
  chan_close: z.object({ closing_txid: bytes.default(new Uint8Array()) }).optional().nullable(),
  close_instant: z.object({}).loose().optional().nullable(),
});

/** `lnrpcInvoice`, the fields the port needs. */
export const LnrpcInvoice = z.object({
  memo: z.string().default(""),
  r_preimage: bytes.default(new Uint8Array()),
  r_hash: bytes,
  value_msat: int64.default(0n),
  creation_date: int64.default(0n),
  settle_date: int64.default(0n),
  payment_request: z.string().default(""),
  description_hash: bytes.default(new Uint8Array()),
  expiry: int64.default(0n),
  add_index: uint64.default(0n),
  settle_index: uint64.default(0n),
  amt_paid_msat: int64.default(0n),
  state: z.enum(["OPEN", "SETTLED", "CANCELED", "ACCEPTED"]).default("OPEN"),
});
type LnrpcInvoiceT = z.infer<typeof LnrpcInvoice>;

/** `lnrpcAddInvoiceResponse`. */
export const AddInvoiceResponse = z.object({ r_hash: bytes, payment_request: z.string() });

/** `lnrpcListInvoiceResponse`. */
export const ListInvoiceResponse = z.object({ invoices: z.array(LnrpcInvoice).default([]) });

/** `lnrpcPayment`, the record of the router's payment streams. */
export const LnrpcPayment = z.object({
  payment_hash: z.string().regex(HASH_HEX),
  payment_preimage: hexString.default(""),
  value_msat: int64.default(0n),
  fee_msat: int64.default(0n),
  status: z.enum(["UNKNOWN", "IN_FLIGHT", "SUCCEEDED", "FAILED", "INITIATED"]).default("UNKNOWN"),
  failure_reason: z.string().default("FAILURE_REASON_NONE"),
});
type LnrpcPaymentT = z.infer<typeof LnrpcPayment>;

/** One record of a server stream: `{"result": …}` or `{"error": rpcStatus}`. */
export type StreamRecord<T> = { result: T } | { error: z.infer<typeof RpcStatus> };

/**
 * Parse one stream record.
 *
 * @param schema the `result` schema
 * @param line one line of the stream
 * @param label `<what>` for the error
 * @throws {UpstreamError} not JSON, or neither a valid result nor an error
 */
export function parseStreamRecord<T>(
  schema: z.ZodType<T>,
  line: string,
  label: string,
): StreamRecord<T> {
  const json = parseJson(line, label);
  const record = z.union([
    z.object({ error: RpcStatus }),
    z.object({ result: schema }),
  ]).safeParse(json);
  if (!record.success) throw unexpected(label);
  const value = record.data as { error: z.infer<typeof RpcStatus> } | { result: T };
  if ("error" in value && value.error !== undefined) return { error: value.error };
  return { result: (value as { result: T }).result };
}

/**
 * Parse a reply body against its schema.
 *
 * @param schema the expected shape
 * @param json the parsed body
 * @param label `<what>` for the error
 * @throws {UpstreamError} the body does not match
 */
export function parseLndReply<T>(schema: z.ZodType<T>, json: unknown, label: string): T {
  return parseReply(schema, json, "LND", label);
}

/**
 * `JSON.parse` for node replies.
 *
 * @param text the body
 * @param label `<what>` for the error
 * @throws {UpstreamError} not JSON (no cause: the parser quotes the text)
 */
export function parseJson(text: string, label: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw unexpected(label);
  }
}

/**
 * An unusable reply.
 *
 * @param label `<what>` for the message
 */
export function unexpected(label: string): UpstreamError {
  return unexpectedReply("LND", label);
}

/** Error body of an answer that is not 200: `rpcStatus`, or `{"error": rpcStatus}` from a stream. */
const ErrorBody = z.union([z.object({ error: RpcStatus }), RpcStatus]);

/**
 * Translate an LND error answer (`rpcStatus`, gRPC code) into an `AppError`.
 *
 * @param status the HTTP status
 * @param text the body
 * @param label `<what>` for the message
 */
export function errorFromBody(status: number, text: string, label: string): AppError {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return new UpstreamError(`LND ${label}: answered HTTP ${status}`);
  }
  const body = ErrorBody.safeParse(json);
  if (!body.success) return new UpstreamError(`LND ${label}: answered HTTP ${status}`);
  return errorFromStatus("error" in body.data ? body.data.error : body.data, label);
}

/** gRPC codes (google.rpc.Code). */
const CODE = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  // google.rpc.Code 12: the node lacks the method.
  METHOD_MISSING: 12,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** LND reports most refusals as plain errors (gRPC Unknown); these messages mean "not found". */
const NOT_FOUND_TEXT = /not found|unable to find|unable to locate|no such|isn't initiated/i;
/** Macaroon failures also come as plain errors; their text is not passed on. */
const CREDENTIAL_TEXT = /macaroon|permission denied|verification failed|caveat/i;
const MAX_DETAIL = 200;

/**
 * Translate an `rpcStatus` into an `AppError`: the node answered and refused.
 *
 * @param status the decoded `rpcStatus`
 * @param label `<what>` for the message
 */
export function errorFromStatus(
  status: { code: number; message: string },
  label: string,
): AppError {
  const message = sanitize(status.message);
  const detail = `LND ${label}: ${message || `gRPC code ${status.code}`}`;
  const cause = { grpcCode: status.code, message };
  if (
    status.code === CODE.PERMISSION_DENIED || status.code === CODE.UNAUTHENTICATED ||
    CREDENTIAL_TEXT.test(message)
  ) {
    return new UpstreamError(`LND ${label}: the node refused this service's macaroon`, { cause });
  }
  switch (status.code) {
    case CODE.INVALID_ARGUMENT:
    case CODE.FAILED_PRECONDITION:
    case CODE.OUT_OF_RANGE:
      return new ValidationError(detail, { status: 422, cause });
    case CODE.NOT_FOUND:
      return new NotFoundError(detail, { cause });
    case CODE.ALREADY_EXISTS:
    case CODE.ABORTED:
      return new ConflictError(detail, { cause });
    case CODE.METHOD_MISSING:
      return new UnsupportedFeatureError(detail, { cause });
    case CODE.UNAVAILABLE:
    case CODE.RESOURCE_EXHAUSTED:
      return new UnavailableError(detail, { cause });
    case CODE.DEADLINE_EXCEEDED:
      return new UpstreamTimeoutError(`${detail}; the outcome is unknown`, { cause });
    default:
      if (NOT_FOUND_TEXT.test(message)) return new NotFoundError(detail, { cause });
      return new UpstreamError(detail, { cause });
  }
}

/** True for an `rpcStatus` meaning "no such thing" (gRPC NotFound). */
export function isNotFound(status: { code: number }): boolean {
  return status.code === CODE.NOT_FOUND;
}

/** Control characters out, whitespace collapsed, length capped: node text goes into `detail`. */
function sanitize(text: string): string {
  // deno-lint-ignore no-control-regex -- removing control characters is the point
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ")
    .replace(/\s+/g, " ").trim();
  return clean.length <= MAX_DETAIL ? clean : `${clean.slice(0, MAX_DETAIL - 1)}…`;
}

/** Networks as `lnrpcChain.network` names them, to the port's. */
const NETWORKS: Readonly<Record<string, NodeInfo["network"]>> = {
  mainnet: "mainnet",
  testnet: "testnet",
  testnet3: "testnet",
  testnet4: "testnet4",
  signet: "signet",
  regtest: "regtest",
};

/**
 * The port's `NodeInfo` from `lnrpcGetInfoResponse`.
 *
 * @param info the parsed reply
 */
export function toNodeInfo(info: z.infer<typeof GetInfoResponse>): NodeInfo {
  const network = NETWORKS[info.chains[0]?.network ?? ""];
  if (network === undefined) {
    throw new UpstreamError(
      "LND GET /v1/getinfo: the node runs on a network this service does not know",
    );
  }
  return {
    pubkey: info.identity_pubkey,
    alias: info.alias,
    network,
    blockHeight: info.block_height,
    syncedToChain: info.synced_to_chain,
    version: info.version,
    numActiveChannels: info.num_active_channels,
    numPendingChannels: info.num_pending_channels,
    numPeers: info.num_peers,
  };
}

/**
 * Open channels and pending ones, one entry per funding outpoint; a channel
 * that is closing also stays in LND's open list until the close confirms,
 * and then its pending state wins.
 *
 * @param open the `ListChannels` reply
 * @param pending the `PendingChannels` reply
 */
export function toChannels(
  open: z.infer<typeof ListChannelsResponse>,
  pending: z.infer<typeof PendingChannelsResponse>,
): Channel[] {
  const byPoint = new Map<string, Channel>();
  for (const c of open.channels) {
    byPoint.set(c.channel_point, {
      channelPoint: c.channel_point,
      shortChannelId: c.chan_id === 0n ? null : shortChannelId(c.chan_id),
      peerPubkey: c.remote_pubkey,
      state: c.active ? "active" : "inactive",
      capacitySat: c.capacity,
      localBalanceMsat: c.local_balance * 1000n,
      remoteBalanceMsat: c.remote_balance * 1000n,
      private: c.private,
      initiator: c.initiator,
    });
  }
  const add = (list: { channel: z.infer<typeof PendingChannel> }[], state: ChannelState) => {
    for (const { channel: c } of list) {
      byPoint.set(c.channel_point, {
        channelPoint: c.channel_point,
        shortChannelId: byPoint.get(c.channel_point)?.shortChannelId ?? null,
        peerPubkey: c.remote_node_pub,
        state,
        capacitySat: c.capacity,
        localBalanceMsat: c.local_balance * 1000n,
        remoteBalanceMsat: c.remote_balance * 1000n,
        private: c.private,
        initiator: c.initiator === "INITIATOR_LOCAL" || c.initiator === "INITIATOR_BOTH",
      });
    }
  };
  add(pending.pending_open_channels, "opening");
  add(pending.pending_closing_channels, "closing");
  add(pending.waiting_close_channels, "closing");
  add(pending.pending_force_closing_channels, "closing");
  return [...byPoint.values()];
}

/** LND's `chan_id`: block height (3 bytes), tx index (3 bytes), output (2 bytes). */
function shortChannelId(id: bigint): string {
  return `${id >> 40n}x${(id >> 16n) & 0xffffffn}x${id & 0xffffn}`;
}

/**
 * The port's `Invoice` from `lnrpcInvoice`. LND cancels an invoice once it
 * expires, so a canceled (or still open) invoice past its expiry reads as
 * `expired`.
 *
 * @param inv the parsed invoice
 * @param nowMs the current time
 */
export function toInvoice(inv: LnrpcInvoiceT, nowMs: number): Invoice {
  if (inv.r_hash.byteLength !== 32) throw unexpected("invoice");
  const createdAt = new Date(Number(inv.creation_date) * 1000);
  const expiresAt = new Date(Number(inv.creation_date + inv.expiry) * 1000);
  let state: InvoiceState;
  switch (inv.state) {
    case "SETTLED":
      state = "settled";
      break;
    case "CANCELED":
      state = nowMs >= expiresAt.getTime() ? "expired" : "canceled";
      break;
    default: // OPEN, and ACCEPTED (a hold invoice's HTLCs are locked in, not yet settled)
      state = nowMs >= expiresAt.getTime() ? "expired" : "open";
  }
  const descriptionHash = inv.description_hash.byteLength === 32
    ? hex.encode(inv.description_hash)
    : null;
  return {
    paymentHash: hex.encode(inv.r_hash),
    bolt11: inv.payment_request,
    amountMsat: inv.value_msat === 0n ? null : inv.value_msat,
    amountReceivedMsat: state === "settled" ? inv.amt_paid_msat : null,
    description: descriptionHash === null ? inv.memo : null,
    descriptionHash,
    state,
    createdAt,
    expiresAt,
    settledAt: inv.settle_date === 0n ? null : new Date(Number(inv.settle_date) * 1000),
    preimage: inv.r_preimage.byteLength === 32 ? hex.encode(inv.r_preimage) : null,
  };
}

/**
 * The port's `PaymentResult` from an `lnrpcPayment`; in-flight states are
 * `pending`.
 *
 * @param p the parsed payment
 */
export function toPaymentResult(p: LnrpcPaymentT): PaymentResult {
  switch (p.status) {
    case "SUCCEEDED":
      if (!HASH_HEX.test(p.payment_preimage)) throw unexpected("payment");
      return {
        status: "succeeded",
        paymentHash: p.payment_hash,
        preimage: p.payment_preimage,
        amountMsat: p.value_msat,
        feeMsat: p.fee_msat,
      };
    case "FAILED":
      return {
        status: "failed",
        paymentHash: p.payment_hash,
        reason: failureReason(p.failure_reason),
      };
    default:
      return { status: "pending", paymentHash: p.payment_hash };
  }
}

/** `FAILURE_REASON_NO_ROUTE` → `no_route`; `NONE` (no reason given) → `error`. */
function failureReason(reason: string): string {
  const name = reason.replace(/^FAILURE_REASON_/, "").toLowerCase();
  return name === "none" || name === "" ? "error" : name;
}

/**
 * A txid as LND sends it in `bytes` fields (internal byte order) to the
 * usual display hex.
 *
 * @param txid 32 bytes
 */
export function txidFromBytes(txid: Uint8Array): string {
  if (txid.byteLength !== 32) throw unexpected("txid");
  return hex.encode(txid.slice().reverse());
}

/**
 * Standard base64 (what LND expects in JSON `bytes` fields).
 *
 * @param data the bytes
 */
export function encodeBase64(data: Uint8Array): string {
  return base64.encode(data);
}

/**
 * URL-safe base64 with padding: what grpc-gateway accepts for a `bytes`
 * path parameter (`runtime.Bytes` tries standard, then URL-safe base64; the
 * standard alphabet's `/` would split the path).
 *
 * @param data the bytes
 */
export function encodeBase64UrlPadded(data: Uint8Array): string {
  return base64.encode(data).replaceAll("+", "-").replaceAll("/", "_");
}

/** Base64 in either alphabet, padded or not. */
function decodeBase64(text: string): Uint8Array {
  const std = text.replaceAll("-", "+").replaceAll("_", "/");
  return base64.decode(std.padEnd(Math.ceil(std.length / 4) * 4, "="));
}
