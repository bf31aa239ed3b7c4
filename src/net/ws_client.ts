/**
 * A WebSocket client for upstream event streams (Lightning invoice updates,
 * mempool feeds): it reconnects with jittered exponential backoff, detects
 * dead connections with an application-level heartbeat and re-sends the
 * caller's subscriptions on every (re)connect.
 *
 * Transport notes for Deno 2.x: the `WebSocket` constructor takes a
 * non-standard options object `{ protocols, headers, client }`. `headers`
 * carries credentials (e.g. an LND macaroon) on the handshake; `client` is a
 * `Deno.HttpClient`, which is how custom CA certificates and mTLS client
 * certificates reach a `wss://` connection (the type marks it experimental,
 * but it needs no `--unstable` flag). There is no option to cap the size of
 * an incoming message.
 *
 * @module
 */
import type { Logger } from "../obs/logger.ts";
import { withDeadline } from "../util/deadline.ts";
import { backoffDelay } from "./retry.ts";
import type { TlsOptions } from "./types.ts";

/** Lifecycle of a {@linkcode ReconnectingWebSocket}. */
export type WebSocketState = "idle" | "connecting" | "open" | "waiting" | "closed";

/** Sends one message on the current connection. */
export type WebSocketSend = (data: string | Uint8Array) => void;

/** How one upstream stream is reached and kept alive. */
export interface ReconnectingWebSocketOptions {
  /** Short upstream name for logs, e.g. `lnd-events`. */
  name: string;
  /** `ws://` or `wss://` URL from config. */
  url: string;
  /** Sub-protocols to offer. */
  protocols?: string[];
  /** Handshake headers (credentials); never logged. */
  headers?: Record<string, string>;
  /** Custom CA certificates and mTLS client certificate for `wss://`. */
  tls?: TlsOptions;
  /** Give up on a handshake after this long (default 10 s). */
  connectTimeoutMs?: number;
  /** Wait between reconnects grows from `baseDelayMs` to `maxDelayMs` (defaults 500 ms, 30 s). */
  backoff?: { baseDelayMs: number; maxDelayMs: number };
  /**
   * Application-level liveness. With `message`, it is sent every
   * `intervalMs`; a connection that receives nothing for `timeoutMs` is
   * considered dead and replaced.
   */
  heartbeat?: {
    timeoutMs: number;
    intervalMs?: number;
    message?: () => string | Uint8Array;
  };
  /** Runs on every (re)connect before other traffic: (re)send subscriptions here. */
  onOpen?: (send: WebSocketSend) => void | Promise<void>;
  /** Receives every message (text as string, binary as bytes). */
  onMessage: (data: string | Uint8Array) => void;
}

/** Injected collaborators of a {@linkcode ReconnectingWebSocket}; all optional. */
export interface ReconnectingWebSocketDeps {
  /** Receives connection events (never the URL's credentials or headers). */
  logger?: Logger;
  /** Uniform source in [0, 1) for backoff jitter. */
  random?: () => number;
  /** Called on every state change. */
  onStateChange?: (state: WebSocketState) => void;
}

const CLOSE_WAIT_MS = 2_000;

/**
 * A self-healing WebSocket connection to one upstream.
 *
 * @example
 * ```ts
 * const stream = new ReconnectingWebSocket({
 *   name: "lnd-invoices",
 *   url: "wss://lnd:8080/v1/invoices/subscribe?method=GET",
 *   headers: { "Grpc-Metadata-macaroon": macaroonHex },
 *   heartbeat: { timeoutMs: 60_000 },
 *   onMessage: (data) => invoices.handle(data),
 * }, { logger });
 * stream.start();
 * // on shutdown
 * await stream.close();
 * ```
 */
export class ReconnectingWebSocket {
  /** The upstream name. */
  readonly name: string;
  readonly #options: ReconnectingWebSocketOptions;
  readonly #logger: Logger | undefined;
  readonly #random: () => number;
  readonly #onStateChange: ((state: WebSocketState) => void) | undefined;
  readonly #client: Deno.HttpClient | undefined;
  readonly #closing = new Set<Promise<void>>();
  #state: WebSocketState = "idle";
  #ws: WebSocket | undefined;
  #attempt = 0;
  #connections = 0;
  #received = false;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #pinger: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Prepare the connection; nothing happens before {@linkcode start}.
   *
   * @param options URL, credentials, timing and callbacks
   * @param deps logger, randomness and a state hook
   */
  constructor(options: ReconnectingWebSocketOptions, deps: ReconnectingWebSocketDeps = {}) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new TypeError(`${options.name}: url is not a valid URL`);
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new TypeError(`${options.name}: url must use ws or wss, got "${url.protocol}"`);
    }
    const hb = options.heartbeat;
    if (hb !== undefined && !(hb.timeoutMs > 0 && (hb.intervalMs ?? 1) > 0)) {
      throw new RangeError(`${options.name}: heartbeat times must be positive`);
    }
    this.name = options.name;
    this.#options = options;
    this.#logger = deps.logger;
    this.#random = deps.random ?? Math.random;
    this.#onStateChange = deps.onStateChange;
    const tls = options.tls;
    if (tls !== undefined) {
      const base: Deno.CreateHttpClientOptions = tls.caCerts === undefined
        ? {}
        : { caCerts: tls.caCerts };
      this.#client = tls.cert !== undefined && tls.key !== undefined
        ? Deno.createHttpClient({ ...base, cert: tls.cert, key: tls.key })
        : Deno.createHttpClient(base);
    }
  }

  /** Current state. */
  get state(): WebSocketState {
    return this.#state;
  }

  /** Connections opened so far (1 after the first, +1 per reconnect). */
  get connections(): number {
    return this.#connections;
  }

  /** Open the first connection; later ones follow automatically until {@linkcode close}. */
  start(): void {
    if (this.#state !== "idle") throw new TypeError(`${this.name}: already started`);
    this.#connect();
  }

  /**
   * Send on the current connection.
   *
   * @param data text or bytes
   * @returns false when no connection is open (the message is not queued)
   */
  send(data: string | Uint8Array): boolean {
    if (this.#state !== "open" || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(data);
    return true;
  }

  /** Stop reconnecting, close the connection and wait (bounded) until sockets are closed. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#setState("closed");
    this.#clearTimers();
    clearTimeout(this.#retryTimer);
    if (this.#ws !== undefined) this.#abandon(this.#ws, 1000);
    await withDeadline(Promise.all(this.#closing), CLOSE_WAIT_MS, () => []);
    this.#client?.close();
  }

  #connect(): void {
    this.#setState("connecting");
    const { url, protocols, headers } = this.#options;
    const init: WebSocketOptions = {};
    if (protocols !== undefined) init.protocols = protocols;
    if (headers !== undefined) init.headers = headers;
    if (this.#client !== undefined) init.client = this.#client;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, init);
    } catch (err) {
      this.#logger?.warn("WebSocket connect failed", { upstream: this.name, error: errName(err) });
      this.#scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#received = false;
    this.#connectTimer = setTimeout(
      () => this.#lost(ws, "handshake timed out"),
      this.#options.connectTimeoutMs ?? 10_000,
    );
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      clearTimeout(this.#connectTimer);
      this.#connections++;
      this.#setState("open");
      this.#logger?.info("WebSocket connected", {
        upstream: this.name,
        connection: this.#connections,
      });
      this.#armWatchdog(ws);
      this.#startPinger(ws);
      this.#subscribe(ws);
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.#ws !== ws) return;
      this.#received = true;
      this.#armWatchdog(ws);
      const data = typeof event.data === "string"
        ? event.data
        : new Uint8Array(event.data as ArrayBuffer);
      try {
        this.#options.onMessage(data);
      } catch (err) {
        this.#logger?.error("WebSocket message handler failed", {
          upstream: this.name,
          error: errName(err),
        });
      }
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#clearTimers();
      this.#logger?.warn("WebSocket connection lost", { upstream: this.name, code: event.code });
      this.#scheduleReconnect();
    };
    ws.onerror = () => {
      // A close event follows; it decides what happens next.
    };
  }

  #subscribe(ws: WebSocket): void {
    const onOpen = this.#options.onOpen;
    if (onOpen === undefined) return;
    const send: WebSocketSend = (data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(data);
    };
    try {
      Promise.resolve(onOpen(send)).catch((err) => this.#subscribeFailed(ws, err));
    } catch (err) {
      this.#subscribeFailed(ws, err);
    }
  }

  #subscribeFailed(ws: WebSocket, err: unknown): void {
    this.#logger?.error("WebSocket subscription failed", {
      upstream: this.name,
      error: errName(err),
    });
    this.#lost(ws, "subscription failed");
  }

  #armWatchdog(ws: WebSocket): void {
    const hb = this.#options.heartbeat;
    if (hb === undefined) return;
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => this.#lost(ws, "heartbeat timed out"), hb.timeoutMs);
  }

  #startPinger(ws: WebSocket): void {
    const hb = this.#options.heartbeat;
    if (hb?.message === undefined) return;
    const message = hb.message;
    this.#pinger = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(message());
    }, hb.intervalMs ?? Math.max(1, Math.floor(hb.timeoutMs / 2)));
  }

  /** Give up on `ws` (dead or stuck) and schedule the next connection. */
  #lost(ws: WebSocket, reason: string): void {
    if (this.#ws !== ws) return;
    this.#logger?.warn("WebSocket connection dropped", { upstream: this.name, reason });
    this.#abandon(ws, 4000);
    this.#scheduleReconnect();
  }

  /** Detach `ws` from this client and close it; {@linkcode close} awaits the close event. */
  #abandon(ws: WebSocket, code: number): void {
    if (this.#ws === ws) this.#ws = undefined;
    this.#clearTimers();
    if (ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((resolve) => {
      ws.addEventListener("close", () => resolve(), { once: true });
    });
    this.#closing.add(closed);
    closed.then(() => this.#closing.delete(closed));
    try {
      ws.close(code);
    } catch {
      // already closing
    }
  }

  #scheduleReconnect(): void {
    if (this.#state === "closed") return;
    // A connection that delivered a message worked end to end: start over
    // from the shortest wait. One that failed early keeps growing the wait.
    if (this.#received) this.#attempt = 0;
    this.#attempt++;
    const backoff = this.#options.backoff ?? { baseDelayMs: 500, maxDelayMs: 30_000 };
    const delay = backoffDelay(this.#attempt, backoff, this.#random);
    this.#setState("waiting");
    this.#logger?.debug("WebSocket reconnecting", {
      upstream: this.name,
      attempt: this.#attempt,
      delayMs: delay,
    });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state !== "closed") this.#connect();
    }, delay);
  }

  #clearTimers(): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#watchdog);
    clearInterval(this.#pinger);
    this.#connectTimer = undefined;
    this.#watchdog = undefined;
    this.#pinger = undefined;
  }

  #setState(state: WebSocketState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#onStateChange?.(state);
  }
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
