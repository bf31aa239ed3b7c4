/**
 * Container health probe (the Dockerfiles' `HEALTHCHECK`): exits 0 when the
 * edge on this host answers `GET /healthz` with 2xx, 1 otherwise. Needs
 * `--allow-env=PORT --allow-net=127.0.0.1`.
 *
 * With the argument `tcp` it probes the HSM instead (`Dockerfile.hsm`): that
 * the listener on `HSM_PORT` accepts connections, since every HTTP request
 * needs a client certificate. Needs `--allow-env=HSM_PORT --allow-net=127.0.0.1`.
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

/**
 * Whether something on this host accepts TCP connections on `port`.
 *
 * @param port the listener's port
 * @param timeoutMs give up after this long
 * @returns 0 when it accepts, 1 otherwise
 */
export async function probeTcp(port: string, timeoutMs = 3000): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const conn = await Promise.race([
      Deno.connect({ hostname: "127.0.0.1", port: Number(port) }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), timeoutMs);
      }),
    ]);
    conn.close();
    return 0;
  } catch {
    return 1;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  Deno.exit(
    Deno.args[0] === "tcp"
      ? await probeTcp(Deno.env.get("HSM_PORT") || "8443")
      : await probe(Deno.env.get("PORT") || "8080"),
  );
}
