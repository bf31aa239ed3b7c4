import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { base64 } from "@scure/base";
import { NETWORK, p2wpkh, Transaction } from "@scure/btc-signer";
import { dbTest } from "../_helpers/db.ts";

// The subject is the HSM and the mTLS link, not the edge's database: one kind is enough.
const PGLITE_ONLY = { kinds: ["pglite"] } as const;
import { buildTestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { makeTestPki } from "../_helpers/pki.ts";
import { edgeSigner } from "../_helpers/hsm.ts";
import { startHostileHsm, type Tamper } from "../_peers/hostile_hsm.ts";

const DEST = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

/** A 2-input PSBT: input 0 belongs to `mine` (m/0/0), input 1 to `other` (m/0/1). */
function twoInputPsbt(mine: HDKey, other: HDKey): string {
  const tx = new Transaction();
  const keys = [mine.derive("m/0/0"), other.derive("m/0/1")];
  const paths = [[0, 0], [0, 1]];
  keys.forEach((k, i) => {
    tx.addInput({
      txid: String(i + 1).padStart(2, "0").repeat(32),
      index: i,
      witnessUtxo: { script: p2wpkh(k.publicKey!, NETWORK).script, amount: 50_000n },
      bip32Derivation: [[k.publicKey!, {
        fingerprint: [mine, other][i]!.fingerprint,
        path: paths[i]!,
      }]],
    });
  });
  tx.addOutputAddress(DEST, 90_000n, NETWORK);
  return base64.encode(tx.toPSBT());
}

dbTest("a hostile HSM's tampered answers are 502s and nothing is released", async (db) => {
  await using pki = await makeTestPki();
  const other = HDKey.fromMasterSeed(new Uint8Array(32).fill(9));
  await using hsm = await startHostileHsm(pki, other);
  using remote = edgeSigner(pki, hsm.url);
  await using t = buildTestApp(db, {}, { hsm: remote.signer });
  const key = (await t.key("acme", ["sign"])).secret;
  const psbt = twoInputPsbt(hsm.root, other);
  let n = 0;
  const sign = () =>
    t.call("/v1/sign/psbt", {
      key,
      method: "POST",
      body: { keyId: hsm.keyId, psbt },
      headers: { "Idempotency-Key": `hostile-${n++}-${crypto.randomUUID()}` },
    });

  hsm.tamper = "honest";
  const ok = await sign();
  assert.equal(ok.status, 200, await ok.clone().text());
  const body = await ok.json();
  assert.deepEqual(body.signatures.map((s: { input: number }) => s.input), [0]);
  const signed = Transaction.fromPSBT(base64.decode(body.psbt));
  assert.equal(signed.getInput(0).partialSig?.length, 1);
  assert.equal(signed.getInput(1).partialSig, undefined);

  const cases: [Tamper, RegExp][] = [
    ["invalid-signature", /signature/i],
    ["changed-output", /output|transaction/i],
    ["extra-signed-input", /input 1/i],
    ["unparsable", /parse/i],
  ];
  for (const [tamper, why] of cases) {
    hsm.tamper = tamper;
    const res = await sign();
    const problem = await assertProblem(res, 502);
    assert.match(String(problem.detail), why, `${tamper}: ${problem.detail}`);
    assert.equal(problem.psbt, undefined);
    assert.doesNotMatch(JSON.stringify(problem), /cHNidP8/, `${tamper}: no PSBT in the problem`);
  }
  assert.equal(hsm.signRequests, 1 + cases.length);
}, PGLITE_ONLY);
