/**
 * Spans and metrics of the HTTP client, recorded by in-process OpenTelemetry
 * providers. They are registered before the client module is loaded (hence the
 * dynamic imports): the metrics API binds instruments when they are created.
 */
import assert from "node:assert/strict";
import {
  type Attributes,
  type Meter,
  metrics,
  type ObservableResult,
  type Span,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { startFaultServer } from "../_peers/fault_server.ts";

interface RecordedSpan {
  name: string;
  attributes: Attributes;
  status?: number;
  ended: boolean;
}
const spans: RecordedSpan[] = [];
const counts: Array<{ name: string; value: number; attributes: Attributes }> = [];
const gaugeCallbacks: Array<(result: ObservableResult) => void> = [];

function recordingSpan(name: string, attributes: Attributes): Span {
  const rec: RecordedSpan = { name, attributes: { ...attributes }, ended: false };
  spans.push(rec);
  const span = {
    setAttribute(key: string, value: Attributes[string]) {
      rec.attributes[key] = value;
      return span;
    },
    setAttributes(attrs: Attributes) {
      Object.assign(rec.attributes, attrs);
      return span;
    },
    setStatus(status: { code: number }) {
      rec.status = status.code;
      return span;
    },
    end() {
      rec.ended = true;
    },
    isRecording: () => true,
  };
  return span as unknown as Span;
}

const tracer = {
  startSpan: (name: string, options?: { attributes?: Attributes }) =>
    recordingSpan(name, options?.attributes ?? {}),
  startActiveSpan: (
    name: string,
    options: { attributes?: Attributes },
    fn: (span: Span) => unknown,
  ) => fn(recordingSpan(name, options.attributes ?? {})),
} as unknown as Tracer;
trace.setGlobalTracerProvider({ getTracer: () => tracer });

const meter = {
  createCounter: (name: string) => ({
    add: (value: number, attributes: Attributes = {}) => counts.push({ name, value, attributes }),
  }),
  createHistogram: (name: string) => ({
    record: (value: number, attributes: Attributes = {}) =>
      counts.push({ name, value, attributes }),
  }),
  createObservableGauge: () => ({
    addCallback: (cb: (result: ObservableResult) => void) => gaugeCallbacks.push(cb),
  }),
} as unknown as Meter;
metrics.setGlobalMeterProvider({ getMeter: () => meter });

const { HttpClient } = await import("../../src/net/http_client.ts");

function observeGauge(): Array<[number, Attributes | undefined]> {
  const out: Array<[number, Attributes | undefined]> = [];
  for (const cb of gaugeCallbacks) {
    cb({ observe: (value, attributes) => out.push([value, attributes]) });
  }
  return out;
}

Deno.test("HttpClient records a span per call named by upstream, method and route", async () => {
  await using server = startFaultServer();
  using client = new HttpClient({
    name: "esplora",
    baseUrl: server.url,
    timeoutMs: 500,
    maxResponseBytes: 1024,
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: {
      consecutiveFailures: 2,
      failureRate: 1,
      windowMs: 1_000,
      minRequests: 10,
      openMs: 60_000,
    },
  });
  spans.length = 0;
  counts.length = 0;
  await client.request({ method: "GET", path: "/tx/abcd/status", route: "/tx/:txid/status" });
  server.setMode("status503");
  await assert.rejects(
    client.request({ method: "GET", path: "/tx/ef/status", route: "/tx/:txid/status" }),
  );

  assert.deepEqual(spans.map((s) => s.name), [
    "esplora GET /tx/:txid/status",
    "esplora GET /tx/:txid/status",
  ]);
  const [ok, failed] = spans;
  assert.deepEqual(ok?.attributes, {
    "upstream.name": "esplora",
    "http.request.method": "GET",
    "http.route": "/tx/:txid/status",
    "upstream.attempts": 1,
    "upstream.outcome": "ok",
    "http.response.status_code": 200,
  });
  assert.equal(failed?.attributes["upstream.attempts"], 2);
  assert.equal(failed?.attributes["http.response.status_code"], 503);
  assert.equal(failed?.status, 2, "an error span");
  assert.ok(spans.every((s) => s.ended));
  assert.ok(!JSON.stringify(spans).includes("127.0.0.1"), "no raw URLs");

  const requests = counts.filter((c) => c.name === "upstream.requests");
  assert.deepEqual(requests.map((c) => c.attributes), [
    { upstream: "esplora", method: "GET", route: "/tx/:txid/status", outcome: "ok" },
    { upstream: "esplora", method: "GET", route: "/tx/:txid/status", outcome: "server_error" },
  ]);
  assert.equal(counts.filter((c) => c.name === "upstream.request.duration").length, 2);
  assert.deepEqual(
    counts.filter((c) => c.name === "upstream.breaker.transitions").map((c) => c.attributes),
    [{ upstream: "esplora", to: "open" }],
  );
  assert.deepEqual(observeGauge(), [[2, { upstream: "esplora" }]]);
});

Deno.test("HttpClient breaker gauge reports 0 closed and drops closed clients", () => {
  const client = new HttpClient({
    name: "bitcoind",
    baseUrl: "http://upstream.invalid",
    timeoutMs: 500,
    maxResponseBytes: 1024,
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: { consecutiveFailures: 1, failureRate: 1, windowMs: 1_000, minRequests: 1, openMs: 1 },
  }, { transport: () => Promise.resolve(new Response("")) });
  assert.deepEqual(observeGauge(), [[0, { upstream: "bitcoind" }]]);
  client.close();
  assert.deepEqual(observeGauge(), []);
});
