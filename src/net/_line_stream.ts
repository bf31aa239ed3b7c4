/**
 * The body of a streaming upstream response read as lines, for
 * `HttpClient.stream()`: split on `\n` at the byte level (so the size cap
 * counts bytes and a multi-byte character is never cut), each line decoded
 * as UTF-8 on its own.
 *
 * @module
 */
import { UpstreamError, UpstreamTimeoutError } from "../errors/app_error.ts";
import type { UpstreamStream } from "./types.ts";

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** What the stream needs from the call that opened it. */
export interface LineStreamContext {
  /** Aborts the underlying request (and with it the body). */
  controller: AbortController;
  /** The caller's signal: its abort ends the stream with an error. */
  caller: AbortSignal | undefined;
  /** Removes the listener linking `caller` to `controller`. */
  detach: () => void;
  /** Cap of one line, in bytes. */
  maxLineBytes: number;
  /** `<upstream> <METHOD> <route>` for error messages. */
  label: string;
}

/**
 * Wrap an open response as an {@linkcode UpstreamStream}.
 *
 * @param res the response, head received
 * @param ctx the controller, caller signal, cap and label
 */
export function lineStream(res: Response, ctx: LineStreamContext): UpstreamStream {
  const { label, maxLineBytes } = ctx;
  let closed = false;
  let iterated = false;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  const close = () => {
    if (closed) return;
    closed = true;
    ctx.detach();
    if (reader !== undefined) reader.cancel().catch(() => {});
    else res.body?.cancel().catch(() => {});
    // Aborting the request drops the connection instead of draining the rest.
    ctx.controller.abort();
  };

  const readFailure = (err: unknown) => {
    if (ctx.caller?.aborted === true) {
      return new UpstreamTimeoutError(
        `${label}: stream cancelled before it ended; the outcome is unknown`,
        { cause: err },
      );
    }
    return new UpstreamTimeoutError(
      `${label}: connection broke before the stream ended; the outcome is unknown`,
      { cause: err },
    );
  };

  async function* lines(): AsyncGenerator<string> {
    if (iterated) throw new TypeError(`${label}: a stream's lines can be iterated once`);
    iterated = true;
    if (closed || res.body === null) return;
    reader = res.body.getReader();
    const parts: Uint8Array[] = [];
    let size = 0;
    const take = (): string | null => {
      const line = joinLine(parts, size);
      parts.length = 0;
      size = 0;
      return line;
    };
    try {
      for (;;) {
        let chunk: Uint8Array;
        try {
          const next = await reader.read();
          if (next.done) break;
          chunk = next.value;
        } catch (err) {
          if (closed) return;
          throw readFailure(err);
        }
        let start = 0;
        while (start < chunk.byteLength) {
          const nl = chunk.indexOf(NEWLINE, start);
          const end = nl < 0 ? chunk.byteLength : nl;
          size += end - start;
          if (size > maxLineBytes) {
            throw new UpstreamError(`${label}: a stream line exceeds ${maxLineBytes} bytes`);
          }
          // A copy: a transport may reuse the chunk's buffer after the next read.
          if (end > start) parts.push(chunk.slice(start, end));
          if (nl < 0) break;
          start = nl + 1;
          const line = take();
          if (line !== null) {
            yield line;
            if (closed) return;
          }
        }
      }
      if (closed) return;
      // The last line may lack its newline.
      const line = take();
      if (line !== null) yield line;
    } finally {
      close();
    }
  }

  return {
    status: res.status,
    headers: res.headers,
    lines,
    close,
    [Symbol.dispose]: close,
  };
}

const DECODER = new TextDecoder();

/** One line's bytes as text without a trailing `\r`; null for a blank line. */
function joinLine(parts: Uint8Array[], size: number): string | null {
  let bytes: Uint8Array;
  if (parts.length === 1) bytes = parts[0]!;
  else {
    bytes = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      bytes.set(part, offset);
      offset += part.byteLength;
    }
  }
  let end = bytes.byteLength;
  if (end > 0 && bytes[end - 1] === CARRIAGE_RETURN) end--;
  if (end === 0) return null;
  const text = DECODER.decode(bytes.subarray(0, end));
  return text.trim() === "" ? null : text;
}
