import assert from "node:assert/strict";
import { requestFingerprint } from "../../src/idempotency/mod.ts";

Deno.test("requestFingerprint() hashes the raw body with SHA-256", () => {
  const empty = requestFingerprint({ method: "post", path: "/v1/x", body: new Uint8Array() });
  assert.deepEqual(empty, {
    method: "POST",
    path: "/v1/x",
    bodyHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  });
  const abc = requestFingerprint({
    method: "POST",
    path: "/v1/x?q=1",
    body: new TextEncoder().encode("abc"),
  });
  assert.equal(abc.bodyHash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(abc.path, "/v1/x?q=1");
});

Deno.test("requestFingerprint() rejects wrong types", () => {
  const body = new Uint8Array();
  assert.throws(() => requestFingerprint({ method: "", path: "/", body }), TypeError);
  assert.throws(() => requestFingerprint({ method: "POST", path: "x", body }), TypeError);
  assert.throws(
    () => requestFingerprint({ method: "POST", path: "/", body: "abc" as never }),
    TypeError,
  );
});
