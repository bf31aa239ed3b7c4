import assert from "node:assert/strict";
import {
  assertRule,
  refilled,
  secondsUntilFull,
  secondsUntilToken,
  TokenBucket,
} from "../../src/ratelimit/mod.ts";

const RULE = { perMinute: 60, burst: 3 };

Deno.test("TokenBucket.take() admits the burst, then refuses until a token refills", () => {
  const bucket = new TokenBucket(RULE, 0);
  const first = bucket.take(0);
  assert.deepEqual(first, {
    allowed: true,
    limit: 3,
    remaining: 2,
    resetSeconds: 1,
    retryAfterSeconds: 0,
  });
  assert.equal(bucket.take(0).allowed, true);
  assert.equal(bucket.take(0).allowed, true);
  const refused = bucket.take(0);
  assert.equal(refused.allowed, false);
  assert.equal(refused.retryAfterSeconds, 1);
  assert.equal(refused.resetSeconds, 3);
  assert.equal(bucket.peek(500), 0.5);
  assert.equal(bucket.take(1000).allowed, true);
  assert.equal(bucket.take(1000).allowed, false);
});

Deno.test("TokenBucket.take() rounds Retry-After up to whole seconds, at least 1", () => {
  const slow = new TokenBucket({ perMinute: 20, burst: 1 }, 0);
  slow.take(0);
  assert.equal(slow.take(0).retryAfterSeconds, 3);
  assert.equal(slow.take(2900).retryAfterSeconds, 1);
});

Deno.test("TokenBucket ignores a clock that steps back", () => {
  const bucket = new TokenBucket(RULE, 10_000, 0);
  assert.equal(bucket.take(5_000).allowed, false);
  assert.equal(bucket.peek(10_000), 0);
});

Deno.test("refilled() caps at the burst and ignores negative elapsed time", () => {
  assert.equal(refilled(1, 500, RULE), 1.5);
  assert.equal(refilled(1, 60_000, RULE), 3);
  assert.equal(refilled(1, -1000, RULE), 1);
  assert.equal(secondsUntilToken(0.25, RULE), 0.75);
  assert.equal(secondsUntilToken(2, RULE), 0);
  assert.equal(secondsUntilFull(1, RULE), 2);
});

Deno.test("assertRule() and TokenBucket reject wrong types and ranges", () => {
  const typeCases: unknown[] = [null, "60", { perMinute: "60", burst: 3 }, { perMinute: 60 }];
  for (const [i, rule] of typeCases.entries()) {
    assert.throws(() => assertRule(rule as never), TypeError, `type case ${i}`);
  }
  const rangeCases = [
    { perMinute: 0, burst: 3 },
    { perMinute: 60, burst: -1 },
    { perMinute: Number.NaN, burst: 3 },
    { perMinute: 60, burst: Number.POSITIVE_INFINITY },
  ];
  for (const [i, rule] of rangeCases.entries()) {
    assert.throws(() => assertRule(rule), RangeError, `range case ${i}`);
  }
  assert.throws(() => new TokenBucket(RULE, Number.NaN), RangeError);
  assert.throws(() => new TokenBucket(RULE, 0, -1), RangeError);
});
