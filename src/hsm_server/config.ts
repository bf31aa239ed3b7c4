/**
 * The HSM signer's own configuration: a separate process with its own
 * environment (`HSM_*`), storage and permission flags. Pure like the edge's
 * `loadConfig`: every bad or missing variable is named, values never echoed.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../config/load.ts";

const int = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v),
    z.number().int().min(min).max(max),
  );
const path = z.string().min(1, "must not be empty");

/**
 * `HSM_CLIENT_ALLOWLIST`: `subject=tenant` pairs, comma-separated. The subject
 * is a client certificate's CN or one of its DNS SANs.
 */
const allowlist = z.string().transform((text, ctx) => {
  const map = new Map<string, string>();
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p !== "")) {
    const m = /^([A-Za-z0-9.*_-]{1,253})=([A-Za-z0-9_-]{1,64})$/.exec(part);
    if (m === null) {
      ctx.addIssue({ code: "custom", message: "expected subject=tenant pairs, comma-separated" });
      return z.NEVER;
    }
    if (m[1]!.includes("*")) {
      ctx.addIssue({ code: "custom", message: "wildcard subjects are not allowed" });
      return z.NEVER;
    }
    map.set(m[1]!, m[2]!);
  }
  if (map.size === 0) {
    ctx.addIssue({ code: "custom", message: "at least one subject=tenant pair is required" });
    return z.NEVER;
  }
  return map;
});

const hsmEnvSchema = z.object({
  HSM_HOST: z.string().min(1).default("127.0.0.1"),
  HSM_PORT: int(0, 65535).default(8443),
  HSM_DATA_DIR: path.default("./data/hsm"),
  HSM_DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  HSM_TLS_CERT_FILE: path,
  HSM_TLS_KEY_FILE: path,
  HSM_CLIENT_CA_FILE: path,
  HSM_CLIENT_ALLOWLIST: allowlist,
  HSM_KEK_FILE: path,
  HSM_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  HSM_BODY_LIMIT_BYTES: int(1024, 16 * 1024 * 1024).default(4 * 1024 * 1024),
  HSM_SHUTDOWN_TIMEOUT_MS: int(0, 120_000).default(10_000),
  HSM_KEY_CACHE_IDLE_MS: int(0, 3_600_000).default(60_000),
});

/** Names of every environment variable the HSM reads. */
export const HSM_ENV_KEYS: readonly string[] = Object.freeze(Object.keys(hsmEnvSchema.shape));

/** The HSM's validated configuration. */
export interface HsmConfig {
  host: string;
  port: number;
  dataDir: string;
  db: { kind: "pglite"; dataDir: string } | {
    kind: "postgres";
    url: string;
    passwordFile: undefined;
    poolSize: number;
  };
  tls: { certFile: string; keyFile: string; clientCaFile: string };
  /** Client certificate subject (CN or DNS SAN) → tenant. */
  allowlist: ReadonlyMap<string, string>;
  kekFile: string;
  logLevel: "debug" | "info" | "warn" | "error";
  bodyLimitBytes: number;
  shutdownTimeoutMs: number;
  /** How long an unsealed key stays in memory after its last use; 0 unseals per request. */
  keyCacheIdleMs: number;
}

/**
 * Validate the HSM's environment.
 *
 * @param env e.g. `Deno.env.toObject()`
 * @throws ConfigError naming every bad or missing variable
 */
export function loadHsmConfig(env: Readonly<Record<string, string | undefined>>): HsmConfig {
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") cleaned[k] = v;
  const parsed = hsmEnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${String(i.path[0] ?? "(config)")}: ${i.message}`),
    );
  }
  const e = parsed.data;
  const dataDir = e.HSM_DATA_DIR.replace(/\/+$/, "") || "/";
  if (e.HSM_DATABASE_URL !== undefined && new URL(e.HSM_DATABASE_URL).password !== "") {
    throw new ConfigError([
      "HSM_DATABASE_URL: must not contain a password (use trust or a .pgpass)",
    ]);
  }
  return Object.freeze({
    host: e.HSM_HOST,
    port: e.HSM_PORT,
    dataDir,
    db: e.HSM_DATABASE_URL === undefined
      ? { kind: "pglite" as const, dataDir: `${dataDir}/pglite` }
      : {
        kind: "postgres" as const,
        url: e.HSM_DATABASE_URL,
        passwordFile: undefined,
        poolSize: 5,
      },
    tls: {
      certFile: e.HSM_TLS_CERT_FILE,
      keyFile: e.HSM_TLS_KEY_FILE,
      clientCaFile: e.HSM_CLIENT_CA_FILE,
    },
    allowlist: e.HSM_CLIENT_ALLOWLIST,
    kekFile: e.HSM_KEK_FILE,
    logLevel: e.HSM_LOG_LEVEL,
    bodyLimitBytes: e.HSM_BODY_LIMIT_BYTES,
    shutdownTimeoutMs: e.HSM_SHUTDOWN_TIMEOUT_MS,
    keyCacheIdleMs: e.HSM_KEY_CACHE_IDLE_MS,
  });
}
