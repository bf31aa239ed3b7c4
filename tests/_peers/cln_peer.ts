/**
 * A loopback Core Lightning `clnrest` server over the shared simulated node
 * (`ln_node_state.ts`), for the clnrest adapter and the Lightning contract
 * table. It serves `POST /v1/<command>` as clnrest does (201 with the result;
 * 500 with `{code, message}` for a command error; 404 for an unknown
 * command; 403 without a `Rune` header, 401 with a wrong one), over plain
 * HTTP on 127.0.0.1: real clnrest serves HTTPS with its own certificate, and
 * that trust is the HTTP client's business, tested with it.
 *
 * Every request's parameters are validated against the command's `request`
 * schema and every result against its `response` schema
 * (`tests/vectors/cln/schemas/`, ElementsProject/lightning `doc/schemas`),
 * with ajv. CLN's own types (`msat`, `pubkey`, `short_channel_id`, ...) are
 * checked as CLN's test suite does (`contrib/pyln-testing`, `_extra_validator`):
 * in requests `msat` also takes `"<n>msat"`/`"<n>sat"`/`"<x>btc"` strings, in
 * responses only integers. A mismatch is recorded in `violations` (and a bad
 * request answered with -32602, as lightningd would); tests assert none.
 *
 * `connect` is served without a schema (its `connect.json` is not among the
 * shared vectors); its one parameter is checked by hand.
 *
 * @module
 */
import { Ajv, type AnySchemaObject, type ErrorObject, type SchemaValidateFunction } from "ajv";
import { bech32, hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { ClnRestBackend, type ClnRestOptions } from "../../src/layer2/lightning/cln_rest.ts";
import type { LightningBackend } from "../../src/layer2/lightning/backend.ts";
import { HttpClient } from "../../src/net/http_client.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import { encodeBolt11 } from "../_helpers/bolt11_encode.ts";
import { type FaultMode, type FaultRule, startFaultServer } from "./fault_server.ts";
import {
  type LnChannel,
  type LnInvoice,
  type LnNode,
  type LnPayment,
  newPreimage,
} from "./ln_node_state.ts";
import closeDoc from "../vectors/cln/schemas/close.json" with { type: "json" };
import fundchannelDoc from "../vectors/cln/schemas/fundchannel.json" with { type: "json" };
import getinfoDoc from "../vectors/cln/schemas/getinfo.json" with { type: "json" };
import invoiceDoc from "../vectors/cln/schemas/invoice.json" with { type: "json" };
import listfundsDoc from "../vectors/cln/schemas/listfunds.json" with { type: "json" };
import listinvoicesDoc from "../vectors/cln/schemas/listinvoices.json" with { type: "json" };
import listpaysDoc from "../vectors/cln/schemas/listpays.json" with { type: "json" };
import listpeerchannelsDoc from "../vectors/cln/schemas/listpeerchannels.json" with {
  type: "json",
};
import payDoc from "../vectors/cln/schemas/pay.json" with { type: "json" };
import waitanyinvoiceDoc from "../vectors/cln/schemas/waitanyinvoice.json" with { type: "json" };
import xpayDoc from "../vectors/cln/schemas/xpay.json" with { type: "json" };
import metaSchema from "../vectors/cln/rpc-schema-draft.json" with { type: "json" };

// ---------------------------------------------------------------------------
// Schemas

/** One command's schema document, as in `doc/schemas/<command>.json`. */
export interface ClnSchemaDoc {
  rpc: string;
  request: AnySchemaObject;
  response: AnySchemaObject;
  examples?: { request: { id: string; method: string; params: unknown }; response: unknown }[];
}

/** The schema documents the peer serves, by command. */
export const CLN_SCHEMAS = {
  close: closeDoc,
  fundchannel: fundchannelDoc,
  getinfo: getinfoDoc,
  invoice: invoiceDoc,
  listfunds: listfundsDoc,
  listinvoices: listinvoicesDoc,
  listpays: listpaysDoc,
  listpeerchannels: listpeerchannelsDoc,
  pay: payDoc,
  waitanyinvoice: waitanyinvoiceDoc,
  xpay: xpayDoc,
} as unknown as Readonly<Record<ClnCommand, ClnSchemaDoc>>;

/** Commands with a schema. */
export type ClnCommand =
  | "close"
  | "fundchannel"
  | "getinfo"
  | "invoice"
  | "listfunds"
  | "listinvoices"
  | "listpays"
  | "listpeerchannels"
  | "pay"
  | "waitanyinvoice"
  | "xpay";

/** Every command with a schema, for tables. */
export const CLN_COMMANDS = Object.keys(CLN_SCHEMAS) as ClnCommand[];

const HEX = /^[0-9a-fA-F]*$/;
const MSAT_STRING = /^(\d+msat|\d+(\.\d{1,3})?sat|\d+(\.\d{1,11})?btc)$/;
const NAMED_FEERATES = new Set([
  "urgent",
  "normal",
  "slow",
  "minimum",
  "opening",
  "mutual_close",
  "unilateral_close",
  "delayed_to_us",
  "htlc_resolution",
  "penalty",
  "min_acceptable",
  "max_acceptable",
]);

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isHex = (v: unknown): v is string => typeof v === "string" && HEX.test(v);
const uint = (bits: number) => (v: unknown) => isInt(v) && v >= 0 && v < 2 ** bits;
const hex32 = (v: unknown) => isHex(v) && v.length === 64;
const msatRequest = (v: unknown) =>
  (isInt(v) && v >= 0) || (typeof v === "string" && MSAT_STRING.test(v));

function isScid(v: unknown): boolean {
  if (typeof v !== "string") return false;
  const parts = v.split("x");
  return parts.length === 3 && parts.every((p) => /^\d+$/.test(p)) &&
    Number(parts[0]) < 2 ** 24 && Number(parts[1]) < 2 ** 24 && Number(parts[2]) < 2 ** 16;
}

/** CLN's types as `contrib/pyln-testing` checks them; `msat` depends on the direction. */
function clnTypeCheck(direction: "request" | "response"): Record<string, (v: unknown) => boolean> {
  const msat = direction === "request" ? msatRequest : (v: unknown) => isInt(v) && v >= 0;
  return {
    hex: isHex,
    hash: hex32,
    secret: hex32,
    txid: hex32,
    u64: uint(64),
    u32: uint(32),
    u16: uint(16),
    u8: uint(8),
    pubkey: (v) => isHex(v) && v.length === 66 && (v.startsWith("02") || v.startsWith("03")),
    signature: (v) => isHex(v) && v.length <= 144,
    bip340sig: (v) => isHex(v) && v.length === 128,
    msat,
    sat: msatRequest,
    msat_or_all: (v) => v === "all" || msatRequest(v),
    msat_or_any: (v) => v === "any" || msatRequest(v),
    sat_or_all: (v) => v === "all" || msatRequest(v),
    currency: (v) => typeof v === "string" && /^\d+(\.\d+)?[A-Z]{3}$/.test(v),
    short_channel_id: isScid,
    short_channel_id_dir: (v) =>
      typeof v === "string" && /\/[01]$/.test(v) && isScid(v.slice(0, -2)),
    outpoint: (v) => {
      if (typeof v !== "string") return false;
      const m = /^([0-9a-fA-F]{64}):(\d+)$/.exec(v);
      return m !== null && Number(m[2]) < 2 ** 32;
    },
    feerate: (v) =>
      isInt(v) ||
      (typeof v === "string" && (NAMED_FEERATES.has(v) || /^\d+per(kw|kb)$/.test(v))),
    outputdesc: (v) =>
      typeof v === "object" && v !== null && !Array.isArray(v) &&
      Object.values(v).every((x) => x === "all" || msatRequest(x)),
  };
}

/** JSON Schema keywords whose value is a schema, or a map or list of schemas. */
const SUBSCHEMA = new Set(["items", "additionalProperties", "if", "then", "else", "not"]);
const SCHEMA_MAPS = new Set(["properties", "patternProperties"]);
const SCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf"]);

/**
 * A copy of a CLN schema that plain JSON Schema understands: a CLN type
 * becomes the `clnType` keyword, and `description` arrays (annotations,
 * strings in JSON Schema) are dropped. Only schema positions are rewritten,
 * so a property named `type` stays a property.
 */
function toJsonSchema(schema: unknown): unknown {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "description" && Array.isArray(value)) continue;
    if (key === "type" && typeof value === "string" && !STANDARD_TYPES.has(value)) {
      out.clnType = value;
    } else if (SUBSCHEMA.has(key)) {
      out[key] = Array.isArray(value) ? value.map(toJsonSchema) : toJsonSchema(value);
    } else if (SCHEMA_MAPS.has(key) && typeof value === "object" && value !== null) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, sub]) => [name, toJsonSchema(sub)]),
      );
    } else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) {
      out[key] = value.map(toJsonSchema);
    } else out[key] = value;
  }
  return out;
}

const STANDARD_TYPES = new Set([
  "array",
  "boolean",
  "integer",
  "null",
  "number",
  "object",
  "string",
]);

function makeAjv(direction: "request" | "response"): Ajv {
  // strict: false lets CLN's own keywords (added, deprecated, hidden, oneOfMany, ...) pass.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false });
  const checks = clnTypeCheck(direction);
  const validate: SchemaValidateFunction = (type: string, data: unknown) => {
    const check = checks[type];
    const ok = check !== undefined && check(data);
    validate.errors = ok ? [] : [{
      keyword: "clnType",
      message: check === undefined ? `unknown CLN type "${type}"` : `must be a CLN "${type}"`,
      params: { type },
    }];
    return ok;
  };
  ajv.addKeyword({ keyword: "clnType", schemaType: "string", errors: true, validate });
  return ajv;
}

const ajvs = { request: makeAjv("request"), response: makeAjv("response") };
const compiled = new Map<string, ReturnType<Ajv["compile"]>>();

function validator(command: ClnCommand, direction: "request" | "response") {
  const key = `${command} ${direction}`;
  let v = compiled.get(key);
  if (v === undefined) {
    v = ajvs[direction].compile(toJsonSchema(CLN_SCHEMAS[command][direction]) as AnySchemaObject);
    compiled.set(key, v);
  }
  return v;
}

function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const params = e.keyword === "additionalProperties"
      ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})`
      : "";
    return `${e.instancePath === "" ? "/" : e.instancePath} ${e.message ?? e.keyword}${params}`;
  });
}

/**
 * Check a command's parameters against its `request` schema.
 *
 * @param command the command
 * @param params named parameters
 * @returns one line per problem; empty when valid
 */
export function validateClnRequest(command: ClnCommand, params: unknown): string[] {
  const v = validator(command, "request");
  return v(params) ? [] : describeErrors(v.errors);
}

/**
 * Check a command's result against its `response` schema.
 *
 * @param command the command
 * @param result the result object as sent (parsed back from JSON)
 * @returns one line per problem; empty when valid
 */
export function validateClnResponse(command: ClnCommand, result: unknown): string[] {
  const v = validator(command, "response");
  return v(result) ? [] : describeErrors(v.errors);
}

/** The outcome of checking one schema example. */
export interface ClnExampleCheck {
  /** The example's id, e.g. `example:xpay#1`. */
  id: string;
  /** Its params were positional and were named in the schema's property order. */
  positional: boolean;
  requestErrors: string[];
  responseErrors: string[];
}

/**
 * Run every example of a command's schema document through the validators.
 * Positional params (an array) are named in the order of the request
 * schema's `properties`, which is CLN's parameter order.
 *
 * @param command the command
 */
export function checkClnExamples(command: ClnCommand): ClnExampleCheck[] {
  const doc = CLN_SCHEMAS[command];
  const order = Object.keys((doc.request.properties ?? {}) as Record<string, unknown>);
  return (doc.examples ?? []).map((ex) => {
    const positional = Array.isArray(ex.request.params);
    let params = ex.request.params;
    if (Array.isArray(params)) {
      params = Object.fromEntries(params.map((value, i) => [order[i] ?? `#${i}`, value]));
    }
    return {
      id: ex.request.id,
      positional,
      requestErrors: validateClnRequest(command, params),
      responseErrors: validateClnResponse(command, ex.response),
    };
  });
}

let metaValidator: ReturnType<Ajv["compile"]> | undefined;

/**
 * Check a command's schema document against CLN's meta-schema
 * (`rpc-schema-draft.json`).
 *
 * @param command the command
 * @returns one line per problem; empty when valid
 */
export function checkClnSchemaDoc(command: ClnCommand): string[] {
  return validateClnSchemaDoc(CLN_SCHEMAS[command]);
}

/**
 * Check any document against CLN's meta-schema (`rpc-schema-draft.json`).
 *
 * @param doc a command schema document
 * @returns one line per problem; empty when valid
 */
export function validateClnSchemaDoc(doc: unknown): string[] {
  // The file names draft-07 as https://json-schema.org/...; ajv knows it under http://.
  metaValidator ??= new Ajv({
    strict: false,
    allErrors: true,
    validateFormats: false,
    logger: false,
  })
    .compile({ ...metaSchema, $schema: "http://json-schema.org/draft-07/schema#" });
  return metaValidator(doc) ? [] : describeErrors(metaValidator.errors);
}

// ---------------------------------------------------------------------------
// BOLT11, as little as the peer needs (independent of src/)

const CURRENCY_NETWORK: ReadonlyArray<readonly [string, string]> = [
  ["bcrt", "regtest"],
  ["bc", "mainnet"],
  ["tbs", "signet"],
  ["tb", "testnet"],
];
const MULTIPLIER_MSAT: Readonly<Record<string, bigint>> = {
  "": 100_000_000_000n,
  m: 100_000_000n,
  u: 100_000n,
  n: 100n,
};

/** Payment hash (first `p` field of 52 words) and amount of a BOLT11 invoice; null if unreadable. */
function readBolt11(text: string): { paymentHash: string; amountMsat: bigint | null } | null {
  try {
    const { prefix, words } = bech32.decode(text.toLowerCase() as `${string}1${string}`, false);
    const hrp = /^ln([a-z]+?)(\d+)?([munp])?$/.exec(prefix);
    if (hrp === null || !CURRENCY_NETWORK.some(([c]) => c === hrp[1])) return null;
    let amountMsat: bigint | null = null;
    if (hrp[2] !== undefined) {
      const n = BigInt(hrp[2]);
      if (hrp[3] === "p") {
        if (n % 10n !== 0n) return null;
        amountMsat = n / 10n;
      } else amountMsat = n * (MULTIPLIER_MSAT[hrp[3] ?? ""] as bigint);
    }
    const end = words.length - 104; // the signature: 65 bytes
    for (let i = 7; i + 3 <= end;) {
      const tag = words[i]!;
      const len = words[i + 1]! * 32 + words[i + 2]!;
      i += 3;
      if (tag === 1 && len === 52) {
        const bytes = bech32.fromWordsUnsafe(words.slice(i, i + len));
        if (bytes !== undefined) return { paymentHash: hex.encode(bytes), amountMsat };
      }
      i += len;
    }
    return null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// The peer

/** Options of {@linkcode startClnPeer}. */
export interface ClnPeerOptions {
  /** The rune the peer accepts (default: a random one, see `ClnPeer.rune`). */
  rune?: string;
  /**
   * Whether the node has `xpay` (default true). Without it `/v1/xpay` answers
   * 404 with -32601, as clnrest does for an unknown command.
   */
  xpay?: boolean;
  /** Status of a successful answer: 201 (current clnrest, the default) or 200 (older releases). */
  successStatus?: 200 | 201;
}

/** A JSON-RPC error the peer should answer once, instead of running the command. */
export interface ClnInjectedError {
  code: number;
  message: string;
  data?: unknown;
}

/** A running clnrest peer. */
export interface ClnPeer extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The rune it accepts. */
  readonly rune: string;
  /** Schema mismatches and protocol mistakes seen so far; tests assert it stays empty. */
  readonly violations: string[];
  /** Every command received (with a valid rune), in order. */
  readonly calls: { command: string; params: Record<string, unknown> }[];
  /** HTTP requests that reached the server, in every fault mode. */
  readonly requests: number;
  /** Switch the transport fault mode (see `fault_server.ts`); `ok` serves normally. */
  setFault(mode: FaultMode | FaultRule): void;
  /** Answer the next call of `command` with this error. */
  failNext(command: string, error: ClnInjectedError): void;
  /** Stop: long polls and payments in flight are released. */
  close(): Promise<void>;
}

class RpcFailure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

type Params = Record<string, unknown>;

const CLN_NETWORK = {
  mainnet: "bitcoin",
  testnet: "testnet",
  signet: "signet",
  regtest: "regtest",
};

/**
 * Start a clnrest peer on 127.0.0.1 serving `node`.
 *
 * @param node the simulated node
 * @param opts rune and whether the node has `xpay`
 */
export function startClnPeer(node: LnNode, opts: ClnPeerOptions = {}): ClnPeer {
  const rune = opts.rune ?? hex.encode(crypto.getRandomValues(new Uint8Array(32)));
  const hasXpay = opts.xpay ?? true;
  const successStatus = opts.successStatus ?? 201;
  const violations: string[] = [];
  const calls: ClnPeer["calls"] = [];
  const injected = new Map<string, ClnInjectedError[]>();
  /** Releases waiting handlers (long polls, payments in flight) when the peer closes. */
  const releases = new Set<() => void>();
  let closed = false;
  const connected = new Set(node.state.channels.map((c) => c.peerPubkey));
  const s = node.state;

  /** Resolves with a matching event, or null on timeout / close. */
  function waitFor<T>(
    subscribe: (listener: (value: T) => void) => () => void,
    match: (value: T) => boolean,
    timeoutMs: number | null,
  ): Promise<T | null> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (value: T | null) => {
        unsubscribe();
        clearTimeout(timer);
        releases.delete(release);
        resolve(value);
      };
      const release = () => done(null);
      const unsubscribe = subscribe((v) => {
        if (match(v)) done(v);
      });
      releases.add(release);
      if (closed) done(null);
      else if (timeoutMs !== null) timer = setTimeout(release, timeoutMs);
    });
  }

  function invoiceJson(inv: LnInvoice): Params {
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = inv.createdAt + inv.expirySeconds;
    const status = inv.state === "settled"
      ? "paid"
      : inv.state === "expired" || now >= expiresAt
      ? "expired"
      : "unpaid";
    const out: Params = {
      label: inv.label,
      bolt11: inv.bolt11,
      payment_hash: inv.paymentHash,
      status,
      expires_at: expiresAt,
      created_index: inv.addIndex,
    };
    if (inv.description !== null && inv.descriptionHash === null) {
      out.description = inv.description;
    }
    if (inv.amountMsat !== null) out.amount_msat = inv.amountMsat;
    if (status === "paid") {
      out.pay_index = inv.settleIndex;
      out.amount_received_msat = inv.receivedMsat;
      out.paid_at = inv.settledAt;
      out.payment_preimage = inv.preimage;
      out.updated_index = inv.settleIndex;
    }
    return out;
  }

  /** Invoices CLN would list: it has no cancelled ones (it deletes them). */
  const listable = () => [...s.invoices.values()].filter((i) => i.state !== "canceled");

  function payJson(p: LnPayment): Params {
    const out: Params = {
      payment_hash: p.paymentHash,
      status: p.status === "inflight"
        ? "pending"
        : p.status === "succeeded"
        ? "complete"
        : "failed",
      created_at: p.createdAt,
      created_index: p.index,
      bolt11: p.bolt11,
    };
    if (p.status === "succeeded") {
      out.amount_msat = p.amountMsat;
      out.amount_sent_msat = p.amountMsat + p.feeMsat;
      out.preimage = p.preimage;
      out.completed_at = p.createdAt;
    } else if (p.status === "failed") {
      out.amount_sent_msat = p.amountMsat;
    }
    return out;
  }

  function findChannel(id: string): LnChannel | undefined {
    return s.channels.find((c) =>
      channelId(c.channelPoint) === id || c.shortChannelId === id || c.peerPubkey === id
    );
  }

  /** The failure a payment error code stands for, per command (their schemas' `errors`). */
  function payFailure(command: "xpay" | "pay", reason: string): RpcFailure {
    switch (reason) {
      case "no_route":
        return new RpcFailure(205, "Failed: could not find a route");
      case "incorrect_payment_details":
        return new RpcFailure(
          203,
          "Destination said it doesn't know invoice: incorrect_or_unknown_payment_details",
        );
      case "timeout":
        return command === "pay"
          ? new RpcFailure(210, "Payment timed out without a payment in progress")
          : new RpcFailure(209, "Timed out");
      default:
        return new RpcFailure(command === "pay" ? -1 : 209, `Payment failed: ${reason}`);
    }
  }

  async function pay(command: "xpay" | "pay", p: Params): Promise<Params> {
    const invstring = String(command === "xpay" ? p.invstring : p.bolt11);
    const facts = readBolt11(invstring);
    if (facts === null) throw new RpcFailure(-32602, "Invalid bolt11: could not decode");
    const given = p.amount_msat === undefined ? null : msatParam(p.amount_msat);
    if (facts.amountMsat === null && given === null) {
      throw new RpcFailure(-32602, "amount_msat: Must specify amount for an invoice without one");
    }
    if (facts.amountMsat !== null && given !== null) {
      throw new RpcFailure(-32602, "amount_msat: Invoice already has an amount");
    }
    const amountMsat = (facts.amountMsat ?? given) as bigint;
    const hash = facts.paymentHash;
    const before = s.payments.get(hash)?.status;
    const outcome = s.outcomes.get(hash);
    const maxfee = p.maxfee === undefined ? null : msatParam(p.maxfee);
    if (
      before !== "succeeded" && before !== "inflight" && outcome?.outcome === "succeed" &&
      maxfee !== null && outcome.feeMsat > maxfee
    ) {
      throw command === "pay"
        ? new RpcFailure(206, "Route wanted fee more than maxfee")
        : new RpcFailure(205, "Failed: could not find a route within the fee budget");
    }
    let payment = node.startPayment({ paymentHash: hash, bolt11: invstring, amountMsat });
    if (before === "succeeded" && command === "xpay") {
      throw new RpcFailure(219, "Already paid this invoice successfully");
    }
    if (before === "inflight") throw new RpcFailure(-1, "Payment already in progress");
    if (payment.status === "inflight") {
      const settled = await waitFor<LnPayment>(
        (l) => node.onPayment(l),
        (x) => x.paymentHash === hash && x.status !== "inflight",
        null,
      );
      if (settled === null) throw new RpcFailure(-1, "lightningd is shutting down");
      payment = settled;
    }
    if (payment.status === "failed") {
      throw payFailure(command, payment.failureReason ?? "error");
    }
    const sent = payment.amountMsat + payment.feeMsat;
    if (command === "xpay") {
      return {
        payment_preimage: payment.preimage,
        failed_parts: 0,
        successful_parts: 1,
        amount_msat: payment.amountMsat,
        amount_sent_msat: sent,
      };
    }
    return {
      payment_preimage: payment.preimage,
      payment_hash: hash,
      created_at: payment.createdAt,
      parts: 1,
      amount_msat: payment.amountMsat,
      amount_sent_msat: sent,
      status: "complete",
    };
  }

  const commands: Record<string, (p: Params) => Params | Promise<Params>> = {
    getinfo() {
      const byState = (...states: LnChannel["state"][]) =>
        s.channels.filter((c) => states.includes(c.state)).length;
      const out: Params = {
        id: s.info.pubkey,
        alias: s.info.alias,
        color: s.info.pubkey.slice(2, 8),
        num_peers: s.info.numPeers,
        num_pending_channels: byState("opening"),
        num_active_channels: byState("active", "inactive"),
        num_inactive_channels: byState("closing", "closed"),
        address: [],
        binding: [{ type: "ipv4", address: "127.0.0.1", port: 9735 }],
        version: s.info.version,
        blockheight: s.info.blockHeight,
        network: CLN_NETWORK[s.info.network],
        fees_collected_msat: 0,
        "lightning-dir": `/tmp/cln-peer/${CLN_NETWORK[s.info.network]}`,
      };
      if (!s.info.synced) out.warning_bitcoind_sync = "Bitcoind is not up-to-date with network.";
      return out;
    },
    listfunds() {
      const outputs: Params[] = [];
      const output = (amountSat: bigint, status: "confirmed" | "unconfirmed", n: number) => {
        const o: Params = {
          txid: "cd".repeat(32),
          output: n,
          amount_msat: amountSat * 1000n,
          scriptpubkey: `0014${"11".repeat(20)}`,
          status,
          reserved: false,
        };
        if (status === "confirmed") o.blockheight = s.info.blockHeight - 6;
        outputs.push(o);
      };
      if (s.onchain.confirmedSat > 0n) output(s.onchain.confirmedSat, "confirmed", 0);
      if (s.onchain.unconfirmedSat > 0n) output(s.onchain.unconfirmedSat, "unconfirmed", 1);
      const channels = s.channels.map((c) => {
        const [txid, vout] = c.channelPoint.split(":");
        const out: Params = {
          peer_id: c.peerPubkey,
          connected: isConnected(c),
          state: clnState(c),
          channel_id: channelId(c.channelPoint),
          our_amount_msat: c.localMsat,
          amount_msat: c.capacitySat * 1000n,
          funding_txid: txid,
          funding_output: Number(vout),
        };
        if (c.shortChannelId !== null) out.short_channel_id = c.shortChannelId;
        return out;
      });
      return { outputs, channels };
    },
    listpeerchannels(p) {
      const channels = s.channels
        .filter((c) => p.id === undefined || c.peerPubkey === p.id)
        .map((c) => {
          const [txid, vout] = c.channelPoint.split(":");
          const out: Params = {
            peer_id: c.peerPubkey,
            peer_connected: isConnected(c),
            state: clnState(c),
            opener: c.initiator ? "local" : "remote",
            features: ["option_static_remotekey", "option_anchors"],
            private: c.private,
            channel_id: channelId(c.channelPoint),
            funding_txid: txid,
            funding_outnum: Number(vout),
            to_us_msat: c.localMsat,
            total_msat: c.capacitySat * 1000n,
            spendable_msat: c.localMsat,
            receivable_msat: c.remoteMsat,
          };
          if (isConnected(c)) out.reestablished = true;
          if (c.shortChannelId !== null) {
            out.short_channel_id = c.shortChannelId;
            out.direction = 0;
          }
          return out;
        });
      return { channels };
    },
    connect(p) {
      const m = typeof p.id === "string" ? /^(0[23][0-9a-f]{64})@(.+):(\d+)$/.exec(p.id) : null;
      if (m === null || Object.keys(p).some((k) => k !== "id")) {
        violations.push(`connect request: expected only "id" as "pubkey@host:port"`);
        throw new RpcFailure(-32602, "id: should be a node id");
      }
      connected.add(m[1]!);
      return {
        id: m[1],
        features: "08a0",
        direction: "out",
        address: { type: "ipv4", address: "127.0.0.1", port: Number(m[3]) },
      };
    },
    fundchannel(p) {
      const peer = String(p.id);
      if (!connected.has(peer)) throw new RpcFailure(-1, "Unknown peer");
      const amountSat = p.amount === "all"
        ? s.onchain.confirmedSat
        : msatParam(p.amount, "sat") / 1000n;
      if (amountSat < 546n) throw new RpcFailure(302, "Amount is below the dust limit");
      if (amountSat > s.onchain.confirmedSat) {
        throw new RpcFailure(301, "Could not afford the channel using all confirmed outputs");
      }
      const pushMsat = p.push_msat === undefined ? 0n : msatParam(p.push_msat);
      s.onchain.confirmedSat -= amountSat;
      const txid = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
      const channel: LnChannel = {
        channelPoint: `${txid}:0`,
        shortChannelId: null,
        peerPubkey: peer,
        state: "opening",
        capacitySat: amountSat,
        localMsat: amountSat * 1000n - pushMsat,
        remoteMsat: pushMsat,
        private: p.announce === false,
        initiator: true,
      };
      s.channels.push(channel);
      return {
        tx: `02000000${"00".repeat(60)}`,
        txid,
        outnum: 0,
        channel_id: channelId(channel.channelPoint),
        channel_type: { bits: [12, 22], names: ["static_remotekey/even", "anchors/even"] },
      };
    },
    async close(p) {
      const channel = findChannel(String(p.id));
      if (channel === undefined || channel.state === "closed") {
        throw new RpcFailure(-32602, "id: Short channel ID not found");
      }
      if (channel.state === "opening") {
        channel.state = "closed";
        return { type: "unopened" };
      }
      const online = isConnected(channel);
      const timeout = typeof p.unilateraltimeout === "number" ? p.unilateraltimeout : 172_800;
      if (!online && timeout === 0) {
        // No mutual close without the peer, and no unilateral fallback: wait (until the peer closes).
        await waitFor<never>(() => () => {}, () => false, null);
        throw new RpcFailure(-1, "lightningd is shutting down");
      }
      channel.state = "closing";
      const txid = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
      return {
        type: online ? "mutual" : "unilateral",
        txs: [`02000000${"00".repeat(60)}`],
        txids: [txid],
      };
    },
    invoice(p) {
      const label = String(p.label);
      if (listable().some((i) => i.label === label)) {
        throw new RpcFailure(900, `Duplicate label '${label}'`);
      }
      const amountMsat = p.amount_msat === "any" ? null : msatParam(p.amount_msat);
      const description = String(p.description);
      const expirySeconds = typeof p.expiry === "number" ? p.expiry : 604_800;
      const { preimage, paymentHash } = newPreimage();
      const paymentSecret = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
      const createdAt = Math.floor(Date.now() / 1000);
      const descriptionHash = p.deschashonly === true
        ? hex.encode(sha256(new TextEncoder().encode(description)))
        : null;
      const bolt11 = encodeBolt11({
        network: s.info.network,
        amountMsat,
        paymentHash,
        paymentSecret,
        ...(descriptionHash === null ? { description } : { descriptionHash }),
        expirySeconds,
        timestamp: createdAt,
        nodeKey: s.nodeKey,
      });
      const inv = node.addInvoice({
        paymentHash,
        preimage,
        paymentSecret,
        bolt11,
        amountMsat,
        receivedMsat: null,
        description: descriptionHash === null ? description : null,
        descriptionHash,
        state: "open",
        createdAt,
        expirySeconds,
        settledAt: null,
        label,
      });
      return {
        bolt11,
        payment_hash: paymentHash,
        payment_secret: paymentSecret,
        expires_at: createdAt + expirySeconds,
        created_index: inv.addIndex,
      };
    },
    listinvoices(p) {
      let list = listable().sort((a, b) => a.addIndex - b.addIndex);
      if (p.label !== undefined) list = list.filter((i) => i.label === String(p.label));
      if (p.payment_hash !== undefined) list = list.filter((i) => i.paymentHash === p.payment_hash);
      if (p.invstring !== undefined) list = list.filter((i) => i.bolt11 === p.invstring);
      if (p.index === "updated") {
        violations.push("listinvoices: the peer does not model index=updated");
      }
      if (p.start !== undefined) list = list.filter((i) => i.addIndex >= Number(p.start));
      if (p.limit !== undefined) list = list.slice(0, Number(p.limit));
      return { invoices: list.map(invoiceJson) };
    },
    async waitanyinvoice(p) {
      const last = typeof p.lastpay_index === "number" ? p.lastpay_index : 0;
      const next = () =>
        listable()
          .filter((i) => i.state === "settled" && i.settleIndex > last)
          .sort((a, b) => a.settleIndex - b.settleIndex)[0];
      const ready = next();
      if (ready !== undefined) return invoiceJson(ready);
      const timeout = typeof p.timeout === "number" ? p.timeout : null;
      if (timeout === 0) throw new RpcFailure(904, "Timed out");
      const paid = await waitFor<LnInvoice>(
        (l) => node.onInvoice(l),
        (i) => i.state === "settled" && i.settleIndex > last,
        timeout === null ? null : timeout * 1000,
      );
      if (paid === null) throw new RpcFailure(904, "Timed out");
      return invoiceJson(next() ?? paid);
    },
    xpay: (p) => pay("xpay", p),
    pay: (p) => pay("pay", p),
    listpays(p) {
      let list = [...s.payments.values()].sort((a, b) => a.index - b.index);
      if (p.payment_hash !== undefined) list = list.filter((x) => x.paymentHash === p.payment_hash);
      if (p.bolt11 !== undefined) list = list.filter((x) => x.bolt11 === p.bolt11);
      return { pays: list.map(payJson) };
    },
  };

  async function handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const m = /^\/v1\/([a-z0-9_-]+)$/.exec(path);
    if (req.method !== "POST" || m === null) {
      violations.push(`unexpected request ${req.method} ${path}`);
      return rpcError(404, -32601, "Path not registered");
    }
    const command = m[1]!;
    const given = req.headers.get("rune");
    if (given === null) return rpcError(403, 1501, "Not authorized: Missing rune");
    if (given !== rune) return rpcError(401, 1502, "Rune is not valid");
    let params: Params;
    try {
      const text = await req.text();
      const parsed: unknown = text === "" ? {} : JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new TypeError("not an object");
      }
      params = parsed as Params;
    } catch {
      violations.push(`${command}: body is not a JSON object of named parameters`);
      return rpcError(500, -32602, "Could not parse params as object");
    }
    calls.push({ command, params });
    const run = commands[command];
    if (run === undefined || (command === "xpay" && !hasXpay)) {
      return rpcError(404, -32601, `Unknown command '${command}'`);
    }
    const schema = command in CLN_SCHEMAS ? command as ClnCommand : null;
    if (schema !== null) {
      const problems = validateClnRequest(schema, params);
      if (problems.length > 0) {
        violations.push(...problems.map((e) => `${command} request: ${e}`));
        return rpcError(500, -32602, `Invalid params: ${problems.join("; ")}`);
      }
    }
    const queued = injected.get(command)?.shift();
    if (queued !== undefined) return rpcError(500, queued.code, queued.message, queued.data);
    let result: Params;
    try {
      result = await run(params);
    } catch (err) {
      if (err instanceof RpcFailure) return rpcError(500, err.code, err.message);
      violations.push(`${command}: peer failed: ${err instanceof Error ? err.message : err}`);
      return rpcError(500, -1, "peer failure");
    }
    const body = stringify(result);
    if (schema !== null) {
      const problems = validateClnResponse(schema, JSON.parse(body));
      violations.push(...problems.map((e) => `${command} response: ${e}`));
    }
    return new Response(body, {
      status: successStatus,
      headers: { "content-type": "application/json" },
    });
  }

  const server = startFaultServer(handle);
  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    for (const release of [...releases]) release();
    await server.close();
  }
  return {
    url: server.url,
    rune,
    violations,
    calls,
    get requests() {
      return server.requests;
    },
    setFault: (mode) => server.setMode(mode),
    failNext(command, error) {
      const list = injected.get(command) ?? [];
      list.push(error);
      injected.set(command, list);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function rpcError(status: number, code: number, message: string, data?: unknown): Response {
  const body = data === undefined ? { code, message } : { code, message, data };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** JSON with bigints written as exact integers. */
function stringify(value: unknown): string {
  const raw = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
  return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? raw(v.toString()) : v);
}

/** An msat (or, with `unit` sat, a sat) request value in msat; -32602 when unreadable. */
function msatParam(value: unknown, unit: "msat" | "sat" = "msat"): bigint {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
    return BigInt(value) * (unit === "sat" ? 1000n : 1n);
  }
  if (typeof value === "string") {
    const m = /^(\d+)(msat|sat)$/.exec(value);
    if (m !== null) return BigInt(m[1]!) * (m[2] === "sat" ? 1000n : 1n);
  }
  throw new RpcFailure(-32602, `Invalid amount ${JSON.stringify(value)}`);
}

function clnState(c: LnChannel): string {
  switch (c.state) {
    case "opening":
      return "CHANNELD_AWAITING_LOCKIN";
    case "active":
    case "inactive":
      return "CHANNELD_NORMAL";
    case "closing":
      return "CHANNELD_SHUTTING_DOWN";
    case "closed":
      return "ONCHAIN";
  }
}

function isConnected(c: LnChannel): boolean {
  return c.state !== "inactive" && c.state !== "closed";
}

/** BOLT 2 `channel_id`: the funding txid (internal byte order) XOR the output index. */
function channelId(channelPoint: string): string {
  const [txid, vout] = channelPoint.split(":");
  const bytes = hex.decode(txid!).reverse();
  const n = Number(vout);
  bytes[30]! ^= n >> 8;
  bytes[31]! ^= n & 0xff;
  return hex.encode(bytes);
}

// ---------------------------------------------------------------------------
// Harness

/** Options of {@linkcode clnHarness}. */
export interface ClnHarnessOptions {
  peer?: ClnPeerOptions;
  backend?: ClnRestOptions;
  /** Client settings to change. */
  upstream?: Partial<UpstreamOptions>;
}

/** The clnrest adapter wired to a peer over a real `HttpClient`. */
export interface ClnHarness extends AsyncDisposable {
  /** Test-name prefix. */
  label: string;
  backend: LightningBackend;
  peer: ClnPeer;
  client: HttpClient;
  node: LnNode;
}

/**
 * `ClnRestBackend` over a clnrest peer serving `node`, through an
 * `HttpClient` named `cln` with test deadlines (2 s, one retry, fast
 * back-off) that sends the peer's rune.
 *
 * @param node the simulated node
 * @param opts peer, adapter and client settings
 */
export function clnHarness(node: LnNode, opts: ClnHarnessOptions = {}): ClnHarness {
  const peer = startClnPeer(node, opts.peer);
  const upstream: UpstreamOptions = {
    name: "cln",
    baseUrl: peer.url,
    timeoutMs: 2_000,
    maxResponseBytes: 1024 * 1024,
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 20 },
    breaker: {
      consecutiveFailures: 3,
      failureRate: 1,
      windowMs: 60_000,
      minRequests: 1_000,
      openMs: 60_000,
    },
    headers: { Rune: peer.rune },
    ...opts.upstream,
  };
  const client = new HttpClient(upstream);
  const backend = new ClnRestBackend(client, {
    callTimeoutMs: upstream.timeoutMs,
    longPollSeconds: 1,
    watchBackoff: { baseDelayMs: 5, maxDelayMs: 50 },
    ...opts.backend,
  });
  return {
    label: "ClnRestBackend",
    backend,
    peer,
    client,
    node,
    async [Symbol.asyncDispose]() {
      client.close();
      await peer.close();
    },
  };
}
