/**
 * Optional dependencies of a route group: a capability the edge runs without
 * (no HSM, no models) answers 503 with the reason, instead of each route
 * checking for `null` in its own words.
 *
 * @module
 */
import { UnavailableError } from "../src/errors/mod.ts";

/** Why the HSM routes answer 503 on an edge without one. */
export const NO_HSM = "No HSM is configured (HSM_URL)";

/**
 * A getter that returns `dep`, or throws a 503 naming what is not enabled.
 *
 * @param dep the dependency, `null` when the edge runs without it
 * @param unavailable the problem detail when it is missing
 * @returns the getter a route calls when it needs `dep`
 */
export function optionalDep<T>(dep: T | null, unavailable: string): () => T {
  return () => {
    if (dep === null) throw new UnavailableError(unavailable);
    return dep;
  };
}
