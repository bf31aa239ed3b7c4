/**
 * The one configuration schema. Every environment variable the service reads
 * is declared here; `deno task start` derives its `--allow-env` list from
 * {@linkcode CONFIG_ENV_KEYS}, so a variable missing here cannot be read.
 *
 * @module
 */
import { z } from "zod";

const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const int = (min: number, max: number) =>
  z.string().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(
    z.number().int().min(min).max(max),
  );
const path = z.string().min(1, "must not be empty");

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
});

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
  /** Retention of `Idempotency-Key` results. */
  idempotency: { ttlHours: number };
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
    idempotency: { ttlHours: env.IDEMPOTENCY_TTL_HOURS },
  };
}
