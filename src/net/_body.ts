/**
 * Reading an upstream body under a size cap, and the response object handed
 * to adapters.
 *
 * @module
 */
import { UpstreamError } from "../errors/app_error.ts";
import type { UpstreamResponse } from "./types.ts";

const DECODER = new TextDecoder();

/**
 * Read the whole body, stopping as soon as it exceeds `maxBytes`.
 *
 * @param res the response
 * @param maxBytes the cap
 * @returns the bytes, or null when the body is larger than the cap (the stream is cancelled)
 */
export async function readCappedBody(res: Response, maxBytes: number): Promise<Uint8Array | null> {
  if (res.body === null) return new Uint8Array(0);
  const declared = res.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared)) {
    if (Number(declared) > maxBytes) {
      await res.body.cancel().catch(() => {});
      return null;
    }
    // HTTP framing stops the body at the declared length, so it fits.
    return await res.bytes();
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Wrap a fully read body.
 *
 * @param status HTTP status
 * @param headers response headers
 * @param body the bytes
 * @param label `<upstream> <METHOD> <route>` for the JSON error
 */
export function upstreamResponse(
  status: number,
  headers: Headers,
  body: Uint8Array,
  label: string,
): UpstreamResponse {
  let text: string | undefined;
  const textOf = () => text ??= DECODER.decode(body);
  return {
    status,
    headers,
    body,
    text: textOf,
    json() {
      try {
        return JSON.parse(textOf());
      } catch {
        // No cause: the parser's message quotes the body, which may hold secrets.
        throw new UpstreamError(`${label}: response is not valid JSON`);
      }
    },
  };
}
