/**
 * `createApp(deps)`: the one Hono application. Middleware order: request id →
 * client address → tracing/metrics → security headers/CORS → timeout → body
 * limit → auth (on `/v1`) → routes. One `onError` and one `notFound` render
 * every failure as RFC 9457 problem+json.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./_env.ts";
import { createRouter } from "./_openapi.ts";
import { PROBLEM_CONTENT_TYPE, type RenderedProblem, toProblem } from "./_problem.ts";
import { requestId } from "./_middleware/request_id.ts";
import { clientIp } from "./_middleware/client_ip.ts";
import { observe } from "./_middleware/observe.ts";
import { requestTimeout } from "./_middleware/timeout.ts";
import { bodyLimit } from "./_middleware/body_limit.ts";
import { authenticate, limitByIp } from "./_middleware/auth.ts";
import { jsonGuard } from "./_middleware/json_guard.ts";
import { healthRoutes } from "./health.ts";
import { mountDocs } from "./docs.ts";
import { adminKeyRoutes } from "./admin_keys.ts";
import { adminAuditRoutes } from "./admin_audit.ts";
import { meRoutes } from "./me.ts";
import { txRoutes } from "./tx.ts";
import { addressRoutes } from "./addresses.ts";
import { psbtRoutes } from "./psbt.ts";
import { keyRoutes } from "./keys.ts";
import { signingRoutes } from "./signing.ts";
import { lightningRoutes } from "./lightning.ts";
import { mlRoutes } from "./ml.ts";
import type { MlService } from "../src/ml/ml_service.ts";
import type { RiskService } from "../src/ml/risk/risk_service.ts";
import { riskRoutes } from "./risk.ts";
import { feeRoutes } from "./fees.ts";
import type { FeeService } from "../src/ml/fee/fee_service.ts";
import type { LightningService } from "../src/layer2/lightning/lightning_service.ts";
import type { Config } from "../src/config/schema.ts";
import type { Logger } from "../src/obs/logger.ts";
import type { Authenticator } from "../src/auth/authenticator.ts";
import type { ApiKeyService } from "../src/auth/api_key_service.ts";
import type { RateLimiter } from "../src/ratelimit/rate_limiter.ts";
import type { ReadinessCheck } from "../src/health/readiness.ts";
import type { AuditLog } from "../src/audit/audit_log.ts";
import type { IdempotencyStore } from "../src/idempotency/mod.ts";
import type { TxService } from "../src/bitcoin/tx_service.ts";
import type { PsbtService } from "../src/bitcoin/psbt_service.ts";
import type { HsmSigner } from "../src/hsm/signer.ts";
import type { EdgeSignService } from "../src/hsm/sign_service.ts";
import { NotFoundError } from "../src/errors/mod.ts";

/** Everything the HTTP layer needs, built in `main.ts` (or by tests). */
export interface AppDeps {
  config: Config;
  logger: Logger;
  version: string;
  readiness: readonly ReadinessCheck[];
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  apiKeys: ApiKeyService;
  audit: AuditLog;
  /** Shared `Idempotency-Key` records, for money routes. */
  idempotency: IdempotencyStore;
  /** Broadcast and tracked transactions. */
  txs: TxService;
  /** PSBT create/decode/combine/finalize. */
  psbts: PsbtService;
  /** The key holder and the checked signing path; `null` without `HSM_URL`. */
  hsm: { signer: HsmSigner; signing: EdgeSignService } | null;
  /** Lightning invoices, payments and channels (node routes answer 503 without a node). */
  lightning: LightningService;
  /** Model inference; `null` when the edge runs without models. */
  ml: MlService | null;
  /** PSBT risk (deny lists, anomaly score) and tenants' risk policies; `null` when not enabled. */
  risk: RiskService | null;
  /** Fee-rate estimates from the fee model; `null` when not enabled. */
  fees: FeeService | null;
}

/**
 * Build the application.
 *
 * @param deps services and config
 * @example
 * ```ts
 * const app = createApp(deps);
 * Deno.serve((req, info) => app.fetch(req, info));
 * ```
 */
export function createApp(deps: AppDeps): OpenAPIHono<AppEnv> {
  const { config, logger } = deps;
  const app = createRouter();
  const rules = { key: config.rateLimit.key, ip: config.rateLimit.ip };

  app.use("*", requestId);
  app.use("*", clientIp({ trustProxy: config.server.trustProxy }));
  app.use("*", observe(logger));
  app.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      strictTransportSecurity: "max-age=63072000; includeSubDomains",
      // Routes that set their own (the docs page) keep it.
      overwrite: false,
    }),
  );
  if (config.server.corsOrigins.length > 0) {
    app.use("*", cors({ origin: [...config.server.corsOrigins], maxAge: 600 }));
  }
  app.use("*", requestTimeout(config.server.requestTimeoutMs));
  app.use(
    "*",
    bodyLimit({
      maxBytes: config.server.bodyLimitBytes,
      idleTimeoutMs: config.server.bodyReadTimeoutMs,
    }),
  );
  app.use("*", jsonGuard);
  app.use(
    "/v1/*",
    authenticate({ authenticator: deps.authenticator, rateLimiter: deps.rateLimiter, rules }),
  );
  app.use("/openapi.json", limitByIp(deps.rateLimiter, rules.ip));
  app.use("/docs/*", limitByIp(deps.rateLimiter, rules.ip));

  app.route("/", healthRoutes(deps));
  app.route("/", meRoutes());
  app.route("/", adminKeyRoutes(deps));
  app.route("/", adminAuditRoutes(deps));
  app.route("/", addressRoutes({ network: config.chain.network }));
  const idempotencySettings = {
    idempotencyTtlHours: config.idempotency.ttlHours,
    idempotencyLockMs: config.idempotency.lockMs,
  };
  app.route("/", psbtRoutes({ ...deps, ...idempotencySettings }));
  app.route("/", txRoutes({ ...deps, ...idempotencySettings }));
  app.route(
    "/",
    keyRoutes({
      signer: deps.hsm?.signer ?? null,
      audit: deps.audit,
      network: config.chain.network,
    }),
  );
  app.route(
    "/",
    signingRoutes({
      ...deps,
      ...idempotencySettings,
      signer: deps.hsm?.signer ?? null,
      signing: deps.hsm?.signing ?? null,
      network: config.chain.network,
    }),
  );
  app.route("/", lightningRoutes({ ...deps, ...idempotencySettings }));
  app.route("/", mlRoutes(deps));
  app.route("/", riskRoutes(deps));
  app.route("/", feeRoutes(deps));
  mountDocs(app, { version: deps.version });

  app.notFound((c) =>
    renderProblem(
      c,
      toProblem(
        new NotFoundError(`No route for ${c.req.method} ${truncate(c.req.path)}`),
        c.get("requestId") ?? "unknown",
      ),
    )
  );
  app.onError((err, c) => {
    const problem = toProblem(err, c.get("requestId") ?? "unknown");
    if (problem.errorId !== undefined) {
      logger.error("unhandled error", {
        errorId: problem.errorId,
        requestId: c.get("requestId"),
        error: err,
        stack: err instanceof Error ? err.stack : undefined,
      });
    }
    return renderProblem(c, problem);
  });
  return app;
}

function renderProblem(c: Context<AppEnv>, p: RenderedProblem): Response {
  for (const [k, v] of Object.entries(p.headers)) c.header(k, v);
  c.header("Content-Type", PROBLEM_CONTENT_TYPE);
  return c.body(JSON.stringify(p.body), p.status as ContentfulStatusCode);
}

function truncate(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}
