/**
 * The HSM signer's HTTP API, served only over mutual TLS (`routes/hsm/tls.ts`
 * establishes who the client is before any route runs). The edge's
 * `RemoteHsmSigner` is its one client; the JSON shapes here are that contract.
 *
 * The edge passes, per request, the tenant it acts for (`Anya-Owner`): keys
 * are scoped to (certificate tenant, owner), so one edge serving several
 * tenants cannot mix their keys.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { PROBLEM_CONTENT_TYPE, toProblem } from "../_problem.ts";
import { NotFoundError, PayloadTooLargeError, ValidationError } from "../../src/errors/mod.ts";
import { bodyLimit } from "hono/body-limit";
import { BITCOIN_NETWORKS } from "../../src/bitcoin/network.ts";
import type { KeyRecord } from "../../src/hsm_server/key_repo.ts";
import { KEY_STATUSES } from "../../src/hsm_server/key_repo.ts";
import type { Caller, KeysService } from "../../src/hsm_server/keys_service.ts";
import type { SignService } from "../../src/hsm_server/sign_service.ts";
import type { Logger } from "../../src/obs/logger.ts";

/** The authenticated client, set by the TLS layer. */
export interface HsmClient {
  /** Tenant the client certificate maps to. */
  tenant: string;
  /** The certificate subject that matched the allowlist. */
  subject: string;
}

/** Hono environment of the HSM app. */
export interface HsmEnv {
  Bindings: { client?: HsmClient };
  Variables: { requestId: string; caller: Caller };
}

/** Dependencies of {@linkcode createHsmApp}. */
export interface HsmAppDeps {
  keys: KeysService;
  signer: SignService;
  logger: Logger;
  bodyLimitBytes: number;
}

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const OWNER = /^[A-Za-z0-9_-]{1,64}$/;
const KEY_ID = z.string().regex(/^hk_[0-9a-f]{24}$/, "not a key id");
const IDEMPOTENCY_KEY = z.string().regex(/^[\x21-\x7e]{8,255}$/, "8..255 visible ASCII characters");
const PATH = z.array(z.number().int().min(0).max(0xffffffff)).max(16).default([]);

const CreateKey = z.object({
  label: z.string().min(1).max(100),
  kind: z.enum(["bip32", "single"]),
  usage: z.enum(["transactions", "oracle"]).default("transactions"),
  network: z.enum(BITCOIN_NETWORKS),
}).strict();

const SetStatus = z.object({
  status: z.enum(KEY_STATUSES),
  version: z.number().int().min(1).optional(),
}).strict();

const SignPsbt = z.object({
  keyId: KEY_ID,
  psbt: z.string().min(1).max(8_000_000),
  idempotencyKey: IDEMPOTENCY_KEY,
}).strict();

const SignDigest = z.object({
  keyId: KEY_ID,
  digestHex: z.string().regex(/^[0-9a-f]{64}$/, "32 bytes, lowercase hex"),
  path: PATH,
  idempotencyKey: IDEMPOTENCY_KEY,
}).strict();

const SignMessage = z.object({
  keyId: KEY_ID,
  path: PATH,
  address: z.string().min(1).max(120),
  message: z.string().max(65_536),
  format: z.enum(["simple", "full", "legacy"]).default("simple"),
  idempotencyKey: IDEMPOTENCY_KEY,
}).strict();

/** The public view of a key: never any secret. */
export function keyView(k: KeyRecord) {
  return {
    id: k.id,
    label: k.label,
    kind: k.kind,
    usage: k.usage,
    network: k.network,
    status: k.status,
    currentVersion: k.currentVersion,
    policy: k.policy,
    policyRevision: k.policyRevision,
    createdAt: k.createdAt.toISOString(),
    versions: k.versions.map((v) => ({
      version: v.version,
      status: v.status,
      fingerprint: v.fingerprint.toString(16).padStart(8, "0"),
      publicKeyHex: v.publicKeyHex,
      xpub: v.xpub,
      createdAt: v.createdAt.toISOString(),
    })),
  };
}

async function body<T extends z.ZodType>(c: Context<HsmEnv>, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new ValidationError("Invalid body: expected JSON");
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 20).map((i) => ({
      path: ["body", ...i.path.map(String)].join("."),
      message: i.message,
    }));
    throw new ValidationError(
      `Invalid body: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      { issues },
    );
  }
  return parsed.data;
}

function keyId(c: Context<HsmEnv>): string {
  const parsed = KEY_ID.safeParse(c.req.param("id"));
  if (!parsed.success) throw new NotFoundError("Key not found");
  return parsed.data;
}

/**
 * Build the HSM app. Requests without a TLS-authenticated client never get
 * here in production; the check below keeps the app safe on its own too.
 *
 * @param deps services and limits
 */
export function createHsmApp(deps: HsmAppDeps): Hono<HsmEnv> {
  const app = new Hono<HsmEnv>();

  app.use("*", async (c, next) => {
    const incoming = c.req.header("x-request-id");
    const id = incoming !== undefined && SAFE_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    c.header("Cache-Control", "no-store");
    await next();
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.use("/v1/*", async (c, next) => {
    const client = c.env?.client;
    if (client === undefined) {
      return renderProblem(c, new NotFoundError("No route"), deps.logger);
    }
    const owner = c.req.header("anya-owner") ?? "";
    if (!OWNER.test(owner)) throw new ValidationError("Missing or invalid Anya-Owner header");
    c.set("caller", {
      tenant: client.tenant,
      owner,
      requestId: c.get("requestId"),
      subject: client.subject,
    });
    await next();
  });

  // Counts the bytes actually read, so a chunked body cannot slip past a header check.
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        throw new PayloadTooLargeError(deps.bodyLimitBytes);
      },
    }),
  );

  app.get("/v1/keys", async (c) => {
    const keys = await deps.keys.list(c.get("caller"));
    return c.json({ keys: keys.map(keyView) });
  });
  app.post("/v1/keys", async (c) => {
    const key = await deps.keys.create(c.get("caller"), await body(c, CreateKey));
    return c.json(keyView(key), 201);
  });
  app.get(
    "/v1/keys/:id",
    async (c) => c.json(keyView(await deps.keys.get(c.get("caller"), keyId(c)))),
  );
  app.post("/v1/keys/:id/rotate", async (c) => {
    return c.json(keyView(await deps.keys.rotate(c.get("caller"), keyId(c))));
  });
  app.put("/v1/keys/:id/policy", async (c) => {
    const raw = await body(c, z.object({ policy: z.unknown() }).strict());
    return c.json(keyView(await deps.keys.setPolicy(c.get("caller"), keyId(c), raw.policy)));
  });
  app.post("/v1/keys/:id/status", async (c) => {
    const change = await body(c, SetStatus);
    const status = change.version === undefined
      ? { status: change.status }
      : { status: change.status, version: change.version };
    return c.json(keyView(await deps.keys.setStatus(c.get("caller"), keyId(c), status)));
  });
  app.post("/v1/sign/psbt", async (c) => {
    return c.json(await deps.signer.signPsbt(c.get("caller"), await body(c, SignPsbt)));
  });
  app.post("/v1/sign/digest", async (c) => {
    return c.json(await deps.signer.signDigest(c.get("caller"), await body(c, SignDigest)));
  });
  app.post("/v1/sign/message", async (c) => {
    return c.json(await deps.signer.signMessage(c.get("caller"), await body(c, SignMessage)));
  });

  app.notFound((c) => renderProblem(c, new NotFoundError("No route"), deps.logger));
  app.onError((err, c) => renderProblem(c, err, deps.logger));
  return app;
}

function renderProblem(c: Context<HsmEnv>, err: unknown, logger: Logger): Response {
  const p = toProblem(err, c.get("requestId") ?? "unknown");
  if (p.errorId !== undefined) {
    // Never the error's message or stack alone without the id: it may quote inputs.
    logger.error("unhandled error", { errorId: p.errorId, error: err });
  }
  for (const [k, v] of Object.entries(p.headers)) c.header(k, v);
  c.header("Content-Type", PROBLEM_CONTENT_TYPE);
  return c.body(JSON.stringify(p.body), p.status as ContentfulStatusCode);
}
