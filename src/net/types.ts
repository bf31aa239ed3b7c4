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
  /** Trusted CA certificates; when set they replace the system roots for this upstream. */
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
  /** Retries for idempotent calls only. */
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
  tls?: TlsOptions;
  /** Headers sent on every call (credentials); never logged. */
  headers?: Record<string, string>;
}

/** One call. */
export interface RequestOptions {
  method: HttpMethod;
  /** Path (and query) relative to the base URL, e.g. `/tx/abc/status`. */
  path: string;
  /** Route template for spans and metrics, e.g. `/tx/:txid/status`; never the raw path. */
  route: string;
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
  /** Overrides the upstream's default deadline. */
  timeoutMs?: number;
}

/** A complete, size-checked response. Any status is returned; adapters decide. */
export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
  /** Body decoded as UTF-8. */
  text(): string;
  /** Body parsed as JSON; an unparsable body throws `UpstreamError`. */
  json(): unknown;
}
