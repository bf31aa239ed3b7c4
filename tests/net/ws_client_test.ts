import assert from "node:assert/strict";
import { ReconnectingWebSocket, type WebSocketState } from "../../src/net/ws_client.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { refusedUrl } from "../_peers/fault_server.ts";

/** A loopback event-stream peer: echoes every message unless told to stay silent. */
function startPeer() {
  const sockets = new Set<WebSocket>();
  const received: string[] = [];
  const handshakeHeaders: Array<string | null> = [];
  let silent = false;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    handshakeHeaders.push(req.headers.get("authorization"));
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    sockets.add(socket);
    socket.onmessage = (e) => {
      if (typeof e.data !== "string") {
        if (!silent) socket.send(new Uint8Array(e.data as ArrayBuffer).reverse());
        return;
      }
      received.push(e.data);
      if (!silent) socket.send(`echo:${e.data}`);
    };
    socket.onclose = () => sockets.delete(socket);
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/stream`,
    received,
    handshakeHeaders,
    sockets,
    subscriptions: () => received.filter((m) => m.startsWith("subscribe")).length,
    setSilent(value: boolean) {
      silent = value;
    },
    dropAll() {
      for (const s of sockets) s.close(1012, "restarting");
    },
    async close() {
      this.dropAll();
      await waitFor(() => sockets.size === 0);
      await server.shutdown();
    },
  };
}

async function waitFor(predicate: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

function client(
  url: string,
  messages: Array<string | Uint8Array>,
  extra: Partial<ConstructorParameters<typeof ReconnectingWebSocket>[0]> = {},
  states: WebSocketState[] = [],
) {
  return new ReconnectingWebSocket({
    name: "events",
    url,
    backoff: { baseDelayMs: 10, maxDelayMs: 40 },
    onOpen: (send) => send("subscribe:blocks"),
    onMessage: (data) => messages.push(data),
    ...extra,
  }, { onStateChange: (s) => states.push(s) });
}

Deno.test("ReconnectingWebSocket subscribes on open and delivers messages both ways", async () => {
  const peer = startPeer();
  const messages: Array<string | Uint8Array> = [];
  const ws = client(peer.url, messages, { headers: { Authorization: "Bearer s3cret" } });
  assert.equal(ws.send("early"), false, "nothing is sent before a connection is open");
  ws.start();
  await waitFor(() => messages.includes("echo:subscribe:blocks"));
  assert.equal(ws.state, "open");
  assert.equal(ws.send("hello"), true);
  assert.equal(ws.send(new Uint8Array([1, 2, 3])), true);
  await waitFor(() => messages.length === 3);
  assert.deepEqual(messages, ["echo:subscribe:blocks", "echo:hello", new Uint8Array([3, 2, 1])]);
  assert.deepEqual(peer.handshakeHeaders, ["Bearer s3cret"], "handshake headers are sent");
  await ws.close();
  assert.equal(ws.state, "closed");
  await peer.close();
});

Deno.test("ReconnectingWebSocket reconnects and resubscribes when the server drops it", async () => {
  const peer = startPeer();
  const messages: Array<string | Uint8Array> = [];
  const lines: string[] = [];
  const ws = new ReconnectingWebSocket({
    name: "events",
    url: peer.url,
    backoff: { baseDelayMs: 10, maxDelayMs: 40 },
    headers: { Authorization: "Bearer s3cret" },
    onOpen: (send) => send("subscribe:blocks"),
    onMessage: (data) => messages.push(data),
  }, { logger: createLogger({ level: "debug", sink: (_l, line) => lines.push(line) }) });
  ws.start();
  await waitFor(() => peer.subscriptions() === 1 && ws.state === "open");
  peer.dropAll();
  await waitFor(() => peer.subscriptions() === 2 && ws.state === "open");
  assert.equal(ws.connections, 2);
  assert.equal(ws.send("still here"), true);
  await waitFor(() => messages.includes("echo:still here"));
  await ws.close();
  await peer.close();
  assert.ok(lines.some((l) => l.includes("WebSocket connection lost")));
  for (const line of lines) assert.doesNotMatch(line, /s3cret/);
});

Deno.test("ReconnectingWebSocket replaces a connection that stays silent past the heartbeat timeout", async () => {
  const peer = startPeer();
  const messages: Array<string | Uint8Array> = [];
  const ws = client(peer.url, messages, {
    heartbeat: { timeoutMs: 300, intervalMs: 40, message: () => "ping" },
  });
  ws.start();
  await waitFor(() => ws.state === "open");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(ws.connections, 1, "pings answered: the connection stays");
  assert.ok(peer.received.filter((m) => m === "ping").length >= 5, "pings are sent");

  peer.setSilent(true);
  await waitFor(() => ws.connections >= 2);
  // The subscription follows the open: wait for it rather than race it.
  await waitFor(() => peer.subscriptions() >= 2);
  assert.ok(peer.subscriptions() >= 2, "the new connection resubscribes");
  peer.setSilent(false);
  const before = ws.connections;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(ws.connections, before, "a healthy connection is kept again");
  await ws.close();
  await peer.close();
});

Deno.test("ReconnectingWebSocket.close() stops reconnecting", async () => {
  const peer = startPeer();
  const ws = client(peer.url, []);
  ws.start();
  await waitFor(() => ws.state === "open");
  await ws.close();
  await waitFor(() => peer.sockets.size === 0);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ws.connections, 1);
  assert.equal(ws.state, "closed");
  await ws.close(); // twice is fine
  await peer.close();
});

Deno.test("ReconnectingWebSocket backs off while the upstream is unreachable", async () => {
  const states: WebSocketState[] = [];
  const ws = client(refusedUrl().replace("http:", "ws:"), [], {}, states);
  ws.start();
  await new Promise((r) => setTimeout(r, 250));
  const attempts = states.filter((s) => s === "connecting").length;
  // Waits of 5-10, 10-20, 20-40, then 20-40 ms: a handful of attempts, not hundreds.
  assert.ok(attempts >= 2 && attempts <= 15, `attempts: ${attempts}`);
  assert.equal(ws.connections, 0);
  await ws.close();
  assert.equal(states.at(-1), "closed");
});

Deno.test("ReconnectingWebSocket reconnects when the subscription callback fails", async () => {
  const peer = startPeer();
  let opens = 0;
  const ws = new ReconnectingWebSocket({
    name: "events",
    url: peer.url,
    backoff: { baseDelayMs: 10, maxDelayMs: 20 },
    onOpen: (send) => {
      if (++opens === 1) return Promise.reject(new Error("subscription refused"));
      send("subscribe:again");
    },
    onMessage: () => {},
  });
  ws.start();
  await waitFor(() => peer.received.includes("subscribe:again"));
  assert.equal(ws.connections, 2);
  await ws.close();
  await peer.close();
});

Deno.test("ReconnectingWebSocket rejects unusable options", async () => {
  const base = { name: "events", onMessage: () => {} };
  assert.throws(() => new ReconnectingWebSocket({ ...base, url: "http://h/x" }), TypeError);
  assert.throws(
    () => new ReconnectingWebSocket({ ...base, url: "wss://u:s3cret@[bad" }),
    (err: unknown) => err instanceof TypeError && !err.message.includes("s3cret"),
  );
  assert.throws(
    () => new ReconnectingWebSocket({ ...base, url: "ws://h", heartbeat: { timeoutMs: 0 } }),
    RangeError,
  );
  const ws = new ReconnectingWebSocket({ ...base, url: "ws://127.0.0.1:1" });
  await ws.close();
  assert.throws(() => ws.start(), TypeError, "a closed client stays closed");
});
