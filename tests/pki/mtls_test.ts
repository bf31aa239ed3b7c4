/**
 * Real mutual TLS with the certificates `src/pki` makes: a `node:https` server
 * that requires client certificates (the HSM's transport; `Deno.serve` cannot
 * ask for one) and `Deno.createHttpClient` clients (the edge's transport).
 */
import assert from "node:assert/strict";
import { certificateInfo } from "../../src/pki/mod.ts";
import {
  clientTls,
  fetchWith,
  makeTestPki,
  startMtlsServer,
  TEST_CLIENT_CN,
  TEST_INTRUDER_CN,
} from "../_helpers/pki.ts";

Deno.test("mTLS: the good client gets 200 over TLS 1.3 and the server sees CN edge", async () => {
  await using pki = await makeTestPki();
  await using server = await startMtlsServer(pki.server, pki.ca.certPem);

  const res = await fetchWith(server.url, clientTls(pki, pki.client));

  assert.deepEqual(res, { status: 200, body: "ok" });
  assert.equal(server.peers.length, 1);
  assert.deepEqual(server.peers[0], {
    cn: TEST_CLIENT_CN,
    authorized: true,
    protocol: "TLSv1.3",
    fingerprint256: certificateInfo(pki.client.certPem).fingerprintSha256,
    subjectAltName: `DNS:${TEST_CLIENT_CN}`,
  });
});

Deno.test("mTLS: the server refuses bad client certificates before the handler runs", async (t) => {
  await using pki = await makeTestPki();
  await using server = await startMtlsServer(pki.server, pki.ca.certPem);
  const cases = [
    ["signed by another CA", clientTls(pki, pki.wrongCaClient)],
    ["expired", clientTls(pki, pki.expiredClient)],
    ["not yet valid", clientTls(pki, pki.notYetValidClient)],
    ["no client certificate", clientTls(pki)],
  ] as const;
  // Each bad client differs from the good one in one property only (issuer or
  // dates), and the good one passes on the same server afterwards: the refusal
  // is for that property. (Neither side reports the TLS alert reason.)
  for (const [name, options] of cases) {
    await t.step(name, async () => {
      await assert.rejects(fetchWith(server.url, options), TypeError);
    });
  }
  assert.equal(server.peers.length, 0, "the handler never ran");

  // The same server still serves the good client: the refusals were per connection.
  assert.equal((await fetchWith(server.url, clientTls(pki, pki.client))).status, 200);
  assert.equal(server.peers.length, 1);
});

Deno.test("mTLS: a client with a valid chain but another CN passes TLS; the allowlist must decide", async () => {
  await using pki = await makeTestPki();
  await using server = await startMtlsServer(pki.server, pki.ca.certPem);

  assert.equal((await fetchWith(server.url, clientTls(pki, pki.intruderClient))).status, 200);
  assert.equal(server.peers[0]?.cn, TEST_INTRUDER_CN);
  assert.equal(server.peers[0]?.authorized, true);
});

Deno.test("mTLS: the client refuses a server whose certificate does not chain to its CA", async () => {
  await using pki = await makeTestPki();
  await using server = await startMtlsServer(pki.server, pki.ca.certPem);

  await assert.rejects(
    fetchWith(server.url, {
      caCerts: [pki.otherCa.certPem],
      cert: pki.client.certPem,
      key: pki.client.keyPem,
    }),
    TypeError,
  );
  assert.equal(server.peers.length, 0);
});
