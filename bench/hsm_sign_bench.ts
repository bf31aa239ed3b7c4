/**
 * Signing a 2-input P2WPKH PSBT through edge → HSM over mTLS (keep-alive, 16
 * concurrent clients) beside signing the same PSBT in-process with
 * @scure/btc-signer, in the same run. Target: at least 50% of the in-process
 * throughput. The HSM runs as its own process (`hsm_main.ts`, its real
 * services: policy, audit, idempotency, PGlite on disk or PostgreSQL); the
 * edge path includes the edge's checks of the returned PSBT. Deno's report gives the
 * ratio and p75/p99 per batch of 16; a per-request p50/p99 is printed first.
 */
import { HDKey } from "@scure/bip32";
import { base64 } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { EdgeSignService } from "../src/hsm/sign_service.ts";
import { createLogger } from "../src/obs/logger.ts";
import { PSBT_TX_OPTS } from "../src/bitcoin/psbt_parse.ts";
import { keyPsbt } from "../tests/_helpers/hsm_psbt.ts";
import { makeTestPki } from "../tests/_helpers/pki.ts";
import { edgeSigner, startHsm } from "../tests/_helpers/hsm.ts";

const CONCURRENCY = 16;
const logger = createLogger({ level: "error", sink: () => {} });

// The HSM as it deploys: `hsm_main.ts` in its own process with the flags `deno task hsm`
// computes, PGlite by default; BENCH_DATABASE_URL (a scratch database) puts it on PostgreSQL.
const pgUrl = Deno.env.get("BENCH_DATABASE_URL") || undefined;
const pki = await makeTestPki();
const hsm = await startHsm(pki, {
  env: { HSM_LOG_LEVEL: "info", ...(pgUrl === undefined ? {} : { HSM_DATABASE_URL: pgUrl }) },
  allowlist: "edge=bench",
});
const remote = edgeSigner(pki, hsm.url, pki.client, {
  timeoutMs: 30_000,
  retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
});
const edge = new EdgeSignService({ signer: remote.signer, network: "mainnet", logger });

const key = await remote.signer.createKey("bench", {
  label: "bench",
  kind: "bip32",
  usage: "transactions",
  network: "mainnet",
});
await remote.signer.setPolicy("bench", key.id, { networks: ["mainnet"] });
const { psbt } = keyPsbt(key.versions[0]!.xpub!, ["p2wpkh", "p2wpkh"]);

// The in-process baseline signs with the same key material, as a hot wallet would.
const baselineKey = HDKey.fromMasterSeed(crypto.getRandomValues(new Uint8Array(32)));
const { psbt: baselinePsbt } = keyPsbt(baselineKey.publicExtendedKey, ["p2wpkh", "p2wpkh"]);
const asSigner = baselineKey as unknown as Parameters<Transaction["sign"]>[0];

let n = 0;
const viaHsm = () =>
  edge.signPsbt("bench", { keyId: key.id, psbt, idempotencyKey: `bench-${n++}-${Date.now()}` });
const inProcess = () =>
  Promise.resolve().then(() => {
    const tx = Transaction.fromPSBT(base64.decode(baselinePsbt), PSBT_TX_OPTS);
    tx.sign(asSigner);
    return base64.encode(tx.toPSBT());
  });

// Per-request latency through the HSM, 16 in flight.
const latencies: number[] = [];
for (let round = 0; round < 10; round++) {
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    const t0 = performance.now();
    await viaHsm();
    latencies.push(performance.now() - t0);
  }));
}
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
// deno-lint-ignore no-console -- a benchmark's report line, beside Deno's table
console.log(
  `edge → HSM over mTLS (${
    pgUrl === undefined ? "pglite" : "postgres"
  }), ${CONCURRENCY} concurrent: p50 ${pct(0.5).toFixed(1)} ms, p99 ${
    pct(0.99).toFixed(1)
  } ms per request (${latencies.length} requests)`,
);

Deno.bench(
  { name: "in-process scure sign x16", group: "sign 2-in P2WPKH, 16 concurrent", baseline: true },
  async () => {
    await Promise.all(Array.from({ length: CONCURRENCY }, inProcess));
  },
);
Deno.bench(
  { name: "edge → HSM over mTLS x16", group: "sign 2-in P2WPKH, 16 concurrent" },
  async () => {
    await Promise.all(Array.from({ length: CONCURRENCY }, viaHsm));
  },
);

globalThis.addEventListener("unload", () => {
  remote.client.close();
  void hsm[Symbol.asyncDispose]();
  void pki[Symbol.asyncDispose]();
});
