/**
 * Replies from upstream products that do not have the shape their protocol
 * promises: one message format and one parse step for every adapter.
 *
 * @module
 */
import type { z } from "zod";
import { UpstreamError } from "../errors/app_error.ts";

/**
 * An upstream reply this edge cannot use (a 502 to the caller).
 *
 * @param upstream the product, e.g. `"bitcoind"`, `"LND"`
 * @param what the method, route or command that was answered
 * @param cause what was wrong (kept on the error, never put in the problem)
 * @returns the error to throw
 */
export function unexpectedReply(upstream: string, what: string, cause?: unknown): UpstreamError {
  return new UpstreamError(`${upstream} sent an unexpected reply for ${what}`, { cause });
}

/**
 * Check an upstream reply against its protocol's schema.
 *
 * @param schema the shape the protocol promises
 * @param value the decoded reply
 * @param upstream the product
 * @param what the method, route or command that was answered
 * @returns the parsed reply
 * @throws UpstreamError when the reply does not match
 */
export function parseReply<S extends z.ZodType>(
  schema: S,
  value: unknown,
  upstream: string,
  what: string,
): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw unexpectedReply(upstream, what, parsed.error);
  return parsed.data;
}
