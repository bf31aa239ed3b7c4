import assert from "node:assert/strict";
import { ValidationError } from "../../src/errors/mod.ts";
import { isIdempotencyKey, parseIdempotencyKey } from "../../src/idempotency/mod.ts";

Deno.test("parseIdempotencyKey() accepts bare and sf-string keys", () => {
  const cases: [string, string][] = [
    ["8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"],
    ['"8e03978e-40d5-43e8-bc93-6894a57f9324"', "8e03978e-40d5-43e8-bc93-6894a57f9324"],
    ['"a \\"quoted\\" \\\\ key"', 'a "quoted" \\ key'],
    ["k", "k"],
    ["x".repeat(255), "x".repeat(255)],
    ["with space~!", "with space~!"],
  ];
  for (const [i, [header, key]] of cases.entries()) {
    assert.equal(parseIdempotencyKey(header), key, `case ${i}`);
  }
});

Deno.test("parseIdempotencyKey() rejects invalid values with a 400 naming the header", () => {
  const cases = ["", '""', '"unterminated', '"a"b"', '"bad \\n escape"', "x".repeat(256), "é"];
  for (const [i, header] of cases.entries()) {
    assert.throws(() => parseIdempotencyKey(header), (err: unknown) => {
      assert.ok(err instanceof ValidationError, `case ${i}`);
      assert.equal(err.status, 400, `case ${i}`);
      assert.match(err.message, /Idempotency-Key/, `case ${i}`);
      return true;
    });
  }
});

Deno.test("isIdempotencyKey() checks type, length and characters", () => {
  assert.equal(isIdempotencyKey("abc"), true);
  for (const bad of [undefined, null, 42, "", "tab\there", "x".repeat(256)]) {
    assert.equal(isIdempotencyKey(bad), false, String(bad));
  }
});
