/**
 * The one configuration schema. Every environment variable the service reads
 * is declared here; `deno task start` derives its `--allow-env` list from
 * {@linkcode CONFIG_ENV_KEYS}, so a variable missing here cannot be read.
 *
 * @module
 */
import { z } from "zod";
import { BITCOIN_NETWORKS, type BitcoinNetwork } from "../bitcoin/network.ts";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const int = (min: number, max: number) =>
  z.string().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(
    z.number().int().min(min).max(max),
  );
const path = z.string().min(1, "must not be empty");
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });
const sha256Hex = z.string().transform((v) => v.replaceAll(":", "").toLowerCase()).pipe(
  z.string().regex(
    /^[0-9a-f]{64}$/,
    "must be a SHA-256 fingerprint: 64 hex digits, colons allowed",
  ),
);

/** Environment variables after validation: defaults applied, numbers and flags converted. */
export interface ConfigEnv {
  /** Listen address. */
  HOST: string;
  /** Listen port. */
  PORT: number;
  /** Data directory: PGlite database and generated data key. */
  ANYA_DATA_DIR: string;
  /** Read-only directory of ONNX models and their cards. */
  ANYA_MODELS_DIR: string;
  /** `postgres://` URL; when set, PostgreSQL replaces PGlite. */
  DATABASE_URL?: string | undefined;
  /** File holding the PostgreSQL password, kept out of `DATABASE_URL`. */
  DATABASE_PASSWORD_FILE?: string | undefined;
  /** PostgreSQL connections per instance. */
  DATABASE_POOL_SIZE: number;
  /** Key file for encryption at rest; unset means one is generated under the data dir. */
  ANYA_DATA_KEY_FILE?: string | undefined;
  /** Lowest severity that is logged. */
  LOG_LEVEL: "debug" | "info" | "warn" | "error";
  /** Largest accepted request body (413 above it). */
  BODY_LIMIT_BYTES: number;
  /** Longest pause while receiving a body (408 when it stalls). */
  BODY_READ_TIMEOUT_MS: number;
  /** Longest a request may take (504). */
  REQUEST_TIMEOUT_MS: number;
  /** Drain deadline for in-flight requests on shutdown. */
  SHUTDOWN_TIMEOUT_MS: number;
  /** Allowed CORS origins, split from a comma-separated list; empty turns CORS off. */
  CORS_ORIGINS: string[];
  /** Take the client address from `X-Forwarded-For` (only behind a proxy you run). */
  TRUST_PROXY: boolean;
  /** Sustained requests per minute per API key. */
  RATE_LIMIT_KEY_PER_MINUTE: number;
  /** Burst size per API key. */
  RATE_LIMIT_KEY_BURST: number;
  /** Sustained unauthenticated requests per minute per client address. */
  RATE_LIMIT_IP_PER_MINUTE: number;
  /** Burst size per client address. */
  RATE_LIMIT_IP_BURST: number;
  /** Tokens an instance takes from the shared budget at a time. */
  RATE_LIMIT_LEASE_TOKENS: number;
  /** How long a verified key is cached, bounding how late a revocation takes effect. */
  AUTH_CACHE_TTL_MS: number;
  /** How long `Idempotency-Key` results are kept. */
  IDEMPOTENCY_TTL_HOURS: number;
  /** How long a running request holds its key; default twice the request timeout, at least a minute. */
  IDEMPOTENCY_LOCK_MS?: number | undefined;
  /** The Bitcoin network the edge serves; checked against the chain backend at boot. */
  BITCOIN_NETWORK: BitcoinNetwork;
  /** Chain backend adapter; unset disables chain-dependent routes. */
  CHAIN_BACKEND?: "esplora" | "bitcoind" | undefined;
  /** Esplora REST base URL, e.g. `https://blockstream.info/api`. */
  ESPLORA_URL?: string | undefined;
  /** Bitcoin Core JSON-RPC URL, e.g. `http://127.0.0.1:8332`. */
  BITCOIND_URL?: string | undefined;
  /** RPC user, with `BITCOIND_RPC_PASSWORD_FILE`. */
  BITCOIND_RPC_USER?: string | undefined;
  /** File holding the RPC password. */
  BITCOIND_RPC_PASSWORD_FILE?: string | undefined;
  /** Bitcoin Core's `.cookie` file (instead of user and password). */
  BITCOIND_RPC_COOKIE_FILE?: string | undefined;
  /** Per-call deadline for chain backend calls. */
  CHAIN_TIMEOUT_MS: number;
  /** Largest chain backend response accepted. */
  CHAIN_MAX_RESPONSE_BYTES: number;
  /** Confirmations after which a broadcast transaction is no longer tracked. */
  TX_CONFIRMATIONS: number;
  /** How often tracked transactions are polled. */
  TX_TRACK_INTERVAL_MS: number;
  /** The HSM signer's base URL (`https://…`); unset disables the signing routes. */
  HSM_URL?: string | undefined;
  /** CA certificate (PEM) the HSM's server certificate chains to. */
  HSM_CA_FILE?: string | undefined;
  /** The edge's client certificate (PEM) for mTLS to the HSM. */
  HSM_CLIENT_CERT_FILE?: string | undefined;
  /** The edge's client private key (PEM, PKCS#8). */
  HSM_CLIENT_KEY_FILE?: string | undefined;
  /** Per-call deadline for HSM calls. */
  HSM_TIMEOUT_MS: number;
  /** Lightning node adapter; unset disables the node routes (invoice decoding still works). */
  LIGHTNING_BACKEND?: "lnd" | "cln" | undefined;
  /** LND REST base URL, e.g. `https://127.0.0.1:8080`. */
  LND_REST_URL?: string | undefined;
  /** LND macaroon file (binary, as LND writes it). */
  LND_MACAROON_FILE?: string | undefined;
  /** LND's `tls.cert`, pinned as the only trusted certificate. */
  LND_TLS_CERT_FILE?: string | undefined;
  /** Or: SHA-256 of LND's certificate (hex, colons allowed), as BTCPay's `certthumbprint`. */
  LND_TLS_CERT_SHA256?: string | undefined;
  /** Core Lightning clnrest base URL, e.g. `https://127.0.0.1:3010`. */
  CLN_REST_URL?: string | undefined;
  /** File holding the clnrest rune. */
  CLN_RUNE_FILE?: string | undefined;
  /** clnrest's certificate, pinned as the only trusted certificate. */
  CLN_TLS_CERT_FILE?: string | undefined;
  /** Or: SHA-256 of clnrest's certificate (hex). */
  CLN_TLS_CERT_SHA256?: string | undefined;
  /** Per-call deadline for node calls (a payment waits longer: its own timeout on top). */
  LIGHTNING_TIMEOUT_MS: number;
  /** Longest payment timeout a request may ask for. */
  LIGHTNING_MAX_PAY_TIMEOUT_S: number;
  /** How often stored channels, invoices and payments are reconciled with the node. */
  LIGHTNING_SYNC_INTERVAL_MS: number;
  /** Default per-tenant limit for one payment (amount + fee), in sats. */
  LIGHTNING_MAX_PAYMENT_SAT: number;
  /** Default per-tenant limit over a rolling 24 hours, in sats. */
  LIGHTNING_MAX_DAILY_SAT: number;
  /** Load the models in `ANYA_MODELS_DIR` and serve `/v1/ml` and `/v1/fees/estimate`. */
  ML_ENABLED: boolean;
  /** Largest batch the engine runs at once, in rows (concurrent requests are coalesced up to it). */
  ML_MAX_BATCH: number;
  /** How long an idle model waits for more requests before running, in microseconds (0: at once). */
  ML_MAX_WAIT_MICROS: number;
  /** WASM threads for inference (1: on the event loop's thread, no workers). */
  ML_WASM_THREADS: number;
}

/** One problem found while validating the environment. */
export interface EnvIssue {
  /** Where the problem is; the first element names the variable. */
  readonly path: readonly PropertyKey[];
  /** What is wrong, without the received value. */
  readonly message: string;
}

/** The outcome of {@linkcode EnvSchema.safeParse}. */
export type EnvParseResult =
  | { success: true; data: ConfigEnv }
  | { success: false; error: { issues: readonly EnvIssue[] } };

/** The environment schema, as the loader and the launcher use it. */
export interface EnvSchema {
  /** One entry per environment variable the service reads. */
  readonly shape: Readonly<Record<keyof ConfigEnv, unknown>>;
  /**
   * Validate raw environment strings without throwing.
   *
   * @param input variables with empty values already removed
   */
  safeParse(input: unknown): EnvParseResult;
}

/** Environment variables, as strings, before they are shaped into {@linkcode Config}. */
export const envSchema: EnvSchema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(8080),
  ANYA_DATA_DIR: path.default("./data"),
  ANYA_MODELS_DIR: path.default("./models"),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// URL" })
    .optional(),
  DATABASE_PASSWORD_FILE: path.optional(),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  ANYA_DATA_KEY_FILE: path.optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  BODY_READ_TIMEOUT_MS: int(100, 600_000).default(10_000),
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  CORS_ORIGINS: z.string().default("").transform((s) =>
    s.split(",").map((o) => o.trim()).filter((o) => o.length > 0)
  ).pipe(z.array(z.url({ error: "must be a comma-separated list of origins" }))),
  TRUST_PROXY: bool.default(false),
  RATE_LIMIT_KEY_PER_MINUTE: int(1, 1_000_000).default(600),
  RATE_LIMIT_KEY_BURST: int(1, 1_000_000).default(120),
  RATE_LIMIT_IP_PER_MINUTE: int(1, 1_000_000).default(60),
  RATE_LIMIT_IP_BURST: int(1, 1_000_000).default(30),
  RATE_LIMIT_LEASE_TOKENS: int(1, 10_000).default(10),
  AUTH_CACHE_TTL_MS: int(0, 300_000).default(5_000),
  IDEMPOTENCY_TTL_HOURS: int(1, 24 * 30).default(24),
  IDEMPOTENCY_LOCK_MS: int(1000, 24 * 3_600_000).optional(),
  BITCOIN_NETWORK: z.enum(BITCOIN_NETWORKS).default("mainnet"),
  CHAIN_BACKEND: z.enum(["esplora", "bitcoind"]).optional(),
  ESPLORA_URL: httpUrl.optional(),
  BITCOIND_URL: httpUrl.optional(),
  BITCOIND_RPC_USER: z.string().min(1).max(256).optional(),
  BITCOIND_RPC_PASSWORD_FILE: path.optional(),
  BITCOIND_RPC_COOKIE_FILE: path.optional(),
  CHAIN_TIMEOUT_MS: int(100, 300_000).default(10_000),
  CHAIN_MAX_RESPONSE_BYTES: int(1024, 256 * 1024 * 1024).default(16 * 1024 * 1024),
  TX_CONFIRMATIONS: int(1, 1000).default(6),
  TX_TRACK_INTERVAL_MS: int(1000, 3_600_000).default(30_000),
  HSM_URL: z.url({
    protocol: /^https$/,
    error: "must be an https:// URL (the HSM speaks mTLS only)",
  })
    .optional(),
  HSM_CA_FILE: path.optional(),
  HSM_CLIENT_CERT_FILE: path.optional(),
  HSM_CLIENT_KEY_FILE: path.optional(),
  HSM_TIMEOUT_MS: int(100, 120_000).default(10_000),
  LIGHTNING_BACKEND: z.enum(["lnd", "cln"]).optional(),
  LND_REST_URL: httpUrl.optional(),
  LND_MACAROON_FILE: path.optional(),
  LND_TLS_CERT_FILE: path.optional(),
  LND_TLS_CERT_SHA256: sha256Hex.optional(),
  CLN_REST_URL: httpUrl.optional(),
  CLN_RUNE_FILE: path.optional(),
  CLN_TLS_CERT_FILE: path.optional(),
  CLN_TLS_CERT_SHA256: sha256Hex.optional(),
  LIGHTNING_TIMEOUT_MS: int(100, 300_000).default(15_000),
  LIGHTNING_MAX_PAY_TIMEOUT_S: int(1, 3600).default(120),
  LIGHTNING_SYNC_INTERVAL_MS: int(1000, 3_600_000).default(60_000),
  LIGHTNING_MAX_PAYMENT_SAT: int(0, 2_100_000_000_000_000).default(100_000),
  LIGHTNING_MAX_DAILY_SAT: int(0, 2_100_000_000_000_000).default(1_000_000),
  ML_ENABLED: bool.default(true),
  ML_MAX_BATCH: int(1, 4096).default(64),
  ML_MAX_WAIT_MICROS: int(0, 1_000_000).default(0),
  ML_WASM_THREADS: int(1, 64).default(1),
}).superRefine((env, ctx) => {
  const need = (name: string, why: string) =>
    ctx.addIssue({ code: "custom", path: [name], message: why });
  if (env.CHAIN_BACKEND === "esplora" && env.ESPLORA_URL === undefined) {
    need("ESPLORA_URL", "required when CHAIN_BACKEND=esplora");
  }
  if (env.CHAIN_BACKEND === "bitcoind") {
    if (env.BITCOIND_URL === undefined) {
      need("BITCOIND_URL", "required when CHAIN_BACKEND=bitcoind");
    }
    const password = env.BITCOIND_RPC_USER !== undefined ||
      env.BITCOIND_RPC_PASSWORD_FILE !== undefined;
    const cookie = env.BITCOIND_RPC_COOKIE_FILE !== undefined;
    if (password === cookie) {
      need(
        "BITCOIND_RPC_COOKIE_FILE",
        "set either BITCOIND_RPC_COOKIE_FILE or BITCOIND_RPC_USER with BITCOIND_RPC_PASSWORD_FILE",
      );
    } else if (
      password &&
      (env.BITCOIND_RPC_USER === undefined || env.BITCOIND_RPC_PASSWORD_FILE === undefined)
    ) {
      need(
        "BITCOIND_RPC_PASSWORD_FILE",
        "BITCOIND_RPC_USER and BITCOIND_RPC_PASSWORD_FILE go together",
      );
    }
  }
  if (env.HSM_URL !== undefined) {
    for (const name of ["HSM_CA_FILE", "HSM_CLIENT_CERT_FILE", "HSM_CLIENT_KEY_FILE"] as const) {
      if (env[name] === undefined) need(name, "required when HSM_URL is set (mTLS)");
    }
  }
  lightningRules(env, need);
  for (
    const url of ["ESPLORA_URL", "BITCOIND_URL", "HSM_URL", "LND_REST_URL", "CLN_REST_URL"] as const
  ) {
    const value = env[url];
    if (value !== undefined && new URL(value).password !== "") {
      need(url, "must not contain credentials (use the *_FILE variables)");
    }
  }
});

/** Which node settings `LIGHTNING_BACKEND` needs: a URL, a credential file, and one way to trust TLS. */
function lightningRules(env: ConfigEnv, need: (name: string, why: string) => void): void {
  const backend = env.LIGHTNING_BACKEND;
  if (backend === undefined) return;
  const [url, credential, certFile, certPin] = backend === "lnd"
    ? ["LND_REST_URL", "LND_MACAROON_FILE", "LND_TLS_CERT_FILE", "LND_TLS_CERT_SHA256"] as const
    : ["CLN_REST_URL", "CLN_RUNE_FILE", "CLN_TLS_CERT_FILE", "CLN_TLS_CERT_SHA256"] as const;
  const why = `required when LIGHTNING_BACKEND=${backend}`;
  if (env[url] === undefined) need(url, why);
  if (env[credential] === undefined) need(credential, why);
  const value = env[url];
  if (value === undefined) return;
  const target = new URL(value);
  if (target.protocol === "https:") {
    if ((env[certFile] === undefined) === (env[certPin] === undefined)) {
      need(certFile, `set either ${certFile} or ${certPin} (the node's certificate is pinned)`);
    }
  } else if (!["127.0.0.1", "[::1]", "localhost"].includes(target.hostname)) {
    // The macaroon or rune travels in a header: in clear text only over loopback.
    need(url, "plain http only to a loopback address; use https with the node's certificate");
  }
}

/** Names of every environment variable the service reads. */
export const CONFIG_ENV_KEYS: readonly string[] = Object.freeze(Object.keys(envSchema.shape));

/** The embedded database (PGlite) persisted under the data dir. */
export interface PgliteDbConfig {
  /** Selects the embedded adapter. */
  kind: "pglite";
  /** Directory of the PGlite database files. */
  dataDir: string;
}

/** An external PostgreSQL server. */
export interface PostgresDbConfig {
  /** Selects the PostgreSQL adapter. */
  kind: "postgres";
  /** Connection URL, without a password when `passwordFile` is set. */
  url: string;
  /** File the password is read from at connect time, if any. */
  passwordFile: string | undefined;
  /** Connections per instance. */
  poolSize: number;
}

/** Esplora REST backend. */
export interface EsploraChainConfig {
  /** Selects the Esplora adapter. */
  kind: "esplora";
  /** Base URL, e.g. `https://blockstream.info/api`. */
  url: string;
}

/** Bitcoin Core JSON-RPC backend. */
export interface BitcoindChainConfig {
  /** Selects the Bitcoin Core adapter. */
  kind: "bitcoind";
  /** RPC URL. */
  url: string;
  /** RPC credentials: a user with a password file, or the node's cookie file. */
  auth: { kind: "password"; user: string; passwordFile: string } | {
    kind: "cookie";
    cookieFile: string;
  };
}

/** How the edge reaches and trusts a Lightning node. */
export interface LightningNodeConfig {
  /** Selects the LND REST or the clnrest adapter. */
  kind: "lnd" | "cln";
  /** Base URL of the node's REST interface. */
  url: string;
  /** The macaroon (LND) or rune (CLN) file. */
  credentialFile: string;
  /** The node's certificate, pinned: a PEM file or a SHA-256 fingerprint; null over plain http. */
  tls: { certFile: string } | { sha256: string } | null;
}

/** Typed, frozen configuration produced by `loadConfig`. */
export interface Config {
  /** HTTP listener, body limits, timeouts, CORS and proxy trust. */
  server: {
    host: string;
    port: number;
    bodyLimitBytes: number;
    bodyReadTimeoutMs: number;
    requestTimeoutMs: number;
    shutdownTimeoutMs: number;
    corsOrigins: readonly string[];
    trustProxy: boolean;
  };
  /** Data directory, without a trailing slash. */
  dataDir: string;
  /** Read-only directory of ONNX models and their cards. */
  modelsDir: string;
  /** Which database to open. */
  db: PgliteDbConfig | PostgresDbConfig;
  /** Encryption-at-rest key file; `undefined` means `<dataDir>/data.key`, made on first start. */
  dataKeyFile: string | undefined;
  /** Lowest severity that is logged. */
  logLevel: "debug" | "info" | "warn" | "error";
  /** Token-bucket rules per API key and per client address. */
  rateLimit: {
    key: { perMinute: number; burst: number };
    ip: { perMinute: number; burst: number };
    leaseTokens: number;
  };
  /** API key verification cache. */
  auth: { cacheTtlMs: number };
  /**
   * Retention of `Idempotency-Key` results, and how long a running request
   * holds its key (twice the request timeout, at least a minute: a retry must
   * never take over a request that is still running).
   */
  idempotency: { ttlHours: number; lockMs: number };
  /** The remote HSM signer over mTLS; `null` when not configured (signing routes answer 503). */
  hsm: {
    url: string;
    caFile: string;
    clientCertFile: string;
    clientKeyFile: string;
    timeoutMs: number;
  } | null;
  /** The Lightning node; `backend` is `null` when none is configured (node routes answer 503). */
  lightning: {
    backend: LightningNodeConfig | null;
    timeoutMs: number;
    maxPayTimeoutSeconds: number;
    syncIntervalMs: number;
    /** Default per-tenant spending limits, in sats; tenants may be given others. */
    limits: { maxPaymentSat: bigint; maxDailySat: bigint };
  };
  /** The inference engine; `null` when `ML_ENABLED=false`. */
  ml: { maxBatch: number; maxWaitMicros: number; wasmThreads: number } | null;
  /** Bitcoin network, chain backend and transaction tracking. */
  chain: {
    network: BitcoinNetwork;
    /** `null` when no backend is configured: chain-dependent routes answer 503. */
    backend: EsploraChainConfig | BitcoindChainConfig | null;
    timeoutMs: number;
    maxResponseBytes: number;
    confirmations: number;
    trackIntervalMs: number;
  };
}

/** Shape validated env into {@linkcode Config}. */
export function toConfig(env: ConfigEnv): Config {
  const dataDir = env.ANYA_DATA_DIR.replace(/\/+$/, "") || "/";
  return {
    server: {
      host: env.HOST,
      port: env.PORT,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      bodyReadTimeoutMs: env.BODY_READ_TIMEOUT_MS,
      requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      corsOrigins: env.CORS_ORIGINS,
      trustProxy: env.TRUST_PROXY,
    },
    dataDir,
    modelsDir: env.ANYA_MODELS_DIR,
    db: env.DATABASE_URL === undefined ? { kind: "pglite", dataDir: `${dataDir}/pglite` } : {
      kind: "postgres",
      url: env.DATABASE_URL,
      passwordFile: env.DATABASE_PASSWORD_FILE,
      poolSize: env.DATABASE_POOL_SIZE,
    },
    dataKeyFile: env.ANYA_DATA_KEY_FILE,
    logLevel: env.LOG_LEVEL,
    rateLimit: {
      key: { perMinute: env.RATE_LIMIT_KEY_PER_MINUTE, burst: env.RATE_LIMIT_KEY_BURST },
      ip: { perMinute: env.RATE_LIMIT_IP_PER_MINUTE, burst: env.RATE_LIMIT_IP_BURST },
      leaseTokens: env.RATE_LIMIT_LEASE_TOKENS,
    },
    auth: { cacheTtlMs: env.AUTH_CACHE_TTL_MS },
    idempotency: {
      ttlHours: env.IDEMPOTENCY_TTL_HOURS,
      lockMs: env.IDEMPOTENCY_LOCK_MS ?? Math.max(2 * env.REQUEST_TIMEOUT_MS, 60_000),
    },
    hsm: env.HSM_URL === undefined ? null : {
      url: env.HSM_URL,
      caFile: present(env.HSM_CA_FILE, "HSM_CA_FILE"),
      clientCertFile: present(env.HSM_CLIENT_CERT_FILE, "HSM_CLIENT_CERT_FILE"),
      clientKeyFile: present(env.HSM_CLIENT_KEY_FILE, "HSM_CLIENT_KEY_FILE"),
      timeoutMs: env.HSM_TIMEOUT_MS,
    },
    lightning: {
      backend: lightningNode(env),
      timeoutMs: env.LIGHTNING_TIMEOUT_MS,
      maxPayTimeoutSeconds: env.LIGHTNING_MAX_PAY_TIMEOUT_S,
      syncIntervalMs: env.LIGHTNING_SYNC_INTERVAL_MS,
      limits: {
        maxPaymentSat: BigInt(env.LIGHTNING_MAX_PAYMENT_SAT),
        maxDailySat: BigInt(env.LIGHTNING_MAX_DAILY_SAT),
      },
    },
    ml: env.ML_ENABLED
      ? {
        maxBatch: env.ML_MAX_BATCH,
        maxWaitMicros: env.ML_MAX_WAIT_MICROS,
        wasmThreads: env.ML_WASM_THREADS,
      }
      : null,
    chain: {
      network: env.BITCOIN_NETWORK,
      backend: chainBackend(env),
      timeoutMs: env.CHAIN_TIMEOUT_MS,
      maxResponseBytes: env.CHAIN_MAX_RESPONSE_BYTES,
      confirmations: env.TX_CONFIRMATIONS,
      trackIntervalMs: env.TX_TRACK_INTERVAL_MS,
    },
  };
}

function chainBackend(env: ConfigEnv): Config["chain"]["backend"] {
  switch (env.CHAIN_BACKEND) {
    case undefined:
      return null;
    case "esplora":
      return { kind: "esplora", url: present(env.ESPLORA_URL, "ESPLORA_URL") };
    case "bitcoind":
      return {
        kind: "bitcoind",
        url: present(env.BITCOIND_URL, "BITCOIND_URL"),
        auth: env.BITCOIND_RPC_COOKIE_FILE !== undefined
          ? { kind: "cookie", cookieFile: env.BITCOIND_RPC_COOKIE_FILE }
          : {
            kind: "password",
            user: present(env.BITCOIND_RPC_USER, "BITCOIND_RPC_USER"),
            passwordFile: present(env.BITCOIND_RPC_PASSWORD_FILE, "BITCOIND_RPC_PASSWORD_FILE"),
          },
      };
  }
}

function lightningNode(env: ConfigEnv): LightningNodeConfig | null {
  if (env.LIGHTNING_BACKEND === undefined) return null;
  const lnd = env.LIGHTNING_BACKEND === "lnd";
  const url = present(lnd ? env.LND_REST_URL : env.CLN_REST_URL, "the node URL");
  const certFile = lnd ? env.LND_TLS_CERT_FILE : env.CLN_TLS_CERT_FILE;
  const sha256 = lnd ? env.LND_TLS_CERT_SHA256 : env.CLN_TLS_CERT_SHA256;
  return {
    kind: env.LIGHTNING_BACKEND,
    url,
    credentialFile: present(
      lnd ? env.LND_MACAROON_FILE : env.CLN_RUNE_FILE,
      lnd ? "LND_MACAROON_FILE" : "CLN_RUNE_FILE",
    ),
    tls: certFile !== undefined ? { certFile } : sha256 !== undefined ? { sha256 } : null,
  };
}

/** The schema's cross-field rules guarantee these; a miss is a programming error. */
function present(value: string | undefined, name: string): string {
  if (value === undefined) throw new TypeError(`Config invariant broken: ${name} is missing`);
  return value;
}
