/**
 * `deno task dev`: the edge and the HSM signer together on the development
 * PKI. Creates the PKI (`pki:dev`) and a development key-encryption key when
 * missing, then runs both through the launcher, each with the exact
 * permissions of its own config: the HSM on 127.0.0.1:8443 with its data
 * under `<data dir>/hsm`, the edge with `LOG_LEVEL=debug`.
 * Ctrl-C or SIGTERM stops both; either one exiting stops the other.
 *
 * Itself it needs only `--allow-env` and `--allow-run=deno`: every file is
 * written by a child granted that one path.
 *
 * @module
 */
import { join } from "node:path";
import { DENO, runConfined } from "./start.ts";
import { pkiDevEnv, pkiDir } from "./pki_dev.ts";
import { writeLine } from "./_io.ts";

const LAUNCHER = new URL("./start.ts", import.meta.url).pathname;

/** The variables each process gets on top of the caller's environment. */
export function devEnv(
  dataDir: string,
): { hsm: Record<string, string>; edge: Record<string, string> } {
  const env = pkiDevEnv(pkiDir(dataDir));
  return {
    hsm: {
      ...env.hsm,
      HSM_DATA_DIR: join(dataDir, "hsm"),
      HSM_KEK_FILE: join(dataDir, "hsm.kek"),
      HSM_LOG_LEVEL: "debug",
    },
    edge: { ...env.edge, LOG_LEVEL: "debug" },
  };
}

/** Write 32 random bytes (hex) to `file` unless it exists, from a child allowed that file only. */
async function ensureKek(file: string): Promise<void> {
  const code = `
    try { await Deno.lstat(${JSON.stringify(file)}); } catch {
      const kek = crypto.getRandomValues(new Uint8Array(32));
      const hex = Array.from(kek, (b) => b.toString(16).padStart(2, "0")).join("");
      await Deno.writeTextFile(${
    JSON.stringify(file)
  }, hex + "\\n", { mode: 0o600, createNew: true });
    }`;
  try {
    await runConfined(code, { read: file, write: file });
  } catch (err) {
    throw new Error(`Cannot create ${file}: ${(err as Error).message}`);
  }
}

async function main(env: Record<string, string>): Promise<number> {
  const dataDir = env.ANYA_DATA_DIR || "./data";
  const pki = await new Deno.Command(DENO, { args: ["task", "pki:dev"], env }).spawn().status;
  if (!pki.success) return pki.code;
  await ensureKek(join(dataDir, "hsm.kek"));
  const vars = devEnv(dataDir);
  const launch = (script: string, extra: Record<string, string>, args: string[] = []) =>
    new Deno.Command(DENO, {
      args: [
        "run",
        "--frozen",
        "--allow-env",
        "--allow-run=deno",
        LAUNCHER,
        "run",
        script,
        ...args,
      ],
      env: { ...env, ...extra },
    }).spawn();
  const hsm = launch("hsm_main.ts", vars.hsm);
  // No --watch: a watcher outlives its program's exit, so the pair could not stop together.
  const edge = launch("main.ts", vars.edge);
  const children = [hsm, edge];
  const stopAll = (signal: Deno.Signal) => {
    for (const c of children) {
      try {
        c.kill(signal);
      } catch {
        // Already exited.
      }
    }
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  const handlers = signals.map((s) => [s, () => stopAll(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  const first = await Promise.race(children.map((c) => c.status));
  stopAll("SIGTERM");
  await Promise.all(children.map((c) => c.status));
  for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  await writeLine(Deno.stderr, `dev: stopped (first exit code ${first.code})`);
  return first.code;
}

if (import.meta.main) Deno.exit(await main(Deno.env.toObject()));
