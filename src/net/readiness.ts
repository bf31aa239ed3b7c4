/**
 * Upstream circuit breakers as a `/readyz` check.
 *
 * @module
 */
import type { ReadinessCheck } from "../health/readiness.ts";
import type { HttpClient } from "./http_client.ts";

/**
 * A readiness check that fails while any upstream's circuit breaker is open.
 *
 * Not ready means load balancers drain this instance: while an upstream it
 * depends on is failing, traffic is better served by an instance whose
 * upstreams answer. Half-open counts as ready, so the probe that can close
 * the breaker gets traffic; a breaker whose open period has elapsed reads as
 * half-open even when no call has come in since.
 *
 * @param clients the upstream clients built in `main.ts`
 * @returns a check named `upstreams` whose detail lists each state, e.g.
 *   `esplora: open, bitcoind: closed`
 */
export function breakerCheck(clients: readonly HttpClient[]): ReadinessCheck {
  return {
    name: "upstreams",
    check() {
      const states = clients.map((c) => ({ name: c.name, state: c.breakerState }));
      return Promise.resolve({
        ok: states.every((s) => s.state !== "open"),
        detail: states.length === 0
          ? "no upstreams"
          : states.map((s) => `${s.name}: ${s.state}`).join(", "),
      });
    },
  };
}
