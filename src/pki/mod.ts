/**
 * The private PKI of the mTLS link between the edge and the HSM: a CA, server
 * certificates for the HSM and client certificates for the edge.
 *
 * Profile (RFC 5280; ECDSA P-256 with SHA-256 per RFC 5758 §3.2):
 * - CA: BasicConstraints `CA:TRUE, pathlen:0` (critical), KeyUsage
 *   `keyCertSign, cRLSign` (critical), SubjectKeyIdentifier.
 * - Leaf: BasicConstraints `CA:FALSE` (critical), KeyUsage `digitalSignature`
 *   (critical; the only use of an ECDHE-signing key in TLS 1.3), one
 *   ExtendedKeyUsage (`serverAuth` or `clientAuth`), SubjectAltName,
 *   SubjectKeyIdentifier and AuthorityKeyIdentifier.
 * - Serial numbers: 16 random bytes, positive (RFC 5280 §4.1.2.2 allows at most
 *   20 octets; CA/B Forum asks for 64 bits of entropy).
 *
 * Keys are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the form both
 * `node:https` and `Deno.createHttpClient` accept.
 *
 * @example
 * ```ts
 * const ca = await createCa({ commonName: "anya dev CA" });
 * const server = await issueCertificate(ca, {
 *   commonName: "hsm",
 *   usage: "server",
 *   dnsNames: ["localhost"],
 *   ipAddresses: ["127.0.0.1"],
 * });
 * ```
 *
 * @module
 */
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  type JsonGeneralName,
  KeyUsageFlags,
  KeyUsagesExtension,
  PemConverter,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from "@peculiar/x509";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  assertCommonName,
  assertOptionalDate,
  assertString,
  assertValidityWindow,
  checkDnsNames,
  checkIpAddresses,
  isDnsName,
} from "./_validate.ts";

/** A certificate and its private key, both PEM. */
export interface PemPair {
  /** One X.509 certificate, PEM (`-----BEGIN CERTIFICATE-----`). */
  certPem: string;
  /** Its private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  keyPem: string;
}

/** A CA ready to issue certificates: its PEM pair plus the imported signing key. */
export interface CertificateAuthority extends PemPair {
  /** The CA's private key, imported non-extractable, for signing certificates. */
  readonly signingKey: CryptoKey;
}

/** Options of {@linkcode createCa}. */
export interface CreateCaOptions {
  /** Subject and issuer CN. */
  commonName: string;
  /** Start of validity; default now − 5 minutes. */
  notBefore?: Date;
  /** End of validity; default `notBefore` + 10 years. */
  notAfter?: Date;
}

/** What a leaf certificate is for: its ExtendedKeyUsage. */
export type CertificateUsage = "server" | "client";

/** Options of {@linkcode issueCertificate}. */
export interface IssueCertificateOptions {
  /** Subject CN; for client certificates also added as a DNS SAN, so it must be a DNS name. */
  commonName: string;
  /** `server` (EKU serverAuth) or `client` (EKU clientAuth). */
  usage: CertificateUsage;
  /** dNSName SANs. A server certificate needs at least one DNS or IP SAN. */
  dnsNames?: string[];
  /** iPAddress SANs (IPv4 or IPv6). */
  ipAddresses?: string[];
  /** Start of validity; default now − 5 minutes. */
  notBefore?: Date;
  /** End of validity; default `notBefore` + 825 days. */
  notAfter?: Date;
}

/** What {@linkcode certificateInfo} reads from a certificate. */
export interface CertificateInfo {
  /** Subject CN, or null when the subject has none. */
  subjectCommonName: string | null;
  /** dNSName SANs, in certificate order. */
  dnsNames: string[];
  /** iPAddress SANs, in certificate order (IPv6 in compressed form). */
  ipAddresses: string[];
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** Issuer CN, or null when the issuer has none. */
  issuerCommonName: string | null;
  /**
   * SHA-256 of the DER certificate as colon-separated upper-case hex, the
   * format of `node:tls`'s `getPeerCertificate().fingerprint256`.
   */
  fingerprintSha256: string;
}

/** Tolerated clock difference between issuer and verifier: the default notBefore is this far back. */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** Default CA lifetime in years. */
export const CA_VALIDITY_YEARS = 10;
/** Default leaf lifetime: 825 days, the longest that Apple's TLS policy accepts. */
export const LEAF_VALIDITY_DAYS = 825;

const EC_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const CERTIFICATE_PEM_TAG = "CERTIFICATE";
const PRIVATE_KEY_PEM_TAG = "PRIVATE KEY";
const DAY_MS = 86_400_000;

/**
 * Create a self-signed CA with a fresh ECDSA P-256 key.
 *
 * @param opts common name and optional validity window
 * @returns the CA, ready for {@linkcode issueCertificate}
 * @throws TypeError/RangeError on a bad common name or validity window
 */
export async function createCa(opts: CreateCaOptions): Promise<CertificateAuthority> {
  assertCommonName(opts?.commonName, "commonName");
  const { notBefore, notAfter } = validity(opts, (from) => {
    const to = new Date(from);
    to.setUTCFullYear(to.getUTCFullYear() + CA_VALIDITY_YEARS);
    return to;
  });
  const keys = await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
  const ski = await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto);
  const name = [{ CN: [opts.commonName] }];
  const cert = await X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: name,
    issuer: name,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      // pathlen:0: this CA issues leaves only, never intermediates.
      new BasicConstraintsExtension(true, 0, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      ski,
      new AuthorityKeyIdentifierExtension(ski.keyId),
    ],
  }, crypto);
  return await loadCa({
    certPem: cert.toString("pem"),
    keyPem: await exportPkcs8Pem(keys.privateKey),
  });
}

/**
 * Load a stored CA to issue more certificates. Checks that the certificate is
 * a CA (BasicConstraints CA:TRUE, KeyUsage keyCertSign) with an ECDSA P-256
 * key, and that the private key belongs to it.
 *
 * @param pair the CA certificate and its PKCS#8 key
 * @returns the CA
 * @throws TypeError on wrong argument types; SyntaxError on unparsable PEM;
 *   RangeError when the certificate is no P-256 CA or the key does not match it
 */
export async function loadCa(pair: PemPair): Promise<CertificateAuthority> {
  assertString(pair?.certPem, "certPem");
  assertString(pair.keyPem, "keyPem");
  const cert = parseCertificate(pair.certPem, "certPem");
  const basic = cert.getExtension(BasicConstraintsExtension);
  const usage = cert.getExtension(KeyUsagesExtension);
  if (basic?.ca !== true || usage === null || (usage.usages & KeyUsageFlags.keyCertSign) === 0) {
    throw new RangeError("Cannot load CA: the certificate is not a CA certificate");
  }
  const publicKey = await cert.publicKey.export(
    { ...EC_ALGORITHM },
    ["verify"],
    crypto,
  ).catch((err: unknown) => {
    throw new RangeError("Cannot load CA: the certificate key is not ECDSA P-256", { cause: err });
  });
  const signingKey = await importPkcs8Pem(pair.keyPem, "keyPem");
  // Proof of possession: sign a random challenge and check it with the
  // certificate's key, so a mismatched pair fails here, not at TLS handshakes.
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const signature = await crypto.subtle.sign(SIGNING_ALGORITHM, signingKey, challenge);
  if (!await crypto.subtle.verify(SIGNING_ALGORITHM, publicKey, signature, challenge)) {
    throw new RangeError("Cannot load CA: the private key does not match the certificate");
  }
  return Object.freeze({ certPem: pair.certPem, keyPem: pair.keyPem, signingKey });
}

/**
 * Issue a server or client certificate with a fresh ECDSA P-256 key.
 *
 * @param ca the issuing CA
 * @param opts subject, usage, SANs and optional validity window
 * @returns the certificate and its PKCS#8 key
 * @throws TypeError/RangeError on bad options (a client CN that is no DNS
 *   name, a server certificate without SANs, an empty validity window)
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  opts: IssueCertificateOptions,
): Promise<PemPair> {
  if (typeof ca !== "object" || ca === null || !(ca.signingKey instanceof CryptoKey)) {
    throw new TypeError("Invalid ca: expected a CertificateAuthority from createCa or loadCa");
  }
  assertString(ca.certPem, "ca.certPem");
  assertCommonName(opts?.commonName, "commonName");
  if (opts.usage !== "server" && opts.usage !== "client") {
    throw new TypeError(
      `Invalid usage: expected "server" or "client", got "${String(opts.usage)}"`,
    );
  }
  const dnsNames = checkDnsNames(opts.dnsNames, "dnsNames");
  const ipAddresses = checkIpAddresses(opts.ipAddresses, "ipAddresses");
  if (opts.usage === "client") {
    // The HSM allowlist matches the CN or a SAN; putting the CN in the SAN too
    // keeps both views of the identity the same.
    if (!isDnsName(opts.commonName)) {
      throw new RangeError(
        `Invalid commonName: a client certificate's CN must be a DNS name, got "${opts.commonName}"`,
      );
    }
    dnsNames.unshift(opts.commonName.toLowerCase());
  }
  const sans: JsonGeneralName[] = [
    ...unique(dnsNames).map((value) => ({ type: "dns" as const, value })),
    ...unique(ipAddresses).map((value) => ({ type: "ip" as const, value })),
  ];
  if (sans.length === 0) {
    // TLS clients match the host against SANs only (RFC 6125 §6.4.4).
    throw new RangeError("Invalid server certificate: needs at least one DNS name or IP address");
  }
  const { notBefore, notAfter } = validity(
    opts,
    (from) => new Date(from.getTime() + LEAF_VALIDITY_DAYS * DAY_MS),
  );
  const caCert = parseCertificate(ca.certPem, "ca.certPem");
  const keys = await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
  const extensions: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
    new ExtendedKeyUsageExtension(
      [opts.usage === "server" ? ExtendedKeyUsage.serverAuth : ExtendedKeyUsage.clientAuth],
      false,
    ),
    new SubjectAlternativeNameExtension(sans, false),
    await SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    await authorityKeyIdentifier(caCert),
  ];
  const cert = await X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [opts.commonName] }],
    // The CA's encoded subject, so chain building matches names byte for byte.
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  }, crypto);
  // A CertificateAuthority built by hand could pair a key with the wrong
  // certificate; such a leaf would only fail later, at a TLS handshake.
  if (!await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }, crypto)) {
    throw new RangeError("Invalid ca: its signing key does not match its certificate");
  }
  return { certPem: cert.toString("pem"), keyPem: await exportPkcs8Pem(keys.privateKey) };
}

/**
 * Read the identity and validity of a certificate.
 *
 * @param certPem one certificate, PEM
 * @returns subject/issuer CNs, SANs, validity and SHA-256 fingerprint
 * @throws TypeError when `certPem` is not a string; SyntaxError when it is not exactly one PEM certificate
 */
export function certificateInfo(certPem: string): CertificateInfo {
  assertString(certPem, "certPem");
  const cert = parseCertificate(certPem, "certPem");
  const san = cert.getExtension(SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  return {
    subjectCommonName: cert.subjectName.getField("CN")[0] ?? null,
    dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === "ip").map((n) => n.value),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    issuerCommonName: cert.issuerName.getField("CN")[0] ?? null,
    fingerprintSha256: colonHex(sha256(new Uint8Array(cert.rawData))),
  };
}

function validity(
  opts: { notBefore?: Date; notAfter?: Date },
  defaultEnd: (notBefore: Date) => Date,
): { notBefore: Date; notAfter: Date } {
  assertOptionalDate(opts.notBefore, "notBefore");
  assertOptionalDate(opts.notAfter, "notAfter");
  const notBefore = opts.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = opts.notAfter ?? defaultEnd(notBefore);
  assertValidityWindow(notBefore, notAfter);
  return { notBefore, notAfter };
}

/** The AKI of a leaf: the CA's own SKI when it has one, so it matches whatever method made it. */
async function authorityKeyIdentifier(
  caCert: X509Certificate,
): Promise<AuthorityKeyIdentifierExtension> {
  const ski = caCert.getExtension(SubjectKeyIdentifierExtension);
  if (ski !== null) return new AuthorityKeyIdentifierExtension(ski.keyId);
  return await AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto);
}

function parseCertificate(pem: string, name: string): X509Certificate {
  const blocks = decodePem(pem, name);
  if (blocks.length !== 1 || blocks[0]?.type !== CERTIFICATE_PEM_TAG) {
    throw new SyntaxError(`Invalid ${name}: expected exactly one PEM CERTIFICATE block`);
  }
  try {
    return new X509Certificate(blocks[0].rawData);
  } catch (err) {
    throw new SyntaxError(`Invalid ${name}: not an X.509 certificate`, { cause: err });
  }
}

function decodePem(pem: string, name: string): { type: string; rawData: ArrayBuffer }[] {
  try {
    return PemConverter.decodeWithHeaders(pem);
  } catch (err) {
    throw new SyntaxError(`Invalid ${name}: not PEM`, { cause: err });
  }
}

async function importPkcs8Pem(pem: string, name: string): Promise<CryptoKey> {
  const blocks = decodePem(pem, name);
  const block = blocks[0];
  if (blocks.length !== 1 || block?.type !== PRIVATE_KEY_PEM_TAG) {
    throw new SyntaxError(
      `Invalid ${name}: expected exactly one PKCS#8 "PRIVATE KEY" PEM block, got ${
        blocks.map((b) => `"${b.type}"`).join(", ") || "none"
      }`,
    );
  }
  try {
    return await crypto.subtle.importKey("pkcs8", block.rawData, EC_ALGORITHM, false, ["sign"]);
  } catch (err) {
    // The cause names the parse failure, never the key bytes.
    throw new RangeError(`Invalid ${name}: not an ECDSA P-256 private key`, { cause: err });
  } finally {
    new Uint8Array(block.rawData).fill(0);
  }
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  try {
    return PemConverter.encode(der, PRIVATE_KEY_PEM_TAG);
  } finally {
    new Uint8Array(der).fill(0);
  }
}

/** 16 random bytes with the top bit clear (positive) and a non-zero first byte (minimal DER). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] as number) & 0x7f) || 0x01;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function colonHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
