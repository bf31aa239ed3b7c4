import assert from "node:assert/strict";
import { dbTest, type TestDb } from "../_helpers/db.ts";
import { mainnetTxs } from "../_helpers/mainnet_txs.ts";
import { ScriptedChainBackend } from "../_fakes/chain_backend.ts";
import { TxService } from "../../src/bitcoin/tx_service.ts";
import { TxTracker } from "../../src/bitcoin/tx_tracker.ts";
import { type DomainEvent, EventBus } from "../../src/events/mod.ts";
import { createLogger } from "../../src/obs/logger.ts";
import {
  ConflictError,
  NotFoundError,
  UnavailableError,
  ValidationError,
} from "../../src/errors/mod.ts";

const [tx1, tx2] = mainnetTxs(2) as [{ txid: string; hex: string }, { txid: string; hex: string }];

function setup(db: TestDb, confirmations = 3) {
  const backend = new ScriptedChainBackend();
  const events = new EventBus();
  const seen: DomainEvent[] = [];
  events.subscribe("tx.*", (e) => seen.push(e));
  const logger = createLogger({ sink: () => {} });
  // recheckMs 0: every record is due at once, so tests drive the tracker by hand.
  const service = new TxService({ db, backend, events, logger, confirmations, recheckMs: 0 });
  const tracker = new TxTracker({ db, service, logger, intervalMs: 0 });
  return { backend, service, tracker, seen };
}

dbTest("broadcast() sends once and is idempotent by txid", async (db) => {
  const { backend, service } = setup(db);
  const first = await service.broadcast("acme", tx1.hex);
  assert.equal(first.created, true);
  assert.equal(first.record.txid, tx1.txid);
  assert.equal(first.record.state, "mempool");
  const again = await service.broadcast("acme", tx1.hex.toUpperCase());
  assert.equal(again.created, false);
  assert.deepEqual(backend.broadcasts, [tx1.txid]);
});

dbTest("concurrent broadcasts of one transaction reach the backend once", async (db) => {
  const { backend, service } = setup(db);
  backend.broadcastDelayMs = 20;
  const results = await Promise.allSettled(
    Array.from({ length: 6 }, () => service.broadcast("acme", tx1.hex)),
  );
  const created = results.filter((r) => r.status === "fulfilled" && r.value.created);
  assert.equal(created.length, 1);
  // The others were told to come back while the first was in flight, not handed
  // a record that could still vanish if the send never left.
  for (const r of results) {
    if (r.status === "rejected") {
      assert.ok(r.reason instanceof ConflictError && r.reason.code === "broadcast-in-progress");
      assert.equal(r.reason.headers["Retry-After"], "1");
    }
  }
  assert.deepEqual(backend.broadcasts, [tx1.txid]);
  assert.equal((await service.broadcast("acme", tx1.hex)).created, false);
});

dbTest("a refused broadcast is a 422, recorded as rejected, and may be retried", async (db) => {
  const { backend, service, seen } = setup(db);
  backend.scripts.push({ kind: "reject", reason: "bad-txns-inputs-missingorspent" });
  await assert.rejects(
    () => service.broadcast("acme", tx1.hex),
    (e: unknown) =>
      e instanceof ValidationError && e.status === 422 && /missingorspent/.test(e.message),
  );
  assert.equal((await service.get("acme", tx1.txid)).state, "rejected");
  const retry = await service.broadcast("acme", tx1.hex);
  assert.equal(retry.record.state, "mempool");
  assert.deepEqual(seen.map((e) => e.type), ["tx.rejected", "tx.broadcasting", "tx.mempool"]);
});

dbTest(
  "a retried refusal that cannot reach the backend stays rejected, history kept",
  async (db) => {
    const { backend, service } = setup(db);
    backend.scripts.push({ kind: "reject", reason: "bad-txns-inputs-missingorspent" });
    await assert.rejects(() => service.broadcast("acme", tx1.hex), ValidationError);
    backend.scripts.push({ kind: "unavailable" });
    await assert.rejects(() => service.broadcast("acme", tx1.hex), UnavailableError);
    const record = await service.get("acme", tx1.txid);
    assert.equal(record.state, "rejected");
    assert.match(record.rejectReason ?? "", /missingorspent/);
    assert.deepEqual(
      (await service.history("acme", tx1.txid)).map((h) => h.state),
      ["broadcasting", "rejected", "broadcasting", "rejected"],
    );
  },
);

dbTest("a broadcast that never left is a 503 and leaves no record", async (db) => {
  const { backend, service } = setup(db);
  backend.scripts.push({ kind: "unavailable" });
  await assert.rejects(() => service.broadcast("acme", tx1.hex), UnavailableError);
  await assert.rejects(() => service.get("acme", tx1.txid), NotFoundError);
});

dbTest("a timed-out broadcast that went out is found by txid, not failed", async (db) => {
  const { backend, service } = setup(db);
  backend.scripts.push({ kind: "timeout", delivered: true });
  const out = await service.broadcast("acme", tx1.hex);
  assert.equal(out.record.state, "mempool");
  assert.deepEqual(backend.broadcasts, [tx1.txid], "sent exactly once");
});

dbTest("an unknown outcome stays 'unknown' until the tracker looks it up", async (db) => {
  const { backend, service, tracker } = setup(db);
  backend.scripts.push({ kind: "error", delivered: false });
  backend.lookupFails = true;
  const out = await service.broadcast("acme", tx1.hex);
  assert.equal(out.record.state, "unknown");
  assert.equal(backend.broadcasts.length, 0);
  // The tracker looks it up first; only when the backend does not know it is it sent again.
  backend.lookupFails = false;
  await tracker.sweep();
  assert.equal((await service.get("acme", tx1.txid)).state, "mempool");
  assert.deepEqual(backend.broadcasts, [tx1.txid]);
});

dbTest("an unknown outcome that did go out is not sent again", async (db) => {
  const { backend, service, tracker } = setup(db);
  backend.scripts.push({ kind: "timeout", delivered: true });
  backend.lookupFails = true;
  assert.equal((await service.broadcast("acme", tx1.hex)).record.state, "unknown");
  backend.lookupFails = false;
  await tracker.sweep();
  assert.equal((await service.get("acme", tx1.txid)).state, "mempool");
  assert.deepEqual(backend.broadcasts, [tx1.txid], "the lookup found it; nothing re-sent");
});

dbTest("the tracker follows confirmations to final and publishes each change", async (db) => {
  const { backend, service, tracker, seen } = setup(db, 3);
  await service.broadcast("acme", tx1.hex);
  backend.confirm(tx1.txid, 800_001, 800_001);
  await tracker.sweep();
  let r = await service.get("acme", tx1.txid);
  assert.deepEqual([r.state, r.confirmations, r.blockHeight], ["confirmed", 1, 800_001]);
  backend.confirm(tx1.txid, 800_001, 800_003);
  await tracker.sweep();
  r = await service.get("acme", tx1.txid);
  assert.deepEqual([r.state, r.confirmations], ["final", 3]);
  assert.equal(await tracker.sweep(), 0, "final records are no longer polled");
  assert.deepEqual(seen.map((e) => e.type), ["tx.mempool", "tx.confirmed", "tx.final"]);
  assert.ok(seen.every((e) => e.tenant === "acme"));
  const history = await service.history("acme", tx1.txid);
  assert.deepEqual(history.map((h) => h.state), ["broadcasting", "mempool", "confirmed", "final"]);
});

dbTest("a reorg moves a confirmed transaction back to the mempool", async (db) => {
  const { backend, service, tracker, seen } = setup(db, 6);
  await service.broadcast("acme", tx1.hex);
  backend.confirm(tx1.txid, 800_001, 800_001);
  await tracker.sweep();
  backend.known.set(tx1.txid, { txid: tx1.txid, hex: tx1.hex, status: { state: "unconfirmed" } });
  await tracker.sweep();
  const r = await service.get("acme", tx1.txid);
  assert.deepEqual([r.state, r.confirmations, r.blockHeight], ["mempool", 0, null]);
  assert.equal(seen.at(-1)?.type, "tx.mempool");
});

dbTest("a transaction that vanishes and conflicts on rebroadcast is replaced", async (db) => {
  const { backend, service, tracker } = setup(db);
  await service.broadcast("acme", tx1.hex);
  backend.known.delete(tx1.txid);
  backend.scripts.push({ kind: "reject", reason: "txn-mempool-conflict" });
  await tracker.sweep();
  const r = await service.get("acme", tx1.txid);
  assert.equal(r.state, "replaced");
  assert.match(r.rejectReason ?? "", /conflict/);
});

dbTest("records are per tenant: another tenant's txid is 404", async (db) => {
  const { service } = setup(db);
  await service.broadcast("acme", tx2.hex);
  await assert.rejects(() => service.get("other", tx2.txid), NotFoundError);
  const theirs = await service.broadcast("other", tx2.hex);
  assert.equal(theirs.created, true);
});

dbTest("malformed or unsigned transactions are 422", async (db) => {
  const { service } = setup(db);
  for (const bad of ["zz", "00", tx1.hex.slice(0, 60), ""]) {
    await assert.rejects(
      () => service.broadcast("acme", bad),
      (e: unknown) => e instanceof ValidationError && e.status === 422,
      bad,
    );
  }
});

dbTest("without a chain backend, broadcast is a 503 problem", async (db) => {
  const logger = createLogger({ sink: () => {} });
  const service = new TxService({
    db,
    backend: null,
    events: new EventBus(),
    logger,
    confirmations: 6,
    recheckMs: 0,
  });
  await assert.rejects(() => service.broadcast("acme", tx1.hex), UnavailableError);
});
