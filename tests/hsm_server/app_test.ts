/**
 * The HSM app on its own (no TLS layer): requests without an authenticated
 * client reach no route, the owner header is required, oversized bodies are
 * 413 however they are sent, and problems carry no internals.
 */
import assert from "node:assert/strict";
import { createHsmApp } from "../../routes/hsm/app.ts";
import { identify } from "../../routes/hsm/tls.ts";
import { createLogger } from "../../src/obs/logger.ts";
import type { KeysService } from "../../src/hsm_server/keys_service.ts";
import type { SignService } from "../../src/hsm_server/sign_service.ts";

// Services are never reached in these cases: each request is refused before any route runs.
const unreachable = new Proxy({}, {
  get: () => () => Promise.reject(new Error("must not be reached")),
});
const app = createHsmApp({
  keys: unreachable as KeysService,
  signer: unreachable as SignService,
  logger: createLogger({ sink: () => {} }),
  bodyLimitBytes: 1024,
});
const client = { tenant: "acme", subject: "edge" };

Deno.test("without a TLS-authenticated client no /v1 route runs", async () => {
  const res = await app.request("/v1/keys", { headers: { "Anya-Owner": "shop" } });
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
});

Deno.test("the owner header is required and checked", async () => {
  for (const owner of [undefined, "", "has space", "x".repeat(65)]) {
    const headers: Record<string, string> = owner === undefined ? {} : { "Anya-Owner": owner };
    const res = await app.request("/v1/keys", { headers }, { client });
    assert.equal(res.status, 400, String(owner));
    await res.body?.cancel();
  }
});

Deno.test("bodies over the limit are 413, also when streamed without a length", async () => {
  const big = "x".repeat(4096);
  const sized = await app.request("/v1/sign/psbt", {
    method: "POST",
    headers: { "Anya-Owner": "shop", "Content-Type": "application/json" },
    body: JSON.stringify({ psbt: big }),
  }, { client });
  assert.equal(sized.status, 413);
  await sized.body?.cancel();
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(JSON.stringify({ psbt: big })));
      c.close();
    },
  });
  const chunked = await app.request("/v1/sign/psbt", {
    method: "POST",
    headers: { "Anya-Owner": "shop", "Content-Type": "application/json" },
    body: stream,
    // @ts-ignore: duplex is required by fetch for streamed bodies
    duplex: "half",
  }, { client });
  assert.equal(chunked.status, 413);
  await chunked.body?.cancel();
});

Deno.test("identify() maps an allowlisted CN or DNS SAN to its tenant, nothing else", () => {
  const allow = new Map([["edge", "acme"], ["edge-2.internal", "beta"]]);
  assert.deepEqual(identify({ subject: { CN: "edge" } }, allow), {
    tenant: "acme",
    subject: "edge",
  });
  assert.deepEqual(
    identify(
      { subject: { CN: "x" }, subjectaltname: "IP Address:127.0.0.1, DNS:edge-2.internal" },
      allow,
    ),
    { tenant: "beta", subject: "edge-2.internal" },
  );
  assert.equal(
    identify({ subject: { CN: "intruder" }, subjectaltname: "IP Address:10.0.0.1" }, allow),
    null,
  );
  assert.equal(identify({ subject: { CN: "edge.evil" } }, allow), null);
  assert.equal(identify(undefined, allow), null);
});
