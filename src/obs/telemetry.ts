/**
 * The service's tracer and meter, from `@opentelemetry/api`. With
 * `OTEL_DENO=true` Deno's built-in exporter registers the global providers and
 * ships spans and metrics over OTLP; without it the API's default providers
 * record nothing and cost next to nothing.
 *
 * @module
 */
import {
  type Attributes,
  type Meter,
  metrics,
  type Span,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";

const NAME = "anya-edge";

/** Span and metric attributes (OpenTelemetry `Attributes`). */
export type TelemetryAttributes = Attributes;
/** A started span (OpenTelemetry `Span`). */
export type TelemetrySpan = Span;
/** Creates spans (OpenTelemetry `Tracer`). */
export type TelemetryTracer = Tracer;
/** Creates instruments (OpenTelemetry `Meter`). */
export type TelemetryMeter = Meter;

/** The service tracer. */
export const tracer: TelemetryTracer = trace.getTracer(NAME);
/** The service meter. */
export const meter: TelemetryMeter = metrics.getMeter(NAME);

/** HTTP server metrics. */
export const httpMetrics = {
  requests: meter.createCounter("http.server.requests", {
    description: "HTTP requests by route and status",
  }),
  duration: meter.createHistogram("http.server.request.duration", {
    description: "HTTP request duration",
    unit: "s",
  }),
};

/** Database metrics. */
export const dbMetrics = {
  duration: meter.createHistogram("db.client.operation.duration", {
    description: "Database call duration",
    unit: "s",
  }),
};

/**
 * Run `fn` inside an active span; errors mark the span and are rethrown.
 *
 * @param name span name, e.g. `db.query` (never a raw URL)
 * @param attributes span attributes
 * @param fn the work, handed the span
 * @returns what `fn` resolves to
 */
export async function withSpan<T>(
  name: string,
  attributes: TelemetryAttributes,
  fn: (span: TelemetrySpan) => Promise<T>,
): Promise<T> {
  return await tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: err instanceof Error ? err.name : "error",
      });
      throw err;
    } finally {
      span.end();
    }
  });
}
