import assert from "node:assert/strict";
import { CircuitBreaker, type CircuitBreakerOptions } from "../../src/net/circuit_breaker.ts";
import type { BreakerState } from "../../src/net/types.ts";

const OPTIONS: CircuitBreakerOptions = {
  consecutiveFailures: 3,
  failureRate: 0.5,
  windowMs: 10_000,
  minRequests: 10,
  openMs: 1_000,
};

function breaker(over: Partial<CircuitBreakerOptions> = {}) {
  const clock = { now: 0 };
  const changes: string[] = [];
  const b = new CircuitBreaker({ ...OPTIONS, ...over }, {
    now: () => clock.now,
    onStateChange: (to: BreakerState, from: BreakerState) => changes.push(`${from}->${to}`),
  });
  return { b, clock, changes };
}

function fail(b: CircuitBreaker): void {
  const permit = b.tryAcquire();
  assert.ok(permit !== null);
  b.failure(permit);
}

function succeed(b: CircuitBreaker): void {
  const permit = b.tryAcquire();
  assert.ok(permit !== null);
  b.success(permit);
}

Deno.test("CircuitBreaker opens after consecutiveFailures failures in a row", () => {
  const { b } = breaker();
  fail(b);
  fail(b);
  succeed(b); // resets the run
  fail(b);
  fail(b);
  assert.equal(b.state, "closed");
  fail(b);
  assert.equal(b.state, "open");
  assert.equal(b.tryAcquire(), null);
});

Deno.test("CircuitBreaker opens when the failure rate over the window exceeds the limit", () => {
  const { b } = breaker({ consecutiveFailures: 100 });
  // 9 calls, 5 failed: above 50 % but below minRequests.
  for (let i = 0; i < 4; i++) {
    succeed(b);
    fail(b);
  }
  fail(b);
  assert.equal(b.state, "closed");
  succeed(b);
  fail(b); // 11 calls, 6 failed
  assert.equal(b.state, "open");
});

Deno.test("CircuitBreaker forgets failures older than the window", () => {
  const { b, clock } = breaker({ consecutiveFailures: 100 });
  for (let i = 0; i < 9; i++) fail(b); // below minRequests
  clock.now += 11_000;
  for (let i = 0; i < 9; i++) succeed(b);
  fail(b); // with the old failures this would be 10 of 19
  assert.equal(b.state, "closed");
});

Deno.test("CircuitBreaker goes half-open after openMs and lets exactly one probe through", () => {
  const { b, clock, changes } = breaker();
  for (let i = 0; i < 3; i++) fail(b);
  assert.equal(b.retryAfterMs(), 1_000);
  clock.now += 999;
  assert.equal(b.state, "open");
  assert.equal(b.retryAfterMs(), 1);
  clock.now += 1;
  assert.equal(b.state, "half-open");
  const probe = b.tryAcquire();
  assert.ok(probe?.probe);
  assert.equal(b.tryAcquire(), null, "only one probe");
  b.success(probe);
  assert.equal(b.state, "closed");
  assert.deepEqual(changes, ["closed->open", "open->half-open", "half-open->closed"]);
  fail(b);
  fail(b);
  assert.equal(b.state, "closed", "a closed breaker starts with a clean slate");
});

Deno.test("CircuitBreaker re-opens when the probe fails, and frees a released probe", () => {
  const { b, clock } = breaker();
  for (let i = 0; i < 3; i++) fail(b);
  clock.now += 1_000;
  const probe = b.tryAcquire();
  assert.ok(probe !== null);
  b.release(probe);
  const again = b.tryAcquire();
  assert.ok(again?.probe, "a released probe can be retaken");
  b.failure(again);
  assert.equal(b.state, "open");
  assert.equal(b.retryAfterMs(), 1_000);
});

Deno.test("CircuitBreaker ignores outcomes of calls started before a transition", () => {
  const { b, clock } = breaker();
  const early = b.tryAcquire();
  assert.ok(early !== null);
  for (let i = 0; i < 3; i++) fail(b);
  clock.now += 1_000;
  const probe = b.tryAcquire();
  assert.ok(probe !== null);
  b.success(early); // a slow call from the closed era
  assert.equal(b.state, "half-open", "the late success does not close the breaker");
  b.failure(probe);
  assert.equal(b.state, "open");
});

Deno.test("CircuitBreaker rejects invalid thresholds", () => {
  for (
    const bad of [
      { consecutiveFailures: 0 },
      { consecutiveFailures: 1.5 },
      { failureRate: 0 },
      { failureRate: 1.1 },
      { minRequests: 0 },
      { windowMs: 0 },
      { openMs: -1 },
      { openMs: Number.NaN },
    ]
  ) {
    assert.throws(
      () => new CircuitBreaker({ ...OPTIONS, ...bad }),
      RangeError,
      JSON.stringify(bad),
    );
  }
});
