import assert from "node:assert/strict";
import { backoffDelay, parseRetryAfter, sleep } from "../../src/net/retry.ts";

Deno.test("backoffDelay() grows exponentially, caps and jitters within [cap/2, cap]", () => {
  const options = { baseDelayMs: 100, maxDelayMs: 1_000 };
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(n, options, () => 0)), [
    50,
    100,
    200,
    400,
    500,
  ]);
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelay(n, options, () => 0.999999)), [
    100,
    200,
    400,
    800,
    1_000,
  ]);
  assert.equal(backoffDelay(1_000, options, () => 0.5), 750, "huge attempts stay finite");
  assert.throws(() => backoffDelay(0, options), RangeError);
});

Deno.test("parseRetryAfter() reads seconds and HTTP dates", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3_000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5_000);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter(null, now), undefined);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter("-1", now), undefined);
});

Deno.test("sleep() waits, and rejects with the reason when aborted", async () => {
  const started = performance.now();
  await sleep(20);
  assert.ok(performance.now() - started >= 15);
  const controller = new AbortController();
  const pending = sleep(10_000, controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(pending, /stop/);
  await assert.rejects(sleep(1, AbortSignal.abort(new Error("early"))), /early/);
});
