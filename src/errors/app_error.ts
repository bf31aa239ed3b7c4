/**
 * The one error hierarchy of anya-edge. Every condition a caller handles is an
 * `AppError` with a stable `code` (it becomes the problem `type`), an HTTP
 * `status` and a `detail` that is safe to show to a client. Built-in errors
 * (`TypeError`, `RangeError`, ...) are programmer errors and render as 500.
 *
 * @module
 */

/** Options shared by every {@linkcode AppError}. */
export interface AppErrorOptions {
  /** Extra RFC 9457 members; must be safe to show to clients. */
  extensions?: Record<string, unknown>;
  /** The original error, kept for logs, never rendered. */
  cause?: unknown;
  /** Extra response headers (for example `Retry-After`). */
  headers?: Record<string, string>;
}

/** Base class: a client-safe error with a stable code and HTTP status. */
export class AppError extends Error {
  /** Stable slug naming the condition; becomes the problem `type`. */
  readonly code: string;
  /** HTTP status of the response. */
  readonly status: number;
  /** Short human summary of the code, the same for every occurrence. */
  readonly title: string;
  /** Extra RFC 9457 members, safe to show to clients. */
  readonly extensions: Record<string, unknown>;
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers: Record<string, string>;

  /**
   * Build an error from its code, status and client-safe texts.
   *
   * @param code stable slug, e.g. `validation-failed`
   * @param status HTTP status
   * @param title short human summary of the code
   * @param detail client-safe explanation of this occurrence
   * @param options extensions, cause and headers
   */
  constructor(
    code: string,
    status: number,
    title: string,
    detail: string,
    options: AppErrorOptions = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.title = title;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

/** One invalid field in a request. */
export interface FieldIssue {
  /** JSON-pointer-like path, e.g. `body.outputs[0].amount`. */
  path: string;
  /** What is wrong with the value, safe to show to clients. */
  message: string;
}

/** The request is malformed (400) or well-formed but semantically invalid (422). */
export class ValidationError extends AppError {
  /** The invalid fields, also rendered as the `errors` extension. */
  readonly issues: readonly FieldIssue[];
  /**
   * Build a 400, or a 422 when `options.status` says so.
   *
   * @param detail client-safe explanation
   * @param options field issues, status and the shared options
   */
  constructor(
    detail: string,
    options: AppErrorOptions & { issues?: FieldIssue[]; status?: 400 | 422 } = {},
  ) {
    const issues = options.issues ?? [];
    super(
      options.status === 422 ? "unprocessable" : "validation-failed",
      options.status ?? 400,
      options.status === 422 ? "Unprocessable content" : "Invalid request",
      detail,
      {
        ...options,
        extensions: { ...options.extensions, ...(issues.length > 0 ? { errors: issues } : {}) },
      },
    );
    this.issues = issues;
  }
}

/** Missing, malformed, expired or revoked credentials (401). */
export class UnauthorizedError extends AppError {
  /**
   * Build a 401 that carries a `WWW-Authenticate: Bearer` challenge.
   *
   * @param detail client-safe explanation
   * @param options shared options
   */
  constructor(detail = "Missing or invalid API key", options: AppErrorOptions = {}) {
    super("unauthorized", 401, "Unauthorized", detail, {
      ...options,
      headers: { "WWW-Authenticate": 'Bearer realm="anya-edge"', ...options.headers },
    });
  }
}

/** Authenticated but not allowed (403). */
export class ForbiddenError extends AppError {
  /**
   * Build a 403.
   *
   * @param detail client-safe explanation
   * @param options shared options
   */
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("forbidden", 403, "Forbidden", detail, options);
  }
}

/** The resource does not exist for this tenant (404). */
export class NotFoundError extends AppError {
  /**
   * Build a 404.
   *
   * @param detail client-safe explanation
   * @param options shared options
   */
  constructor(detail = "Resource not found", options: AppErrorOptions = {}) {
    super("not-found", 404, "Not found", detail, options);
  }
}

/** The request conflicts with the current state (409). */
export class ConflictError extends AppError {
  /**
   * Build a 409, with `options.code` to name the conflict more precisely.
   *
   * @param detail client-safe explanation
   * @param options a more specific code and the shared options
   */
  constructor(detail: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? "conflict", 409, "Conflict", detail, options);
  }
}

/** A signing or spending policy forbids the request (422). */
export class PolicyViolationError extends AppError {
  /**
   * Build a 422 for a policy refusal.
   *
   * @param detail client-safe explanation, naming the rule
   * @param options shared options
   */
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("policy-violation", 422, "Policy violation", detail, options);
  }
}

/** The request body exceeds the configured limit (413). */
export class PayloadTooLargeError extends AppError {
  /**
   * Build a 413 that reports the limit.
   *
   * @param limitBytes the configured body limit
   */
  constructor(limitBytes: number) {
    super(
      "payload-too-large",
      413,
      "Payload too large",
      `Request body exceeds the limit of ${limitBytes} bytes`,
      { extensions: { limitBytes } },
    );
  }
}

/** The client did not send its request in time (408). */
export class RequestTimeoutError extends AppError {
  /**
   * Build a 408 whose response closes the connection (`Connection: close`).
   *
   * @param detail client-safe explanation
   */
  constructor(detail = "Request body was not received in time") {
    super("request-timeout", 408, "Request timeout", detail, { headers: { Connection: "close" } });
  }
}

/** Too many requests (429); headers carry `Retry-After` and `RateLimit-*`. */
export class RateLimitedError extends AppError {
  /**
   * Build a 429 that also sets `Retry-After`.
   *
   * @param retryAfterSeconds whole seconds until a retry can succeed
   * @param headers `RateLimit-*` headers to send along
   */
  constructor(retryAfterSeconds: number, headers: Record<string, string>) {
    super("rate-limited", 429, "Too many requests", "Rate limit exceeded: retry later", {
      extensions: { retryAfter: retryAfterSeconds },
      headers: { ...headers, "Retry-After": String(retryAfterSeconds) },
    });
  }
}

/** The operation is not offered by the configured backend (501). */
export class UnsupportedFeatureError extends AppError {
  /**
   * Build a 501.
   *
   * @param detail client-safe explanation
   * @param options shared options
   */
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("unsupported-feature", 501, "Not supported", detail, options);
  }
}

/** An upstream answered with an error or an unusable reply (502). */
export class UpstreamError extends AppError {
  /**
   * Build a 502.
   *
   * @param detail client-safe explanation, without upstream internals
   * @param options shared options
   */
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("upstream-error", 502, "Upstream error", detail, options);
  }
}

/** A dependency is not available right now (503). */
export class UnavailableError extends AppError {
  /**
   * Build a 503.
   *
   * @param detail client-safe explanation
   * @param options shared options
   */
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("unavailable", 503, "Service unavailable", detail, options);
  }
}

/** An upstream or the handler did not answer within its deadline (504). */
export class UpstreamTimeoutError extends AppError {
  /**
   * Build a 504.
   *
   * @param detail client-safe explanation
   * @param options shared options
   */
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("timeout", 504, "Timeout", detail, options);
  }
}
