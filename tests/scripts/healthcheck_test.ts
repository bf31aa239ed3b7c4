import assert from "node:assert/strict";
import { probe, probeTcp } from "../../scripts/healthcheck.ts";

Deno.test("probe() is 0 when /healthz answers 2xx and 1 otherwise", async () => {
  let status = 200;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new Response(null, { status: new URL(req.url).pathname === "/healthz" ? status : 404 }),
  );
  try {
    const port = String(server.addr.port);
    assert.equal(await probe(port), 0);
    status = 503;
    assert.equal(await probe(port), 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("probe() is 1 when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String(listener.addr.port);
  listener.close();
  assert.equal(await probe(port, 1000), 1);
});

Deno.test("probeTcp() is 0 while a listener accepts and 1 once it is gone", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String(listener.addr.port);
  const accepted = listener.accept().then((c) => c.close());
  assert.equal(await probeTcp(port), 0);
  await accepted;
  listener.close();
  assert.equal(await probeTcp(port, 1000), 1);
});
