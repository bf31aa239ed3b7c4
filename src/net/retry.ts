/**
 * Retry arithmetic shared by the HTTP and WebSocket clients: jittered
 * exponential backoff, `Retry-After` parsing and an abortable sleep. Pure
 * apart from `sleep`.
 *
 * @module
 */

/**
 * Delay before retry number `attempt` (1 = the first retry): exponential
 * growth from `baseDelayMs`, capped at `maxDelayMs`, with "equal jitter" (half
 * fixed, half random) so that clients that failed together do not retry
 * together, yet never retry immediately.
 *
 * @param attempt 1-based retry number
 * @param options base and cap in milliseconds
 * @param random uniform source in [0, 1)
 * @returns milliseconds to wait
 */
export function backoffDelay(
  attempt: number,
  options: { baseDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  }
  // 2 ** 30 already exceeds any sane cap; the bound keeps the product finite.
  const exp = options.baseDelayMs * 2 ** Math.min(attempt - 1, 30);
  const cap = Math.min(options.maxDelayMs, exp);
  return Math.round(cap / 2 + random() * (cap / 2));
}

/**
 * Parse a `Retry-After` header (delay-seconds or an HTTP-date, RFC 9110
 * §10.2.3) into milliseconds from `now`.
 *
 * @param value the header value, or null when absent
 * @param now current time in epoch milliseconds
 * @returns milliseconds to wait (0 for a date in the past), or undefined when absent or malformed
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Date.parse is lenient ("-1" is a year); an HTTP-date starts with a day name.
  if (!/^[A-Za-z]{3,9},? /.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Wait `ms` milliseconds; rejects with the signal's reason when it aborts
 * first. The timer is always cleared.
 *
 * @param ms milliseconds
 * @param signal optional cancellation
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
