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

/** Environment variables, as strings, before they are shaped into {@linkcode Config}. */
export const envSchema = z.object({
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
  kind: "pglite";
  dataDir: string;
}

/** An external PostgreSQL server. */
export interface PostgresDbConfig {
  kind: "postgres";
  url: string;
  passwordFile: string | undefined;
  poolSize: number;
}

/** Typed, frozen configuration produced by `loadConfig`. */
export interface Config {
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
  dataDir: string;
  modelsDir: string;
  db: PgliteDbConfig | PostgresDbConfig;
  dataKeyFile: string | undefined;
  logLevel: "debug" | "info" | "warn" | "error";
  rateLimit: {
    key: { perMinute: number; burst: number };
    ip: { perMinute: number; burst: number };
    leaseTokens: number;
  };
  auth: { cacheTtlMs: number };
  idempotency: { ttlHours: number };
}

/** Shape validated env into {@linkcode Config}. */
export function toConfig(env: z.output<typeof envSchema>): Config {
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
