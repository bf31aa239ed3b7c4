/**
 * The contract of the one outbound HTTP client (`HttpClient` in
 * `http_client.ts`). Adapters depend on these types; `main.ts` builds one
 * client per upstream from config.
 *
 * @module
 */

/** HTTP methods adapters use. */
export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD";

/** Circuit-breaker states, as `/readyz` and the metrics report them. */
export type BreakerState = "closed" | "open" | "half-open";

/** TLS settings for one upstream (PEM strings, read from files by `main.ts`). */
export interface TlsOptions {
  /**
   * Extra trusted CA certificates (PEM) for this upstream, e.g. a private CA.
   * Deno adds them to its default roots (`DENO_TLS_CA_STORE`); it cannot drop those.
   */
  caCerts?: string[];
  /** Client certificate chain for mTLS. */
  cert?: string;
  /** Client private key for mTLS. */
  key?: string;
}

/** How one upstream is called. */
export interface UpstreamOptions {
  /** Short name used in spans, metrics, logs and errors, e.g. `esplora`. */
  name: string;
  /** Base URL; request paths are appended to it. */
  baseUrl: string;
  /** Default per-call deadline. */
  timeoutMs: number;
  /** Largest response body accepted; larger is an `UpstreamError`. */
  maxResponseBytes: number;
  /**
   * Retries for idempotent calls only: `attempts` counts every try including
   * the first (1 = never retry); waits grow from `baseDelayMs` up to
   * `maxDelayMs`, which also caps how long a `Retry-After` is honoured.
   */
  retry: { attempts: number; baseDelayMs: number; maxDelayMs: number };
  /**
   * Breaker: opens after `consecutiveFailures` failures in a row, or when the
   * failure rate over `windowMs` exceeds `failureRate` with at least
   * `minRequests` calls; after `openMs` one probe is let through (half-open).
   */
  breaker: {
    consecutiveFailures: number;
    failureRate: number;
    windowMs: number;
    minRequests: number;
    openMs: number;
  };
  /** Custom CA certificates and the mTLS client certificate. */
  tls?: TlsOptions;
  /** Headers sent on every call (credentials); never logged. */
  headers?: Record<string, string>;
  /**
   * Allow HTTP/2 when the server offers it over TLS. Defaults to false: one
   * HTTP/1.1 connection per in-flight call keeps one broken connection from
   * failing every concurrent call.
   */
  http2?: boolean;
  /** How long an idle pooled connection is kept; `false` keeps it until the server closes it. */
  poolIdleTimeoutMs?: number | false;
}

/** One call. */
export interface RequestOptions {
  /** HTTP method; GET and HEAD are idempotent unless `idempotent` says otherwise. */
  method: HttpMethod;
  /** Path (and query) relative to the base URL, e.g. `/tx/abc/status`. */
  path: string;
  /** Route template for spans and metrics, e.g. `/tx/:txid/status`; never the raw path. */
  route: string;
  /** Extra headers for this call; they override the upstream's headers of the same name. */
  headers?: Record<string, string>;
  /** Raw body; or use `json`. */
  body?: string | Uint8Array;
  /** Serialised as JSON with `Content-Type: application/json`. */
  json?: unknown;
  /**
   * Whether repeating the call is harmless. Defaults to true for GET/HEAD and
   * false otherwise; only idempotent calls are retried.
   */
  idempotent?: boolean;
  /** Overrides the upstream's default deadline (per attempt). */
  timeoutMs?: number;
  /**
   * Statuses that are normal answers for this call even though they are 5xx,
   * e.g. Bitcoin Core's HTTP 500 carrying a JSON-RPC 1.0 error. They are
   * returned, not retried and not counted as breaker failures.
   */
  expectedStatuses?: readonly number[];
  /** Cancels the call (and any backoff wait), e.g. the caller's own deadline. */
  signal?: AbortSignal;
}

/**
 * A complete, size-checked response. Every status below 500 (and any listed in
 * `expectedStatuses`) is returned and adapters decide what it means; other 5xx
 * answers throw `UpstreamError`.
 */
export interface UpstreamResponse {
  /** HTTP status. */
  status: number;
  /** Response headers. */
  headers: Headers;
  /** The whole body, at most `maxResponseBytes`. */
  body: Uint8Array;
  /** Body decoded as UTF-8. */
  text(): string;
  /** Body parsed as JSON; an unparsable body throws `UpstreamError`. */
  json(): unknown;
}

/**
 * An open streaming response (newline-delimited records, e.g. LND's REST
 * streams), from `HttpClient.stream()`. Every status below 500 (and
 * any listed in `expectedStatuses`) is returned; the body is read line by
 * line. Close it when done: an unclosed stream holds its connection.
 */
export interface UpstreamStream extends Disposable {
  /** HTTP status of the head. */
  readonly status: number;
  /** Response headers. */
  readonly headers: Headers;
  /**
   * The body split on `\n` (a trailing `\r` is dropped; blank lines are
   * skipped), each line at most `maxResponseBytes`. Ends when the body ends
   * or {@linkcode close} is called; throws `UpstreamTimeoutError` when the
   * connection breaks or the caller's signal aborts (what the upstream did
   * meanwhile is unknown) and `UpstreamError` for an oversized line. Can be
   * iterated once.
   */
  lines(): AsyncIterable<string>;
  /** Stop reading and release the connection; idempotent. */
  close(): void;
}
