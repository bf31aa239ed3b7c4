/**
 * Certificates for mTLS tests, made with the real `src/pki`: a CA, an HSM
 * server certificate and client certificates, good and bad. The PEM material is
 * generated once per test process; each {@linkcode makeTestPki} call writes it
 * to files (key files mode 0600) that its async dispose removes.
 *
 * `startMtlsServer` runs the HSM's transport shape (`node:https` requiring a
 * client certificate; `Deno.serve` cannot ask for one) and records the peers
 * that reached its handler.
 *
 * ```ts
 * await using pki = await makeTestPki();
 * await using server = await startMtlsServer(pki.server, pki.ca.certPem);
 * await fetchWith(server.url, clientTls(pki, pki.expiredClient)); // rejects
 * ```
 */
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import {
  type CertificateAuthority,
  createCa,
  issueCertificate,
  type PemPair,
} from "../../src/pki/mod.ts";

/** CN of the good client, the one the HSM allowlist names. */
export const TEST_CLIENT_CN = "edge";
/** CN of a client with a valid chain that no allowlist names. */
export const TEST_INTRUDER_CN = "intruder";

/** Where one PEM pair was written. */
export interface TestPkiFiles {
  /** Path of the certificate file. */
  certFile: string;
  /** Path of the key file (mode 0600). */
  keyFile: string;
}

/** A PEM pair and its files. */
export type TestPkiEntry = PemPair & TestPkiFiles;

/** Every certificate the mTLS tests need, with files, removed on dispose. */
export interface TestPki extends AsyncDisposable {
  /** The directory holding the files. */
  dir: string;
  /** The CA the server trusts (can issue more certificates). */
  ca: CertificateAuthority & TestPkiFiles;
  /** An unrelated CA. */
  otherCa: CertificateAuthority & TestPkiFiles;
  /** Server certificate: CN `hsm`, SANs `localhost`, `127.0.0.1`, `::1`. */
  server: TestPkiEntry;
  /** Good client: CN `edge`, valid now, issued by `ca`. */
  client: TestPkiEntry;
  /** CN `edge`, valid now, issued by `otherCa`. */
  wrongCaClient: TestPkiEntry;
  /** CN `edge`, issued by `ca`, validity ended yesterday. */
  expiredClient: TestPkiEntry;
  /** CN `edge`, issued by `ca`, validity starts tomorrow. */
  notYetValidClient: TestPkiEntry;
  /** CN `intruder`, valid now, issued by `ca`: the chain is fine, the allowlist must refuse it. */
  intruderClient: TestPkiEntry;
}

type Material = {
  [K in Exclude<keyof TestPki, "dir" | typeof Symbol.asyncDispose>]: K extends "ca" | "otherCa"
    ? CertificateAuthority
    : PemPair;
};

/** File stem of each entry, e.g. `expired-client.crt` / `.key`. */
const FILE_STEMS: Readonly<Record<keyof Material, string>> = {
  ca: "ca",
  otherCa: "other-ca",
  server: "server",
  client: "client",
  wrongCaClient: "wrong-ca-client",
  expiredClient: "expired-client",
  notYetValidClient: "not-yet-valid-client",
  intruderClient: "intruder-client",
};

const DAY_MS = 86_400_000;

let material: Promise<Material> | undefined;

async function generate(): Promise<Material> {
  const now = Date.now();
  // The CA starts a year back so the expired client lies inside its validity:
  // only the leaf's own dates make it fail.
  const ca = await createCa({
    commonName: "anya test CA",
    notBefore: new Date(now - 365 * DAY_MS),
  });
  const otherCa = await createCa({ commonName: "anya other CA" });
  const client = (
    authority: CertificateAuthority,
    extra: { notBefore?: Date; notAfter?: Date } = {},
  ) => issueCertificate(authority, { commonName: TEST_CLIENT_CN, usage: "client", ...extra });
  const [server, good, wrongCa, expired, notYetValid, intruder] = await Promise.all([
    issueCertificate(ca, {
      commonName: "hsm",
      usage: "server",
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
    }),
    client(ca),
    client(otherCa),
    client(ca, { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) }),
    client(ca, { notBefore: new Date(now + DAY_MS), notAfter: new Date(now + 30 * DAY_MS) }),
    issueCertificate(ca, { commonName: TEST_INTRUDER_CN, usage: "client" }),
  ]);
  return {
    ca,
    otherCa,
    server,
    client: good,
    wrongCaClient: wrongCa,
    expiredClient: expired,
    notYetValidClient: notYetValid,
    intruderClient: intruder,
  };
}

/**
 * The test PKI, written to `dir` (default: a new temp dir). Dispose removes the
 * files, and the directory too when this call created it.
 *
 * @param dir an existing directory to write into
 */
export async function makeTestPki(dir?: string): Promise<TestPki> {
  material ??= generate().catch((err) => {
    material = undefined;
    throw err;
  });
  const m = await material;
  const ownDir = dir === undefined;
  const target = dir ?? await Deno.makeTempDir({ prefix: "anya_pki_" });
  const written: string[] = [];
  const write = async <T extends PemPair>(key: keyof Material, pair: T) => {
    const certFile = join(target, `${FILE_STEMS[key]}.crt`);
    const keyFile = join(target, `${FILE_STEMS[key]}.key`);
    await Deno.writeTextFile(certFile, pair.certPem);
    await Deno.writeTextFile(keyFile, pair.keyPem, { mode: 0o600 });
    // The mode option applies only to new files; `dir` may hold older ones.
    await Deno.chmod(keyFile, 0o600);
    written.push(certFile, keyFile);
    return { ...pair, certFile, keyFile };
  };
  const dispose = async () => {
    if (ownDir) {
      await Deno.remove(target, { recursive: true }).catch(ignoreNotFound);
    } else {
      for (const f of written) await Deno.remove(f).catch(ignoreNotFound);
    }
  };
  try {
    return {
      dir: target,
      ca: await write("ca", m.ca),
      otherCa: await write("otherCa", m.otherCa),
      server: await write("server", m.server),
      client: await write("client", m.client),
      wrongCaClient: await write("wrongCaClient", m.wrongCaClient),
      expiredClient: await write("expiredClient", m.expiredClient),
      notYetValidClient: await write("notYetValidClient", m.notYetValidClient),
      intruderClient: await write("intruderClient", m.intruderClient),
      [Symbol.asyncDispose]: dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/**
 * Options for `Deno.createHttpClient` that trust the test CA and present
 * `client` (or no certificate when it is omitted).
 *
 * @param pki the test PKI
 * @param client the client certificate to present
 */
export function clientTls(
  pki: Pick<TestPki, "ca">,
  client?: PemPair,
): Deno.CreateHttpClientOptions | (Deno.CreateHttpClientOptions & Deno.TlsCertifiedKeyPem) {
  return client === undefined
    ? { caCerts: [pki.ca.certPem] }
    : { caCerts: [pki.ca.certPem], cert: client.certPem, key: client.keyPem };
}

/** What the server saw of one request that reached its handler. */
export interface Peer {
  /** Subject CN of the client certificate. */
  cn: string | undefined;
  /** `socket.authorized`: the chain verified. */
  authorized: boolean;
  /** Negotiated TLS version, e.g. `TLSv1.3`. */
  protocol: string | null;
  /** Client certificate SHA-256, `AB:CD:…`. */
  fingerprint256: string;
  /** Client certificate SANs as Node prints them, e.g. `DNS:edge`. */
  subjectAltName: string | undefined;
}

/** An mTLS server on 127.0.0.1 that records the requests reaching its handler; dispose closes it. */
export interface MtlsServer extends AsyncDisposable {
  /** `https://127.0.0.1:<port>/`. */
  url: string;
  /** One entry per request that reached the handler (answered 200 `ok`). */
  peers: Peer[];
}

/**
 * Start an HTTPS server requiring a client certificate that chains to `caPem`.
 *
 * @param server the server's certificate and key
 * @param caPem the CA client certificates must chain to
 */
export async function startMtlsServer(server: PemPair, caPem: string): Promise<MtlsServer> {
  const peers: Peer[] = [];
  const https = createServer({
    key: server.keyPem,
    cert: server.certPem,
    ca: [caPem],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const cert = socket.getPeerCertificate();
    peers.push({
      cn: typeof cert.subject?.CN === "string" ? cert.subject.CN : undefined,
      authorized: socket.authorized,
      protocol: socket.getProtocol(),
      fingerprint256: cert.fingerprint256,
      subjectAltName: cert.subjectaltname,
    });
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
  });
  await new Promise<void>((resolve, reject) => {
    https.once("error", reject);
    https.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = https.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/`,
    peers,
    async [Symbol.asyncDispose]() {
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    },
  };
}

/**
 * Fetch `url` with a client built from `options`; the client is always closed.
 *
 * @param url the URL
 * @param options `Deno.createHttpClient` options, e.g. from {@linkcode clientTls}
 */
export async function fetchWith(
  url: string,
  options: Parameters<typeof Deno.createHttpClient>[0],
): Promise<{ status: number; body: string }> {
  const client = Deno.createHttpClient(options);
  try {
    const res = await fetch(url, { client });
    return { status: res.status, body: await res.text() };
  } finally {
    client.close();
  }
}

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof Deno.errors.NotFound)) throw err;
}
