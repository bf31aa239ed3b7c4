/** parseReply/unexpectedReply: one message format, the schema's complaint kept as the cause. */
import assert from "node:assert/strict";
import { z } from "zod";
import { UpstreamError } from "../../src/errors/mod.ts";
import { parseReply, unexpectedReply } from "../../src/net/upstream_reply.ts";

Deno.test("parseReply() returns the parsed reply, or a 502 naming the product and what it answered", () => {
  const schema = z.object({ height: z.number().int() });
  assert.deepEqual(parseReply(schema, { height: 7, extra: 1 }, "Esplora", "/blocks/tip"), {
    height: 7,
  });
  assert.throws(
    () => parseReply(schema, { height: "7" }, "Esplora", "/blocks/tip"),
    (err: unknown) =>
      err instanceof UpstreamError && err.status === 502 &&
      err.message === "Esplora sent an unexpected reply for /blocks/tip" &&
      err.cause instanceof z.ZodError,
  );
  const e = unexpectedReply("LND", "GET /v1/getinfo");
  assert.equal(e.message, "LND sent an unexpected reply for GET /v1/getinfo");
  assert.equal(e.cause, undefined);
});
