/**
 * Runs the real server process the way `deno task start` does: through the
 * launcher, so it gets exactly the production permission flags.
 */

/** A running server process. */
export interface ServerProcess extends AsyncDisposable {
  url: string;
  port: number;
  child: Deno.ChildProcess;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Send a signal and wait for exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const ROOT = new URL("../../", import.meta.url).pathname;
/** By name: the test task grants `--allow-run=deno`, which `Deno.execPath()` may not match. */
const DENO = "deno";

/**
 * Run a deno script from the repo root with the given env, collecting output.
 *
 * @param args arguments after `deno`
 * @param env environment (the parent's is not inherited)
 */
export async function runDeno(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(DENO, {
    args,
    cwd: ROOT,
    env: { ...baseEnv(), ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const k of ["PATH", "HOME", "DENO_DIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/**
 * Start the server via `deno task start` and wait until `/healthz` answers.
 *
 * @param env server configuration
 */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = Number(env.PORT ?? freePort());
  const child = new Deno.Command(DENO, {
    args: ["task", "--quiet", "start"],
    cwd: ROOT,
    env: { ...baseEnv(), ...env, PORT: String(port) },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) text += dec.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  let exited = false;
  child.status.then(() => exited = true);
  while (true) {
    if (exited) {
      await pumps;
      throw new Error(`server exited during start:\n${text}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) child.kill(signal);
    const status = await child.status;
    await pumps;
    return status;
  };
  return {
    url,
    port,
    child,
    output: () => text,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop("SIGKILL").catch(() => {});
    },
  };
}
