/**
 * The real HSM signer as a separate process (`hsm_main.ts` with the exact
 * permission flags `deno task hsm` computes), on the test PKI, and the edge's
 * real `RemoteHsmSigner` over mTLS to it.
 */
import { fileURLToPath } from "node:url";
import { loadHsmConfig } from "../../src/hsm_server/config.ts";
import { flagsFor } from "../../scripts/start.ts";
import { HttpClient } from "../../src/net/http_client.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import { RemoteHsmSigner } from "../../src/hsm/remote_hsm.ts";
import { TEST_CLIENT_CN, type TestPki, type TestPkiEntry } from "./pki.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A running HSM process. */
export interface HsmProcess extends AsyncDisposable {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  port: number;
  dataDir: string;
  kekFile: string;
  /** Every line the process wrote (stdout and stderr), across restarts. */
  logs: string[];
  /** Signal the process and wait for it to exit. */
  kill(signal: Deno.Signal): Promise<void>;
  /** Start it again on the same port, data dir and KEK. */
  restart(): Promise<void>;
}

/** Options of {@linkcode startHsm}. */
export interface StartHsmOptions {
  /** Extra `HSM_*` variables. */
  env?: Record<string, string>;
  /** Subject=tenant pairs; default `edge=acme`. */
  allowlist?: string;
}

/**
 * Start the HSM process on a fresh data dir with a fresh KEK.
 *
 * @param pki the test PKI (server certificate and client CA)
 * @param options extra variables
 */
export async function startHsm(pki: TestPki, options: StartHsmOptions = {}): Promise<HsmProcess> {
  const dataDir = await Deno.makeTempDir({ prefix: "anya_hsm_" });
  const kekFile = `${dataDir}.kek`;
  const kek = crypto.getRandomValues(new Uint8Array(32));
  await Deno.writeTextFile(
    kekFile,
    Array.from(kek, (b) => b.toString(16).padStart(2, "0")).join(""),
    {
      mode: 0o600,
    },
  );
  const logs: string[] = [];
  let port = 0;
  let child: Deno.ChildProcess | undefined;
  let pumps: Promise<void>[] = [];

  const env = () => ({
    HSM_HOST: "127.0.0.1",
    HSM_PORT: String(port),
    HSM_DATA_DIR: dataDir,
    HSM_TLS_CERT_FILE: pki.server.certFile,
    HSM_TLS_KEY_FILE: pki.server.keyFile,
    HSM_CLIENT_CA_FILE: pki.ca.certFile,
    HSM_CLIENT_ALLOWLIST: options.allowlist ?? `${TEST_CLIENT_CN}=acme`,
    HSM_KEK_FILE: kekFile,
    HSM_LOG_LEVEL: "debug",
    ...options.env,
  });

  const launch = async () => {
    const vars = env();
    const flags = flagsFor(loadHsmConfig(vars), "run");
    child = new Deno.Command("deno", {
      args: [
        "run",
        "--frozen",
        "--no-prompt",
        "--config",
        `${ROOT}deno.json`,
        ...flags,
        `${ROOT}hsm_main.ts`,
      ],
      // Only the HSM's own variables, plus what Deno itself needs to find its cache.
      env: { ...passThrough(), ...vars },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const listening = Promise.withResolvers<number>();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let buffered = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) {
          logs.push(line);
          const m = /"hsm listening \(mTLS\)".*"address":"127\.0\.0\.1:(\d+)"/.exec(line);
          if (m !== null) listening.resolve(Number(m[1]));
        }
      }
      if (buffered !== "") logs.push(buffered);
    };
    pumps = [pump(child.stdout), pump(child.stderr)];
    const exited = child.status.then((s) => {
      listening.reject(
        new Error(`HSM exited with ${s.code} before listening:\n${logs.join("\n")}`),
      );
    });
    port = await listening.promise;
    void exited;
  };

  const kill = async (signal: Deno.Signal) => {
    if (child === undefined) return;
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
    await child.status;
    await Promise.all(pumps);
    child = undefined;
  };

  await launch();
  return {
    get url() {
      return `https://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    kekFile,
    logs,
    kill,
    restart: launch,
    async [Symbol.asyncDispose]() {
      await kill("SIGTERM");
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await Deno.remove(`${dataDir}/pglite.lock`).catch(() => {});
      await Deno.remove(kekFile).catch(() => {});
    },
  };
}

/** The edge's signer over mTLS to `url` with `client`'s certificate. */
export function edgeSigner(
  pki: TestPki,
  url: string,
  client: TestPkiEntry | null = pki.client,
  overrides: Partial<UpstreamOptions> = {},
): { signer: RemoteHsmSigner; client: HttpClient } & Disposable {
  const http = new HttpClient({
    name: "hsm",
    baseUrl: url,
    timeoutMs: 5_000,
    maxResponseBytes: 16 * 1024 * 1024,
    retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 200 },
    breaker: {
      consecutiveFailures: 50,
      failureRate: 1,
      windowMs: 60_000,
      minRequests: 1_000,
      openMs: 1_000,
    },
    tls: client === null
      ? { caCerts: [pki.ca.certPem] }
      : { caCerts: [pki.ca.certPem], cert: client.certPem, key: client.keyPem },
    ...overrides,
  });
  return {
    signer: new RemoteHsmSigner(http),
    client: http,
    [Symbol.dispose]: () => http.close(),
  };
}

function passThrough(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
