/**
 * The real edge process (`main.ts` with the exact flags `deno task start`
 * computes) paying through the LND REST adapter to the LND test peer over the
 * pinned stock-like certificate; the edge is killed with SIGKILL while the
 * payment is in flight, restarted, and the client retries with the same
 * Idempotency-Key: the node sees one payment attempt, and the final state is
 * the node's.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { hex } from "@scure/base";
import { loadConfig } from "../../src/config/mod.ts";
import { flagsFor } from "../../scripts/start.ts";
import { freePort, runDeno } from "../_helpers/server.ts";
import { encodeBolt11 } from "../_helpers/bolt11_encode.ts";
import { createLnNode, newPreimage } from "../_peers/ln_node_state.ts";
import { startLndPeer } from "../_peers/lnd_peer.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The edge as `deno task start` runs it, but as a direct child, so SIGKILL reaches it. */
async function startEdge(env: Record<string, string>) {
  const port = freePort();
  const vars = { ...env, PORT: String(port) };
  const flags = flagsFor(loadConfig(vars), "run");
  const passthrough: Record<string, string> = { NO_COLOR: "1" };
  for (const k of ["PATH", "HOME", "DENO_DIR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) passthrough[k] = v;
  }
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--frozen",
      "--no-prompt",
      "--config",
      `${ROOT}deno.json`,
      ...flags,
      `${ROOT}main.ts`,
    ],
    cwd: ROOT,
    env: { ...passthrough, ...vars },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const dec = new TextDecoder();
  const pumps = Promise.all([child.stdout, child.stderr].map(async (s) => {
    for await (const chunk of s) output += dec.decode(chunk, { stream: true });
  }));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      const res = await fetch(`${url}/healthz`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`edge did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => output,
    async kill(signal: Deno.Signal) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
      await child.status;
      await pumps;
    },
  };
}

Deno.test({
  name: "SIGKILL of the edge mid-payment: the retry with the same key never pays twice",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const node = createLnNode("regtest");
    await using peer = await startLndPeer(node);
    const dir = await Deno.makeTempDir({ prefix: "anya-ln-e2e-" });
    try {
      await Deno.writeFile(`${dir}/admin.macaroon`, hex.decode(peer.macaroonHex));
      await Deno.writeTextFile(`${dir}/tls.cert`, peer.certPem);
      const dataDir = `${dir}/data`;
      const keyRun = await runDeno(
        [
          "task",
          "--quiet",
          "keys:create",
          "--tenant",
          "acme",
          "--scopes",
          "lightning:read,lightning:write",
        ],
        { ANYA_DATA_DIR: dataDir },
      );
      assert.equal(keyRun.code, 0, keyRun.stderr);
      const apiKey = keyRun.stdout.trimEnd().split("\n").at(-1)!;
      const env = {
        ANYA_DATA_DIR: dataDir,
        BITCOIN_NETWORK: "regtest",
        LIGHTNING_BACKEND: "lnd",
        LND_REST_URL: peer.url,
        LND_MACAROON_FILE: `${dir}/admin.macaroon`,
        LND_TLS_CERT_FILE: `${dir}/tls.cert`,
        LIGHTNING_TIMEOUT_MS: "1000",
        LIGHTNING_SYNC_INTERVAL_MS: "1000",
        IDEMPOTENCY_LOCK_MS: "2000",
      };

      const { preimage, paymentHash } = newPreimage();
      const bolt11 = encodeBolt11({
        network: "regtest",
        amountMsat: 25_000n,
        paymentHash,
        paymentSecret: "44".repeat(32),
        description: "killed mid-payment",
        nodeKey: crypto.getRandomValues(new Uint8Array(32)),
      });
      node.state.outcomes.set(paymentHash, { outcome: "hang" });
      const pay = (url: string) =>
        fetch(`${url}/v1/ln/payments`, {
          method: "POST",
          headers: {
            Authorization: `Bearer ${apiKey}`,
            "Content-Type": "application/json",
            "Idempotency-Key": "pay-killed-1",
          },
          body: JSON.stringify({ invoice: bolt11, timeoutSeconds: 2 }),
        });

      let edge = await startEdge(env);
      const inFlight = pay(edge.url).then((r) => r.status, () => "lost");
      const until = Date.now() + 20_000;
      while ((node.state.payAttempts.get(paymentHash) ?? 0) === 0) {
        if (Date.now() > until) {
          throw new Error(`payment never reached the node:\n${edge.output()}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      await edge.kill("SIGKILL");
      await inFlight;
      // The network settles the payment while the edge is down.
      node.resolvePayment(paymentHash, { outcome: "succeed", preimage, feeMsat: 9n });

      edge = await startEdge(env);
      try {
        // The killed request still holds its key for IDEMPOTENCY_LOCK_MS: 409 until then.
        let retry: Response;
        const stop = Date.now() + 30_000;
        while (true) {
          retry = await pay(edge.url);
          if (retry.status !== 409) break;
          await retry.body?.cancel();
          if (Date.now() > stop) throw new Error("the key stayed locked");
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.ok([200, 202].includes(retry.status), `retry answered ${retry.status}`);
        await retry.body?.cancel();
        let final: Record<string, unknown> = {};
        while (Date.now() < stop) {
          const res = await fetch(`${edge.url}/v1/ln/payments/${paymentHash}`, {
            headers: { Authorization: `Bearer ${apiKey}` },
          });
          final = await res.json();
          if (final.state !== "pending") break;
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.equal(final.state, "succeeded", JSON.stringify(final));
        assert.equal(final.preimage, preimage);
        assert.equal(node.state.payAttempts.get(paymentHash), 1, "the node saw one attempt");
        assert.deepEqual(peer.violations, []);
      } finally {
        await edge.kill("SIGTERM");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
