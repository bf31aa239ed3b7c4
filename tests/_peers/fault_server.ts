/**
 * A loopback HTTP server for fault injection, shared by every test that
 * exercises an upstream client (the net client, chain backends, ...).
 *
 * ```ts
 * await using server = startFaultServer((req) => Response.json({ height: 1 }));
 * const url = server.url;            // "http://127.0.0.1:<port>"
 * server.setMode("status503");       // from now on every request gets a 503
 * assert.equal(server.requests, 1);  // requests that reached the server, all modes
 * server.setMode((req) => req.method === "POST" ? "hangAfterHandler" : "ok"); // per request
 * ```
 *
 * Modes (switchable at any time; they apply to requests that arrive after the switch):
 *
 * - `ok`: the handler answers (default `{"ok":true}`).
 * - `status500` / `status503`: a plain-text 500 / 503.
 * - `hang`: never answers (the handler is released when the server closes).
 * - `slowDrip`: 200 headers at once, then one byte every `dripIntervalMs`, forever.
 * - `oversized`: 200 with a chunked body of `oversizedBytes` (no Content-Length).
 * - `reset`: reads the request, then closes the TCP connection without answering.
 * - `hangAfterHandler`: the handler runs (its side effects happen, e.g. a
 *   broadcast is accepted), then its answer is withheld forever.
 * - `slowDripAfterHandler`: the handler runs; its status and headers go out at
 *   once, then its body one byte every `dripIntervalMs`.
 *
 * Instead of one mode, `setMode` also takes a {@linkcode FaultRule} that picks
 * the mode of each request, e.g. only the broadcast call hangs while lookups
 * are answered. A rule cannot pick `reset`: that mode acts on the raw
 * connection before a request is parsed (a rule's `reset` closes the
 * connection after an empty 500 instead).
 *
 * `reset` needs the raw socket, which `Deno.serve` does not expose, so the
 * public port is a small TCP front that relays to an internal `Deno.serve`
 * and drops the connection itself in `reset` mode. Everything (timers,
 * sockets, hanging handlers) is released by `close()`, so tests can keep the
 * resource and op sanitizers on.
 *
 * @module
 */

/** What the server does with the next requests. */
export type FaultMode =
  | "ok"
  | "status500"
  | "status503"
  | "hang"
  | "slowDrip"
  | "oversized"
  | "reset"
  | "hangAfterHandler"
  | "slowDripAfterHandler";

/**
 * Picks the mode of one request. It gets a clone, so it may read the body
 * (e.g. a JSON-RPC method) without taking it from the handler.
 */
export type FaultRule = (req: Request) => FaultMode | Promise<FaultMode>;

/** Answers requests in `ok` mode. */
export type FaultHandler = (req: Request) => Response | Promise<Response>;

/** Tuning of the slow modes. */
export interface FaultServerOptions {
  /** Interval between bytes in `slowDrip` mode (default 50 ms). */
  dripIntervalMs?: number;
  /** Body size in `oversized` mode (default 64 MiB). */
  oversizedBytes?: number;
}

/** A running fault server. */
export interface FaultServer extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Requests received so far, in every mode (a `reset` request counts when it is dropped). */
  readonly requests: number;
  /** The current mode, or the rule picking it per request. */
  readonly mode: FaultMode | FaultRule;
  /** Switch the mode (or the rule) for requests that arrive from now on. */
  setMode(mode: FaultMode | FaultRule): void;
  /** Stop everything: hanging and dripping responses end, sockets close. */
  close(): Promise<void>;
}

const CHUNK = new Uint8Array(64 * 1024).fill(0x61);

/**
 * Start a fault server on 127.0.0.1 with a free port, in `ok` mode.
 *
 * @param handler answers in `ok` mode; defaults to `{"ok":true}`
 * @param options drip interval and oversized body size
 */
export function startFaultServer(
  handler: FaultHandler = () => Response.json({ ok: true }),
  options: FaultServerOptions = {},
): FaultServer {
  const dripIntervalMs = options.dripIntervalMs ?? 50;
  const oversizedBytes = options.oversizedBytes ?? 64 * 1024 * 1024;
  let mode: FaultMode | FaultRule = "ok";
  let requests = 0;
  let closing = false;
  let releaseHangs!: () => void;
  const hangsReleased = new Promise<void>((resolve) => releaseHangs = resolve);
  const streamStops = new Set<() => void>();

  /** A body that yields `next()` every `intervalMs` until it returns null or the server closes. */
  function timedStream(intervalMs: number, next: () => Uint8Array | null): ReadableStream {
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let pending: (() => void) | undefined;
    const stop = () => {
      streamStops.delete(stop);
      clearTimeout(timer);
      try {
        controller?.close();
      } catch {
        // already closed or cancelled by the client
      }
      pending?.();
      pending = undefined;
    };
    streamStops.add(stop);
    return new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      pull(c) {
        return new Promise<void>((resolve) => {
          pending = resolve;
          timer = setTimeout(() => {
            pending = undefined;
            const chunk = next();
            if (chunk === null) stop();
            else c.enqueue(chunk);
            resolve();
          }, intervalMs);
        });
      },
      cancel: stop,
    });
  }

  const inner = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (incoming) => {
      requests++;
      let req = incoming;
      let current: FaultMode;
      if (typeof mode === "function") {
        // Two copies rather than `clone()`, which touches `request.signal` and makes
        // Deno.serve warn about its legacy abort behaviour.
        const body = incoming.body === null ? null : await incoming.bytes();
        const copy = () =>
          new Request(incoming.url, { method: incoming.method, headers: incoming.headers, body });
        current = await mode(copy());
        req = copy();
      } else current = mode;
      switch (current) {
        case "ok":
          return await handler(req);
        case "hangAfterHandler": {
          await (await handler(req)).body?.cancel();
          await hangsReleased;
          return new Response(null, { status: 504 });
        }
        case "slowDripAfterHandler": {
          const res = await handler(req);
          const body = new Uint8Array(await res.arrayBuffer());
          let sent = 0;
          const headers = new Headers(res.headers);
          headers.delete("content-length");
          return new Response(
            timedStream(
              dripIntervalMs,
              () => sent < body.byteLength ? body.subarray(sent, ++sent) : null,
            ),
            { status: res.status, headers },
          );
        }
        case "status500":
          return new Response("internal error", { status: 500 });
        case "status503":
          return new Response("unavailable", { status: 503 });
        case "hang":
          await hangsReleased;
          return new Response(null, { status: 504 });
        case "slowDrip":
          return new Response(timedStream(dripIntervalMs, () => CHUNK.subarray(0, 1)), {
            headers: { "content-type": "application/json" },
          });
        case "oversized": {
          let sent = 0;
          return new Response(
            timedStream(0, () => {
              if (sent >= oversizedBytes) return null;
              const n = Math.min(CHUNK.byteLength, oversizedBytes - sent);
              sent += n;
              return CHUNK.subarray(0, n);
            }),
            { headers: { "content-type": "application/json" } },
          );
        }
        case "reset":
          // Only when the mode switched while this request was being relayed: drop it too.
          return new Response(null, { status: 500, headers: { connection: "close" } });
      }
    },
  );
  const innerPort = inner.addr.port;

  const front = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (front.addr as Deno.NetAddr).port;
  const sockets = new Set<Deno.Conn>();
  const relays = new Set<Promise<void>>();

  function closeConn(conn: Deno.Conn): void {
    if (!sockets.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }

  async function relay(client: Deno.Conn): Promise<void> {
    sockets.add(client);
    let upstream: Deno.Conn | undefined;
    let back: Promise<void> | undefined;
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await client.read(buf);
        if (n === null) break;
        if (mode === "reset") {
          requests++;
          break;
        }
        if (upstream === undefined) {
          upstream = await Deno.connect({ hostname: "127.0.0.1", port: innerPort });
          sockets.add(upstream);
          back = pump(upstream, client);
        }
        await writeAll(upstream, buf.subarray(0, n));
      }
    } catch {
      // a socket closed under us
    } finally {
      closeConn(client);
      if (upstream !== undefined) closeConn(upstream);
      await back;
    }
  }

  async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        await writeAll(to, buf.subarray(0, n));
      }
    } catch {
      // a socket closed under us
    } finally {
      closeConn(from);
      closeConn(to);
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of front) {
        if (closing) {
          conn.close();
          continue;
        }
        const p = relay(conn);
        relays.add(p);
        p.finally(() => relays.delete(p));
      }
    } catch {
      // listener closed
    }
  })();

  async function close(): Promise<void> {
    if (closing) return;
    closing = true;
    releaseHangs();
    for (const stop of [...streamStops]) stop();
    front.close();
    await accepting;
    for (const conn of [...sockets]) closeConn(conn);
    await Promise.all([...relays]);
    await inner.shutdown();
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    get mode() {
      return mode;
    },
    setMode(next: FaultMode | FaultRule) {
      mode = next;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A URL on 127.0.0.1 where nothing listens (the port was just free). */
export function refusedUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return `http://127.0.0.1:${port}`;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) offset += await conn.write(data.subarray(offset));
}
