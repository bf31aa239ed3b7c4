/**
 * The pinned-certificate transport against a real `node:https` server whose
 * certificate is self-signed and flagged as a CA, like LND's `tls.cert`
 * (which Deno's `fetch` refuses as a server certificate).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { HttpClient } from "../../src/net/http_client.ts";
import { PIN_MISMATCH_CODE, pinnedTlsTransport } from "../../src/net/pinned_tls_transport.ts";
import type { UpstreamOptions } from "../../src/net/types.ts";
import { UnavailableError } from "../../src/errors/app_error.ts";
import { createCa, issueCertificate, loadCa } from "../../src/pki/mod.ts";
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { createLndTlsCertificate, type LndTlsCertificate } from "../_peers/lnd_peer.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TlsServer extends AsyncDisposable {
  url: string;
  /** Requests that reached the handler. */
  requests: number;
  /** TLS connections that completed a handshake. */
  connections: number;
  /** Connections whose socket has closed. */
  closedConnections: number;
}

async function startTlsServer(pair: { certPem: string; keyPem: string }, handler: Handler) {
  const state = { requests: 0, connections: 0, closedConnections: 0 };
  const server: Server = createServer({ cert: pair.certPem, key: pair.keyPem }, (req, res) => {
    state.requests++;
    handler(req, res);
  });
  server.on("secureConnection", (socket) => {
    state.connections++;
    socket.once("close", () => state.closedConnections++);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const result: TlsServer = {
    url: `https://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    get connections() {
      return state.connections;
    },
    get closedConnections() {
      return state.closedConnections;
    },
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return result;
}

const echo: Handler = (req, res) => {
  const chunks: Uint8Array[] = [];
  req.on("data", (c: Uint8Array) => chunks.push(c));
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "x-test": "yes" });
    res.end(JSON.stringify({
      method: req.method,
      url: req.url,
      body: new TextDecoder().decode(concat(chunks)),
      macaroon: req.headers["grpc-metadata-macaroon"] ?? null,
    }));
  });
};

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function colonUpper(fingerprint: string): string {
  return fingerprint.toUpperCase().match(/../g)!.join(":");
}

let certs: Promise<[LndTlsCertificate, LndTlsCertificate]> | undefined;
/** Two LND-like certificates, made once per test process. */
function twoCertificates() {
  certs ??= Promise.all([createLndTlsCertificate(), createLndTlsCertificate()]);
  return certs;
}

async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error, `expected an Error, got ${err}`);
    return err;
  }
  assert.fail("expected a rejection");
}

Deno.test("pinnedTlsTransport() with the pinned certificate talks to a CA-flagged self-signed server", async () => {
  const [lnd] = await twoCertificates();
  await using server = await startTlsServer(lnd, echo);
  const transport = pinnedTlsTransport({ certPem: lnd.certPem });
  try {
    const res = await transport(
      new Request(`${server.url}/v1/invoices?x=1`, {
        method: "POST",
        headers: { "grpc-metadata-macaroon": "0201", "content-type": "application/json" },
        body: '{"memo":"hi"}',
      }),
      { signal: new AbortController().signal },
    );
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-test"), "yes");
    assert.deepEqual(await res.json(), {
      method: "POST",
      url: "/v1/invoices?x=1",
      body: '{"memo":"hi"}',
      macaroon: "0201",
    });
    // Keep-alive: the next request reuses the verified connection.
    const again = await transport(new Request(`${server.url}/v1/getinfo`), {
      signal: new AbortController().signal,
    });
    assert.equal((await again.json() as { url: string }).url, "/v1/getinfo");
    assert.equal(server.connections, 1);
    assert.equal(server.requests, 2);
  } finally {
    transport.close();
  }
});

Deno.test("pinnedTlsTransport() with the SHA-256 fingerprint, in either spelling, talks to the server", async () => {
  const [lnd] = await twoCertificates();
  await using server = await startTlsServer(lnd, echo);
  for (const pin of [lnd.fingerprint, colonUpper(lnd.fingerprint)]) {
    const transport = pinnedTlsTransport({ sha256Fingerprint: pin });
    try {
      const res = await transport(new Request(`${server.url}/v1/getinfo`), {
        signal: new AbortController().signal,
      });
      assert.equal(res.status, 200, pin);
      await res.body?.cancel();
    } finally {
      transport.close();
    }
  }
  assert.equal(server.requests, 2);
});

Deno.test("pinnedTlsTransport() refuses a server with another certificate before sending a request", async (t) => {
  const [lnd, other] = await twoCertificates();
  await using server = await startTlsServer(other, echo);
  const pins = [
    // The chain check fails first: the other certificate is not the trusted one.
    ["pinned certificate", { certPem: lnd.certPem }, "DEPTH_ZERO_SELF_SIGNED_CERT"],
    ["pinned fingerprint", { sha256Fingerprint: lnd.fingerprint }, PIN_MISMATCH_CODE],
  ] as const;
  for (const [name, pin, code] of pins) {
    await t.step(name, async () => {
      const transport = pinnedTlsTransport(pin);
      try {
        const err = await rejectionOf(
          transport(new Request(`${server.url}/v1/getinfo`), {
            signal: new AbortController().signal,
          }),
        );
        assert.equal(err.code, code);
      } finally {
        transport.close();
      }
    });
  }
  assert.equal(server.requests, 0, "no request reached the server");
});

Deno.test("pinnedTlsTransport() with a pinned certificate needs no host name match", async () => {
  // LND lists localhost and its own IPs; the edge may reach it under another name.
  const lnd = await createLndTlsCertificate({ dnsNames: ["lnd.internal"], ipAddresses: [] });
  await using server = await startTlsServer(lnd, echo);
  const transport = pinnedTlsTransport({ certPem: lnd.certPem });
  try {
    const res = await transport(new Request(`${server.url}/v1/getinfo`), {
      signal: new AbortController().signal,
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  } finally {
    transport.close();
  }
});

Deno.test("pinnedTlsTransport() refuses a leaf issued by the pinned CA-flagged certificate", async () => {
  const [lnd] = await twoCertificates();
  // The pinned certificate can sign others; only the certificate itself is trusted.
  const leaf = await issueCertificate(await loadCa(lnd), {
    commonName: "impostor",
    usage: "server",
    ipAddresses: ["127.0.0.1"],
  });
  await using server = await startTlsServer(leaf, echo);
  const transport = pinnedTlsTransport({ certPem: lnd.certPem });
  try {
    const err = await rejectionOf(
      transport(new Request(`${server.url}/v1/getinfo`), { signal: new AbortController().signal }),
    );
    assert.equal(err.code, PIN_MISMATCH_CODE);
  } finally {
    transport.close();
  }
  assert.equal(server.requests, 0);
});

Deno.test("pinnedTlsTransport() refusals reach HttpClient callers as UnavailableError (not sent)", async () => {
  const [lnd, other] = await twoCertificates();
  await using server = await startTlsServer(other, echo);
  using client = new HttpClient(upstream(server.url), {
    transport: pinnedTlsTransport({ sha256Fingerprint: lnd.fingerprint }),
  });
  await assert.rejects(
    client.request({ method: "POST", path: "/v2/router/send", route: "/v2/router/send", json: {} }),
    UnavailableError,
  );
  assert.equal(server.requests, 0);
});

Deno.test("pinnedTlsTransport() pool is closed by HttpClient.close()", async () => {
  const [lnd] = await twoCertificates();
  await using server = await startTlsServer(lnd, echo);
  const client = new HttpClient(upstream(server.url), {
    transport: pinnedTlsTransport({ certPem: lnd.certPem }),
  });
  const res = await client.request({ method: "GET", path: "/v1/getinfo", route: "/v1/getinfo" });
  assert.equal(res.status, 200);
  assert.equal(server.closedConnections, 0, "kept alive for the next call");
  client.close();
  await waitFor(() => server.closedConnections === 1);
});

Deno.test("pinnedTlsTransport() streams the body as the server writes it", async () => {
  const [lnd] = await twoCertificates();
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  await using server = await startTlsServer(lnd, (_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"result":1}\n');
    released.then(() => res.end('{"result":2}\n'));
  });
  const transport = pinnedTlsTransport({ certPem: lnd.certPem });
  try {
    const res = await transport(new Request(`${server.url}/v1/invoices/subscribe`), {
      signal: new AbortController().signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    // The first record arrived while the server still holds the rest.
    assert.equal(new TextDecoder().decode(first.value), '{"result":1}\n');
    release();
    let rest = "";
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      rest += new TextDecoder().decode(next.value);
    }
    assert.equal(rest, '{"result":2}\n');
  } finally {
    transport.close();
  }
});

Deno.test("pinnedTlsTransport() aborts on the signal, before the head and while the body streams", async (t) => {
  const [lnd] = await twoCertificates();
  let headOnly = false;
  await using server = await startTlsServer(lnd, (_req, res) => {
    if (headOnly) {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"result":1}\n');
    }
    // Otherwise never answer; the server's dispose closes the socket.
  });
  const transport = pinnedTlsTransport({ certPem: lnd.certPem });
  try {
    await t.step("before the head: the promise rejects with the signal's reason", async () => {
      const controller = new AbortController();
      const pending = transport(new Request(`${server.url}/hang`), { signal: controller.signal });
      await waitFor(() => server.requests === 1);
      const reason = new Error("stop");
      controller.abort(reason);
      assert.equal(await rejectionOf(pending), reason);
      await waitFor(() => server.closedConnections === 1);
    });
    await t.step("mid-body: the body errors and the connection closes", async () => {
      headOnly = true;
      const controller = new AbortController();
      const res = await transport(new Request(`${server.url}/stream`), {
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      assert.equal(new TextDecoder().decode((await reader.read()).value), '{"result":1}\n');
      const reason = new Error("enough");
      controller.abort(reason);
      assert.equal(await rejectionOf(reader.read()), reason);
      await waitFor(() => server.closedConnections === 2);
    });
  } finally {
    transport.close();
  }
});

Deno.test("pinnedTlsTransport() rejects wrong options", () => {
  const cases: [string, unknown][] = [
    ["nothing", {}],
    ["both", { certPem: "x", sha256Fingerprint: "00".repeat(32) }],
    ["no PEM", { certPem: "not a certificate" }],
    ["two PEM blocks", {
      certPem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".repeat(2),
    }],
    ["short fingerprint", { sha256Fingerprint: "ab".repeat(31) }],
    ["non-hex fingerprint", { sha256Fingerprint: "zz".repeat(32) }],
    ["fingerprint not a string", { sha256Fingerprint: 42 }],
  ];
  for (const [name, opts] of cases) {
    assert.throws(() => pinnedTlsTransport(opts as never), TypeError, name);
  }
  assert.throws(
    () => pinnedTlsTransport({ sha256Fingerprint: "ab".repeat(32), connectTimeoutMs: 0 }),
    RangeError,
  );
});

function upstream(baseUrl: string): UpstreamOptions {
  return {
    name: "lnd",
    baseUrl,
    timeoutMs: 5_000,
    maxResponseBytes: 64 * 1024,
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    breaker: {
      consecutiveFailures: 100,
      failureRate: 1,
      windowMs: 10_000,
      minRequests: 1_000,
      openMs: 60_000,
    },
  };
}

/** Polls a condition a test cannot await directly (a socket closing on the server). */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(condition(), "condition not reached");
}

Deno.test("pinnedTlsTransport() with a fingerprint pins a CA-issued leaf when the node sends its chain", async () => {
  // Core Lightning's clnrest: a server certificate issued by the node's own CA, sent with it.
  const ca = await createCa({ commonName: "cln root CA" });
  const leaf = await issueCertificate(ca, {
    commonName: "cln",
    usage: "server",
    ipAddresses: ["127.0.0.1"],
  });
  const fingerprint = hex.encode(
    sha256(
      Uint8Array.from(
        atob(leaf.certPem.replace(/-----[^-]+-----|\s/g, "")),
        (c) => c.charCodeAt(0),
      ),
    ),
  );
  await using server = await startTlsServer(
    { certPem: `${leaf.certPem}\n${ca.certPem}`, keyPem: leaf.keyPem },
    echo,
  );
  const transport = pinnedTlsTransport({ sha256Fingerprint: fingerprint });
  try {
    for (let i = 0; i < 2; i++) {
      const res = await transport(new Request(`${server.url}/v1/getinfo`), {
        signal: new AbortController().signal,
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
  } finally {
    transport.close();
  }
  assert.equal(server.requests, 2);
  // Another leaf of the same CA does not match the pin: refused before any request.
  const sibling = await issueCertificate(ca, {
    commonName: "cln",
    usage: "server",
    ipAddresses: ["127.0.0.1"],
  });
  await using other = await startTlsServer(
    { certPem: `${sibling.certPem}\n${ca.certPem}`, keyPem: sibling.keyPem },
    echo,
  );
  const again = pinnedTlsTransport({ sha256Fingerprint: fingerprint });
  try {
    const err = await rejectionOf(
      again(new Request(`${other.url}/v1/getinfo`), { signal: new AbortController().signal }),
    );
    assert.equal(err.code, PIN_MISMATCH_CODE);
  } finally {
    again.close();
  }
  assert.equal(other.requests, 0);
});
