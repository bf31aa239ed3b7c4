/**
 * With `OTEL_DENO=true` Deno's built-in exporter ships the service's own spans
 * and metrics over OTLP. A local collector receives them (OTLP/HTTP JSON).
 */
import assert from "node:assert/strict";
import { freePort, startServer } from "../_helpers/server.ts";

interface Received {
  path: string;
  body: unknown;
}

function names(received: Received[], path: string, listKey: string, itemKey: string): string[] {
  const out: string[] = [];
  for (const r of received.filter((r) => r.path === path)) {
    const body = r.body as Record<string, Array<Record<string, unknown>>>;
    for (const resource of body[listKey] ?? []) {
      for (
        const scope of (resource.scopeSpans ?? resource.scopeMetrics ?? []) as Array<
          Record<string, unknown>
        >
      ) {
        for (const item of (scope[itemKey] ?? []) as Array<{ name: string }>) out.push(item.name);
      }
    }
  }
  return out;
}

Deno.test({
  name: "OTEL_DENO=true exports request spans named by route, db spans and HTTP metrics",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const received: Received[] = [];
    const collector = Deno.serve(
      { hostname: "127.0.0.1", port: freePort(), onListen: () => {} },
      async (req) => {
        received.push({ path: new URL(req.url).pathname, body: await req.json() });
        return Response.json({});
      },
    );
    const dataDir = await Deno.makeTempDir({ prefix: "anya-otel-" });
    try {
      const server = await startServer({
        ANYA_DATA_DIR: dataDir,
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.addr.port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "anya-edge-test",
      });
      for (const path of ["/healthz", "/readyz", "/v1/me"]) {
        await (await fetch(`${server.url}${path}`)).body?.cancel();
      }
      assert.equal((await server.stop("SIGTERM")).code, 0, server.output());
      // The exporter flushes on exit; give the collector a moment to read it.
      for (let i = 0; i < 50 && !received.some((r) => r.path === "/v1/metrics"); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const spans = names(received, "/v1/traces", "resourceSpans", "spans");
      assert.ok(spans.includes("GET /healthz"), spans.join(", "));
      assert.ok(spans.includes("GET /readyz"), spans.join(", "));
      assert.ok(spans.includes("db.query"), spans.join(", "));
      assert.ok(!spans.some((s) => s.includes("127.0.0.1")), "no raw URLs as span names");
      const metrics = names(received, "/v1/metrics", "resourceMetrics", "metrics");
      assert.ok(metrics.includes("http.server.requests"), metrics.join(", "));
      assert.ok(metrics.includes("http.server.request.duration"), metrics.join(", "));
    } finally {
      await collector.shutdown();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
