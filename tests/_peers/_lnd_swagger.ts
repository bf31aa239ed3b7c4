/**
 * LND's REST contract for the LND test peer, read from the swagger files in
 * `tests/vectors/lnd/` (lnd `lnrpc/lightning.swagger.json` and
 * `lnrpc/routerrpc/router.swagger.json`): route matching, parameter checks,
 * and ajv validators for request bodies, responses and stream records.
 *
 * Swagger 2.0 definitions are JSON-Schema-like; the conversion here keeps
 * `type`, `properties`, `items`, `enum`, `additionalProperties` and
 * `#/definitions/X` references, and makes every object closed
 * (`additionalProperties: false` unless the swagger declares a map), so an
 * invented field name is a violation. Formats become checks of the protojson
 * encoding LND's gateway uses: `string`+`int64`/`uint64` are decimal strings
 * in range, `string`+`byte` is base64, `integer`+`int32`/`int64` are JSON
 * integers in range (swagger writes uint32 fields as `integer`/`int64`).
 *
 * @module
 */
import { Ajv, type ValidateFunction } from "ajv";
import lightningSwagger from "../vectors/lnd/lightning.swagger.json" with { type: "json" };
import routerSwagger from "../vectors/lnd/router.swagger.json" with { type: "json" };

/** One swagger parameter (path or query). */
export interface SwaggerParam {
  name: string;
  in: "path" | "query" | "body";
  type?: string;
  format?: string;
  items?: { type?: string; format?: string };
  enum?: string[];
}

/** One REST operation, with its validators. */
export interface Operation {
  operationId: string;
  method: string;
  /** The swagger path template, e.g. `/v2/router/track/{payment_hash}`. */
  template: string;
  /** True for server-streaming RPCs (newline-delimited records). */
  streaming: boolean;
  params: SwaggerParam[];
  /** Validates the JSON body; null when the operation takes none. */
  body: ValidateFunction | null;
  /** Validates a 200 reply, or one stream record (`{result}` / `{error}`). */
  response: ValidateFunction;
  /** Validates an error reply (`rpcStatus`). */
  error: ValidateFunction;
  /** Matches a concrete path; the groups are the path parameters in template order. */
  pattern: RegExp;
  pathParams: string[];
}

type Json = Record<string, unknown>;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const BASE64URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}(?:==)?|[A-Za-z0-9_-]{3}=?)?$/;

function inRange(text: string, min: bigint, max: bigint): boolean {
  if (!/^-?\d{1,20}$/.test(text)) return false;
  const n = BigInt(text);
  return n >= min && n <= max;
}

/** Format checks, named `<type>:<format>` so one swagger format can check strings and numbers. */
const FORMATS = {
  "string:int64": (s: string) => inRange(s, INT64_MIN, INT64_MAX),
  "string:uint64": (s: string) => inRange(s, 0n, UINT64_MAX),
  // protojson reads both alphabets; LND writes the standard one.
  "string:byte": (s: string) => BASE64.test(s) || BASE64URL.test(s),
  "integer:int32": (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  "integer:int64": (n: number) => Number.isSafeInteger(n),
  "number:double": (n: number) => Number.isFinite(n),
  "number:float": (n: number) => Number.isFinite(n),
} as const;

/** Swagger node → JSON Schema node (see the module doc). */
function convert(node: Json): Json {
  if (typeof node.$ref === "string") return { $ref: node.$ref };
  const out: Json = {};
  const type = node.type as string | undefined;
  if (type !== undefined) out.type = type;
  if (typeof node.format === "string" && type !== undefined) {
    const name = `${type}:${node.format}`;
    if (!(name in FORMATS)) throw new Error(`_lnd_swagger: unhandled format ${name}`);
    out.format = name;
  }
  if (Array.isArray(node.enum)) out.enum = node.enum;
  if (node.items !== undefined) out.items = convert(node.items as Json);
  if (node.properties !== undefined) {
    const props: Json = {};
    for (const [k, v] of Object.entries(node.properties as Json)) props[k] = convert(v as Json);
    out.properties = props;
  }
  if (node.additionalProperties !== undefined) {
    const extra = node.additionalProperties as Json;
    out.additionalProperties = Object.keys(extra).length === 0 ? true : convert(extra);
  } else if (type === "object" && node.properties !== undefined) {
    out.additionalProperties = false;
  }
  return out;
}

interface SwaggerDoc {
  paths: Record<string, Record<string, Json>>;
  definitions: Record<string, Json>;
}

/** Build the operations of both swagger files, each with compiled validators. */
function load(): Map<string, Operation> {
  const ajv = new Ajv({ strict: true, allErrors: true });
  for (const [name, validate] of Object.entries(FORMATS)) {
    if (name.startsWith("string")) {
      ajv.addFormat(name, { type: "string", validate: validate as (s: string) => boolean });
    } else {
      ajv.addFormat(name, { type: "number", validate: validate as (n: number) => boolean });
    }
  }
  const ops = new Map<string, Operation>();
  const docs: [string, SwaggerDoc][] = [
    ["lnd-lightning", lightningSwagger as unknown as SwaggerDoc],
    ["lnd-router", routerSwagger as unknown as SwaggerDoc],
  ];
  for (const [id, doc] of docs) {
    const definitions: Json = {};
    for (const [name, def] of Object.entries(doc.definitions)) definitions[name] = convert(def);
    const pending: Omit<Operation, "body" | "response" | "error">[] = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const operationId = op.operationId as string;
        const params = (op.parameters as SwaggerParam[] | undefined) ?? [];
        const responses = op.responses as Record<string, { description?: string; schema?: Json }>;
        const ok = responses["200"]!;
        definitions[`op.${operationId}.response`] = convert(ok.schema ?? { type: "object" });
        const body = params.find((p) => p.in === "body") as { schema?: Json } | undefined;
        if (body?.schema !== undefined) {
          definitions[`op.${operationId}.body`] = convert(body.schema);
        }
        const pathParams: string[] = [];
        const pattern = new RegExp(
          "^" +
            template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(
              /\\?\{([^}]+)\\?\}/g,
              (_m, name) => {
                pathParams.push(String(name).replaceAll("\\", ""));
                return "([^/]+)";
              },
            ) + "$",
        );
        pending.push({
          operationId,
          method: method.toUpperCase(),
          template,
          streaming: (ok.description ?? "").includes("(streaming responses)"),
          params: params.filter((p) => p.in !== "body"),
          pattern,
          pathParams,
        });
      }
    }
    ajv.addSchema({ $id: id, definitions });
    for (const p of pending) {
      const get = (key: string) => ajv.getSchema(`${id}#/definitions/${key}`) ?? null;
      ops.set(p.operationId, {
        ...p,
        body: get(`op.${p.operationId}.body`),
        response: get(`op.${p.operationId}.response`)!,
        error: get("rpcStatus")!,
      });
    }
  }
  return ops;
}

let operations: Map<string, Operation> | undefined;

/** All operations of LND's REST API, by operationId (built once). */
export function lndOperations(): Map<string, Operation> {
  operations ??= load();
  return operations;
}

/**
 * The operation a request is for, most literal template first (so
 * `/v1/channels/pending` wins over `/v1/channels/{…}/{…}`).
 *
 * @param method HTTP method
 * @param path the path without query
 */
export function matchOperation(
  method: string,
  path: string,
): { op: Operation; pathValues: Record<string, string> } | null {
  const candidates = [...lndOperations().values()]
    .filter((op) => op.method === method)
    .sort((a, b) => a.pathParams.length - b.pathParams.length);
  for (const op of candidates) {
    const m = op.pattern.exec(path);
    if (m === null) continue;
    const pathValues: Record<string, string> = {};
    op.pathParams.forEach((name, i) => pathValues[name] = decodeURIComponent(m[i + 1]!));
    return { op, pathValues };
  }
  return null;
}

/**
 * Problems of path and query parameters against the operation's declaration.
 *
 * @param op the operation
 * @param pathValues decoded path parameters
 * @param query the query string's parameters
 */
export function checkParams(
  op: Operation,
  pathValues: Record<string, string>,
  query: URLSearchParams,
): string[] {
  const problems: string[] = [];
  const declared = new Map(op.params.map((p) => [p.name, p]));
  for (const [name, value] of Object.entries(pathValues)) {
    const p = declared.get(name);
    if (p === undefined) problems.push(`path parameter ${name} is not declared`);
    else if (!valueMatches(p, value)) problems.push(`path parameter ${name}: bad value`);
  }
  for (const [name, value] of query) {
    const p = declared.get(name);
    if (p === undefined || p.in !== "query") {
      problems.push(`query parameter ${name} is not declared`);
    } else if (!valueMatches(p, value)) problems.push(`query parameter ${name}: bad value`);
  }
  return problems;
}

function valueMatches(p: SwaggerParam, value: string): boolean {
  const type = p.type ?? p.items?.type;
  const format = p.format ?? p.items?.format;
  if (p.enum !== undefined && !p.enum.includes(value)) return false;
  switch (type) {
    case "boolean":
      return value === "true" || value === "false";
    case "integer":
      return /^-?\d+$/.test(value) &&
        (format === "int32" ? inRange(value, -(2n ** 31n), 2n ** 31n - 1n) : true);
    case "string":
      if (format === undefined) return true;
      if (format === "int64") return inRange(value, INT64_MIN, INT64_MAX);
      if (format === "uint64") return inRange(value, 0n, UINT64_MAX);
      if (format === "byte") return BASE64.test(value) || BASE64URL.test(value);
      return true;
    default:
      return true;
  }
}

/**
 * ajv's errors as one line.
 *
 * @param validate a validator that just failed
 */
export function describeErrors(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .map((e) =>
      `${e.instancePath || "/"} ${e.message ?? "invalid"}${
        e.params && "additionalProperty" in e.params ? ` (${e.params.additionalProperty})` : ""
      }`
    )
    .join("; ");
}
