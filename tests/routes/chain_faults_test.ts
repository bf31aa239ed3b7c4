/**
 * Upstream faults through the HTTP API, with the real chain adapters
 * (`EsploraBackend`, `BitcoindBackend` behind `NetworkCheckedBackend`) over the
 * real `HttpClient` and its breaker, wired as `main.ts` wires them, against
 * loopback peers behind the fault server. One table of cases runs for both
 * adapters: 5xx opening the breaker (and `/readyz` saying so), lost broadcast
 * answers resolved by txid lookup, oversized replies, refused connections,
 * and `POST /v1/psbt` needing the backend for fee estimates and coins.
 */
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { base64, hex } from "@scure/base";
import { p2tr, p2wpkh, TEST_NETWORK, Transaction } from "@scure/btc-signer";
import { BitcoindBackend, type ChainBackend, EsploraBackend } from "../../src/chain/mod.ts";
import { NetworkCheckedBackend } from "../../src/chain/network_guard.ts";
import { breakerCheck, HttpClient, type UpstreamOptions } from "../../src/net/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { buildTestApp, type TestApp } from "../_helpers/app.ts";
import { dbTest } from "../_helpers/db.ts";
import { mainnetTxs } from "../_helpers/mainnet_txs.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { bitcoindHandler } from "../_peers/bitcoind_peer.ts";
import { type ChainState, createChainState } from "../_peers/chain_state.ts";
import { esploraHandler } from "../_peers/esplora_peer.ts";
import {
  type FaultHandler,
  type FaultMode,
  type FaultServer,
  refusedUrl,
  startFaultServer,
} from "../_peers/fault_server.ts";

type Kind = "esplora" | "bitcoind";
/** What a request to the peer was for, by the port operation that made it. */
type Call = "broadcast" | "mempool-check" | "lookup" | "fee" | "utxos" | "other";
type Faults = Partial<Record<Call | "*", FaultMode>>;

/** The RPC password / proxy credential: must never reach a problem body or a log line. */
const SECRET = "rpc-pw-Zq8vT3kL";
const CREDENTIALS_B64 = btoa(`edge:${SECRET}`);
const OPEN_MS = 15_000;
/**
 * Deadlines: short where a case is about a timeout, generous elsewhere so that
 * a loaded machine cannot turn a 502 or 503 case into a 504.
 */
const SHORT_MS = 200;
const GENEROUS_MS = 10_000;
/** Client settings: 64 KiB cap, one retry, breaker at 3 failures in a row. */
const UPSTREAM: Omit<UpstreamOptions, "name" | "baseUrl" | "timeoutMs"> = {
  maxResponseBytes: 64 * 1024,
  retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 10 },
  breaker: {
    consecutiveFailures: 3,
    failureRate: 1,
    windowMs: 60_000,
    minRequests: 1_000,
    openMs: OPEN_MS,
  },
};

const TXS = mainnetTxs(3);
const TX = TXS[0]!;

// Regtest coins and addresses (the peers serve regtest).
const REGTEST = { ...TEST_NETWORK, bech32: "bcrt" };
const pub = (n: number) => secp256k1.getPublicKey(new Uint8Array(32).fill(n), true);
const FUND_A = p2wpkh(pub(1), REGTEST);
const FUND_B = p2tr(pub(2).subarray(1), undefined, REGTEST);
const DEST = p2wpkh(pub(3), REGTEST).address!;
const CHANGE = p2wpkh(pub(4), REGTEST).address!;
const MINED = { height: 150, hash: "0000" + "5a".repeat(30) };
const TIP = { height: 200, hash: "0000" + "c8".repeat(30) };
const COINS = [
  {
    address: FUND_A.address!,
    script: FUND_A.script,
    txid: "11".repeat(32),
    vout: 0,
    sats: 100_000n,
  },
  {
    address: FUND_A.address!,
    script: FUND_A.script,
    txid: "22".repeat(32),
    vout: 3,
    sats: 80_000n,
  },
  {
    address: FUND_B.address!,
    script: FUND_B.script,
    txid: "33".repeat(32),
    vout: 1,
    sats: 50_000n,
  },
];

function peerState(): ChainState {
  return createChainState({
    network: "regtest",
    tip: { ...TIP },
    utxos: COINS.map((c) => ({
      address: c.address,
      txid: c.txid,
      vout: c.vout,
      valueSats: c.sats,
      scriptPubKeyHex: hex.encode(c.script),
      block: { ...MINED },
    })),
    feeRatesSatPerKvb: new Map([[2, 2500], [6, 1234], [144, 1000]]),
  });
}

/** How each adapter is built and how its peer's requests are told apart. */
interface Adapter {
  kind: Kind;
  handler(state: ChainState): FaultHandler;
  /** Base URL of the peer; Esplora's carries proxy credentials, as URLs may. */
  baseUrl(peerUrl: string): string;
  backend(client: HttpClient, deadlineMs: number): ChainBackend;
  classify(req: Request): Promise<Call>;
}

const ADAPTERS: Adapter[] = [
  {
    kind: "esplora",
    handler: (state) => esploraHandler(state),
    baseUrl(peerUrl) {
      const url = new URL(`${peerUrl}/api`);
      url.username = "edge";
      url.password = SECRET;
      return url.href;
    },
    backend: (client) => new EsploraBackend(client),
    classify(req) {
      const path = new URL(req.url).pathname.replace(/^\/api(?=\/)/, "");
      if (req.method === "POST" && path === "/tx") return Promise.resolve("broadcast");
      if (path.startsWith("/tx/")) return Promise.resolve("lookup");
      if (path === "/fee-estimates") return Promise.resolve("fee");
      if (path.startsWith("/address/")) return Promise.resolve("utxos");
      return Promise.resolve("other");
    },
  },
  {
    kind: "bitcoind",
    handler: (state) => bitcoindHandler(state, { user: "edge", password: SECRET }),
    baseUrl: (peerUrl) => peerUrl,
    backend: (client, deadlineMs) =>
      // The scan's own deadline: `scantxoutset` defaults to two minutes.
      new BitcoindBackend(client, { user: "edge", password: SECRET }, {
        scanTimeoutMs: deadlineMs,
      }),
    async classify(req) {
      const method = await req.json().then((b) => (b as { method?: unknown }).method, () => null);
      switch (method) {
        case "sendrawtransaction":
          return "broadcast";
        case "testmempoolaccept":
          return "mempool-check";
        case "getrawtransaction":
        case "getblockheader":
          return "lookup";
        case "estimatesmartfee":
          return "fee";
        case "scantxoutset":
          return "utxos";
        default:
          return "other";
      }
    },
  },
];

/** One app over one adapter over one peer, with a hand-driven breaker clock. */
interface Rig extends AsyncDisposable {
  t: TestApp;
  state: ChainState;
  server: FaultServer;
  client: HttpClient;
  /** Every request that reached the peer (after boot), in order. */
  seen: Call[];
  /** Lines logged by the upstream client. */
  clientLogs: string[];
  /** Faults per kind of call from now on; `*` for every other call; `{}` heals the peer. */
  setFaults(faults: Faults): void;
  /** Move the breaker's clock. */
  advance(ms: number): void;
  post(path: string, body: unknown): Promise<Response>;
  get(path: string): Promise<Response>;
  /** No 500s, no secrets or peer URLs in any answer, no secrets in any log line. */
  assertClean(): void;
}

async function rig(
  db: Parameters<typeof buildTestApp>[0],
  adapter: Adapter,
  options: { refused?: boolean; consecutiveFailures?: number; deadlineMs?: number } = {},
): Promise<Rig> {
  const state = peerState();
  const server = startFaultServer(adapter.handler(state), {
    dripIntervalMs: 50,
    oversizedBytes: 1024 * 1024,
  });
  const seen: Call[] = [];
  let faults: Faults = {};
  server.setMode(async (req) => {
    const call = await adapter.classify(req);
    seen.push(call);
    return faults[call] ?? faults["*"] ?? "ok";
  });
  const peerUrl = options.refused === true ? refusedUrl() : server.url;
  const clientLogs: string[] = [];
  let clock = Date.now();
  // As main.ts's buildChainBackend builds it, with test-sized deadlines and breaker.
  const client = new HttpClient({
    name: adapter.kind,
    baseUrl: adapter.baseUrl(peerUrl),
    ...UPSTREAM,
    timeoutMs: options.deadlineMs ?? GENEROUS_MS,
    breaker: {
      ...UPSTREAM.breaker,
      consecutiveFailures: options.consecutiveFailures ?? UPSTREAM.breaker.consecutiveFailures,
    },
  }, {
    logger: createLogger({ level: "debug", sink: (_l, line) => clientLogs.push(line) }),
    now: () => clock,
  });
  const backend = new NetworkCheckedBackend(
    adapter.backend(client, options.deadlineMs ?? GENEROUS_MS),
    "regtest",
  );
  // main.ts checks the network at boot; an unreachable peer is checked on first use.
  if (options.refused !== true) await backend.verify();
  seen.length = 0;
  const t = buildTestApp(db, { BITCOIN_NETWORK: "regtest" }, {
    backend,
    readiness: [breakerCheck([client])],
  });
  const { secret } = await t.key("acme", ["psbt", "read"]);
  const answers: { status: number; text: string }[] = [];
  const record = async (res: Response) => {
    answers.push({ status: res.status, text: await res.clone().text() });
    return res;
  };
  const hostPort = new URL(peerUrl).host;
  return {
    t,
    state,
    server,
    client,
    seen,
    clientLogs,
    setFaults(next) {
      faults = next;
    },
    advance(ms) {
      clock += ms;
    },
    post: async (path, body) =>
      await record(await t.call(path, { key: secret, method: "POST", body })),
    get: async (path) => await record(await t.call(path, { key: secret })),
    assertClean() {
      for (const a of answers) {
        assert.notEqual(a.status, 500, a.text);
        for (const secretText of [SECRET, CREDENTIALS_B64, hostPort]) {
          assert.ok(!a.text.includes(secretText), `answer leaks ${secretText}: ${a.text}`);
        }
      }
      for (const line of [...t.logs, ...clientLogs]) {
        assert.ok(!line.includes(SECRET) && !line.includes(CREDENTIALS_B64), line);
        assert.doesNotMatch(line, /unhandled error/);
      }
    },
    async [Symbol.asyncDispose]() {
      await t[Symbol.asyncDispose]();
      client.close();
      await server.close();
    },
  };
}

/** `POST /v1/psbt` paying 150000 sat to DEST, funded from given coins or the peer's. */
function psbtRequest(
  fee: { confTarget: number } | { feeRateSatPerVb: number },
  funding: "utxos" | "fundFrom",
): Record<string, unknown> {
  return {
    outputs: [{ address: DEST, amountSats: "150000" }],
    ...(funding === "fundFrom" ? { fundFrom: { addresses: [FUND_A.address, FUND_B.address] } } : {
      utxos: [{
        txid: "44".repeat(32),
        vout: 0,
        valueSats: "500000",
        scriptPubKeyHex: hex.encode(FUND_A.script),
      }],
    }),
    ...fee,
    changeAddress: CHANGE,
  };
}

const count = (calls: Call[], call: Call) => calls.filter((c) => c === call).length;

async function readyz(r: Rig, status: number): Promise<{ ok: boolean; detail: string }> {
  const res = await r.get("/readyz");
  const body = await res.json();
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.ready, status === 200);
  assert.equal(body.checks.database.ok, true);
  return body.checks.upstreams;
}

async function history(r: Rig, txid: string): Promise<{ state: string; history: string[] }> {
  const res = await r.get(`/v1/tx/${txid}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return { state: body.state, history: body.history.map((h: { state: string }) => h.state) };
}

for (const a of ADAPTERS) {
  dbTest(
    `${a.kind}: repeated 5xx open the breaker, /readyz reports it, nothing is sent while open, then it recovers`,
    async (db) => {
      await using r = await rig(db, a);
      assert.deepEqual(await readyz(r, 200), { ok: true, detail: `${a.kind}: closed` });

      r.setFaults({ "*": "status503" });
      // A fee estimate is an idempotent read: two attempts per call, so the third failure opens it.
      for (let i = 0; i < 2; i++) {
        const p = await assertProblem(
          await r.post("/v1/psbt", psbtRequest({ confTarget: 6 }, "utxos")),
          502,
          "upstream-error",
        );
        assert.match(String(p.detail), /HTTP 503/);
      }
      assert.deepEqual(r.seen, ["fee", "fee", "fee"]);
      assert.deepEqual(await readyz(r, 503), { ok: false, detail: `${a.kind}: open` });

      const sent = r.server.requests;
      const res = await r.post("/v1/tx/broadcast", { hex: TX.hex });
      assert.equal(res.headers.get("retry-after"), String(OPEN_MS / 1000));
      const p = await assertProblem(res, 503, "unavailable");
      assert.match(String(p.detail), /circuit breaker is open; the request was not sent/);
      await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ confTarget: 6 }, "utxos")),
        503,
        "unavailable",
      );
      await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ feeRateSatPerVb: 2 }, "fundFrom")),
        503,
        "unavailable",
      );
      assert.equal(r.server.requests, sent, "nothing reaches the peer while the breaker is open");
      assert.deepEqual(r.state.broadcasts, []);
      // Never sent, so nothing is kept: the client may simply try again later.
      await assertProblem(await r.get(`/v1/tx/${TX.txid}`), 404, "not-found");

      r.setFaults({});
      assert.deepEqual(await readyz(r, 503), { ok: false, detail: `${a.kind}: open` });
      r.advance(OPEN_MS);
      assert.deepEqual(await readyz(r, 200), { ok: true, detail: `${a.kind}: half-open` });
      const ok = await r.post("/v1/tx/broadcast", { hex: TX.hex });
      assert.equal(ok.status, 201);
      assert.equal((await ok.json()).state, "mempool");
      assert.deepEqual(r.state.broadcasts, [TX.txid]);
      assert.deepEqual(await readyz(r, 200), { ok: true, detail: `${a.kind}: closed` });
      r.assertClean();
    },
  );

  for (const mode of ["hangAfterHandler", "slowDripAfterHandler"] as const) {
    dbTest(
      `${a.kind}: a broadcast the peer took but whose answer is lost (${mode}) is found by txid: 201, sent once`,
      async (db) => {
        await using r = await rig(db, a, { deadlineMs: SHORT_MS });
        r.setFaults({ broadcast: mode });
        const res = await r.post("/v1/tx/broadcast", { hex: TX.hex });
        const body = await res.json();
        assert.equal(res.status, 201, JSON.stringify(body));
        assert.equal(body.txid, TX.txid);
        assert.equal(body.state, "mempool");
        assert.deepEqual(r.state.broadcasts, [TX.txid]);
        assert.equal(count(r.seen, "broadcast"), 1);
        assert.ok(r.seen.indexOf("lookup") > r.seen.indexOf("broadcast"), r.seen.join(","));
        assert.ok(
          r.t.logs.some((l) => l.includes("broadcast outcome unknown; looking the txid up")),
        );
        assert.deepEqual(await history(r, TX.txid), {
          state: "mempool",
          history: ["broadcasting", "mempool"],
        });

        // Resubmitting answers the tracked record and sends nothing.
        const again = await r.post("/v1/tx/broadcast", { hex: TX.hex });
        assert.equal(again.status, 200);
        assert.equal((await again.json()).state, "mempool");
        assert.equal(count(r.seen, "broadcast"), 1);
        assert.deepEqual(r.state.broadcasts, [TX.txid]);
        r.assertClean();
      },
    );
  }

  dbTest(
    `${a.kind}: a broadcast whose outcome stays unknown is 202 'unknown' and never sent twice`,
    async (db) => {
      await using r = await rig(db, a, { deadlineMs: SHORT_MS });
      // The broadcast never reaches the mempool and the lookup fails too.
      r.setFaults({ broadcast: "hang", lookup: "status503" });
      const res = await r.post("/v1/tx/broadcast", { hex: TX.hex });
      const body = await res.json();
      assert.equal(res.status, 202, JSON.stringify(body));
      assert.equal(body.state, "unknown");
      assert.equal(count(r.seen, "broadcast"), 1);
      assert.ok(r.seen.indexOf("lookup") > r.seen.indexOf("broadcast"), r.seen.join(","));
      assert.deepEqual(r.state.broadcasts, []);

      r.setFaults({});
      assert.deepEqual(await history(r, TX.txid), {
        state: "unknown",
        history: ["broadcasting", "unknown"],
      });
      const again = await r.post("/v1/tx/broadcast", { hex: TX.hex });
      assert.equal(again.status, 200);
      assert.equal((await again.json()).state, "unknown");
      assert.equal(count(r.seen, "broadcast"), 1, "a retry does not send the transaction again");
      r.assertClean();
    },
  );

  dbTest(
    `${a.kind}: oversized replies are a 502 problem for a PSBT and 'unknown' for a broadcast`,
    async (db) => {
      await using r = await rig(db, a);
      r.setFaults({ "*": "oversized" });
      const p = await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ confTarget: 6 }, "utxos")),
        502,
        "upstream-error",
      );
      assert.match(String(p.detail), /response exceeds 65536 bytes/);
      await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ feeRateSatPerVb: 2 }, "fundFrom")),
        502,
        "upstream-error",
      );
      // The reply to the broadcast (or its mempool check) is unusable: it may have gone out.
      const res = await r.post("/v1/tx/broadcast", { hex: TXS[1]!.hex });
      const body = await res.json();
      assert.equal(res.status, 202, JSON.stringify(body));
      assert.equal(body.state, "unknown");
      assert.ok(count(r.seen, "broadcast") <= 1);
      r.assertClean();
    },
  );

  dbTest(
    `${a.kind}: a refused connection is a 503 problem on every money path, then the breaker opens`,
    async (db) => {
      await using r = await rig(db, a, { refused: true });
      await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ confTarget: 6 }, "utxos")),
        503,
        "unavailable",
      );
      await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ feeRateSatPerVb: 2 }, "fundFrom")),
        503,
        "unavailable",
      );
      await assertProblem(await r.post("/v1/tx/broadcast", { hex: TX.hex }), 503, "unavailable");
      await assertProblem(await r.get(`/v1/tx/${TX.txid}`), 404, "not-found");
      assert.deepEqual(await readyz(r, 503), { ok: false, detail: `${a.kind}: open` });
      assert.equal(r.server.requests, 0);
      r.assertClean();
    },
  );

  dbTest(
    `${a.kind}: POST /v1/psbt is 504 when the fee estimate or the coin lookup times out`,
    async (db) => {
      await using r = await rig(db, a, { consecutiveFailures: 100, deadlineMs: SHORT_MS });
      for (const mode of ["hang", "slowDrip"] as const) {
        r.setFaults({ fee: mode });
        const p = await assertProblem(
          await r.post("/v1/psbt", psbtRequest({ confTarget: 6 }, "utxos")),
          504,
          "timeout",
        );
        assert.match(String(p.detail), /outcome is unknown/);
      }
      r.setFaults({ utxos: "hang" });
      await assertProblem(
        await r.post("/v1/psbt", psbtRequest({ feeRateSatPerVb: 2 }, "fundFrom")),
        504,
        "timeout",
      );
      assert.ok(count(r.seen, "utxos") >= 1);
      r.assertClean();
    },
  );

  dbTest(
    `${a.kind}: POST /v1/psbt with fundFrom spends the peer's coins at its estimate; fee = inputs − outputs`,
    async (db) => {
      await using r = await rig(db, a);
      const res = await r.post("/v1/psbt", {
        ...psbtRequest({ confTarget: 6 }, "fundFrom"),
        selection: "all",
      });
      const body = await res.json();
      assert.equal(res.status, 201, JSON.stringify(body));
      assert.equal(body.feeRateSource, "estimate");
      assert.equal(body.estimateTargetBlocks, 6);
      assert.equal(body.targetFeeRateSatPerVb, "1.234");
      assert.equal(count(r.seen, "fee"), 1);
      // Esplora has one endpoint per address; Core scans the UTXO set once for all of them.
      assert.equal(
        count(r.seen, "utxos"),
        a.kind === "esplora" ? 2 : 1,
        "coin lookups: one per address on Esplora, one scan on Core",
      );

      const tx = Transaction.fromPSBT(base64.decode(body.psbt));
      const spent: string[] = [];
      let inputsSats = 0n;
      for (let i = 0; i < tx.inputsLength; i++) {
        const input = tx.getInput(i);
        const outpoint = `${hex.encode(input.txid!)}:${input.index}`;
        const coin = COINS.find((c) => `${c.txid}:${c.vout}` === outpoint);
        assert.ok(coin !== undefined, `input ${i} (${outpoint}) is not one of the peer's coins`);
        assert.equal(input.witnessUtxo?.amount, coin.sats);
        assert.equal(hex.encode(input.witnessUtxo!.script), hex.encode(coin.script));
        inputsSats += coin.sats;
        spent.push(outpoint);
      }
      assert.deepEqual(spent.sort(), COINS.map((c) => `${c.txid}:${c.vout}`).sort());
      let outputsSats = 0n;
      for (let i = 0; i < tx.outputsLength; i++) outputsSats += tx.getOutput(i).amount!;
      assert.equal(inputsSats, 230_000n);
      assert.equal(BigInt(body.feeSats), inputsSats - outputsSats, "fee = inputs − outputs");
      assert.equal(BigInt(body.inputsSats), inputsSats);
      // The body's outputsSats are the payments; change is reported on its own.
      assert.equal(body.outputsSats, "150000");
      assert.equal(tx.getOutput(body.changeOutputIndex).amount, BigInt(body.changeSats));
      assert.equal(BigInt(body.outputsSats) + BigInt(body.changeSats), outputsSats);
      // Paid at least the estimate (1234 sat/kvB) over the estimated size.
      assert.ok(BigInt(body.feeSats) * 1000n >= BigInt(body.vsize) * 1234n, body.feeSats);
      r.assertClean();
    },
  );
}
