/**
 * Container health probe (the Dockerfile's `HEALTHCHECK`): exits 0 when the
 * server on this host answers `GET /healthz` with 2xx, 1 otherwise.
 * Needs `--allow-env=PORT --allow-net=127.0.0.1`.
 *
 * @module
 */

/**
 * Probe the local server once.
 *
 * @param port the server's port
 * @param timeoutMs give up after this long
 * @returns 0 when healthy, 1 otherwise
 */
export async function probe(port: string, timeoutMs = 3000): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    return res.ok ? 0 : 1;
  } catch {
    return 1;
  }
}

if (import.meta.main) Deno.exit(await probe(Deno.env.get("PORT") || "8080"));
