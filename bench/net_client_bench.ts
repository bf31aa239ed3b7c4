/**
 * The network client's overhead per call against a loopback upstream: raw
 * `fetch` (the baseline) vs `HttpClient.request` (path check, deadline, size
 * cap, breaker, span, metrics, response wrapper) to the same `Deno.serve`
 * answering small JSON. Target: the client keeps at least 70% of the
 * baseline's throughput; Deno's report shows the ratio against the baseline,
 * for one call at a time and for sixteen in flight.
 */
import { HttpClient } from "../src/net/http_client.ts";

const BODY = JSON.stringify({ height: 840_000, hash: "00".repeat(32) });
const upstream = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  () => new Response(BODY, { headers: { "content-type": "application/json" } }),
);
const baseUrl = `http://127.0.0.1:${upstream.addr.port}`;
const client = new HttpClient({
  name: "bench",
  baseUrl,
  timeoutMs: 5_000,
  maxResponseBytes: 1024 * 1024,
  retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 1_000 },
  breaker: {
    consecutiveFailures: 5,
    failureRate: 0.5,
    windowMs: 30_000,
    minRequests: 20,
    openMs: 30_000,
  },
});

Deno.bench(
  { name: "raw fetch GET", group: "upstream call", baseline: true },
  async () => {
    const res = await fetch(`${baseUrl}/blocks/tip`);
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    JSON.parse(await res.text());
  },
);

Deno.bench(
  { name: "HttpClient.request GET", group: "upstream call" },
  async () => {
    const res = await client.request({ method: "GET", path: "/blocks/tip", route: "/blocks/tip" });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    res.json();
  },
);

// Sixteen calls in flight at once: exercises the connection pool as a busy service would.
const FANOUT = 16;

Deno.bench(
  { name: "raw fetch GET x16 concurrent", group: "upstream calls, 16 concurrent", baseline: true },
  async () => {
    await Promise.all(Array.from({ length: FANOUT }, async () => {
      const res = await fetch(`${baseUrl}/blocks/tip`);
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      JSON.parse(await res.text());
    }));
  },
);

Deno.bench(
  { name: "HttpClient.request GET x16 concurrent", group: "upstream calls, 16 concurrent" },
  async () => {
    await Promise.all(Array.from({ length: FANOUT }, async () => {
      const res = await client.request({
        method: "GET",
        path: "/blocks/tip",
        route: "/blocks/tip",
      });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      res.json();
    }));
  },
);

globalThis.addEventListener("unload", () => {
  client.close();
  void upstream.shutdown();
});
