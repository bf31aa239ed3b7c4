import assert from "node:assert/strict";
import { HttpClient } from "../../src/net/http_client.ts";
import { breakerCheck } from "../../src/net/readiness.ts";
import { checkReadiness } from "../../src/health/readiness.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";

function client(name: string, now: () => number): HttpClient {
  const options: UpstreamOptions = {
    name,
    baseUrl: "http://upstream.invalid",
    timeoutMs: 100,
    maxResponseBytes: 1024,
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: {
      consecutiveFailures: 1,
      failureRate: 1,
      windowMs: 1_000,
      minRequests: 1,
      openMs: 1_000,
    },
  };
  return new HttpClient(options, {
    now,
    transport: () => Promise.resolve(new Response("down", { status: 503 })),
  });
}

Deno.test("breakerCheck() is not ready while any breaker is open and lists every state", async () => {
  let clock = 0;
  using esplora = client("esplora", () => clock);
  using bitcoind = client("bitcoind", () => clock);
  const check = breakerCheck([esplora, bitcoind]);
  assert.equal(check.name, "upstreams");
  assert.deepEqual(await check.check(), { ok: true, detail: "esplora: closed, bitcoind: closed" });

  await assert.rejects(esplora.request({ method: "GET", path: "/x", route: "/x" }));
  assert.deepEqual(await check.check(), { ok: false, detail: "esplora: open, bitcoind: closed" });
  const report = await checkReadiness([check]);
  assert.equal(report.ready, false);

  clock += 1_000;
  assert.deepEqual(await check.check(), {
    ok: true,
    detail: "esplora: half-open, bitcoind: closed",
  });
  assert.deepEqual(await breakerCheck([]).check(), { ok: true, detail: "no upstreams" });
});
