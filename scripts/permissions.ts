/**
 * The Deno permission flags the server gets, computed from its config alone.
 * Pure: no I/O, so tests and the Dockerfile check can call it with literals.
 *
 * What `main.ts` is granted, and why:
 *
 * - `--allow-env`: exactly the variables the config schema declares
 *   ({@linkcode CONFIG_ENV_KEYS}), plus `--ignore-env`, which makes every other
 *   name read as `undefined` instead of throwing. Libraries peek at variables of
 *   their own (the `postgres` client reads `PGPASSWORD`, `PGHOST`, `PGAPPNAME`…);
 *   with `--ignore-env` they still work but cannot pick up configuration that
 *   bypasses the schema.
 * - `--allow-read`: the models dir, the data dir, every configured file (each
 *   config value whose key ends in `File`), and, when the database is PGlite and
 *   the program runs from source, PGlite's package directory (it reads its WASM
 *   image and data bundle from there at start); with ML enabled, from source,
 *   onnxruntime-web's WASM binary (read once when the first session is made).
 * - `--allow-write`: the data dir only.
 * - `--allow-net`: the listen address and the configured upstreams.
 *
 * @module
 */
import { type Config, CONFIG_ENV_KEYS } from "../src/config/schema.ts";
import { hostPort, listenHost, upstreamHosts } from "../src/config/upstreams.ts";
import { HSM_ENV_KEYS, type HsmConfig } from "../src/hsm_server/config.ts";

/** How the program is started: from source (`deno run`) or as a binary (`deno compile`). */
export type LaunchMode = "run" | "compile";

/** Options for {@linkcode permissionsFor}. */
export interface PermissionOptions {
  /** `run` (default) or `compile`; a compiled binary embeds PGlite, so needs no read of it. */
  mode?: LaunchMode;
  /** PGlite's package directory; required in `run` mode when `db.kind` is `pglite`. */
  pgliteDir?: string | undefined;
  /** onnxruntime-web's WASM file; required in `run` mode when ML is enabled. */
  ortWasmFile?: string | undefined;
}

/** What the server may touch, one list per permission. */
export interface Permissions {
  /** Environment variable names (`--allow-env`). */
  env: readonly string[];
  /** Paths readable (`--allow-read`). */
  read: readonly string[];
  /** Paths writable (`--allow-write`). */
  write: readonly string[];
  /** `host:port` entries (`--allow-net`). */
  net: readonly string[];
}

/**
 * Every `host:port` the server needs: its listen address, then the upstreams.
 *
 * @param config the loaded config
 * @returns entries as `--allow-net` spells them, without duplicates
 */
export function netHosts(config: Config): string[] {
  return unique([listenHost(config), ...upstreamHosts(config)]);
}

/**
 * Paths of every configured file: each string value, at any depth, whose key
 * ends in `File` (`dataKeyFile`, `db.passwordFile`, …). New `*_FILE` variables
 * are covered as soon as the schema maps them to such a key.
 *
 * @param config the loaded config
 * @returns paths in config order, without duplicates
 */
export function configFiles(config: Config): string[] {
  const files: string[] = [];
  const walk = (value: unknown): void => {
    if (value === null || typeof value !== "object") return;
    for (const [key, v] of Object.entries(value)) {
      if (key.endsWith("File") && typeof v === "string") files.push(v);
      else walk(v);
    }
  };
  walk(config);
  return unique(files);
}

/**
 * The permissions the server needs for `config`.
 *
 * @param config the loaded config
 * @param options launch mode and PGlite's package directory
 * @returns one list per permission
 * @throws TypeError when `run` mode on PGlite lacks `pgliteDir`
 */
export function permissionsFor(config: Config, options: PermissionOptions = {}): Permissions {
  const mode = options.mode ?? "run";
  const read = [config.modelsDir, config.dataDir, ...configFiles(config)];
  if (mode === "run" && config.db.kind === "pglite") {
    if (options.pgliteDir === undefined || options.pgliteDir === "") {
      throw new TypeError("pgliteDir is required to run on PGlite from source");
    }
    read.push(options.pgliteDir);
  }
  if (mode === "run" && config.ml !== null) {
    if (options.ortWasmFile === undefined || options.ortWasmFile === "") {
      throw new TypeError("ortWasmFile is required to run models from source");
    }
    read.push(options.ortWasmFile);
  }
  return {
    env: [...CONFIG_ENV_KEYS],
    read: unique(read),
    write: [config.dataDir],
    net: netHosts(config),
  };
}

/**
 * The permissions of the HSM signer (`deno task hsm`): its own variables, its
 * certificates, CA and key-encryption key, its data dir, its listen address and
 * (when configured) its PostgreSQL. Nothing of the edge's.
 *
 * @param config the HSM's loaded config
 * @param options launch mode and PGlite's package directory
 * @returns one list per permission
 * @throws TypeError when `run` mode on PGlite lacks `pgliteDir`
 */
export function hsmPermissionsFor(config: HsmConfig, options: PermissionOptions = {}): Permissions {
  const mode = options.mode ?? "run";
  const read = [
    config.dataDir,
    config.tls.certFile,
    config.tls.keyFile,
    config.tls.clientCaFile,
    config.kekFile,
  ];
  if (mode === "run" && config.db.kind === "pglite") {
    if (options.pgliteDir === undefined || options.pgliteDir === "") {
      throw new TypeError("pgliteDir is required to run on PGlite from source");
    }
    read.push(options.pgliteDir);
  }
  const host = config.host.includes(":") && !config.host.startsWith("[")
    ? `[${config.host}]`
    : config.host;
  const net = [`${host}:${config.port}`];
  if (config.db.kind === "postgres") net.push(hostPort(config.db.url, 5432));
  return {
    env: [...HSM_ENV_KEYS],
    read: unique(read),
    write: [config.dataDir],
    net: unique(net),
  };
}

/**
 * Render permissions as `deno run`/`deno compile` flags. Nothing is granted
 * beyond the lists; there is never an unscoped `--allow-*` flag.
 *
 * @param permissions lists from {@linkcode permissionsFor}
 * @returns flags, e.g. `["--allow-env=HOST,PORT", "--ignore-env", …]`
 * @throws RangeError when an entry is empty or contains a comma (flags cannot express it)
 */
export function permissionFlags(permissions: Permissions): string[] {
  const flags: string[] = [];
  const add = (name: string, values: readonly string[]) => {
    if (values.length === 0) return;
    for (const v of values) {
      if (v === "" || v.includes(",")) {
        throw new RangeError(
          `Cannot grant ${name} to "${v}": entries must be non-empty and comma-free`,
        );
      }
    }
    flags.push(`--allow-${name}=${values.join(",")}`);
  };
  add("env", permissions.env);
  // Other names read as undefined rather than throwing (see the module doc).
  if (permissions.env.length > 0) flags.push("--ignore-env");
  add("read", permissions.read);
  add("write", permissions.write);
  add("net", permissions.net);
  return flags;
}

/**
 * PGlite's package directory from the URL its entry point resolves to, e.g.
 * `…/node_modules/@electric-sql/pglite/dist/index.js` → `…/node_modules/@electric-sql/pglite`.
 * Also handles Deno's global npm cache layout (`…/@electric-sql/pglite/<version>/dist/…`).
 *
 * @param url `import.meta.resolve("@electric-sql/pglite")`
 * @returns absolute path of the package directory
 * @throws RangeError when the URL is not a file URL inside the package
 */
export function pgliteDirFromUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== "file:") throw new RangeError(`Expected a file URL, got "${url}"`);
  const path = decodeURIComponent(parsed.pathname);
  const marker = "/@electric-sql/pglite/";
  const at = path.lastIndexOf(marker);
  if (at < 0) throw new RangeError(`Not inside the @electric-sql/pglite package: "${url}"`);
  const dir = path.slice(0, at + marker.length - 1);
  const next = path.slice(at + marker.length).split("/")[0] ?? "";
  return /^\d+\.\d+\.\d+/.test(next) ? `${dir}/${next}` : dir;
}

/**
 * The WASM binary onnxruntime-web loads, next to the module its package
 * entry resolves to (`…/onnxruntime-web/dist/ort.*.mjs`).
 *
 * @param url `import.meta.resolve("onnxruntime-web")`
 * @returns absolute path of `ort-wasm-simd-threaded.wasm`
 * @throws RangeError when the URL is not a file URL inside the package's `dist`
 */
export function ortWasmFileFromUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== "file:") throw new RangeError(`Expected a file URL, got "${url}"`);
  const path = decodeURIComponent(parsed.pathname);
  const at = path.lastIndexOf("/onnxruntime-web/");
  const dist = path.lastIndexOf("/dist/");
  if (at < 0 || dist < at) throw new RangeError(`Not inside onnxruntime-web/dist: "${url}"`);
  return `${path.slice(0, dist)}/dist/${ORT_WASM}`;
}

/** The onnxruntime-web 1.30 build the WASM backend runs (SIMD, threads-capable). */
export const ORT_WASM = "ort-wasm-simd-threaded.wasm";

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
