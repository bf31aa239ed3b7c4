import { type Config, envSchema, toConfig } from "./schema.ts";

/** Thrown by {@linkcode loadConfig}; `problems` names every bad or missing variable. */
export class ConfigError extends Error {
  /** One `NAME: reason` line per bad or missing variable, never its value. */
  readonly problems: readonly string[];
  /**
   * Build the error; the message lists every problem.
   *
   * @param problems one line per bad or missing variable
   */
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * Validate an environment record and return the frozen {@linkcode Config}.
 * Pure: reads nothing but its argument, so tests pass literals.
 *
 * @param env e.g. `Deno.env.toObject()`
 * @returns frozen config
 * @throws ConfigError listing every bad or missing variable by name
 * @example
 * ```ts
 * const config = loadConfig({ PORT: "8080" });
 * ```
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  // Empty strings mean "unset": shells and compose files often export VAR= .
  const cleaned: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") cleaned[k] = v;
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => {
      const name = String(i.path[0] ?? "(config)");
      // Never echo the received value: it may be a secret.
      return `${name}: ${i.message}`;
    }));
  }
  const config = toConfig(parsed.data);
  const problems: string[] = [];
  if (config.db.kind === "pglite" && cleaned.DATABASE_PASSWORD_FILE !== undefined) {
    problems.push("DATABASE_PASSWORD_FILE: only meaningful together with DATABASE_URL");
  }
  if (config.db.kind === "postgres" && config.db.passwordFile !== undefined) {
    if (new URL(config.db.url).password !== "") {
      problems.push(
        "DATABASE_URL: must not contain a password when DATABASE_PASSWORD_FILE is set",
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
