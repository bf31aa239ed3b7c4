/**
 * Race a promise against a deadline.
 *
 * @module
 */

/**
 * Settle with `promise`, or with `onTimeout()` (a value, or a thrown error)
 * when `ms` elapse first. The timer is always cleared.
 *
 * @param promise the work
 * @param ms deadline in milliseconds
 * @param onTimeout returns the fallback value or throws the timeout error
 */
export async function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => T,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<T>((resolve, reject) => {
        timer = setTimeout(() => {
          try {
            resolve(onTimeout());
          } catch (err) {
            reject(err);
          }
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
