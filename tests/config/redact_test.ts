import assert from "node:assert/strict";
import { redact, REDACTED, redactText } from "../../src/config/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";

Deno.test("redact() hides values under secret-looking keys at any depth", () => {
  const out = redact({
    password: "p",
    nested: { apiKey: "k", macaroon: "m", rune: "r", list: [{ token: "t" }] },
    safe: "visible",
    keyId: "kid",
  });
  assert.deepEqual(out, {
    password: REDACTED,
    nested: { apiKey: REDACTED, macaroon: REDACTED, rune: REDACTED, list: [{ token: REDACTED }] },
    safe: "visible",
    keyId: "kid",
  });
});

Deno.test("redactText() strips URL passwords, bearer tokens and API keys", () => {
  const text =
    "postgres://app:s3cret@db:5432/x Authorization: Bearer abc.def anya_live_k1a2_ZZZZZZZZZZZZZZZZZZZZZ";
  const out = redactText(text);
  assert.doesNotMatch(out, /s3cret|abc\.def|ZZZZ/);
  assert.match(out, /postgres:\/\/app:\[REDACTED\]@db/);
});

Deno.test("createLogger() writes redacted JSON lines", () => {
  const lines: string[] = [];
  const log = createLogger({ sink: (_l, line) => lines.push(line), level: "info" });
  log.debug("dropped");
  log.info("hello", { secret: "x", url: "https://u:pw@h/" });
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0] ?? "{}");
  assert.equal(rec.msg, "hello");
  assert.equal(rec.secret, REDACTED);
  assert.doesNotMatch(lines[0] ?? "", /pw@/);
});
