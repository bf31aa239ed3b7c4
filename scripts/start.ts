/**
 * The launcher behind `deno task start`, `dev`, `compile`, `db:migrate`,
 * `keys:create` and `data-key:rotate`. Permissions depend on the runtime config
 * (data dir, upstream hosts…), so a fixed task string cannot state them: this
 * script loads the config, computes the exact flags with `permissions.ts`, and
 * starts the real program with them.
 *
 * ```sh
 * deno run --allow-env --allow-run=deno scripts/start.ts run main.ts [--watch] [--print-flags] [args…]
 * deno run --allow-env --allow-run=deno scripts/start.ts compile main.ts [--output <file>] [--print-flags]
 * ```
 *
 * `run` creates the data dir (mode 0700) if missing, spawns
 * `deno run --frozen --no-prompt --config <repo>/deno.json <flags> <script> [args…]`
 * with inherited stdio, forwards SIGTERM/SIGINT and exits with the child's
 * code. Arguments the launcher does not know (and all after `--`) go to the
 * script.
 * `--print-flags` prints the permission flags instead. `compile` bakes the
 * flags computed from the environment it runs in into the binary, so compile
 * with the production configuration.
 *
 * The launcher itself needs only `--allow-env` (to read the config) and
 * `--allow-run=deno`: it writes nothing; the data dir is created by a child
 * granted write access to that one directory.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../src/config/load.ts";
import type { Config } from "../src/config/schema.ts";
import { UsageError } from "./_cli.ts";
import { writeLine } from "./_io.ts";
import { type HsmConfig, loadHsmConfig } from "../src/hsm_server/config.ts";
import {
  hsmPermissionsFor,
  type LaunchMode,
  ortWasmFileFromUrl,
  permissionFlags,
  permissionsFor,
  pgliteDirFromUrl,
} from "./permissions.ts";

/**
 * The Deno executable, by name. `--allow-run=deno` resolves the name on `PATH`;
 * `Deno.execPath()` can be a different path (npm installs a symlink), which that
 * grant would not cover.
 */
export const DENO = "deno";

/**
 * The repository's `deno.json`. Children get it explicitly, so a script
 * resolves imports with the same import map and lockfile as the launcher
 * wherever it lives.
 */
export const CONFIG_FILE: string = fileURLToPath(new URL("../deno.json", import.meta.url));

/** Where `compile` writes the binary unless `--output` says otherwise. */
export const DEFAULT_OUTPUT = "dist/anya-edge";

const USAGE = `Usage: scripts/start.ts run <script.ts> [--watch] [--print-flags] [script args...]
       scripts/start.ts compile <script.ts> [--output <file>] [--print-flags]`;

/** Parsed launcher arguments. */
export interface LaunchArgs {
  /** `run` the script, or `compile` it into a binary. */
  mode: LaunchMode;
  /** The program, e.g. `main.ts` or `scripts/db_migrate.ts`. */
  script: string;
  /** Print the permission flags instead of starting anything. */
  printFlags: boolean;
  /** Restart on file changes (`deno run --watch`). */
  watch: boolean;
  /** Binary path for `compile`. */
  output: string;
  /** Arguments passed through to the script. */
  scriptArgs: string[];
}

/**
 * Parse the launcher's arguments.
 *
 * @param args e.g. `["run", "main.ts", "--print-flags"]`
 * @returns the parsed arguments
 * @throws UsageError on a missing mode or script, or an option the mode does not take
 */
export function parseLaunchArgs(args: readonly string[]): LaunchArgs {
  const [mode, script, ...rest] = args;
  if (mode !== "run" && mode !== "compile") {
    throw new UsageError(`Unknown mode "${mode ?? ""}": expected "run" or "compile"`);
  }
  if (script === undefined || script.startsWith("-")) {
    throw new UsageError(`Missing the script to ${mode}`);
  }
  const parsed: LaunchArgs = {
    mode,
    script,
    printFlags: false,
    watch: false,
    output: DEFAULT_OUTPUT,
    scriptArgs: [],
  };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === "--") {
      parsed.scriptArgs.push(...rest.slice(i + 1));
      break;
    } else if (arg === "--print-flags") {
      parsed.printFlags = true;
    } else if (arg === "--watch" && mode === "run") {
      parsed.watch = true;
    } else if (arg === "--output" && mode === "compile") {
      const value = rest[++i];
      if (value === undefined) throw new UsageError("--output needs a file name");
      parsed.output = value;
    } else if (arg.startsWith("--output=") && mode === "compile") {
      parsed.output = arg.slice("--output=".length);
    } else if (mode === "compile") {
      throw new UsageError(`Unknown option for compile: "${arg}"`);
    } else {
      parsed.scriptArgs.push(arg);
    }
  }
  return parsed;
}

/**
 * The `deno` arguments that run or compile the script with `flags`.
 *
 * @param launch parsed launcher arguments
 * @param flags permission flags from {@linkcode permissionFlags}
 * @param options `configFile`: the `deno.json` to use (default {@linkcode CONFIG_FILE});
 *   `include`: extra files a compiled binary embeds
 * @returns arguments after `deno`
 */
export function denoArgs(
  launch: LaunchArgs,
  flags: readonly string[],
  options: { configFile?: string; include?: readonly string[] } = {},
): string[] {
  const common = ["--frozen", "--no-prompt", "--config", options.configFile ?? CONFIG_FILE];
  if (launch.mode === "compile") {
    const include = (options.include ?? []).flatMap((f) => ["--include", f]);
    return ["compile", ...common, ...flags, ...include, "--output", launch.output, launch.script];
  }
  return [
    "run",
    ...common,
    ...(launch.watch ? ["--watch"] : []),
    ...flags,
    launch.script,
    ...launch.scriptArgs,
  ];
}

/**
 * The permission flags for `config` in `mode`, resolving PGlite's package
 * directory from this module's import map when it is needed.
 *
 * @param config the loaded config
 * @param mode `run` or `compile`
 */
export function flagsFor(config: Config | HsmConfig, mode: LaunchMode): string[] {
  const pgliteDir = mode === "run" && config.db.kind === "pglite"
    ? pgliteDirFromUrl(import.meta.resolve("@electric-sql/pglite"))
    : undefined;
  if ("kekFile" in config) return permissionFlags(hsmPermissionsFor(config, { mode, pgliteDir }));
  const ortWasmFile = mode === "run" && config.ml !== null
    ? ortWasmFileFromUrl(import.meta.resolve("onnxruntime-web"))
    : undefined;
  return permissionFlags(permissionsFor(config, { mode, pgliteDir, ortWasmFile }));
}

/** The HSM signer's entry point: launched with its own config and permissions. */
export const HSM_ENTRY = "hsm_main.ts";

/** The config of the program `script` is: the HSM's for its entry point, else the edge's. */
export function configFor(
  script: string,
  env: Readonly<Record<string, string | undefined>>,
): Config | HsmConfig {
  return script.replace(/^\.\//, "") === HSM_ENTRY ? loadHsmConfig(env) : loadConfig(env);
}

/**
 * Quote arguments for a POSIX shell, leaving plain ones bare.
 *
 * @param args arguments
 * @returns one line
 */
export function shellJoin(args: readonly string[]): string {
  return args.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

/**
 * Run `code` in a child Deno that may read and write only the paths given:
 * the launcher itself holds no file permissions, so file work it needs before
 * the real child starts is confined like this.
 *
 * @param code TypeScript to run
 * @param access the paths the child may read and write
 * @returns resolves when the child succeeded
 * @throws Error with the first line of the child's error output
 */
export async function runConfined(
  code: string,
  access: { read?: string; write?: string },
): Promise<void> {
  const out = await new Deno.Command(DENO, {
    args: [
      "run",
      "--no-config",
      "--no-prompt",
      ...(access.read === undefined ? [] : [`--allow-read=${access.read}`]),
      ...(access.write === undefined ? [] : [`--allow-write=${access.write}`]),
      `data:application/typescript,${encodeURIComponent(code)}`,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(new TextDecoder().decode(out.stderr).trim().split("\n")[0] ?? "");
  }
}

/** Create `dir` (mode 0700) in a child that may write there and nowhere else. */
async function ensureDir(dir: string): Promise<void> {
  const code = `await Deno.mkdir(${JSON.stringify(dir)}, { recursive: true, mode: 0o700 });`;
  try {
    await runConfined(code, { write: dir });
  } catch (err) {
    throw new Error(`Cannot create the data dir "${dir}": ${(err as Error).message}`);
  }
}

/** Spawn `deno args…` with inherited stdio; forward the first SIGTERM/SIGINT of each kind. */
async function runChild(args: readonly string[]): Promise<number> {
  const child = new Deno.Command(DENO, { args: [...args] }).spawn();
  const forwarded = new Set<Deno.Signal>();
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"];
  // A terminal's Ctrl-C reaches the child directly too (same process group), and
  // `deno task` forwards it again: one forward per kind avoids piling duplicates
  // onto the child's graceful shutdown.
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (forwarded.has(signal)) return;
      forwarded.add(signal);
      try {
        child.kill(signal);
      } catch {
        // The child has already exited.
      }
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  try {
    const status = await child.status;
    return status.code;
  } finally {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

/**
 * Run the launcher.
 *
 * @param args command-line arguments
 * @param env environment variables (passed to `loadConfig`)
 * @returns the exit code: the child's in `run` and `compile`, 2 on bad usage or config
 */
export async function main(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<number> {
  let launch: LaunchArgs;
  let config: Config | HsmConfig;
  let flags: string[];
  try {
    launch = parseLaunchArgs(args);
    config = configFor(launch.script, env);
    flags = flagsFor(config, launch.mode);
  } catch (err) {
    if (err instanceof UsageError) {
      await writeLine(Deno.stderr, `start: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError || err instanceof RangeError) {
      await writeLine(Deno.stderr, `start: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (launch.printFlags) {
    await writeLine(Deno.stdout, shellJoin(flags));
    return 0;
  }
  if (launch.mode === "run") {
    try {
      await ensureDir(config.dataDir);
    } catch (err) {
      await writeLine(Deno.stderr, `start: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }
  // A binary carries onnxruntime-web's WASM inside it: module graphs do not include it on their own.
  const include = launch.mode === "compile" && !("kekFile" in config) && config.ml !== null
    ? [ortWasmFileFromUrl(import.meta.resolve("onnxruntime-web"))]
    : [];
  return await runChild(denoArgs(launch, flags, { include }));
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.toObject()));
}
