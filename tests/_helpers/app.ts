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

/** A test application and handles on its services. */
export interface TestApp extends AsyncDisposable {
  app: ReturnType<typeof createApp>;
  apiKeys: ApiKeyService;
  audit: AuditLog;
  logs: string[];
  /** Issue a key directly through the service. */
  key(tenant: string, scopes: Scope[]): Promise<{ id: string; secret: string }>;
  /** `app.request` with a bearer key and JSON body. */
  call(
    path: string,
    init?: { key?: string; method?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
}

/**
 * Build the app over `db` with config from `env` literals.
 *
 * @param db a migrated test database
 * @param env config overrides
 */
export function buildTestApp(db: Db, env: Record<string, string> = {}): TestApp {
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
  const app = createApp({
    config,
    logger,
    version: "0.0.0-test",
    readiness: [databaseCheck(db, MIGRATIONS.at(-1)?.version ?? 0)],
    authenticator,
    rateLimiter,
    apiKeys,
    audit,
    idempotency: new IdempotencyStore(db, { ttlHours: config.idempotency.ttlHours }),
  });
  return {
    app,
    apiKeys,
    audit,
    logs,
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
