/**
 * Readiness: the database is reachable and migrated; later issues add upstream
 * circuit states as further checks.
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import { currentVersion } from "../db/migrate.ts";
import { withDeadline } from "../util/deadline.ts";

/** The result of one readiness check. */
export interface CheckResult {
  /** Whether this dependency is usable. */
  ok: boolean;
  /** Short public explanation, e.g. the database kind and schema version. */
  detail: string;
}

/** One named readiness check. */
export interface ReadinessCheck {
  /** Key of the result in {@linkcode ReadinessReport.checks}. */
  name: string;
  /** Probe the dependency; may throw or hang, which the runner treats as not ready. */
  check(): Promise<CheckResult>;
}

/** The combined report served by `/readyz`. */
export interface ReadinessReport {
  /** True only when every check passed. */
  ready: boolean;
  /** Each check's result, by name. */
  checks: Record<string, CheckResult>;
}

/**
 * Check the database answers and sits at the migration version the code expects.
 *
 * @param db the database
 * @param expectedVersion newest migration known to the code
 */
export function databaseCheck(db: Db, expectedVersion: number): ReadinessCheck {
  return {
    name: "database",
    async check() {
      const version = await currentVersion(db);
      return version === expectedVersion
        ? { ok: true, detail: `${db.kind}, schema version ${version}` }
        : { ok: false, detail: `schema version ${version}, expected ${expectedVersion}` };
    },
  };
}

/**
 * Run every check concurrently, each bounded by `timeoutMs`; a throw or a
 * timeout counts as not ready (the error text is not exposed).
 */
export async function checkReadiness(
  checks: readonly ReadinessCheck[],
  timeoutMs = 2_000,
): Promise<ReadinessReport> {
  const results = await Promise.all(checks.map(async (c): Promise<[string, CheckResult]> => {
    try {
      const result = await withDeadline(
        c.check(),
        timeoutMs,
        () => ({ ok: false, detail: "timed out" }),
      );
      return [c.name, result];
    } catch {
      return [c.name, { ok: false, detail: "check failed" }];
    }
  }));
  return { ready: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
}
