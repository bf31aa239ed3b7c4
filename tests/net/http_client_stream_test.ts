/**
 * `HttpClient.stream()`: newline-delimited streaming calls (LND's REST
 * streams) over the one client, against the fault server.
 */
import assert from "node:assert/strict";
import { HttpClient } from "../../src/net/http_client.ts";
import type { UpstreamOptions, UpstreamStream } from "../../src/net/types.ts";
import {
  AppError,
  UnavailableError,
  UpstreamError,
  UpstreamTimeoutError,
} from "../../src/errors/app_error.ts";
import { refusedUrl, startFaultServer } from "../_peers/fault_server.ts";

function upstream(baseUrl: string, over: Partial<UpstreamOptions> = {}): UpstreamOptions {
  return {
    name: "lnd",
    baseUrl,
    timeoutMs: 2_000,
    maxResponseBytes: 64,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    breaker: {
      consecutiveFailures: 100,
      failureRate: 1,
      windowMs: 10_000,
      minRequests: 1_000,
      openMs: 60_000,
    },
    ...over,
  };
}

const SUBSCRIBE = {
  method: "GET",
  path: "/v1/invoices/subscribe",
  route: "/v1/invoices/subscribe",
} as const;

const ENCODER = new TextEncoder();

/** A streaming body the test feeds chunk by chunk (strings are UTF-8 encoded). */
function feed() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    body,
    push(chunk: string | Uint8Array) {
      controller.enqueue(typeof chunk === "string" ? ENCODER.encode(chunk) : chunk);
    },
    end() {
      controller.close();
    },
    fail() {
      // Deno.serve logs this error: it is the test breaking the stream on purpose.
      controller.error(new Error("intentional: the test breaks the stream"));
    },
  };
}

async function collect(stream: UpstreamStream): Promise<string[]> {
  const out: string[] = [];
  for await (const line of stream.lines()) out.push(line);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${err}`);
    return err;
  }
  assert.fail("expected a rejection");
}

Deno.test("HttpClient.stream() returns the head, then the body line by line as it arrives", async () => {
  const source = feed();
  await using server = startFaultServer(() =>
    new Response(source.body, { headers: { "content-type": "application/json", "x-a": "1" } })
  );
  using client = new HttpClient(upstream(server.url));
  source.push('{"result":1}\n');
  using stream = await client.stream(SUBSCRIBE);
  assert.equal(stream.status, 200);
  assert.equal(stream.headers.get("x-a"), "1");
  const lines = stream.lines()[Symbol.asyncIterator]();
  assert.deepEqual(await lines.next(), { done: false, value: '{"result":1}' });
  // The second record is sent only after the first was read.
  source.push('{"result":2}\n');
  assert.deepEqual(await lines.next(), { done: false, value: '{"result":2}' });
  source.end();
  assert.equal((await lines.next()).done, true);
});

Deno.test("HttpClient.stream() splits on newlines across chunks, drops CR and blank lines, keeps a last unterminated line", async () => {
  const euro = ENCODER.encode("€"); // three bytes, split across two chunks below
  const source = feed();
  await using server = startFaultServer(() => new Response(source.body));
  using client = new HttpClient(upstream(server.url));
  source.push('{"a":');
  source.push('1}\r\n\n  \n{"b":"');
  source.push(euro.subarray(0, 1));
  source.push(euro.subarray(1));
  source.push('"}\n{"c":3}');
  source.end();
  using stream = await client.stream(SUBSCRIBE);
  assert.deepEqual(await collect(stream), ['{"a":1}', '{"b":"€"}', '{"c":3}']);
});

Deno.test("HttpClient.stream() caps each line, not the whole body, at maxResponseBytes", async () => {
  const short = `{"x":"${"a".repeat(40)}"}\n`; // 49 bytes with the newline
  const source = feed();
  await using server = startFaultServer(() => new Response(source.body));
  using client = new HttpClient(upstream(server.url, { maxResponseBytes: 64 }));
  for (let i = 0; i < 4; i++) source.push(short); // 196 bytes in all: fine
  source.push("b".repeat(65));
  using stream = await client.stream(SUBSCRIBE);
  const seen: string[] = [];
  const err = await rejection((async () => {
    for await (const line of stream.lines()) seen.push(line);
  })());
  assert.equal(seen.length, 4);
  assert.ok(err instanceof UpstreamError);
  assert.match(err.message, /^lnd GET \/v1\/invoices\/subscribe: a stream line exceeds 64 bytes$/);
});

Deno.test("HttpClient.stream() waits for the head within the deadline only, not for the records", async () => {
  const source = feed();
  await using server = startFaultServer(() => new Response(source.body));
  using client = new HttpClient(upstream(server.url, { timeoutMs: 50 }));
  source.push("1\n");
  using stream = await client.stream(SUBSCRIBE);
  const lines = stream.lines()[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, "1");
  // Well past the deadline, the stream is still open and delivers.
  await new Promise((resolve) => setTimeout(resolve, 150));
  source.push("2\n");
  source.end();
  assert.equal((await lines.next()).value, "2");
});

Deno.test("HttpClient.stream() throws UpstreamTimeoutError when no head arrives in time, and counts a breaker failure", async () => {
  await using server = startFaultServer();
  server.setMode("hang");
  using client = new HttpClient(
    upstream(server.url, {
      timeoutMs: 50,
      breaker: { ...upstream("").breaker, consecutiveFailures: 1 },
    }),
  );
  const err = await rejection(client.stream(SUBSCRIBE));
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.equal(server.requests, 1, "a GET stream is not retried");
  assert.equal(client.breakerState, "open");
});

Deno.test("HttpClient.stream() throws UpstreamError on a 5xx head, once, and counts it for the breaker", async () => {
  await using server = startFaultServer();
  server.setMode("status503");
  using client = new HttpClient(
    upstream(server.url, { breaker: { ...upstream("").breaker, consecutiveFailures: 1 } }),
  );
  const err = await rejection(client.stream(SUBSCRIBE));
  assert.ok(err instanceof UpstreamError);
  assert.match(err.message, /503/);
  assert.equal(server.requests, 1, "never retried");
  assert.equal(client.breakerState, "open");

  const blocked = await rejection(client.stream(SUBSCRIBE));
  assert.ok(blocked instanceof UnavailableError);
  assert.match(blocked.message, /circuit breaker is open/);
  assert.equal(server.requests, 1, "the breaker kept the call from being sent");
});

Deno.test("HttpClient.stream() returns 4xx and expectedStatuses heads with their body", async () => {
  await using server = startFaultServer((req) =>
    new URL(req.url).pathname === "/missing"
      ? Response.json({ code: 5, message: "not found" }, { status: 404 })
      : Response.json({ code: 2, message: "boom" }, { status: 500 })
  );
  using client = new HttpClient(upstream(server.url));
  using missing = await client.stream({ ...SUBSCRIBE, path: "/missing" });
  assert.equal(missing.status, 404);
  assert.deepEqual((await collect(missing)).map((l) => JSON.parse(l)), [{
    code: 5,
    message: "not found",
  }]);
  using failed = await client.stream({ ...SUBSCRIBE, expectedStatuses: [500] });
  assert.equal(failed.status, 500);
  assert.deepEqual(await collect(failed), ['{"code":2,"message":"boom"}']);
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient.stream() reports an unreachable upstream as UnavailableError", async () => {
  using client = new HttpClient(upstream(refusedUrl()));
  assert.ok(await rejection(client.stream(SUBSCRIBE)) instanceof UnavailableError);
});

Deno.test("HttpClient.stream() lines() throws UpstreamTimeoutError when the connection breaks mid-stream", async () => {
  const source = feed();
  await using server = startFaultServer(() => new Response(source.body));
  using client = new HttpClient(upstream(server.url));
  source.push("1\n");
  using stream = await client.stream(SUBSCRIBE);
  const lines = stream.lines()[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, "1");
  source.fail();
  const err = await rejection(lines.next());
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.match(err.message, /connection broke before the stream ended/);
});

Deno.test("HttpClient.stream() ends with UpstreamTimeoutError when the caller's signal aborts mid-stream", async () => {
  const source = feed();
  await using server = startFaultServer(() => new Response(source.body));
  using client = new HttpClient(upstream(server.url));
  const controller = new AbortController();
  source.push("1\n");
  using stream = await client.stream({ ...SUBSCRIBE, signal: controller.signal });
  const lines = stream.lines()[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, "1");
  const next = lines.next();
  controller.abort();
  const err = await rejection(next);
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.match(err.message, /cancelled/);
});

Deno.test("HttpClient.stream() close() ends the iteration quietly, even while it waits", async () => {
  const source = feed();
  await using server = startFaultServer(() => new Response(source.body));
  using client = new HttpClient(upstream(server.url));
  source.push("1\n");
  const stream = await client.stream(SUBSCRIBE);
  const lines = stream.lines()[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, "1");
  const next = lines.next();
  stream.close();
  assert.equal((await next).done, true);
  stream.close(); // idempotent
});

Deno.test("HttpClient.stream() lines() can be iterated once", async () => {
  await using server = startFaultServer(() => new Response("a\nb\n"));
  using client = new HttpClient(upstream(server.url));
  using stream = await client.stream(SUBSCRIBE);
  assert.deepEqual(await collect(stream), ["a", "b"]);
  await assert.rejects(collect(stream), TypeError);
});

Deno.test("HttpClient.stream() sends a POST body once and a closed client refuses", async () => {
  let body = "";
  await using server = startFaultServer(async (req) => {
    body = await req.text();
    return new Response('{"result":{"status":"SUCCEEDED"}}\n');
  });
  const client = new HttpClient(upstream(server.url));
  using stream = await client.stream({
    method: "POST",
    path: "/v2/router/send",
    route: "/v2/router/send",
    json: { payment_request: "lnbc1" },
  });
  assert.deepEqual(await collect(stream), ['{"result":{"status":"SUCCEEDED"}}']);
  assert.equal(body, '{"payment_request":"lnbc1"}');
  client.close();
  const err = await rejection(client.stream(SUBSCRIBE));
  assert.ok(err instanceof UnavailableError);
  assert.match(err.message, /client is closed/);
});
