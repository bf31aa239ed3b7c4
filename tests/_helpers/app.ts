/**
 * The real application on a test database: real services, real middleware,
 * driven through `app.request()` without sockets.
 */
import { createApp } from "../../routes/_app.ts";
import { loadConfig } from "../../src/config/mod.ts";
import { AuditLog } from "../../src/audit/mod.ts";
import { ApiKeyAuthenticator, ApiKeyService } from "../../src/auth/mod.ts";
import { DbRateLimiter } from "../../src/ratelimit/mod.ts";
import { IdempotencyStore } from "../../src/idempotency/mod.ts";
import { databaseCheck } from "../../src/health/readiness.ts";
import { MIGRATIONS } from "../../src/db/mod.ts";
import type { Db } from "../../src/db/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";
import type { Scope } from "../../src/auth/principal.ts";
import { TxService } from "../../src/bitcoin/tx_service.ts";
import { PsbtService } from "../../src/bitcoin/psbt_service.ts";
import type { ChainBackend } from "../../src/chain/backend.ts";
import type { ReadinessCheck } from "../../src/health/readiness.ts";
import type { HsmSigner } from "../../src/hsm/signer.ts";
import { EdgeSignService } from "../../src/hsm/sign_service.ts";
import { EventBus } from "../../src/events/mod.ts";
import type { LightningBackend } from "../../src/layer2/lightning/backend.ts";
import { LightningService } from "../../src/layer2/lightning/lightning_service.ts";
import { ScriptedChainBackend } from "../_fakes/chain_backend.ts";
import type { MlService } from "../../src/ml/ml_service.ts";
import type { RiskService } from "../../src/ml/risk/risk_service.ts";
import type { FeeService } from "../../src/ml/fee/fee_service.ts";

/** A test application and handles on its services. */
export interface TestApp extends AsyncDisposable {
  app: ReturnType<typeof createApp>;
  apiKeys: ApiKeyService;
  audit: AuditLog;
  logs: string[];
  /** The scripted chain backend behind the services. */
  chain: ScriptedChainBackend;
  /** The Lightning service behind `/v1/ln`. */
  lightning: LightningService;
  events: EventBus;
  /** Issue a key directly through the service. */
  key(tenant: string, scopes: Scope[]): Promise<{ id: string; secret: string }>;
  /** `app.request` with a bearer key and JSON body. */
  call(
    path: string,
    init?: { key?: string; method?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
}

/** Optional parts of the test app. */
export interface TestAppOptions {
  /**
   * The chain backend behind the services: a real adapter against a test peer,
   * or `null` for "none configured". Default: the scripted backend (`t.chain`).
   */
  backend?: ChainBackend | null;
  /** Extra readiness checks (e.g. the breaker state of real HTTP clients). */
  readiness?: ReadinessCheck[];
  /** The key holder (a real RemoteHsmSigner against a test HSM); default none. */
  hsm?: HsmSigner;
  /** The Lightning node (a real adapter against a test peer); default none. */
  lightning?: LightningBackend;
  /** The ML service (a real engine on test models); default none. */
  ml?: MlService;
  /** PSBT risk and tenants' risk policies; default none. */
  risk?: RiskService;
  /** Fee estimates from the fee model; default none. */
  fees?: FeeService;
}

/**
 * Build the app over `db` with config from `env` literals.
 *
 * @param db a migrated test database
 * @param env config overrides
 * @param options another chain backend, extra readiness checks
 */
export function buildTestApp(
  db: Db,
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): TestApp {
  const config = loadConfig({ AUTH_CACHE_TTL_MS: "0", LOG_LEVEL: "debug", ...env });
  const logs: string[] = [];
  const logger = createLogger({ level: config.logLevel, sink: (_level, line) => logs.push(line) });
  const audit = new AuditLog(db);
  const authenticator = new ApiKeyAuthenticator({ db, cacheTtlMs: config.auth.cacheTtlMs, logger });
  const apiKeys = new ApiKeyService({
    db,
    audit,
    onKeyChanged: (id) => authenticator.invalidate(id),
  });
  const rateLimiter = new DbRateLimiter(db, { leaseTokens: config.rateLimit.leaseTokens, logger });
  const chain = new ScriptedChainBackend();
  const events = new EventBus(logger);
  const backend = options.backend === undefined ? chain : options.backend;
  const txs = new TxService({
    db,
    backend,
    events,
    logger,
    confirmations: config.chain.confirmations,
    recheckMs: 0,
  });
  const psbts = new PsbtService({ backend, network: config.chain.network, logger });
  const lightning = new LightningService({
    db,
    backend: options.lightning ?? null,
    events,
    logger,
    network: config.chain.network,
    defaultLimits: config.lightning.limits,
    maxPayTimeoutSeconds: config.lightning.maxPayTimeoutSeconds,
    nodeDeadlineMs: config.lightning.timeoutMs,
  });
  const app = createApp({
    config,
    logger,
    version: "0.0.0-test",
    readiness: [databaseCheck(db, MIGRATIONS.at(-1)?.version ?? 0), ...(options.readiness ?? [])],
    authenticator,
    rateLimiter,
    apiKeys,
    audit,
    idempotency: new IdempotencyStore(db, { ttlHours: config.idempotency.ttlHours }),
    txs,
    psbts,
    hsm: options.hsm === undefined ? null : {
      signer: options.hsm,
      signing: new EdgeSignService({
        signer: options.hsm,
        network: config.chain.network,
        logger,
        ...(options.risk === undefined ? {} : { risk: options.risk }),
      }),
    },
    lightning,
    ml: options.ml ?? null,
    risk: options.risk ?? null,
    fees: options.fees ?? null,
  });
  return {
    app,
    apiKeys,
    audit,
    logs,
    chain,
    lightning,
    events,
    async key(tenant, scopes) {
      const r = await apiKeys.create({ tenant, scopes }, { actor: "test", requestId: "test" });
      return { id: r.key.id, secret: r.secret };
    },
    call(path, init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      if (init.key !== undefined) headers.Authorization = `Bearer ${init.key}`;
      let body: string | undefined;
      if (init.body !== undefined) {
        body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
        headers["Content-Type"] ??= "application/json";
      }
      return Promise.resolve(
        app.request(path, { method: init.method ?? "GET", headers, body: body ?? null }),
      );
    },
    async [Symbol.asyncDispose]() {
      await authenticator.close();
    },
  };
}
