/**
 * A circuit breaker as a pure state machine with an injectable clock. It
 * keeps a failing upstream from being hammered and lets callers fail fast:
 *
 * - **closed**: calls pass. It opens after `consecutiveFailures` failures in a
 *   row, or when more than `failureRate` of the calls in the last `windowMs`
 *   failed and there were at least `minRequests` of them.
 * - **open**: calls are refused for `openMs`.
 * - **half-open**: exactly one probe passes; its success closes the breaker,
 *   its failure opens it again.
 *
 * Callers take a permit per call and report its outcome with it. Permits
 * carry the breaker's epoch, so late outcomes of calls started before a
 * transition (for example a slow success arriving while a probe is out) do
 * not decide the new state.
 *
 * @module
 */
import type { BreakerState } from "./types.ts";

/** Thresholds of one breaker (the `breaker` slice of `UpstreamOptions`). */
export interface CircuitBreakerOptions {
  /** Failures in a row that open the breaker. */
  consecutiveFailures: number;
  /** Failure ratio in (0, 1] over the window above which the breaker opens. */
  failureRate: number;
  /** Length of the sliding window for the failure rate. */
  windowMs: number;
  /** Calls needed in the window before the rate is judged. */
  minRequests: number;
  /** How long the breaker stays open before a probe is let through. */
  openMs: number;
}

/** Permission for one call, returned by {@linkcode CircuitBreaker.tryAcquire}. */
export interface BreakerPermit {
  /** True for the single half-open probe. */
  readonly probe: boolean;
  /** The breaker epoch the permit was issued in. */
  readonly epoch: number;
}

/** Dependencies of a {@linkcode CircuitBreaker}. */
export interface CircuitBreakerDeps {
  /** Clock in milliseconds; defaults to `Date.now`. */
  now?: () => number;
  /** Called synchronously on every transition. */
  onStateChange?: (to: BreakerState, from: BreakerState) => void;
}

/** The window is kept as this many fixed buckets, so memory stays constant under load. */
const BUCKETS = 10;

/** Circuit breaker for one upstream; see the module documentation. */
export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  readonly #now: () => number;
  readonly #onStateChange: ((to: BreakerState, from: BreakerState) => void) | undefined;
  readonly #bucketMs: number;
  readonly #bucketIds = new Array<number>(BUCKETS).fill(-1);
  readonly #successes = new Array<number>(BUCKETS).fill(0);
  readonly #failures = new Array<number>(BUCKETS).fill(0);
  #state: BreakerState = "closed";
  #epoch = 0;
  #consecutive = 0;
  #openedAt = 0;
  #probeOut = false;

  /**
   * Create a closed breaker.
   *
   * @param options thresholds
   * @param deps clock and transition hook
   */
  constructor(options: CircuitBreakerOptions, deps: CircuitBreakerDeps = {}) {
    checkOptions(options);
    this.#options = { ...options };
    this.#now = deps.now ?? Date.now;
    this.#onStateChange = deps.onStateChange;
    this.#bucketMs = Math.max(1, options.windowMs / BUCKETS);
  }

  /** Current state; an open breaker whose `openMs` elapsed reports (and becomes) half-open. */
  get state(): BreakerState {
    if (this.#state === "open" && this.#now() - this.#openedAt >= this.#options.openMs) {
      this.#transition("half-open");
    }
    return this.#state;
  }

  /** Milliseconds until an open breaker lets a probe through; 0 unless open. */
  retryAfterMs(): number {
    if (this.state !== "open") return 0;
    return Math.max(0, this.#openedAt + this.#options.openMs - this.#now());
  }

  /**
   * Ask to make one call.
   *
   * @returns a permit to report the outcome with, or null when the call must not be made
   */
  tryAcquire(): BreakerPermit | null {
    const state = this.state;
    if (state === "closed") return { probe: false, epoch: this.#epoch };
    if (state === "open" || this.#probeOut) return null;
    this.#probeOut = true;
    return { probe: true, epoch: this.#epoch };
  }

  /**
   * Report that the call succeeded (the upstream answered sanely).
   *
   * @param permit the permit of the call
   */
  success(permit: BreakerPermit): void {
    if (permit.epoch !== this.#epoch) return;
    if (permit.probe) {
      this.#probeOut = false;
      this.#transition("closed");
      return;
    }
    this.#consecutive = 0;
    this.#count(true);
  }

  /**
   * Report that the call failed (transport error, timeout, 5xx).
   *
   * @param permit the permit of the call
   */
  failure(permit: BreakerPermit): void {
    if (permit.epoch !== this.#epoch) return;
    if (permit.probe) {
      this.#probeOut = false;
      this.#open();
      return;
    }
    this.#consecutive++;
    this.#count(false);
    if (this.#consecutive >= this.#options.consecutiveFailures || this.#rateExceeded()) {
      this.#open();
    }
  }

  /**
   * Report that the call ended without telling anything about the upstream's
   * health (for example the caller cancelled it); frees a half-open probe.
   *
   * @param permit the permit of the call
   */
  release(permit: BreakerPermit): void {
    if (permit.epoch === this.#epoch && permit.probe) this.#probeOut = false;
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#transition("open");
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#epoch++;
    this.#consecutive = 0;
    this.#probeOut = false;
    // A fresh window after every transition: failures that opened the breaker
    // must not re-open it the moment a probe has closed it.
    this.#bucketIds.fill(-1);
    this.#onStateChange?.(to, from);
  }

  #count(ok: boolean): void {
    const id = Math.floor(this.#now() / this.#bucketMs);
    const i = id % BUCKETS;
    if (this.#bucketIds[i] !== id) {
      this.#bucketIds[i] = id;
      this.#successes[i] = 0;
      this.#failures[i] = 0;
    }
    if (ok) this.#successes[i]!++;
    else this.#failures[i]!++;
  }

  #rateExceeded(): boolean {
    const current = Math.floor(this.#now() / this.#bucketMs);
    let total = 0;
    let failed = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const id = this.#bucketIds[i]!;
      if (id < 0 || id <= current - BUCKETS) continue;
      total += this.#successes[i]! + this.#failures[i]!;
      failed += this.#failures[i]!;
    }
    return total >= this.#options.minRequests && failed / total > this.#options.failureRate;
  }
}

function checkOptions(o: CircuitBreakerOptions): void {
  if (!Number.isInteger(o.consecutiveFailures) || o.consecutiveFailures < 1) {
    throw new RangeError(
      `breaker.consecutiveFailures must be a positive integer, got ${o.consecutiveFailures}`,
    );
  }
  if (!(o.failureRate > 0 && o.failureRate <= 1)) {
    throw new RangeError(`breaker.failureRate must be in (0, 1], got ${o.failureRate}`);
  }
  if (!Number.isInteger(o.minRequests) || o.minRequests < 1) {
    throw new RangeError(`breaker.minRequests must be a positive integer, got ${o.minRequests}`);
  }
  for (const key of ["windowMs", "openMs"] as const) {
    if (!Number.isFinite(o[key]) || o[key] <= 0) {
      throw new RangeError(`breaker.${key} must be a positive number, got ${o[key]}`);
    }
  }
}
