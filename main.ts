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
import { BitcoindBackend, type ChainBackend, EsploraBackend } from "./src/chain/mod.ts";
import { ChainNetworkMismatchError, NetworkCheckedBackend } from "./src/chain/network_guard.ts";
import { breakerCheck, HttpClient, type UpstreamOptions } from "./src/net/mod.ts";
import { EventBus } from "./src/events/mod.ts";
import { TxService } from "./src/bitcoin/tx_service.ts";
import { PsbtService } from "./src/bitcoin/psbt_service.ts";
import { TxTracker } from "./src/bitcoin/tx_tracker.ts";
import { RemoteHsmSigner } from "./src/hsm/remote_hsm.ts";
import { EdgeSignService, type SigningRiskGate } from "./src/hsm/sign_service.ts";
import type { LightningBackend } from "./src/layer2/lightning/backend.ts";
import { LightningService } from "./src/layer2/lightning/lightning_service.ts";
import { startLightningSync } from "./src/layer2/lightning/lightning_sync.ts";
import { LndRestBackend } from "./src/layer2/lightning/lnd_rest.ts";
import { ClnRestBackend } from "./src/layer2/lightning/cln_rest.ts";
import { pinnedTlsTransport } from "./src/net/pinned_tls_transport.ts";
import {
  dirModelFiles,
  FeeService,
  InferenceEngine,
  loadRegistry,
  MlService,
  OrtRuntime,
} from "./src/ml/mod.ts";
import { RiskService } from "./src/ml/risk/risk_service.ts";
import { loadDenyList } from "./src/ml/risk/deny_list_file.ts";

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

  const chain = await buildChainBackend(config, logger);
  if (chain.backend !== null) {
    try {
      await chain.backend.verify();
      logger.info("chain backend verified", {
        backend: chain.backend.kind,
        network: config.chain.network,
      });
    } catch (err) {
      if (err instanceof ChainNetworkMismatchError) {
        logger.error(err.message);
        for (const c of chain.clients) c.close();
        return 1;
      }
      // Reachable later: every chain call re-checks until the network is confirmed.
      logger.warn("chain backend unreachable at start; its network will be checked on first use", {
        backend: chain.backend.kind,
      });
    }
  }
  const events = new EventBus(logger);
  const txs = new TxService({
    db,
    backend: chain.backend,
    events,
    logger,
    confirmations: config.chain.confirmations,
    recheckMs: config.chain.trackIntervalMs,
  });
  const psbts = new PsbtService({ backend: chain.backend, network: config.chain.network, logger });
  let ml: MlService | null;
  let risk: RiskService | null;
  try {
    ml = await buildMl(config, db, logger);
    risk = ml === null ? null : new RiskService({
      ml,
      denyList: await loadDenyList(`${config.modelsDir}/data/risk`),
      db,
      network: config.chain.network,
      feeRate: async () => {
        const satPerKvb = await psbts.referenceFeeRate();
        return satPerKvb === null ? null : satPerKvb / 1000;
      },
    });
  } catch (err) {
    // A model that does not match its card, or does not load, must not be served: refuse to start.
    logger.error("models refused", { error: err instanceof Error ? err.message : String(err) });
    for (const c of chain.clients) c.close();
    return 1;
  }
  const fees = ml === null ? null : new FeeService({ ml, chain: chain.backend, logger });
  // A confirmation means a new block exists: its median settles earlier fee predictions.
  const unsubscribeFees = fees === null
    ? () => {}
    : events.subscribe("tx.confirmed", () => void fees.observeChain());
  const hsm = await buildHsm(config, logger, risk);
  const ln = await buildLightning(config, logger);
  const lightning = new LightningService({
    db,
    backend: ln?.backend ?? null,
    events,
    logger,
    network: config.chain.network,
    defaultLimits: config.lightning.limits,
    maxPayTimeoutSeconds: config.lightning.maxPayTimeoutSeconds,
    nodeDeadlineMs: config.lightning.timeoutMs,
  });
  if (ln !== null) {
    try {
      const { matches, nodeNetwork } = await lightning.nodeNetworkMatches();
      if (!matches) {
        logger.error("the Lightning node runs on another network", {
          node: nodeNetwork,
          expected: config.chain.network,
        });
        ln.client.close();
        return 1;
      }
    } catch (err) {
      logger.warn("lightning node unreachable at start; node routes answer 503 until it is back", {
        backend: ln.backend.kind,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  const tracker = new TxTracker({
    db,
    service: txs,
    logger,
    intervalMs: config.chain.trackIntervalMs,
  });

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
    readiness: [
      databaseCheck(db, MIGRATIONS.at(-1)?.version ?? 0),
      ...(chain.clients.length > 0 ? [breakerCheck(chain.clients)] : []),
      ...(hsm === null ? [] : [breakerCheck([hsm.client])]),
      ...(ln === null ? [] : [breakerCheck([ln.client])]),
    ],
    authenticator,
    rateLimiter,
    apiKeys,
    audit,
    idempotency,
    txs,
    psbts,
    hsm: hsm === null ? null : { signer: hsm.signer, signing: hsm.signing },
    lightning,
    ml,
    risk,
    fees,
  });

  const abort = new AbortController();
  const server = Deno.serve({
    hostname: config.server.host,
    port: config.server.port,
    signal: abort.signal,
    onListen: (addr) =>
      logger.info("listening", { address: `${addr.hostname}:${addr.port}`, db: db.kind }),
  }, (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr }));

  if (chain.backend !== null) tracker.start();
  const lnSync = ln === null ? null : startLightningSync({
    service: lightning,
    backend: ln.backend,
    intervalMs: config.lightning.syncIntervalMs,
    logger,
  });

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
  await tracker.stop();
  await lnSync?.stop();
  unsubscribeFees();
  await ml?.drainShadows();
  await ml?.engine.close();
  ln?.client.close();
  for (const client of chain.clients) client.close();
  hsm?.client.close();
  await authenticator.close();
  logger.info("shutdown complete");
  return 0;
}

/** The inference engine on the verified models in `ANYA_MODELS_DIR`, or none when disabled. */
async function buildMl(config: Config, db: Db, logger: Logger): Promise<MlService | null> {
  if (config.ml === null) return null;
  const runtime = OrtRuntime.create({ numThreads: config.ml.wasmThreads });
  const models = await loadRegistry(dirModelFiles(config.modelsDir));
  const engine = await InferenceEngine.create(runtime, models, {
    maxBatch: config.ml.maxBatch,
    maxWaitMicros: config.ml.maxWaitMicros,
  });
  logger.info("models loaded", {
    runtime: runtime.info,
    models: engine.loadTimes().map((m) => `${m.name}-${m.version} (${m.loadMs.toFixed(0)} ms)`),
  });
  return new MlService({ engine, db, logger });
}

/** Retry and breaker settings shared by the chain upstreams. */
const CHAIN_RESILIENCE: Pick<UpstreamOptions, "retry" | "breaker"> = {
  retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 2_000 },
  breaker: {
    consecutiveFailures: 5,
    failureRate: 0.5,
    windowMs: 30_000,
    minRequests: 10,
    openMs: 15_000,
  },
};

/** The configured chain backend (network-checked) and its HTTP clients, or none. */
async function buildChainBackend(
  config: Config,
  logger: Logger,
): Promise<{ backend: NetworkCheckedBackend | null; clients: HttpClient[] }> {
  const spec = config.chain.backend;
  if (spec === null) return { backend: null, clients: [] };
  const client = new HttpClient({
    name: spec.kind,
    baseUrl: spec.url,
    timeoutMs: config.chain.timeoutMs,
    maxResponseBytes: config.chain.maxResponseBytes,
    ...CHAIN_RESILIENCE,
  }, { logger });
  let adapter: ChainBackend;
  switch (spec.kind) {
    case "esplora":
      adapter = new EsploraBackend(client);
      break;
    case "bitcoind": {
      const auth = spec.auth;
      adapter = auth.kind === "cookie"
        // Core rewrites its cookie on every restart: read it again after a 401.
        ? new BitcoindBackend(client, {
          readCookie: async () => (await Deno.readTextFile(auth.cookieFile)).trim(),
        })
        : new BitcoindBackend(client, {
          user: auth.user,
          password: (await Deno.readTextFile(auth.passwordFile)).replace(/\r?\n$/, ""),
        });
      break;
    }
  }
  return { backend: new NetworkCheckedBackend(adapter, config.chain.network), clients: [client] };
}

/** The HSM signer over mTLS, or none without `HSM_URL`. */
async function buildHsm(config: Config, logger: Logger, risk: SigningRiskGate | null) {
  const spec = config.hsm;
  if (spec === null) return null;
  const [ca, cert, key] = await Promise.all([
    Deno.readTextFile(spec.caFile),
    Deno.readTextFile(spec.clientCertFile),
    Deno.readTextFile(spec.clientKeyFile),
  ]);
  const client = new HttpClient({
    name: "hsm",
    baseUrl: spec.url,
    timeoutMs: spec.timeoutMs,
    maxResponseBytes: 16 * 1024 * 1024,
    tls: { caCerts: [ca], cert, key },
    // Signing calls are idempotent by key at the HSM, so retrying them is safe.
    retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 2_000 },
    breaker: {
      consecutiveFailures: 5,
      failureRate: 0.5,
      windowMs: 30_000,
      minRequests: 10,
      openMs: 10_000,
    },
  }, { logger });
  const signer = new RemoteHsmSigner(client);
  return {
    client,
    signer,
    signing: new EdgeSignService({
      signer,
      network: config.chain.network,
      logger,
      ...(risk === null ? {} : { risk }),
    }),
  };
}

/**
 * The Lightning node from config: its adapter over the one HTTP client, with
 * the macaroon or rune as a header and the node's certificate pinned.
 */
async function buildLightning(config: Config, logger: Logger) {
  const spec = config.lightning.backend;
  if (spec === null) return null;
  const credential = spec.kind === "lnd"
    // LND's macaroon file is binary; its REST gateway wants it hex-encoded.
    ? { "Grpc-Metadata-macaroon": toHex(await Deno.readFile(spec.credentialFile)) }
    : { Rune: (await Deno.readTextFile(spec.credentialFile)).trim() };
  const transport = spec.tls === null
    ? undefined
    : "certFile" in spec.tls
    ? pinnedTlsTransport({ certPem: await Deno.readTextFile(spec.tls.certFile) })
    : pinnedTlsTransport({ sha256Fingerprint: spec.tls.sha256 });
  const client = new HttpClient({
    name: spec.kind,
    baseUrl: spec.url,
    timeoutMs: config.lightning.timeoutMs,
    maxResponseBytes: 32 * 1024 * 1024,
    headers: credential,
    // Only reads are retried (HttpClient retries idempotent calls only); payments never.
    retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 2_000 },
    breaker: {
      consecutiveFailures: 5,
      failureRate: 0.5,
      windowMs: 30_000,
      minRequests: 10,
      openMs: 15_000,
    },
  }, { logger, ...(transport === undefined ? {} : { transport }) });
  const backend: LightningBackend = spec.kind === "lnd"
    // A short grace after a payment's timeout: an answer must beat REQUEST_TIMEOUT_MS, and a
    // payment still in flight is recorded as pending and followed by the reconciler anyway.
    ? new LndRestBackend(client, { payGraceMs: 5_000 })
    : new ClnRestBackend(client, { callTimeoutMs: config.lightning.timeoutMs, logger });
  return { client, backend };
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

if (import.meta.main) Deno.exit(await main());
