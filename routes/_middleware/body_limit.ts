/**
 * Reads the request body under a size cap and an idle deadline, before any
 * handler sees it: an oversized body is a 413 and a stalled upload a 408,
 * instead of a connection held open by a slow client.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../_env.ts";
import { PayloadTooLargeError, RequestTimeoutError } from "../../src/errors/mod.ts";
import { withDeadline } from "../../src/util/deadline.ts";

/** Limits for {@linkcode bodyLimit}. */
export interface BodyLimitOptions {
  maxBytes: number;
  /** Longest wait for the next chunk of the body. */
  idleTimeoutMs: number;
}

/** Buffer the body under the limits and hand handlers a replayable request. */
export function bodyLimit(options: BodyLimitOptions) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const raw = c.req.raw;
    if (raw.body === null) return await next();
    const declared = raw.headers.get("content-length");
    if (declared !== null && Number(declared) > options.maxBytes) {
      await raw.body.cancel().catch(() => {});
      throw new PayloadTooLargeError(options.maxBytes);
    }
    const body = await readCapped(raw.body, options);
    c.req.raw = new Request(raw, { body: body as Uint8Array<ArrayBuffer> });
    await next();
  });
}

async function readCapped(
  stream: ReadableStream<Uint8Array>,
  options: BodyLimitOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const { done, value } = await withDeadline(reader.read(), options.idleTimeoutMs, () => {
        throw new RequestTimeoutError();
      });
      if (done) break;
      total += value.byteLength;
      if (total > options.maxBytes) throw new PayloadTooLargeError(options.maxBytes);
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
