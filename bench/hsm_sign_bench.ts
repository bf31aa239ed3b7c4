/**
 * Signing a 2-input P2WPKH PSBT through edge → HSM over mTLS (keep-alive, 16
 * concurrent clients) beside signing the same PSBT in-process with
 * @scure/btc-signer, in the same run. Target: at least 50% of the in-process
 * throughput. The HSM runs in this process on a real mTLS listener with its
 * real services (policy, audit, idempotency, PGlite in memory); the edge path
 * includes the edge's checks of the returned PSBT. Deno's report gives the
 * ratio and p75/p99 per batch of 16; a per-request p50/p99 is printed first.
 */
import { HDKey } from "@scure/bip32";
import { base64 } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import { createCa, issueCertificate } from "../src/pki/mod.ts";
import { migrate, openPgliteDb, openPostgresDb } from "../src/db/mod.ts";
import { HSM_MIGRATIONS } from "../src/hsm_server/migrations/mod.ts";
import { AuditLog } from "../src/audit/mod.ts";
import { KeysService } from "../src/hsm_server/keys_service.ts";
import { SignService } from "../src/hsm_server/sign_service.ts";
import { SoftwareKeyStore } from "../src/hsm_server/signing/sealed_key_store.ts";
import { createHsmApp } from "../routes/hsm/app.ts";
import { serveMtls } from "../routes/hsm/tls.ts";
import { HttpClient } from "../src/net/http_client.ts";
import { RemoteHsmSigner } from "../src/hsm/remote_hsm.ts";
import { EdgeSignService } from "../src/hsm/sign_service.ts";
import { createLogger } from "../src/obs/logger.ts";
import { PSBT_TX_OPTS } from "../src/bitcoin/psbt_parse.ts";
import { keyPsbt } from "../tests/_helpers/hsm_psbt.ts";

const CONCURRENCY = 16;
const logger = createLogger({ level: "error", sink: () => {} });

const ca = await createCa({ commonName: "bench CA" });
const server = await issueCertificate(ca, {
  commonName: "hsm",
  usage: "server",
  ipAddresses: ["127.0.0.1"],
});
const client = await issueCertificate(ca, { commonName: "edge", usage: "client" });

// PGlite (embedded, one session) by default; BENCH_DATABASE_URL measures on PostgreSQL,
// which is what a busy HSM should run on.
const pgUrl = Deno.env.get("BENCH_DATABASE_URL") || undefined;
const schema = `bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
const db = pgUrl === undefined
  ? await openPgliteDb()
  : await openPostgresDb({ url: pgUrl, schema, poolSize: 16 });
await migrate(db, HSM_MIGRATIONS);
const store = new SoftwareKeyStore(crypto.getRandomValues(new Uint8Array(32)));
const audit = new AuditLog(db);
const keys = new KeysService({ db, audit, store });
const hsm = await serveMtls(
  createHsmApp({
    keys,
    signer: new SignService({ db, audit, store }),
    logger,
    bodyLimitBytes: 1 << 22,
  }),
  {
    host: "127.0.0.1",
    port: 0,
    certPem: server.certPem,
    keyPem: server.keyPem,
    clientCaPem: ca.certPem,
    allowlist: new Map([["edge", "bench"]]),
    logger,
  },
);
const http = new HttpClient({
  name: "hsm",
  baseUrl: `https://127.0.0.1:${hsm.port}`,
  timeoutMs: 30_000,
  maxResponseBytes: 1 << 22,
  retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  breaker: {
    consecutiveFailures: 1000,
    failureRate: 1,
    windowMs: 60_000,
    minRequests: 1e6,
    openMs: 1,
  },
  tls: { caCerts: [ca.certPem], cert: client.certPem, key: client.keyPem },
});
const signer = new RemoteHsmSigner(http);
const edge = new EdgeSignService({ signer, network: "mainnet", logger });

const caller = { tenant: "bench", owner: "bench", requestId: "bench", subject: "edge" };
const key = await keys.create(caller, {
  label: "bench",
  kind: "bip32",
  usage: "transactions",
  network: "mainnet",
});
await keys.setPolicy(caller, key.id, { networks: ["mainnet"] });
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
  `edge → HSM over mTLS (${db.kind}), ${CONCURRENCY} concurrent: p50 ${
    pct(0.5).toFixed(1)
  } ms, p99 ${pct(0.99).toFixed(1)} ms per request (${latencies.length} requests)`,
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
  http.close();
  void hsm.close(0);
  if (pgUrl !== undefined) void db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});
