/**
 * Renders every error as RFC 9457 `application/problem+json`. The only place
 * that turns errors into HTTP statuses.
 */
import { HTTPException } from "hono/http-exception";
import { AppError } from "../src/errors/mod.ts";

/** Media type of problem responses. */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Stable `type` URI for an error code. */
export function problemType(code: string): string {
  return `urn:anya-edge:problem:${code}`;
}

/** An RFC 9457 problem document. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  [extension: string]: unknown;
}

/** A rendered problem: status, headers and body. */
export interface RenderedProblem {
  status: number;
  headers: Record<string, string>;
  body: ProblemBody;
  /** Set when the error was unexpected and must be logged with its stack. */
  errorId?: string;
}

const HTTP_EXCEPTION_CODES: Record<number, [string, string]> = {
  400: ["validation-failed", "Invalid request"],
  401: ["unauthorized", "Unauthorized"],
  403: ["forbidden", "Forbidden"],
  404: ["not-found", "Not found"],
  405: ["method-not-allowed", "Method not allowed"],
  408: ["request-timeout", "Request timeout"],
  413: ["payload-too-large", "Payload too large"],
  415: ["unsupported-media-type", "Unsupported media type"],
  429: ["rate-limited", "Too many requests"],
  503: ["unavailable", "Service unavailable"],
  504: ["timeout", "Timeout"],
};

/**
 * Map any thrown value to a problem.
 *
 * @param err what was thrown
 * @param requestId becomes `instance`
 */
export function toProblem(err: unknown, requestId: string): RenderedProblem {
  if (err instanceof AppError) {
    return {
      status: err.status,
      headers: err.headers,
      body: {
        ...err.extensions,
        type: problemType(err.code),
        title: err.title,
        status: err.status,
        detail: err.message,
        instance: requestId,
      },
    };
  }
  if (err instanceof HTTPException && err.status < 500) {
    // Hono's own middleware (e.g. malformed JSON in validators) throws these;
    // their message is written by Hono, not derived from secrets.
    const [code, title] = HTTP_EXCEPTION_CODES[err.status] ?? ["http-error", "Request error"];
    return {
      status: err.status,
      headers: {},
      body: {
        type: problemType(code),
        title,
        status: err.status,
        detail: err.message || title,
        instance: requestId,
      },
    };
  }
  const errorId = crypto.randomUUID();
  return {
    status: 500,
    headers: {},
    errorId,
    body: {
      type: problemType("internal"),
      title: "Internal server error",
      status: 500,
      detail: `An unexpected error occurred; quote error id ${errorId} when reporting it`,
      instance: requestId,
      errorId,
    },
  };
}

/** Build the `Response` for a rendered problem. */
export function problemResponse(p: RenderedProblem): Response {
  return new Response(JSON.stringify(p.body), {
    status: p.status,
    headers: { ...p.headers, "Content-Type": PROBLEM_CONTENT_TYPE },
  });
}
