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
  readonly code: string;
  readonly status: number;
  readonly title: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  /**
   * @param code stable slug, e.g. `validation-failed`
   * @param status HTTP status
   * @param title short human summary of the code
   * @param detail client-safe explanation of this occurrence
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
  message: string;
}

/** The request is malformed (400) or well-formed but semantically invalid (422). */
export class ValidationError extends AppError {
  readonly issues: readonly FieldIssue[];
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
  constructor(detail = "Missing or invalid API key", options: AppErrorOptions = {}) {
    super("unauthorized", 401, "Unauthorized", detail, {
      ...options,
      headers: { "WWW-Authenticate": 'Bearer realm="anya-edge"', ...options.headers },
    });
  }
}

/** Authenticated but not allowed (403). */
export class ForbiddenError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("forbidden", 403, "Forbidden", detail, options);
  }
}

/** The resource does not exist for this tenant (404). */
export class NotFoundError extends AppError {
  constructor(detail = "Resource not found", options: AppErrorOptions = {}) {
    super("not-found", 404, "Not found", detail, options);
  }
}

/** The request conflicts with the current state (409). */
export class ConflictError extends AppError {
  constructor(detail: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? "conflict", 409, "Conflict", detail, options);
  }
}

/** A signing or spending policy forbids the request (422). */
export class PolicyViolationError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("policy-violation", 422, "Policy violation", detail, options);
  }
}

/** The request body exceeds the configured limit (413). */
export class PayloadTooLargeError extends AppError {
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
  constructor(detail = "Request body was not received in time") {
    super("request-timeout", 408, "Request timeout", detail, { headers: { Connection: "close" } });
  }
}

/** Too many requests (429); headers carry `Retry-After` and `RateLimit-*`. */
export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number, headers: Record<string, string>) {
    super("rate-limited", 429, "Too many requests", "Rate limit exceeded: retry later", {
      extensions: { retryAfter: retryAfterSeconds },
      headers: { ...headers, "Retry-After": String(retryAfterSeconds) },
    });
  }
}

/** The operation is not offered by the configured backend (501). */
export class UnsupportedFeatureError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("unsupported-feature", 501, "Not supported", detail, options);
  }
}

/** An upstream answered with an error or an unusable reply (502). */
export class UpstreamError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("upstream-error", 502, "Upstream error", detail, options);
  }
}

/** A dependency is not available right now (503). */
export class UnavailableError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("unavailable", 503, "Service unavailable", detail, options);
  }
}

/** An upstream or the handler did not answer within its deadline (504). */
export class UpstreamTimeoutError extends AppError {
  constructor(detail: string, options: AppErrorOptions = {}) {
    super("timeout", 504, "Timeout", detail, options);
  }
}
