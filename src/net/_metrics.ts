/**
 * Upstream metrics, created once on the service meter: calls by outcome,
 * call duration, breaker transitions and an observable breaker-state gauge.
 *
 * @module
 */
import { meter } from "../obs/telemetry.ts";
import type { BreakerState } from "./types.ts";

/** What the breaker gauge needs from a client. */
export interface BreakerSource {
  readonly name: string;
  readonly breakerState: BreakerState;
}

/** Gauge values: 0 closed, 1 half-open, 2 open. */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  "half-open": 1,
  open: 2,
};

/** Counters and histograms recorded per call. */
export const upstreamMetrics = {
  requests: meter.createCounter("upstream.requests", {
    description: "Outbound calls by upstream, route and outcome",
  }),
  duration: meter.createHistogram("upstream.request.duration", {
    description: "Outbound call duration, retries and backoff included",
    unit: "s",
  }),
  transitions: meter.createCounter("upstream.breaker.transitions", {
    description: "Circuit breaker transitions by upstream and new state",
  }),
};

const live = new Set<BreakerSource>();

meter.createObservableGauge("upstream.breaker.state", {
  description: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open",
}).addCallback((result) => {
  for (const client of live) {
    result.observe(BREAKER_STATE_VALUE[client.breakerState], { upstream: client.name });
  }
});

/** Report `client` in the breaker gauge until {@linkcode untrackClient}. */
export function trackClient(client: BreakerSource): void {
  live.add(client);
}

/** Stop reporting `client` (it was closed). */
export function untrackClient(client: BreakerSource): void {
  live.delete(client);
}
