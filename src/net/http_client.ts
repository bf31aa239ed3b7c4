/**
 * The one outbound HTTP path. Every adapter gets an {@linkcode HttpClient}
 * built by `main.ts` from config (one per upstream) and never calls `fetch`
 * itself. Per call it enforces: a path relative to the configured base URL, a
 * deadline, a response size cap, retries with jittered backoff for idempotent
 * calls only, a circuit breaker, a span, metrics and a redacted log line.
 *
 * Failures map onto the error hierarchy by what the caller can conclude:
 *
 * | what happened | error | the request |
 * |---|---|---|
 * | connection refused, DNS or TLS failure, breaker open | `UnavailableError` 503 | was not sent |
 * | deadline passed, connection broke after sending | `UpstreamTimeoutError` 504 | outcome unknown |
 * | 5xx (after retries), oversized or unparsable reply | `UpstreamError` 502 | answered unusably |
 *
 * Error details name the upstream, method and route template only: never the
 * URL, headers, request or response bodies.
 *
 * @module
 */
import { UnavailableError, UpstreamError, UpstreamTimeoutError } from "../errors/app_error.ts";
import type { AppError } from "../errors/app_error.ts";
import type { Logger } from "../obs/logger.ts";
import { withSpan } from "../obs/telemetry.ts";
import { type BreakerPermit, CircuitBreaker } from "./circuit_breaker.ts";
import { readCappedBody, upstreamResponse } from "./_body.ts";
import { lineStream } from "./_line_stream.ts";
import { trackClient, untrackClient, upstreamMetrics } from "./_metrics.ts";
import { backoffDelay, parseRetryAfter, sleep } from "./retry.ts";
import { resolveBase, resolvePath, type UpstreamBase } from "./_url.ts";
import type {
  BreakerState,
  RequestOptions,
  UpstreamOptions,
  UpstreamResponse,
  UpstreamStream,
} from "./types.ts";

/**
 * Sends one request and resolves with the response head; the body is read
 * by the client. The default is `fetch` with the upstream's
 * `Deno.HttpClient`; a transport must honour `init.signal` until the body
 * has been read. A transport with a `close` method (e.g. its connection
 * pool) is owned by the client: {@linkcode HttpClient.close} calls it.
 */
export type Transport =
  & ((request: Request, init: { signal: AbortSignal }) => Promise<Response>)
  & { close?: () => void };

/** A breaker transition, as passed to {@linkcode HttpClientDeps.onStateChange}. */
export interface BreakerStateChange {
  /** The upstream name. */
  upstream: string;
  /** The state left. */
  from: BreakerState;
  /** The state entered. */
  to: BreakerState;
}

/** Injected collaborators of an {@linkcode HttpClient}; all optional. */
export interface HttpClientDeps {
  /** Receives a debug line per call and breaker transitions (warn on open). */
  logger?: Logger;
  /** Replaces `fetch` (for example a `node:https` transport). */
  transport?: Transport;
  /** Clock in epoch milliseconds for the breaker and `Retry-After` dates. */
  now?: () => number;
  /** Uniform source in [0, 1) for backoff jitter. */
  random?: () => number;
  /** Waits between retries; must reject when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called on every breaker transition. */
  onStateChange?: (change: BreakerStateChange) => void;
}

/** Per-call outcome label of the `upstream.requests` metric. */
type Outcome =
  | "ok"
  | "client_error"
  | "server_error"
  | "timeout"
  | "broken"
  | "unreachable"
  | "breaker_open"
  | "too_large"
  | "cancelled";

/** What one attempt means for breaker, retry and metrics. */
interface AttemptInfo {
  health: "success" | "failure" | "neutral";
  retryable: boolean;
  retryAfterMs?: number | undefined;
  outcome: Outcome;
  status?: number;
}

/** An attempt that ended without a usable answer. */
type FailedAttempt = AttemptInfo & { error: AppError; response?: undefined; stream?: undefined };

/** The result of one attempt of `request()`. */
type Attempt = (AttemptInfo & { response: UpstreamResponse; error?: undefined }) | FailedAttempt;

/** The result of opening a stream. */
type StreamAttempt = (AttemptInfo & { stream: UpstreamStream; error?: undefined }) | FailedAttempt;

/** A call's deadline and its link to the caller's signal (see `#callSignal`). */
interface CallSignal {
  controller: AbortController;
  timeoutMs: number;
  caller: AbortSignal | undefined;
  timedOut(): boolean;
  clearDeadline(): void;
  detach(): void;
}

/** A 5xx head: a failed call; whether it is retried is the caller's to add. */
function serverError(status: number, label: string): Omit<FailedAttempt, "retryable"> {
  return {
    health: "failure",
    outcome: "server_error",
    status,
    error: new UpstreamError(`${label}: upstream answered HTTP ${status}`),
  };
}

/** Statuses worth repeating: the upstream (or a proxy before it) is briefly unable. */
const RETRYABLE_5XX = new Set([502, 503, 504]);
/** Error codes that prove the connection was never made (Node-style transports). */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  // pinned_tls_transport.ts: the peer's certificate is not the pinned one.
  "ERR_TLS_CERT_PIN_MISMATCH",
]);
/** Deno's fetch reports connect-phase failures (TCP, DNS, TLS handshake) this way. */
const NOT_SENT_TEXT = /client error \(Connect\)|tcp connect error|dns error|connection refused/i;

/**
 * A resilient client for one upstream.
 *
 * @example
 * ```ts
 * const esplora = new HttpClient(options, { logger });
 * const res = await esplora.request({ method: "GET", path: `/tx/${txid}/status`, route: "/tx/:txid/status" });
 * if (res.status === 404) return null;
 * const status = res.json();
 * ```
 */
export class HttpClient {
  /** The upstream name used in spans, metrics, logs and errors. */
  readonly name: string;
  readonly #options: UpstreamOptions;
  readonly #base: UpstreamBase;
  readonly #headers: Record<string, string>;
  readonly #breaker: CircuitBreaker;
  readonly #send: (url: string, init: RequestInit, signal: AbortSignal) => Promise<Response>;
  readonly #denoClient: Deno.HttpClient | undefined;
  readonly #transport: Transport | undefined;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #closed = false;

  /**
   * Build the client; without `deps.transport` it opens one pooled
   * `Deno.HttpClient` (with the TLS settings) that {@linkcode close} releases.
   *
   * @param options the upstream's settings from config
   * @param deps logger, transport, clock, randomness, transition hook
   */
  constructor(options: UpstreamOptions, deps: HttpClientDeps = {}) {
    checkOptions(options);
    this.name = options.name;
    this.#options = options;
    this.#base = resolveBase(options.name, options.baseUrl);
    this.#headers = {};
    if (this.#base.authorization !== undefined) {
      this.#headers.authorization = this.#base.authorization;
    }
    for (const [k, v] of Object.entries(options.headers ?? {})) this.#headers[k.toLowerCase()] = v;
    checkHeaders(this.#headers, options.name);
    this.#logger = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.#random = deps.random ?? Math.random;
    this.#sleep = deps.sleep ?? sleep;
    this.#breaker = new CircuitBreaker(options.breaker, {
      now: this.#now,
      onStateChange: (to, from) => {
        const fields = { upstream: this.name, from, to };
        if (to === "open") {
          this.#logger?.warn("Upstream circuit breaker opened", {
            ...fields,
            openMs: options.breaker.openMs,
          });
        } else this.#logger?.info("Upstream circuit breaker changed state", fields);
        upstreamMetrics.transitions.add(1, { upstream: this.name, to });
        deps.onStateChange?.({ upstream: this.name, from, to });
      },
    });
    const transport = deps.transport;
    this.#transport = transport;
    if (transport !== undefined) {
      this.#denoClient = undefined;
      this.#send = (url, init, signal) => transport(new Request(url, init), { signal });
    } else {
      // `fetch(url, init)` directly: one Request construction per call instead of two.
      const client = Deno.createHttpClient(httpClientOptions(options));
      this.#denoClient = client;
      this.#send = (url, init, signal) => fetch(url, { ...init, signal, client });
    }
    trackClient(this);
  }

  /** The breaker's current state (an elapsed open period reads as half-open). */
  get breakerState(): BreakerState {
    return this.#breaker.state;
  }

  /**
   * Make one call, retrying idempotent calls on transient failures.
   *
   * @param opts method, path, route template, body, headers, deadline
   * @returns the complete response for every status below 500 and for `expectedStatuses`
   * @throws {UnavailableError} the request was not sent (unreachable, breaker open)
   * @throws {UpstreamTimeoutError} no complete answer; the outcome is unknown
   * @throws {UpstreamError} 5xx, or a reply larger than `maxResponseBytes`
   * @throws {TypeError} a path that is not relative to the base URL
   */
  async request(opts: RequestOptions): Promise<UpstreamResponse> {
    const label = `${this.name} ${opts.method} ${opts.route}`;
    if (this.#closed) throw new UnavailableError(`${label}: client is closed`);
    const url = resolvePath(this.#base, opts.path, label);
    const init = this.#requestInit(opts, label);
    const idempotent = opts.idempotent ?? (opts.method === "GET" || opts.method === "HEAD");
    const maxAttempts = idempotent ? this.#options.retry.attempts : 1;
    const started = performance.now();
    const attributes = {
      "upstream.name": this.name,
      "http.request.method": opts.method,
      "http.route": opts.route,
    };
    return await withSpan(label, attributes, async (span) => {
      let attempts = 0;
      let last: Attempt | undefined;
      for (;;) {
        const permit = this.#breaker.tryAcquire();
        if (permit === null) {
          // Blocked before any try: fail fast. Blocked on a retry: the earlier
          // failure says more (and keeps "outcome unknown" when it was so).
          last ??= this.#breakerOpen(label);
          break;
        }
        attempts++;
        last = await this.#attempt(url, init, opts, label);
        this.#report(permit, last);
        if (!last.retryable || attempts >= maxAttempts) break;
        const { retryAfterMs } = last;
        if (retryAfterMs !== undefined && retryAfterMs > this.#options.retry.maxDelayMs) break;
        const wait = retryAfterMs ?? backoffDelay(attempts, this.#options.retry, this.#random);
        this.#logger?.debug("Upstream call retrying", {
          upstream: this.name,
          method: opts.method,
          route: opts.route,
          attempt: attempts,
          outcome: last.outcome,
          waitMs: wait,
        });
        try {
          await this.#sleep(wait, opts.signal);
        } catch {
          break; // cancelled while waiting: report the failure already seen
        }
      }
      const seconds = (performance.now() - started) / 1000;
      const metricAttributes = {
        upstream: this.name,
        method: opts.method,
        route: opts.route,
        outcome: last.outcome,
      };
      upstreamMetrics.requests.add(1, metricAttributes);
      upstreamMetrics.duration.record(seconds, metricAttributes);
      span.setAttribute("upstream.attempts", attempts);
      span.setAttribute("upstream.outcome", last.outcome);
      if (last.status !== undefined) span.setAttribute("http.response.status_code", last.status);
      this.#logger?.debug("Upstream call", {
        ...metricAttributes,
        status: last.status,
        attempts,
        durationMs: Math.round(seconds * 1000),
      });
      if (last.error !== undefined) throw last.error;
      return last.response;
    });
  }

  /**
   * Open a streaming call (newline-delimited records) and return once the
   * response head has arrived. Unlike {@linkcode request}: the deadline
   * covers only the wait for the head, the call is never retried (a stream
   * is never treated as idempotent), and the body is read line by line
   * with each line capped at `maxResponseBytes`. The breaker counts a
   * failure to open (unreachable, no head in time, 5xx head) like a failed
   * call; what happens later in the stream does not count.
   *
   * @param opts method, path, route template, body, headers, head deadline,
   *   signal (its abort also ends an open stream)
   * @returns the open stream for every status below 500 and for `expectedStatuses`; close it when done
   * @throws {UnavailableError} the request was not sent (unreachable, breaker open)
   * @throws {UpstreamTimeoutError} no head in time, or the connection broke; the outcome is unknown
   * @throws {UpstreamError} a 5xx head
   * @throws {TypeError} a path that is not relative to the base URL
   *
   * @example
   * ```ts
   * using updates = await lnd.stream({ method: "POST", path: "/v2/router/send", route: "/v2/router/send", json });
   * for await (const line of updates.lines()) console.log(JSON.parse(line));
   * ```
   */
  async stream(opts: RequestOptions): Promise<UpstreamStream> {
    const label = `${this.name} ${opts.method} ${opts.route}`;
    if (this.#closed) throw new UnavailableError(`${label}: client is closed`);
    const url = resolvePath(this.#base, opts.path, label);
    const init = this.#requestInit(opts, label);
    const started = performance.now();
    const attributes = {
      "upstream.name": this.name,
      "http.request.method": opts.method,
      "http.route": opts.route,
      "upstream.stream": true,
    };
    return await withSpan(label, attributes, async (span) => {
      const permit = this.#breaker.tryAcquire();
      let opened: StreamAttempt;
      if (permit === null) opened = this.#breakerOpen(label);
      else {
        opened = await this.#openStream(url, init, opts, label);
        this.#report(permit, opened);
      }
      const seconds = (performance.now() - started) / 1000;
      const metricAttributes = {
        upstream: this.name,
        method: opts.method,
        route: opts.route,
        outcome: opened.outcome,
      };
      upstreamMetrics.requests.add(1, metricAttributes);
      upstreamMetrics.duration.record(seconds, metricAttributes);
      span.setAttribute("upstream.outcome", opened.outcome);
      if (opened.status !== undefined) {
        span.setAttribute("http.response.status_code", opened.status);
      }
      this.#logger?.debug("Upstream stream opened", {
        ...metricAttributes,
        status: opened.status,
        durationMs: Math.round(seconds * 1000),
      });
      if (opened.error !== undefined) throw opened.error;
      return opened.stream;
    });
  }

  /**
   * Close the pooled connections (and a transport that can be closed);
   * later calls fail with `UnavailableError`.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    untrackClient(this);
    this.#denoClient?.close();
    this.#transport?.close?.();
  }

  /** Same as {@linkcode close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #requestInit(opts: RequestOptions, label: string): RequestInit {
    const headers = { ...this.#headers };
    if (opts.headers !== undefined) {
      for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = v;
      checkHeaders(opts.headers, label);
    }
    let body: string | Uint8Array<ArrayBuffer> | null = null;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["content-type"] ??= "application/json";
    } else if (typeof opts.body === "string") {
      body = opts.body;
    } else if (opts.body !== undefined) {
      body = new Uint8Array(opts.body); // a copy: the caller may reuse its buffer
    }
    if (body !== null && (opts.method === "GET" || opts.method === "HEAD")) {
      throw new TypeError(`${label}: a ${opts.method} request cannot have a body`);
    }
    // Never follow redirects: outbound URLs come only from config.
    return { method: opts.method, headers, body, redirect: "manual" };
  }

  async #attempt(
    url: string,
    init: RequestInit,
    opts: RequestOptions,
    label: string,
  ): Promise<Attempt> {
    const call = this.#callSignal(opts);
    const { controller } = call;
    let res: Response | undefined;
    try {
      // Headers and body were checked in #requestInit: what fails here is the transport.
      res = await this.#send(url, init, controller.signal);
      const status = res.status;
      if (status >= 500 && !(opts.expectedStatuses?.includes(status) ?? false)) {
        await res.body?.cancel().catch(() => {});
        return {
          ...serverError(status, label),
          retryable: RETRYABLE_5XX.has(status),
          retryAfterMs: status === 503 ? this.#retryAfter(res) : undefined,
        };
      }
      const body = await readCappedBody(res, this.#options.maxResponseBytes);
      if (body === null) {
        controller.abort(); // drop the connection rather than drain the rest
        return {
          health: "neutral",
          retryable: false,
          outcome: "too_large",
          status,
          error: new UpstreamError(
            `${label}: response exceeds ${this.#options.maxResponseBytes} bytes`,
          ),
        };
      }
      return {
        health: "success",
        retryable: status === 429,
        retryAfterMs: status === 429 ? this.#retryAfter(res) : undefined,
        outcome: status < 400 || status >= 500 ? "ok" : "client_error",
        status,
        response: upstreamResponse(status, res.headers, body, label),
      };
    } catch (err) {
      return this.#failure(err, call, { sent: res !== undefined, label });
    } finally {
      call.clearDeadline();
      call.detach();
    }
  }

  async #openStream(
    url: string,
    init: RequestInit,
    opts: RequestOptions,
    label: string,
  ): Promise<StreamAttempt> {
    // The caller's signal stays linked for the stream's whole life.
    const call = this.#callSignal(opts);
    const { controller, caller, detach } = call;
    let res: Response;
    try {
      res = await this.#send(url, init, controller.signal);
    } catch (err) {
      detach();
      return this.#failure(err, call, { sent: false, label });
    } finally {
      // The deadline covers the head only: records may be minutes apart.
      call.clearDeadline();
    }
    const status = res.status;
    if (status >= 500 && !(opts.expectedStatuses?.includes(status) ?? false)) {
      detach();
      await res.body?.cancel().catch(() => {});
      controller.abort();
      return { ...serverError(status, label), retryable: false };
    }
    return {
      health: "success",
      retryable: false,
      outcome: status < 400 || status >= 500 ? "ok" : "client_error",
      status,
      stream: lineStream(res, {
        controller,
        caller,
        detach,
        maxLineBytes: this.#options.maxResponseBytes,
        label,
      }),
    };
  }

  /** One call's abort wiring: its deadline and the caller's signal both end `controller`. */
  #callSignal(opts: RequestOptions): CallSignal {
    const timeoutMs = opts.timeoutMs ?? this.#options.timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException(`Deadline of ${timeoutMs} ms exceeded`, "TimeoutError"));
    }, timeoutMs);
    const caller = opts.signal;
    const onCallerAbort = () => controller.abort(caller?.reason);
    if (caller?.aborted) controller.abort(caller.reason);
    else caller?.addEventListener("abort", onCallerAbort, { once: true });
    return {
      controller,
      timeoutMs,
      caller,
      timedOut: () => timedOut,
      clearDeadline: () => clearTimeout(timer),
      detach: () => caller?.removeEventListener("abort", onCallerAbort),
    };
  }

  #failure(
    err: unknown,
    call: CallSignal,
    ctx: { sent: boolean; label: string },
  ): FailedAttempt {
    const { label } = ctx;
    if (call.timedOut()) {
      return {
        health: "failure",
        retryable: true,
        outcome: "timeout",
        error: new UpstreamTimeoutError(
          `${label}: no complete answer within ${call.timeoutMs} ms; the outcome is unknown`,
          { cause: err },
        ),
      };
    }
    if (call.caller?.aborted === true) {
      return {
        health: "neutral",
        retryable: false,
        outcome: "cancelled",
        error: new UpstreamTimeoutError(
          `${label}: call cancelled before a complete answer; the outcome is unknown`,
          { cause: err },
        ),
      };
    }
    if (!ctx.sent && isNotSent(err)) {
      return {
        health: "failure",
        retryable: true,
        outcome: "unreachable",
        error: new UnavailableError(`${label}: upstream unreachable; the request was not sent`, {
          cause: err,
        }),
      };
    }
    return {
      health: "failure",
      retryable: true,
      outcome: "broken",
      error: new UpstreamTimeoutError(
        `${label}: connection broke before a complete answer; the outcome is unknown`,
        { cause: err },
      ),
    };
  }

  #breakerOpen(label: string): FailedAttempt {
    const seconds = Math.max(1, Math.ceil(this.#breaker.retryAfterMs() / 1000));
    return {
      health: "neutral",
      retryable: false,
      outcome: "breaker_open",
      error: new UnavailableError(`${label}: circuit breaker is open; the request was not sent`, {
        headers: { "Retry-After": String(seconds) },
      }),
    };
  }

  #report(permit: BreakerPermit, attempt: AttemptInfo): void {
    if (attempt.health === "success") this.#breaker.success(permit);
    else if (attempt.health === "failure") this.#breaker.failure(permit);
    else this.#breaker.release(permit);
  }

  #retryAfter(res: Response): number | undefined {
    return parseRetryAfter(res.headers.get("retry-after"), this.#now());
  }
}

/** True when `err` (or its cause) proves the request never left this process. */
function isNotSent(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === "object"; depth++) {
    if (e instanceof Deno.errors.ConnectionRefused) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && NOT_SENT_TEXT.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Header names and values `fetch` would refuse are programmer errors, caught before sending. */
function checkHeaders(headers: Record<string, string>, label: string): void {
  try {
    new Headers(headers);
  } catch {
    // The platform's message may quote the value, which may be a credential.
    throw new TypeError(`${label}: invalid header name or value`);
  }
}

function httpClientOptions(
  options: UpstreamOptions,
): Deno.CreateHttpClientOptions | (Deno.CreateHttpClientOptions & Deno.TlsCertifiedKeyPem) {
  const out: Deno.CreateHttpClientOptions = { http2: options.http2 ?? false };
  if (options.poolIdleTimeoutMs !== undefined) out.poolIdleTimeout = options.poolIdleTimeoutMs;
  const tls = options.tls;
  if (tls?.caCerts !== undefined) out.caCerts = tls.caCerts;
  if (tls?.cert !== undefined && tls.key !== undefined) {
    return { ...out, cert: tls.cert, key: tls.key };
  }
  return out;
}

function checkOptions(o: UpstreamOptions): void {
  if (typeof o.name !== "string" || !/^[a-z0-9][a-z0-9_.-]*$/i.test(o.name)) {
    throw new TypeError(`Upstream name must be a short identifier, got ${JSON.stringify(o.name)}`);
  }
  const positive = { timeoutMs: o.timeoutMs, maxResponseBytes: o.maxResponseBytes };
  for (const [key, value] of Object.entries(positive)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(`${o.name}: ${key} must be a positive number, got ${value}`);
    }
  }
  const { attempts, baseDelayMs, maxDelayMs } = o.retry;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`${o.name}: retry.attempts must be a positive integer, got ${attempts}`);
  }
  if (!(baseDelayMs >= 0) || !(maxDelayMs >= baseDelayMs)) {
    throw new RangeError(
      `${o.name}: retry delays must satisfy 0 <= baseDelayMs <= maxDelayMs, got ${baseDelayMs} and ${maxDelayMs}`,
    );
  }
  if ((o.tls?.cert === undefined) !== (o.tls?.key === undefined)) {
    throw new TypeError(`${o.name}: tls.cert and tls.key must be given together`);
  }
}
