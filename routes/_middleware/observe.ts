/** One span and one metric sample per request, named by route pattern, never raw URL. */
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { createMiddleware } from "hono/factory";
import { routePath } from "hono/route";
import type { AppEnv } from "../_env.ts";
import type { Logger } from "../../src/obs/logger.ts";
import { httpMetrics, tracer } from "../../src/obs/telemetry.ts";

/** Request tracing, metrics and an access log line. */
export function observe(logger: Logger) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    const method = c.req.method;
    await tracer.startActiveSpan(method, { kind: SpanKind.SERVER }, async (span) => {
      try {
        await next();
      } finally {
        const route = c.res.status === 404 && routePath(c) === "/*" ? "unmatched" : routePath(c);
        const status = c.res.status;
        const seconds = (performance.now() - started) / 1000;
        span.updateName(`${method} ${route}`);
        span.setAttributes({
          "http.request.method": method,
          "http.route": route,
          "http.response.status_code": status,
          "anya.request_id": c.get("requestId"),
        });
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        const attrs = {
          "http.request.method": method,
          "http.route": route,
          "http.response.status_code": status,
        };
        httpMetrics.requests.add(1, attrs);
        httpMetrics.duration.record(seconds, attrs);
        logger.info("request", {
          requestId: c.get("requestId"),
          method,
          route,
          status,
          ms: Math.round(seconds * 1000),
        });
      }
    });
  });
}
