/**
 * The composition root: load config, check permissions, open and migrate the
 * database, build services, serve, and drain on SIGTERM/SIGINT. The only
 * module that picks concrete adapters.
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import { createApp } from "./routes/_app.ts";
import {
  type Config,
  ConfigError,
  listenHost,
  loadConfig,
  missingNetPermissions,
  upstreamHosts,
} from "./src/config/mod.ts";
import { type Db, migrate, MIGRATIONS, openDb } from "./src/db/mod.ts";
import { createLogger, type Logger } from "./src/obs/logger.ts";
import { AuditLog } from "./src/audit/mod.ts";
import { ApiKeyAuthenticator, ApiKeyService } from "./src/auth/mod.ts";
import { DbRateLimiter } from "./src/ratelimit/mod.ts";
import { IdempotencyStore } from "./src/idempotency/mod.ts";
import { loadOrCreateDataKeys } from "./src/crypto/mod.ts";
import { databaseCheck } from "./src/health/readiness.ts";
import { withDeadline } from "./src/util/deadline.ts";

/** How often expired `Idempotency-Key` records are deleted. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000;

async function main(): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger().error("invalid configuration", { problems: err.problems });
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, fields: { service: "anya-edge" } });

  const missing = await missingNetPermissions([listenHost(config), ...upstreamHosts(config)]);
  if (missing.length > 0) {
    logger.error(
      `missing network permissions: run with --allow-net=${
        missing.join(",")
      } (deno task start grants them from the config)`,
      { missing },
    );
    return 1;
  }

  const db = await openDb(config.db);
  try {
    return await serve(config, db, logger);
  } finally {
    await db.close();
  }
}

async function serve(config: Config, db: Db, logger: Logger): Promise<number> {
  const migration = await migrate(db, MIGRATIONS);
  if (migration.applied.length > 0) logger.info("migrations applied", { ...migration });

  const dataKeys = await loadOrCreateDataKeys({
    dataKeyFile: config.dataKeyFile,
    dataDir: config.dataDir,
  });
  if (dataKeys.created) {
    logger.warn("generated a data encryption key; set ANYA_DATA_KEY_FILE in production", {
      path: dataKeys.path,
    });
  }

  const audit = new AuditLog(db);
  const authenticator = new ApiKeyAuthenticator({ db, cacheTtlMs: config.auth.cacheTtlMs, logger });
  const apiKeys = new ApiKeyService({
    db,
    audit,
    onKeyChanged: (keyId) => authenticator.invalidate(keyId),
  });
  const rateLimiter = new DbRateLimiter(db, { leaseTokens: config.rateLimit.leaseTokens, logger });
  const idempotency = new IdempotencyStore(db, { ttlHours: config.idempotency.ttlHours });
  const purge = setInterval(() => {
    idempotency.purgeExpired().then(
      (purged) => purged > 0 && logger.info("purged expired idempotency keys", { purged }),
      (err) => logger.warn("idempotency purge failed", { error: err }),
    );
  }, PURGE_INTERVAL_MS);
  const app = createApp({
    config,
    logger,
    version: denoJson.version,
    readiness: [databaseCheck(db, MIGRATIONS.at(-1)?.version ?? 0)],
    authenticator,
    rateLimiter,
    apiKeys,
    audit,
    idempotency,
  });

  const abort = new AbortController();
  const server = Deno.serve({
    hostname: config.server.host,
    port: config.server.port,
    signal: abort.signal,
    onListen: (addr) =>
      logger.info("listening", { address: `${addr.hostname}:${addr.port}`, db: db.kind }),
  }, (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }));

  const stop = Promise.withResolvers<Deno.Signal>();
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  const onSignal = (signal: Deno.Signal) => () => stop.resolve(signal);
  const handlers = signals.map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);

  const signal = await Promise.race([stop.promise, server.finished.then(() => null)]);
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  if (signal !== null) {
    logger.info("shutting down", { signal, drainMs: config.server.shutdownTimeoutMs });
    // Stop accepting and let in-flight requests finish, up to the deadline.
    const drained = await withDeadline(
      server.shutdown().then(() => true),
      config.server.shutdownTimeoutMs,
      () => false,
    );
    if (!drained) {
      logger.warn("drain deadline passed; closing remaining connections");
      abort.abort();
      await server.finished;
    }
  }
  clearInterval(purge);
  await authenticator.close();
  logger.info("shutdown complete");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
