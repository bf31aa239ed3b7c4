/**
 * Create a development PKI for the mTLS link between the edge and the HSM:
 *
 * ```sh
 * deno task pki:dev [--force]
 * ```
 *
 * Writes under `<ANYA_DATA_DIR or ./data>/pki/` (directory mode 0700):
 *
 * - `ca.crt`, `ca.key`: the development CA;
 * - `hsm-server.crt`, `hsm-server.key`: the HSM's server certificate, SANs
 *   `localhost`, `127.0.0.1` and `::1`;
 * - `edge-client.crt`, `edge-client.key`: the edge's client certificate, CN `edge`.
 *
 * Keys are PKCS#8 PEM, mode 0600. Existing files are kept (a kept key file
 * readable by others is tightened to 0600); a missing leaf is issued by the
 * existing CA. Without the CA but with leaves present the run stops, since a
 * new CA would orphan them: `--force` replaces everything. Then it prints the
 * environment variables for the HSM and the edge. Never use these files in
 * production: the CA key sits next to the certificates it signed.
 *
 * @module
 */
import { join } from "node:path";
import { type CertificateAuthority, createCa, issueCertificate, loadCa } from "../src/pki/mod.ts";
import type { PemPair } from "../src/pki/mod.ts";
import { parseOptions, UsageError } from "./_cli.ts";
import { writeLine } from "./_io.ts";
import { shellJoin } from "./start.ts";

const USAGE = `Usage: deno task pki:dev [--force]

Creates a development CA, the HSM server certificate and the edge client
certificate under <ANYA_DATA_DIR or ./data>/pki/. Existing files are kept.

  --force  replace every file`;

/** The data dir when `ANYA_DATA_DIR` is unset (as in the config schema). */
export const DEFAULT_DATA_DIR = "./data";
/** CN of the edge's client certificate; the HSM allowlist maps it to a tenant. */
export const EDGE_CLIENT_CN = "edge";
/** Where the edge reaches the development HSM. */
export const DEV_HSM_URL = "https://127.0.0.1:8443";

/** The files of one certificate, by stem (`<stem>.crt`, `<stem>.key`). */
export const PKI_DEV_STEMS = {
  ca: "ca",
  server: "hsm-server",
  client: "edge-client",
} as const;

type Role = keyof typeof PKI_DEV_STEMS;

/** Parsed command-line arguments. */
export interface PkiDevArgs {
  /** `--force`: replace existing files. */
  force: boolean;
}

/**
 * Parse and check the arguments.
 *
 * @param args command-line arguments
 * @returns the parsed arguments, or `"help"` when help was asked for
 * @throws UsageError on unknown arguments
 */
export function parsePkiDevArgs(args: readonly string[]): PkiDevArgs | "help" {
  const values = parseOptions(args, {
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help === true) return "help";
  return { force: values.force === true };
}

/**
 * The PKI directory for a data dir, trailing slashes trimmed as the config does.
 *
 * @param dataDir `ANYA_DATA_DIR`, or undefined/empty for the default
 * @returns `<dataDir>/pki`
 */
export function pkiDir(dataDir: string | undefined): string {
  const dir = dataDir === undefined || dataDir === "" ? DEFAULT_DATA_DIR : dataDir;
  return join(dir.replace(/\/+$/, "") || "/", "pki");
}

/**
 * The environment variables that point the HSM and the edge at the files.
 *
 * @param dir the PKI directory
 * @returns variables for each side, in display order
 */
export function pkiDevEnv(
  dir: string,
): { hsm: Record<string, string>; edge: Record<string, string> } {
  const file = (role: Role, ext: "crt" | "key") => join(dir, `${PKI_DEV_STEMS[role]}.${ext}`);
  return {
    hsm: {
      HSM_TLS_CERT_FILE: file("server", "crt"),
      HSM_TLS_KEY_FILE: file("server", "key"),
      HSM_CLIENT_CA_FILE: file("ca", "crt"),
      HSM_CLIENT_ALLOWLIST: `${EDGE_CLIENT_CN}=default`,
    },
    edge: {
      HSM_URL: DEV_HSM_URL,
      HSM_CA_FILE: file("ca", "crt"),
      HSM_CLIENT_CERT_FILE: file("client", "crt"),
      HSM_CLIENT_KEY_FILE: file("client", "key"),
    },
  };
}

/** What happened to one certificate. */
type Outcome = "created" | "kept";

/** Files of one role and whether they exist. */
interface PairFiles {
  certFile: string;
  keyFile: string;
  certExists: boolean;
  keyExists: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function pairFiles(dir: string, role: Role): Promise<PairFiles> {
  const certFile = join(dir, `${PKI_DEV_STEMS[role]}.crt`);
  const keyFile = join(dir, `${PKI_DEV_STEMS[role]}.key`);
  return {
    certFile,
    keyFile,
    certExists: await exists(certFile),
    keyExists: await exists(keyFile),
  };
}

/** Write `text` to `path` via a fresh file and a rename, so a crash never leaves half a PEM. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    // createNew + mode: the key is never readable by others, not even briefly.
    await Deno.writeTextFile(tmp, text, { createNew: true, mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

async function writePair(files: PairFiles, pair: PemPair): Promise<void> {
  await writeAtomic(files.keyFile, pair.keyPem, 0o600);
  await writeAtomic(files.certFile, pair.certPem, 0o644);
}

/** Tighten a kept key file to 0600; returns whether it was looser. */
async function tightenKeyMode(keyFile: string): Promise<boolean> {
  const { mode } = await Deno.stat(keyFile);
  if (mode === null || (mode & 0o077) === 0) return false;
  await Deno.chmod(keyFile, 0o600);
  return true;
}

/**
 * Create or complete the development PKI.
 *
 * @param dir the PKI directory
 * @param force replace existing files
 * @returns per role, whether it was created or kept, plus notes for the user
 * @throws Error when files are half present, or leaves exist without their CA
 */
export async function writeDevPki(
  dir: string,
  force: boolean,
): Promise<{ outcomes: Record<Role, Outcome>; notes: string[] }> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const files = {
    ca: await pairFiles(dir, "ca"),
    server: await pairFiles(dir, "server"),
    client: await pairFiles(dir, "client"),
  };
  const notes: string[] = [];
  const present = (f: PairFiles) => !force && f.certExists && f.keyExists;
  if (!force) {
    for (const f of Object.values(files)) {
      if (f.certExists !== f.keyExists) {
        const [has, lacks] = f.certExists ? [f.certFile, f.keyFile] : [f.keyFile, f.certFile];
        throw new Error(`"${has}" exists but "${lacks}" does not: rerun with --force`);
      }
    }
    if (!present(files.ca) && (present(files.server) || present(files.client))) {
      throw new Error(
        `Leaf certificates exist in "${dir}" but the CA does not: rerun with --force`,
      );
    }
  }

  let ca: CertificateAuthority;
  const outcomes = {} as Record<Role, Outcome>;
  if (present(files.ca)) {
    ca = await loadCa({
      certPem: await Deno.readTextFile(files.ca.certFile),
      keyPem: await Deno.readTextFile(files.ca.keyFile),
    });
    outcomes.ca = "kept";
  } else {
    ca = await createCa({ commonName: "anya-edge development CA" });
    await writePair(files.ca, ca);
    outcomes.ca = "created";
  }
  const leaves: [Role, Parameters<typeof issueCertificate>[1]][] = [
    ["server", {
      commonName: "hsm",
      usage: "server",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
    }],
    ["client", { commonName: EDGE_CLIENT_CN, usage: "client" }],
  ];
  for (const [role, opts] of leaves) {
    if (present(files[role])) {
      outcomes[role] = "kept";
    } else {
      await writePair(files[role], await issueCertificate(ca, opts));
      outcomes[role] = "created";
    }
  }
  for (const role of ["ca", "server", "client"] as const) {
    if (outcomes[role] === "kept" && await tightenKeyMode(files[role].keyFile)) {
      notes.push(`Tightened "${files[role].keyFile}" to mode 0600`);
    }
  }
  return { outcomes, notes };
}

/**
 * Run the command.
 *
 * @param args command-line arguments
 * @param dataDir `ANYA_DATA_DIR`
 * @returns the process exit code
 */
export async function main(args: readonly string[], dataDir: string | undefined): Promise<number> {
  let parsed;
  try {
    parsed = parsePkiDevArgs(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    await writeLine(Deno.stderr, `pki:dev: ${err.message}\n\n${USAGE}`);
    return 1;
  }
  if (parsed === "help") {
    await writeLine(Deno.stderr, USAGE);
    return 0;
  }
  const dir = pkiDir(dataDir);
  let result;
  try {
    result = await writeDevPki(dir, parsed.force);
  } catch (err) {
    const hint = err instanceof Deno.errors.NotCapable
      ? `\nGrant access to the directory: --allow-read=${dir} --allow-write=${dir}`
      : "";
    await writeLine(
      Deno.stderr,
      `pki:dev: ${err instanceof Error ? err.message : String(err)}${hint}`,
    );
    return 1;
  }
  const env = pkiDevEnv(dir);
  const lines: string[] = [];
  for (const role of ["ca", "server", "client"] as const) {
    const stem = join(dir, PKI_DEV_STEMS[role]);
    lines.push(`${result.outcomes[role].padEnd(7)} ${stem}.crt ${stem}.key`);
  }
  lines.push(...result.notes);
  if (Object.values(result.outcomes).includes("kept")) {
    lines.push("Existing files were kept; --force replaces them.");
  }
  lines.push(
    "",
    "HSM side:",
    ...Object.entries(env.hsm).map(([k, v]) => `  ${shellJoin([`${k}=${v}`])}`),
  );
  lines.push(
    "",
    "Edge side:",
    ...Object.entries(env.edge).map(([k, v]) => `  ${shellJoin([`${k}=${v}`])}`),
  );
  await writeLine(Deno.stdout, lines.join("\n"));
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, Deno.env.get("ANYA_DATA_DIR")));
}
