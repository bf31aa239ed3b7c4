/**
 * The HSM signer's composition root (`deno task hsm`): a separate process with
 * its own config (`HSM_*`), database, key-encryption key and narrow
 * permissions. It serves only HTTPS with mutual TLS; there is no plain-HTTP
 * listener.
 *
 * @module
 */
import { ConfigError } from "./src/config/load.ts";
import { type HsmConfig, loadHsmConfig } from "./src/hsm_server/config.ts";
import { HSM_MIGRATIONS } from "./src/hsm_server/migrations/mod.ts";
import { KeysService } from "./src/hsm_server/keys_service.ts";
import { SignService } from "./src/hsm_server/sign_service.ts";
import { SoftwareKeyStore } from "./src/hsm_server/signing/sealed_key_store.ts";
import { OpenKeyCache } from "./src/hsm_server/signing/open_key_cache.ts";
import { AuditLog } from "./src/audit/mod.ts";
import { migrate, openDb } from "./src/db/mod.ts";
import { createLogger } from "./src/obs/logger.ts";
import { createHsmApp } from "./routes/hsm/app.ts";
import { serveMtls } from "./routes/hsm/tls.ts";

// Unsealed keys held at most; a busy HSM with more keys than this unseals the coldest again.
const KEY_CACHE_MAX = 1_000;

async function main(): Promise<number> {
  let config: HsmConfig;
  try {
    config = loadHsmConfig(Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger().error("invalid HSM configuration", { problems: err.problems });
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, fields: { service: "anya-hsm" } });
  // Read before the database opens: without its KEK the HSM could not unseal a key anyway.
  const store = await SoftwareKeyStore.fromFile(config.kekFile);
  const [certPem, keyPem, clientCaPem] = await Promise.all([
    Deno.readTextFile(config.tls.certFile),
    Deno.readTextFile(config.tls.keyFile),
    Deno.readTextFile(config.tls.clientCaFile),
  ]);

  const db = await openDb(config.db);
  try {
    const migration = await migrate(db, HSM_MIGRATIONS);
    if (migration.applied.length > 0) logger.info("migrations applied", { ...migration });
    const audit = new AuditLog(db);
    const keyCache = new OpenKeyCache({ idleMs: config.keyCacheIdleMs, maxKeys: KEY_CACHE_MAX });
    const app = createHsmApp({
      keys: new KeysService({ db, audit, store, keyCache }),
      signer: new SignService({ db, audit, store, keyCache }),
      logger,
      bodyLimitBytes: config.bodyLimitBytes,
    });
    const server = await serveMtls(app, {
      host: config.host,
      port: config.port,
      certPem,
      keyPem,
      clientCaPem,
      allowlist: config.allowlist,
      logger,
    });
    logger.info("hsm listening (mTLS)", {
      address: `${config.host}:${server.port}`,
      db: db.kind,
      keyStore: store.kind,
      clients: config.allowlist.size,
    });

    const stop = Promise.withResolvers<Deno.Signal>();
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((s) => [s, () => stop.resolve(s)] as const);
    for (const [s, h] of handlers) Deno.addSignalListener(s, h);
    const signal = await stop.promise;
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    logger.info("shutting down", { signal });
    await server.close(config.shutdownTimeoutMs);
    keyCache.clear();
    logger.info("shutdown complete");
    return 0;
  } finally {
    await db.close();
  }
}

if (import.meta.main) Deno.exit(await main());
