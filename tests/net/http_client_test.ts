import assert from "node:assert/strict";
import { HttpClient, type HttpClientDeps } from "../../src/net/http_client.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import {
  AppError,
  UnavailableError,
  UpstreamError,
  UpstreamTimeoutError,
} from "../../src/errors/app_error.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { type FaultMode, refusedUrl, startFaultServer } from "../_peers/fault_server.ts";

/** Settings with quick retries and a breaker that stays out of the way unless a test tunes it. */
function upstream(baseUrl: string, over: Partial<UpstreamOptions> = {}): UpstreamOptions {
  return {
    name: "esplora",
    baseUrl,
    timeoutMs: 300,
    maxResponseBytes: 64 * 1024,
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 20 },
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

const GET = { method: "GET", path: "/blocks/tip/height", route: "/blocks/tip/height" } as const;
const POST = { method: "POST", path: "/tx", route: "/tx", body: "0200" } as const;

async function rejection(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${err}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

Deno.test("HttpClient.request() returns status, headers and body of a 2xx answer", async () => {
  await using server = startFaultServer((req) =>
    Response.json({ path: new URL(req.url).pathname }, { headers: { "x-test": "1" } })
  );
  using client = new HttpClient(upstream(server.url));
  const res = await client.request(GET);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-test"), "1");
  assert.deepEqual(res.json(), { path: "/blocks/tip/height" });
  assert.equal(res.text(), new TextDecoder().decode(res.body));
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient.request() appends the path to a base URL with a path", async () => {
  await using server = startFaultServer((req) => new Response(new URL(req.url).pathname));
  using client = new HttpClient(upstream(`${server.url}/api/`));
  assert.equal((await client.request({ ...GET, path: "/tx/ab?x=1" })).text(), "/api/tx/ab");
});

Deno.test("HttpClient.request() returns 4xx unretried and without counting breaker failures", async () => {
  await using server = startFaultServer(() => new Response("nope", { status: 404 }));
  using client = new HttpClient(
    upstream(server.url, { breaker: { ...upstream("").breaker, consecutiveFailures: 1 } }),
  );
  for (let i = 0; i < 3; i++) assert.equal((await client.request(GET)).status, 404);
  assert.equal(server.requests, 3);
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient.request() retries a GET answered 503, then throws UpstreamError", async () => {
  await using server = startFaultServer();
  server.setMode("status503");
  using client = new HttpClient(upstream(server.url));
  const err = await rejection(client.request(GET));
  assert.ok(err instanceof UpstreamError);
  assert.equal(err.status, 502);
  assert.match(err.message, /^esplora GET \/blocks\/tip\/height: .*503/);
  assert.equal(server.requests, 3, "three attempts");
});

Deno.test("HttpClient.request() succeeds when a retry of a GET succeeds", async () => {
  let calls = 0;
  await using server = startFaultServer(() =>
    ++calls < 3 ? new Response("busy", { status: 502 }) : Response.json(7)
  );
  using client = new HttpClient(upstream(server.url));
  assert.equal((await client.request(GET)).json(), 7);
  assert.equal(server.requests, 3);
});

Deno.test("HttpClient.request() never retries a POST, but does when marked idempotent", async () => {
  await using server = startFaultServer();
  server.setMode("status503");
  using client = new HttpClient(upstream(server.url));
  const err = await rejection(client.request(POST));
  assert.ok(err instanceof UpstreamError);
  assert.equal(server.requests, 1, "a POST is sent once");
  await rejection(client.request({ ...POST, idempotent: true }));
  assert.equal(server.requests, 4, "an idempotent POST is retried");
  await rejection(client.request({ ...GET, idempotent: false }));
  assert.equal(server.requests, 5, "a GET marked non-idempotent is not");
});

Deno.test("HttpClient.request() does not retry a 500 and counts it for the breaker", async () => {
  await using server = startFaultServer();
  server.setMode("status500");
  using client = new HttpClient(
    upstream(server.url, { breaker: { ...upstream("").breaker, consecutiveFailures: 2 } }),
  );
  assert.ok(await rejection(client.request(GET)) instanceof UpstreamError);
  assert.equal(server.requests, 1);
  await rejection(client.request(GET));
  assert.equal(client.breakerState, "open");
});

Deno.test("HttpClient.request() returns expectedStatuses 5xx answers as responses", async () => {
  await using server = startFaultServer(() =>
    Response.json({ error: { code: -5 } }, { status: 500 })
  );
  using client = new HttpClient(
    upstream(server.url, { breaker: { ...upstream("").breaker, consecutiveFailures: 1 } }),
  );
  const res = await client.request({ ...POST, expectedStatuses: [500] });
  assert.equal(res.status, 500);
  assert.deepEqual(res.json(), { error: { code: -5 } });
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient.request() maps a hanging upstream to 504 with an unknown outcome", async () => {
  await using server = startFaultServer();
  server.setMode("hang");
  using client = new HttpClient(upstream(server.url, { timeoutMs: 150 }));
  const started = performance.now();
  const err = await rejection(client.request(POST));
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.equal(err.status, 504);
  assert.match(err.message, /^esplora POST \/tx: .*150 ms; the outcome is unknown$/);
  assert.ok(performance.now() - started < 1_000);
  assert.equal(server.requests, 1);
  await rejection(client.request({ ...GET, timeoutMs: 50 }));
  assert.equal(server.requests, 4, "a timed-out GET is retried");
});

Deno.test("HttpClient.request() maps a slow-drip body past the deadline to 504", async () => {
  await using server = startFaultServer(undefined, { dripIntervalMs: 10 });
  server.setMode("slowDrip");
  using client = new HttpClient(upstream(server.url, { timeoutMs: 200 }));
  const started = performance.now();
  const err = await rejection(client.request(POST));
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.match(err.message, /outcome is unknown/);
  assert.ok(performance.now() - started < 1_000, "the deadline covers the body");
});

Deno.test("HttpClient.request() stops reading an oversized body and throws UpstreamError", async () => {
  await using server = startFaultServer();
  server.setMode("oversized");
  // A generous deadline: the cap, not the clock, must end the read.
  using client = new HttpClient(upstream(server.url, { timeoutMs: 10_000 }));
  const err = await rejection(client.request(GET));
  assert.ok(err instanceof UpstreamError);
  assert.equal(err.status, 502);
  assert.match(err.message, /exceeds 65536 bytes/);
  assert.equal(server.requests, 1, "an oversized answer is not retried");
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient.request() refuses a declared Content-Length above the cap", async () => {
  await using server = startFaultServer(() => new Response(new Uint8Array(2048)));
  using client = new HttpClient(upstream(server.url, { maxResponseBytes: 1024 }));
  assert.ok(await rejection(client.request(GET)) instanceof UpstreamError);
  using roomy = new HttpClient(upstream(server.url, { maxResponseBytes: 2048 }));
  assert.equal((await roomy.request(GET)).body.byteLength, 2048);
});

Deno.test("HttpClient.request() maps connection refused to 503, not sent", async () => {
  using client = new HttpClient(upstream(refusedUrl()));
  for (const call of [GET, POST]) {
    const err = await rejection(client.request(call));
    assert.ok(err instanceof UnavailableError);
    assert.equal(err.status, 503);
    assert.match(err.message, /unreachable; the request was not sent$/);
    assert.ok(err.cause !== undefined, "keeps the original error");
  }
});

Deno.test("HttpClient.request() maps a connection reset after sending to 504", async () => {
  await using server = startFaultServer();
  server.setMode("reset");
  using client = new HttpClient(upstream(server.url));
  const err = await rejection(client.request(POST));
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.equal(err.status, 504);
  assert.match(err.message, /connection broke .*the outcome is unknown$/);
  assert.equal(server.requests, 1, "a POST whose outcome is unknown is not repeated");
  await rejection(client.request(GET));
  assert.equal(server.requests, 4, "a GET is");
});

Deno.test("HttpClient.request() honours Retry-After on 429 up to maxDelayMs", async () => {
  const waits: number[] = [];
  const deps: HttpClientDeps = {
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
  let retryAfter = "1";
  let calls = 0;
  await using server = startFaultServer(() =>
    ++calls % 2 === 1
      ? new Response("slow down", { status: 429, headers: { "retry-after": retryAfter } })
      : Response.json("ok")
  );
  const retry = { attempts: 3, baseDelayMs: 1, maxDelayMs: 2_000 };
  using client = new HttpClient(upstream(server.url, { retry }), deps);
  assert.equal((await client.request(GET)).status, 200);
  assert.deepEqual(waits, [1_000]);
  assert.equal(server.requests, 2);

  retryAfter = "10"; // beyond maxDelayMs: the 429 is returned to the adapter
  const res = await client.request(GET);
  assert.equal(res.status, 429);
  assert.equal(res.text(), "slow down");
  assert.deepEqual(waits, [1_000]);
  assert.equal(server.requests, 3);
});

Deno.test("HttpClient.request() waits jittered, growing backoff between retries", async () => {
  const waits: number[] = [];
  await using server = startFaultServer();
  server.setMode("status503");
  using client = new HttpClient(
    upstream(server.url, { retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 250 } }),
    {
      random: () => 0.5,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    },
  );
  await rejection(client.request(GET));
  assert.deepEqual(waits, [75, 150, 188]);
});

Deno.test("HttpClient breaker opens after N failures, fails fast, and a half-open probe closes it", async () => {
  let clock = 1_000_000;
  const changes: string[] = [];
  const lines: string[] = [];
  await using server = startFaultServer();
  server.setMode("status500");
  using client = new HttpClient(
    upstream(server.url, {
      breaker: { ...upstream("").breaker, consecutiveFailures: 3, openMs: 5_000 },
    }),
    {
      now: () => clock,
      onStateChange: (c) => changes.push(`${c.upstream}:${c.from}->${c.to}`),
      logger: createLogger({ level: "debug", sink: (_l, line) => lines.push(line) }),
    },
  );
  for (let i = 0; i < 3; i++) await rejection(client.request(GET));
  assert.equal(client.breakerState, "open");
  assert.equal(server.requests, 3);
  assert.ok(lines.some((l) => l.includes('"level":"warn"') && l.includes("breaker opened")));

  const fast = await rejection(client.request(GET));
  assert.ok(fast instanceof UnavailableError);
  assert.match(fast.message, /circuit breaker is open; the request was not sent$/);
  assert.equal(fast.headers["Retry-After"], "5");
  assert.equal(server.requests, 3, "fails fast without touching the server");

  clock += 5_000;
  assert.equal(client.breakerState, "half-open");
  await rejection(client.request(GET)); // the probe fails
  assert.equal(client.breakerState, "open");
  assert.equal(server.requests, 4, "exactly one probe");

  clock += 5_000;
  server.setMode("ok");
  assert.equal((await client.request(GET)).status, 200);
  assert.equal(client.breakerState, "closed");
  assert.deepEqual(changes, [
    "esplora:closed->open",
    "esplora:open->half-open",
    "esplora:half-open->open",
    "esplora:open->half-open",
    "esplora:half-open->closed",
  ]);
});

Deno.test("HttpClient breaker lets one half-open probe through at a time", async () => {
  let clock = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await using server = startFaultServer(async () => {
    await gate;
    return Response.json(1);
  });
  server.setMode("status500");
  using client = new HttpClient(
    upstream(server.url, { breaker: { ...upstream("").breaker, consecutiveFailures: 1 } }),
    { now: () => clock },
  );
  await rejection(client.request(GET));
  clock += 60_000;
  server.setMode("ok");
  const probe = client.request(GET);
  const other = await rejection(client.request(GET));
  assert.ok(other instanceof UnavailableError, "a second call while the probe is out");
  release();
  assert.equal((await probe).status, 200);
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient breaker stops retries once open and reports the failure seen", async () => {
  await using server = startFaultServer();
  server.setMode("reset");
  using client = new HttpClient(
    upstream(server.url, {
      retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 },
      breaker: { ...upstream("").breaker, consecutiveFailures: 2 },
    }),
  );
  const err = await rejection(client.request(GET));
  assert.ok(err instanceof UpstreamTimeoutError, "still says the outcome is unknown");
  assert.equal(server.requests, 2);
});

Deno.test("HttpClient.request() rejects paths that leave the base URL", async () => {
  await using server = startFaultServer();
  using client = new HttpClient(upstream(`${server.url}/api`));
  const bad = [
    "http://evil.example/x",
    "//evil.example/x",
    "tx/abc",
    "",
    "/../admin",
    "/tx/../../admin",
    "/tx/%2e%2e/admin",
    "/tx/.%2E/admin",
    "/tx/./x",
    "/tx/..%2fadmin",
    "/tx/%5C..",
    "/tx\\..\\admin",
    "/tx abc",
    "/tx\nHost: evil",
    "/tx#frag",
  ];
  for (const path of bad) {
    await assert.rejects(
      client.request({ ...GET, path }),
      (err: unknown) => err instanceof TypeError && !err.message.includes("evil"),
      JSON.stringify(path),
    );
  }
  assert.equal(server.requests, 0);
  assert.equal((await client.request({ ...GET, path: "/address/bc1q..x/utxo" })).status, 200);
});

Deno.test("HttpClient.request() refuses malformed calls before sending, without echoing values", async () => {
  await using server = startFaultServer();
  using client = new HttpClient(upstream(server.url));
  await assert.rejects(client.request({ ...GET, body: "x" }), TypeError);
  await assert.rejects(
    client.request({ ...GET, headers: { "X-Key": "s3cret\nInjected: 1" } }),
    (err: unknown) => err instanceof TypeError && !err.message.includes("s3cret"),
  );
  assert.equal(server.requests, 0);
  assert.equal(client.breakerState, "closed");
  assert.throws(
    () => new HttpClient(upstream(server.url, { headers: { "Bad Name": "s3cret" } })),
    (err: unknown) => err instanceof TypeError && !err.message.includes("s3cret"),
  );
});

Deno.test("HttpClient rejects unusable options", () => {
  assert.throws(() => new HttpClient(upstream("ftp://x")), TypeError);
  assert.throws(() => new HttpClient(upstream("http://h/?k=v")), TypeError);
  assert.throws(
    () => new HttpClient(upstream("http://user:s3cret@[bad")),
    (err: unknown) => err instanceof TypeError && !err.message.includes("s3cret"),
  );
  assert.throws(() => new HttpClient(upstream("http://h", { timeoutMs: 0 })), RangeError);
  assert.throws(
    () =>
      new HttpClient(
        upstream("http://h", { retry: { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 } }),
      ),
    RangeError,
  );
  assert.throws(
    () => new HttpClient(upstream("http://h", { tls: { cert: "pem" } })),
    TypeError,
  );
  assert.throws(
    () =>
      new HttpClient(
        upstream("http://h", { breaker: { ...upstream("").breaker, failureRate: 0 } }),
      ),
    RangeError,
  );
});

Deno.test("HttpClient errors and logs carry no credentials or bodies", async () => {
  const seen: Array<string | null> = [];
  let mode: "error" | "junk" = "error";
  await using server = startFaultServer((req) => {
    seen.push(req.headers.get("authorization"));
    return mode === "error"
      ? new Response("s3cret in a stack trace", { status: 500 })
      : new Response("{s3cret", { status: 200 });
  });
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: (_l, line) => lines.push(line) });
  const headers = { Authorization: "Bearer s3cret" };
  using client = new HttpClient(upstream(server.url, { headers }), { logger });
  const call = { ...POST, json: { hex: "s3cret" }, headers: { "X-Api-Key": "s3cret" } };
  const errors: AppError[] = [await rejection(client.request(call))];
  mode = "junk";
  const res = await client.request(call);
  try {
    res.json();
  } catch (err) {
    assert.ok(err instanceof UpstreamError);
    errors.push(err);
  }
  server.setMode("hang");
  errors.push(await rejection(client.request({ ...call, timeoutMs: 20 })));
  using userinfo = new HttpClient(upstream(refusedUrl().replace("//", "//rpc:s3cret@")), {
    logger,
  });
  errors.push(await rejection(userinfo.request(call)));

  assert.equal(errors.length, 4);
  assert.deepEqual(seen, ["Bearer s3cret", "Bearer s3cret"], "credentials are sent");
  for (const err of errors) {
    const visible = JSON.stringify([err.message, err.extensions, err.headers, String(err.cause)]);
    assert.doesNotMatch(visible, /s3cret/, visible);
  }
  assert.ok(lines.length > 0);
  for (const line of lines) assert.doesNotMatch(line, /s3cret/, line);
});

Deno.test("HttpClient turns userinfo in the base URL into Basic auth", async () => {
  await using server = startFaultServer((req) => new Response(req.headers.get("authorization")));
  using client = new HttpClient(upstream(server.url.replace("//", "//rpc%20user:p%40ss@")));
  assert.equal((await client.request(GET)).text(), `Basic ${btoa("rpc user:p@ss")}`);
});

Deno.test("HttpClient.request() does not follow redirects", async () => {
  await using other = startFaultServer();
  await using server = startFaultServer(() =>
    new Response(null, { status: 302, headers: { location: `${other.url}/steal` } })
  );
  using client = new HttpClient(upstream(server.url));
  const res = await client.request(GET);
  assert.equal(res.status, 302);
  assert.equal(other.requests, 0);
});

Deno.test("HttpClient.request() sends JSON with merged headers through the transport", async () => {
  const requests: Request[] = [];
  using client = new HttpClient(upstream("http://upstream.invalid/base", { headers: { A: "1" } }), {
    transport: (req, init) => {
      requests.push(req);
      assert.ok(init.signal instanceof AbortSignal);
      return Promise.resolve(new Response("{}"));
    },
  });
  await client.request({
    method: "POST",
    path: "/tx",
    route: "/tx",
    json: { n: 1 },
    headers: { B: "2" },
  });
  const [req] = requests;
  assert.ok(req !== undefined);
  assert.equal(req.url, "http://upstream.invalid/base/tx");
  assert.equal(req.method, "POST");
  assert.equal(req.headers.get("a"), "1");
  assert.equal(req.headers.get("b"), "2");
  assert.equal(req.headers.get("content-type"), "application/json");
  assert.equal(await req.text(), '{"n":1}');
});

Deno.test("HttpClient.request() classifies transport errors from custom transports", async () => {
  const cases: Array<[unknown, new (...a: never[]) => AppError]> = [
    [Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), UnavailableError],
    [new Deno.errors.ConnectionRefused("refused"), UnavailableError],
    [Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), UpstreamTimeoutError],
  ];
  for (const [thrown, expected] of cases) {
    using client = new HttpClient(upstream("http://upstream.invalid"), {
      transport: () => Promise.reject(thrown),
    });
    const err = await rejection(client.request(POST));
    assert.ok(err instanceof expected, `${thrown} -> ${err.name}`);
    assert.equal(err.cause, thrown);
  }
});

Deno.test("HttpClient.request() stops on the caller's signal", async () => {
  await using server = startFaultServer();
  server.setMode("hang");
  using client = new HttpClient(upstream(server.url, { timeoutMs: 5_000 }));
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 30);
  const err = await rejection(client.request({ ...GET, signal: controller.signal }));
  assert.ok(err instanceof UpstreamTimeoutError);
  assert.match(err.message, /cancelled/);
  assert.equal(server.requests, 1, "no retry after cancellation");
  assert.equal(client.breakerState, "closed");
});

Deno.test("HttpClient.close() makes later calls fail with UnavailableError", async () => {
  await using server = startFaultServer();
  const client = new HttpClient(upstream(server.url));
  await client.request(GET);
  client.close();
  client.close();
  assert.ok(await rejection(client.request(GET)) instanceof UnavailableError);
});

for (const mode of ["status500", "status503", "hang", "oversized", "reset"] satisfies FaultMode[]) {
  Deno.test(`HttpClient keeps the connection pool usable after "${mode}"`, async () => {
    await using server = startFaultServer();
    using client = new HttpClient(upstream(server.url, { timeoutMs: 100 }));
    server.setMode(mode);
    await rejection(client.request(POST));
    server.setMode("ok");
    assert.equal((await client.request(GET)).status, 200);
  });
}
