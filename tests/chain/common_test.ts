/** The chain adapters' shared helpers (src/chain/_common.ts). */
import assert from "node:assert/strict";
import {
  assertAddressSyntax,
  assertTargetBlocks,
  assertTxid,
  confirmationsAt,
  decodeRawTx,
  GENESIS_BLOCK_HASHES,
  isAlreadyKnown,
  networkFromGenesisHash,
  rejectedByNetwork,
  sanitizeUpstreamText,
} from "../../src/chain/_common.ts";
import { UpstreamError, ValidationError } from "../../src/errors/app_error.ts";
import { loadRecordedBlock, PEER_GENESIS } from "../_peers/chain_state.ts";

const block = await loadRecordedBlock();

Deno.test("networkFromGenesisHash() maps the four supported genesis blocks", () => {
  for (const network of ["mainnet", "testnet4", "signet", "regtest"] as const) {
    assert.equal(networkFromGenesisHash(PEER_GENESIS[network]), network);
    assert.equal(networkFromGenesisHash(PEER_GENESIS[network].toUpperCase()), network);
    assert.equal(GENESIS_BLOCK_HASHES[network], PEER_GENESIS[network]);
  }
});

Deno.test("networkFromGenesisHash() refuses testnet3 and unknown chains", () => {
  assert.throws(
    () => networkFromGenesisHash(PEER_GENESIS.testnet3),
    (e) =>
      e instanceof UpstreamError &&
      /testnet3, which is not supported: use testnet4/.test(e.message),
  );
  assert.throws(() => networkFromGenesisHash("00".repeat(32)), UpstreamError);
});

Deno.test("decodeRawTx() computes the txid of recorded mainnet transactions", () => {
  for (const tx of block.tx) {
    assert.deepEqual(decodeRawTx(tx.hex), { hex: tx.hex, txid: tx.txid }, tx.txid);
    assert.equal(decodeRawTx(tx.hex.toUpperCase()).txid, tx.txid, tx.txid);
  }
});

Deno.test("decodeRawTx() rejects non-hex with RangeError and non-transactions with a 422", () => {
  for (const bad of [123, null, undefined, "", "abc", "zz", "0x00"]) {
    assert.throws(() => decodeRawTx(bad as string), RangeError, String(bad));
  }
  const tx = block.tx[0]!.hex;
  for (const bad of ["00", "0200000000", tx.slice(0, -2), `${tx}00`]) {
    assert.throws(() => decodeRawTx(bad), (e) => e instanceof ValidationError && e.status === 422);
  }
});

Deno.test("argument checks throw RangeError on wrong types and shapes", () => {
  const txid = block.tx[0]!.txid;
  assertTxid(txid);
  for (const bad of [txid.toUpperCase(), txid.slice(1), `${txid}0`, "../x", 1, null]) {
    assert.throws(() => assertTxid(bad as string), RangeError, String(bad));
  }
  assertAddressSyntax("bc1q635ds0ffydyw4jx4gwtkxlg9tddqz7ft7hvu4f");
  assertAddressSyntax("1JufNZwnXhzZcxedMsz11MydjPDsud9ozu");
  for (const bad of ["", "short", "bc1q/../x1234567", "a),addr(b12345678", "a".repeat(91), 5]) {
    assert.throws(() => assertAddressSyntax(bad as string), RangeError, String(bad));
  }
  for (const ok of [1, 2, 144, 1008]) assertTargetBlocks(ok);
  for (const bad of [0, -1, 1009, 1.5, NaN, "6"]) {
    assert.throws(() => assertTargetBlocks(bad as number), RangeError, String(bad));
  }
});

Deno.test("isAlreadyKnown() accepts only 'this transaction is already out' answers", () => {
  for (
    const yes of [
      "Transaction already in block chain",
      "Transaction outputs already in utxo set",
      "already-in-utxo-set",
      "txn-already-in-mempool",
      "txn-already-known",
      "txn-same-nonwitness-data-in-mempool",
    ]
  ) assert.ok(isAlreadyKnown(yes), yes);
  assert.ok(isAlreadyKnown("anything", -27));
  for (
    const no of [
      "bad-txns-inputs-missingorspent",
      "missing-inputs",
      "min relay fee not met",
      "insufficient fee, rejecting replacement",
      "txn-mempool-conflict",
    ]
  ) assert.ok(!isAlreadyKnown(no, -26), no);
});

Deno.test("sanitizeUpstreamText() strips control characters and truncates", () => {
  assert.equal(sanitizeUpstreamText("  a\u0000b\r\n\tc\u2028d  "), "a b c d");
  const long = sanitizeUpstreamText("x".repeat(500));
  assert.equal(long.length, 200);
  assert.ok(long.endsWith("…"));
});

Deno.test("rejectedByNetwork() is a 422 carrying the sanitized reason", () => {
  const err = rejectedByNetwork("dust\n");
  assert.equal(err.status, 422);
  assert.equal(err.message, "Transaction rejected by the network: dust");
  assert.deepEqual(err.extensions, { rejectReason: "dust" });
  assert.equal(
    rejectedByNetwork("").message,
    "Transaction rejected by the network: no reason given",
  );
});

Deno.test("confirmationsAt() counts the block itself and never goes below 1", () => {
  assert.equal(confirmationsAt(100, 100), 1);
  assert.equal(confirmationsAt(110, 100), 11);
  assert.equal(confirmationsAt(99, 100), 1);
});
