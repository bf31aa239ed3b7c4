import assert from "node:assert/strict";
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509ChainBuilder,
} from "@peculiar/x509";
import {
  CA_VALIDITY_YEARS,
  certificateInfo,
  CLOCK_SKEW_MS,
  createCa,
  issueCertificate,
  LEAF_VALIDITY_DAYS,
  loadCa,
} from "../../src/pki/mod.ts";
import { makeTestPki, TEST_CLIENT_CN, TEST_INTRUDER_CN } from "../_helpers/pki.ts";

const DAY_MS = 86_400_000;

/** X.509 times have second precision. */
function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function parse(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

function ext<T>(cert: X509Certificate, type: new (raw: BufferSource) => T): T {
  const found = cert.getExtension(type as never) as T | null;
  assert.ok(found !== null, `missing ${type.name}`);
  return found;
}

Deno.test("createCa() makes a self-signed ECDSA P-256 CA: critical CA:TRUE, keyCertSign|cRLSign", async () => {
  const before = floorSecond(Date.now() - CLOCK_SKEW_MS);
  const ca = await createCa({ commonName: "unit CA" });
  const after = Date.now() - CLOCK_SKEW_MS;
  const cert = parse(ca.certPem);

  assert.equal(cert.subject, "CN=unit CA");
  assert.equal(cert.issuer, "CN=unit CA");
  assert.ok(await cert.isSelfSigned(crypto));
  assert.ok(await cert.verify({ signatureOnly: true }, crypto));
  assert.deepEqual(cert.signatureAlgorithm, { name: "ECDSA", hash: { name: "SHA-256" } });
  assert.deepEqual(cert.publicKey.algorithm, { name: "ECDSA", namedCurve: "P-256" });

  const basic = ext(cert, BasicConstraintsExtension);
  assert.equal(basic.ca, true);
  assert.equal(basic.critical, true);
  assert.equal(basic.pathLength, 0);
  const usage = ext(cert, KeyUsagesExtension);
  assert.equal(usage.usages, KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign);
  assert.equal(usage.critical, true);
  const ski = ext(cert, SubjectKeyIdentifierExtension);
  assert.equal(ext(cert, AuthorityKeyIdentifierExtension).keyId, ski.keyId);

  // Default window: from now − 5 min, for 10 calendar years.
  assert.ok(cert.notBefore.getTime() >= before && cert.notBefore.getTime() <= after);
  const end = new Date(cert.notBefore);
  end.setUTCFullYear(end.getUTCFullYear() + CA_VALIDITY_YEARS);
  assert.equal(cert.notAfter.getTime(), end.getTime());

  assert.match(
    ca.keyPem,
    /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n?$/,
  );
  assert.equal(ca.signingKey.extractable, false);
});

Deno.test("issueCertificate() server: CA:FALSE, digitalSignature, serverAuth, DNS/IP SANs, AKI = CA SKI", async () => {
  const ca = await createCa({ commonName: "unit CA" });
  const before = floorSecond(Date.now() - CLOCK_SKEW_MS);
  const pair = await issueCertificate(ca, {
    commonName: "hsm",
    usage: "server",
    dnsNames: ["LocalHost", "hsm.internal", "localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
  });
  const cert = parse(pair.certPem);
  const caCert = parse(ca.certPem);

  assert.equal(cert.subject, "CN=hsm");
  assert.equal(cert.issuer, caCert.subject);
  const basic = ext(cert, BasicConstraintsExtension);
  assert.equal(basic.ca, false);
  assert.equal(basic.critical, true);
  const usage = ext(cert, KeyUsagesExtension);
  assert.equal(usage.usages, KeyUsageFlags.digitalSignature);
  assert.equal(usage.critical, true);
  assert.deepEqual([...ext(cert, ExtendedKeyUsageExtension).usages], [ExtendedKeyUsage.serverAuth]);
  assert.deepEqual(
    ext(cert, SubjectAlternativeNameExtension).names.toJSON(),
    [
      { type: "dns", value: "localhost" },
      { type: "dns", value: "hsm.internal" },
      { type: "ip", value: "127.0.0.1" },
      { type: "ip", value: "::1" },
    ],
  );
  assert.equal(
    ext(cert, AuthorityKeyIdentifierExtension).keyId,
    ext(caCert, SubjectKeyIdentifierExtension).keyId,
  );
  assert.notEqual(
    ext(cert, SubjectKeyIdentifierExtension).keyId,
    ext(caCert, SubjectKeyIdentifierExtension).keyId,
  );
  assert.deepEqual(cert.publicKey.algorithm, { name: "ECDSA", namedCurve: "P-256" });
  assert.ok(cert.notBefore.getTime() >= before);
  assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), LEAF_VALIDITY_DAYS * DAY_MS);
  assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
});

Deno.test("issueCertificate() client: clientAuth only, and the CN is also a DNS SAN", async () => {
  await using pki = await makeTestPki();
  const cert = parse(pki.client.certPem);
  assert.equal(cert.subject, `CN=${TEST_CLIENT_CN}`);
  assert.deepEqual([...ext(cert, ExtendedKeyUsageExtension).usages], [ExtendedKeyUsage.clientAuth]);
  assert.deepEqual(ext(cert, SubjectAlternativeNameExtension).names.toJSON(), [
    { type: "dns", value: TEST_CLIENT_CN },
  ]);
  assert.equal(ext(cert, BasicConstraintsExtension).ca, false);

  const extra = await issueCertificate(pki.ca, {
    commonName: "edge-2",
    usage: "client",
    dnsNames: ["edge-2", "edge.example"],
    ipAddresses: ["10.0.0.7"],
  });
  const info = certificateInfo(extra.certPem);
  assert.deepEqual(info.dnsNames, ["edge-2", "edge.example"], "CN first, no duplicate");
  assert.deepEqual(info.ipAddresses, ["10.0.0.7"]);
});

Deno.test("issued certificates chain to their CA and to no other", async () => {
  await using pki = await makeTestPki();
  const caCert = parse(pki.ca.certPem);
  const otherCaCert = parse(pki.otherCa.certPem);
  for (
    const [name, entry, issuer] of [
      ["server", pki.server, caCert],
      ["client", pki.client, caCert],
      ["intruder", pki.intruderClient, caCert],
      ["expired", pki.expiredClient, caCert],
      ["not yet valid", pki.notYetValidClient, caCert],
      ["wrong CA", pki.wrongCaClient, otherCaCert],
    ] as const
  ) {
    const leaf = parse(entry.certPem);
    const other = issuer === caCert ? otherCaCert : caCert;
    const chain = await new X509ChainBuilder({ certificates: [other, issuer] }).build(leaf, crypto);
    assert.deepEqual([...chain].map((c) => c.subject), [leaf.subject, issuer.subject], name);
    assert.ok(
      await leaf.verify({ publicKey: issuer.publicKey, signatureOnly: true }, crypto),
      name,
    );
    assert.equal(
      await leaf.verify({ publicKey: other.publicKey, signatureOnly: true }, crypto),
      false,
      name,
    );
    const alone = await new X509ChainBuilder({ certificates: [other] }).build(leaf, crypto);
    assert.equal(alone.length, 1, `${name}: no chain through the other CA`);
  }
});

Deno.test("test PKI validity: expired and not-yet-valid clients fail a dated check, the good one passes", async () => {
  await using pki = await makeTestPki();
  const publicKey = parse(pki.ca.certPem).publicKey;
  const now = new Date();
  const validNow = (pem: string) => parse(pem).verify({ publicKey, date: now }, crypto);
  assert.equal(await validNow(pki.client.certPem), true);
  assert.equal(await validNow(pki.expiredClient.certPem), false);
  assert.equal(await validNow(pki.notYetValidClient.certPem), false);
  assert.ok(certificateInfo(pki.expiredClient.certPem).notAfter < now);
  assert.ok(certificateInfo(pki.notYetValidClient.certPem).notBefore > now);
  assert.equal(certificateInfo(pki.intruderClient.certPem).subjectCommonName, TEST_INTRUDER_CN);
});

Deno.test("serial numbers are 16 random bytes, positive, minimally encoded", async () => {
  await using pki = await makeTestPki();
  const serials = [
    pki.ca,
    pki.otherCa,
    pki.server,
    pki.client,
    pki.wrongCaClient,
    pki.expiredClient,
  ]
    .map((e) => parse(e.certPem).serialNumber);
  for (let i = 0; i < 8; i++) {
    serials.push(
      parse((await issueCertificate(pki.ca, { commonName: "s", usage: "client" })).certPem)
        .serialNumber,
    );
  }
  for (const serial of serials) {
    assert.match(serial, /^[0-7][0-9a-f]{31}$/i, serial);
    assert.notEqual(serial.slice(0, 2), "00", serial);
  }
  assert.equal(new Set(serials).size, serials.length);
});

Deno.test("issueCertificate() keeps an explicit validity window", async () => {
  await using pki = await makeTestPki();
  const notBefore = new Date("2030-01-02T03:04:05Z");
  const notAfter = new Date("2031-06-07T08:09:10Z");
  const info = certificateInfo(
    (await issueCertificate(pki.ca, { commonName: "w", usage: "client", notBefore, notAfter }))
      .certPem,
  );
  assert.deepEqual([info.notBefore, info.notAfter], [notBefore, notAfter]);
  // A given notBefore moves the default end with it.
  const shifted = certificateInfo(
    (await issueCertificate(pki.ca, { commonName: "w", usage: "client", notBefore })).certPem,
  );
  assert.equal(shifted.notAfter.getTime(), notBefore.getTime() + LEAF_VALIDITY_DAYS * DAY_MS);
});

Deno.test("loadCa() issues from a stored pair; the leaves chain to the stored CA", async () => {
  await using pki = await makeTestPki();
  const stored = { certPem: pki.ca.certPem, keyPem: pki.ca.keyPem };
  const ca = await loadCa(stored);
  assert.equal(ca.certPem, stored.certPem);
  assert.equal(ca.keyPem, stored.keyPem);
  assert.equal(ca.signingKey.extractable, false);
  assert.ok(Object.isFrozen(ca));
  const leaf = parse((await issueCertificate(ca, { commonName: "edge", usage: "client" })).certPem);
  assert.ok(await leaf.verify({ publicKey: parse(pki.ca.certPem).publicKey }, crypto));
});

Deno.test("loadCa() refuses a leaf, a mismatched key, a non-PKCS#8 label and non-PEM input", async () => {
  await using pki = await makeTestPki();
  await assert.rejects(
    loadCa({ certPem: pki.server.certPem, keyPem: pki.server.keyPem }),
    { name: "RangeError", message: "Cannot load CA: the certificate is not a CA certificate" },
  );
  await assert.rejects(
    loadCa({ certPem: pki.ca.certPem, keyPem: pki.otherCa.keyPem }),
    {
      name: "RangeError",
      message: "Cannot load CA: the private key does not match the certificate",
    },
  );
  const sec1Label = pki.ca.keyPem.replaceAll("PRIVATE KEY", "EC PRIVATE KEY");
  await assert.rejects(loadCa({ certPem: pki.ca.certPem, keyPem: sec1Label }), SyntaxError);
  await assert.rejects(loadCa({ certPem: pki.ca.certPem, keyPem: pki.ca.certPem }), SyntaxError);
  await assert.rejects(loadCa({ certPem: "not pem", keyPem: pki.ca.keyPem }), SyntaxError);
  await assert.rejects(
    loadCa({ certPem: pki.ca.certPem + pki.otherCa.certPem, keyPem: pki.ca.keyPem }),
    SyntaxError,
  );
  const garbledKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  const err = await loadCa({ certPem: pki.ca.certPem, keyPem: garbledKey }).catch((e) => e);
  assert.ok(err instanceof RangeError);
  assert.equal(err.message, "Invalid keyPem: not an ECDSA P-256 private key");
});

Deno.test("issueCertificate() refuses a CA whose key does not match its certificate", async () => {
  await using pki = await makeTestPki();
  const forged = { ...pki.ca, signingKey: pki.otherCa.signingKey };
  await assert.rejects(
    issueCertificate(forged, { commonName: "edge", usage: "client" }),
    { name: "RangeError", message: "Invalid ca: its signing key does not match its certificate" },
  );
});

Deno.test("issueCertificate() refuses bad names, SANs and windows", async () => {
  await using pki = await makeTestPki();
  const cases: [string, Parameters<typeof issueCertificate>[1], RegExp][] = [
    ["server without SANs", { commonName: "hsm", usage: "server" }, /at least one DNS name/],
    [
      "client CN that is no DNS name",
      { commonName: "edge client", usage: "client" },
      /must be a DNS name/,
    ],
    [
      "bad DNS SAN",
      { commonName: "hsm", usage: "server", dnsNames: ["bad_name"] },
      /dnsNames\[0\]/,
    ],
    [
      "DNS SAN with a trailing dot",
      { commonName: "hsm", usage: "server", dnsNames: ["a.b."] },
      /dnsNames\[0\]/,
    ],
    [
      "bad IP SAN",
      { commonName: "hsm", usage: "server", ipAddresses: ["256.0.0.1"] },
      /ipAddresses\[0\]/,
    ],
    [
      "IPv6 zone id",
      { commonName: "hsm", usage: "server", ipAddresses: ["fe80::1%eth0"] },
      /ipAddresses\[0\]/,
    ],
    [
      "IPv4 in IPv6",
      { commonName: "hsm", usage: "server", ipAddresses: ["::ffff:1.2.3.4"] },
      /ipAddresses\[0\]/,
    ],
    ["empty CN", { commonName: "", usage: "client" }, /commonName: expected 1 to 64/],
    [
      "CN over 64 characters",
      { commonName: "a".repeat(65), usage: "client" },
      /commonName: expected 1 to 64/,
    ],
    ["CN with a newline", { commonName: "edge\nCN=admin", usage: "client" }, /control characters/],
    ["CN with surrounding spaces", { commonName: " edge", usage: "client" }, /surrounding spaces/],
    ["empty window", {
      commonName: "edge",
      usage: "client",
      notBefore: new Date("2030-01-01T00:00:00Z"),
      notAfter: new Date("2030-01-01T00:00:00Z"),
    }, /notBefore .* is not before notAfter/],
    [
      "invalid date",
      { commonName: "edge", usage: "client", notAfter: new Date(Number.NaN) },
      /notAfter: invalid date/,
    ],
  ];
  for (const [name, opts, message] of cases) {
    await assert.rejects(issueCertificate(pki.ca, opts), (err: unknown) => {
      assert.ok(err instanceof RangeError, name);
      assert.match(err.message, message, name);
      return true;
    });
  }
  await assert.rejects(
    createCa({ commonName: "x", notBefore: new Date(2031, 0), notAfter: new Date(2030, 0) }),
    RangeError,
  );
});

Deno.test("src/pki functions throw TypeError on wrong argument types", async () => {
  await using pki = await makeTestPki();
  const wrong: [string, () => Promise<unknown>][] = [
    ["createCa(undefined)", () => createCa(undefined as never)],
    ["createCa commonName 1", () => createCa({ commonName: 1 as never })],
    ["createCa notBefore string", () => createCa({ commonName: "x", notBefore: "2030" as never })],
    ["loadCa(null)", () => loadCa(null as never)],
    ["loadCa certPem 1", () => loadCa({ certPem: 1 as never, keyPem: "" })],
    ["loadCa keyPem undefined", () => loadCa({ certPem: pki.ca.certPem } as never)],
    [
      "issueCertificate ca null",
      () => issueCertificate(null as never, { commonName: "a", usage: "client" }),
    ],
    [
      "issueCertificate ca without key",
      () =>
        issueCertificate({ certPem: pki.ca.certPem, keyPem: pki.ca.keyPem } as never, {
          commonName: "a",
          usage: "client",
        }),
    ],
    [
      "issueCertificate usage",
      () => issueCertificate(pki.ca, { commonName: "a", usage: "both" as never }),
    ],
    [
      "issueCertificate dnsNames string",
      () => issueCertificate(pki.ca, { commonName: "a", usage: "server", dnsNames: "a" as never }),
    ],
    [
      "issueCertificate dnsNames[0] number",
      () => issueCertificate(pki.ca, { commonName: "a", usage: "server", dnsNames: [1] as never }),
    ],
    [
      "issueCertificate ipAddresses[0] null",
      () =>
        issueCertificate(pki.ca, {
          commonName: "a",
          usage: "server",
          ipAddresses: [null] as never,
        }),
    ],
    [
      "issueCertificate notAfter number",
      () => issueCertificate(pki.ca, { commonName: "a", usage: "client", notAfter: 5 as never }),
    ],
  ];
  for (const [name, call] of wrong) await assert.rejects(call(), TypeError, name);
  assert.throws(() => certificateInfo(undefined as never), TypeError);
  assert.throws(
    () => certificateInfo("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
    SyntaxError,
  );
  assert.throws(() => certificateInfo(pki.ca.keyPem), SyntaxError);
});

Deno.test("certificateInfo() reads names, validity, issuer and the SHA-256 fingerprint", async () => {
  await using pki = await makeTestPki();
  const info = certificateInfo(pki.server.certPem);
  const node = new NodeX509Certificate(pki.server.certPem);
  assert.deepEqual(info, {
    subjectCommonName: "hsm",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
    notBefore: new Date(node.validFrom),
    notAfter: new Date(node.validTo),
    issuerCommonName: "anya test CA",
    fingerprintSha256: node.fingerprint256,
  });
  const ca = certificateInfo(pki.ca.certPem);
  assert.equal(ca.subjectCommonName, "anya test CA");
  assert.deepEqual([ca.dnsNames, ca.ipAddresses], [[], []]);
});

Deno.test("makeTestPki() writes every pair (keys 0600), memoizes the PEMs and cleans up", async () => {
  let dir: string;
  let first;
  {
    await using pki = await makeTestPki();
    dir = pki.dir;
    first = pki.client.certPem;
    for (
      const entry of [
        pki.ca,
        pki.otherCa,
        pki.server,
        pki.client,
        pki.wrongCaClient,
        pki.expiredClient,
        pki.notYetValidClient,
        pki.intruderClient,
      ]
    ) {
      assert.equal(await Deno.readTextFile(entry.certFile), entry.certPem);
      assert.equal(await Deno.readTextFile(entry.keyFile), entry.keyPem);
      assert.equal((await Deno.stat(entry.keyFile)).mode! & 0o777, 0o600, entry.keyFile);
    }
  }
  await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);

  const own = await Deno.makeTempDir({ prefix: "anya_pki_own_" });
  try {
    {
      await using pki = await makeTestPki(own);
      assert.equal(pki.client.certPem, first, "memoized");
      assert.equal(pki.dir, own);
      await Deno.writeTextFile(`${own}/keep.txt`, "mine");
    }
    const left = [...Deno.readDirSync(own)].map((e) => e.name);
    assert.deepEqual(left, ["keep.txt"]);
  } finally {
    await Deno.remove(own, { recursive: true });
  }
});
