import assert from "node:assert/strict";
import { base64, hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { NETWORK, p2pkh, p2tr, p2wpkh, Transaction } from "@scure/btc-signer";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp, type TestApp } from "../_helpers/app.ts";
import { assertProblem } from "../_helpers/problem.ts";
import { PSBT_TX_OPTS } from "../../src/bitcoin/psbt_parse.ts";
import { HDKey } from "@scure/bip32";

// Keys 1..3: well-known test scalars, never funds.
const PRIV = [1, 2, 3].map((n) => hex.decode(n.toString(16).padStart(64, "0")));
const PUB = PRIV.map((k) => secp256k1.getPublicKey(k, true));
const WPKH = p2wpkh(PUB[0]!, NETWORK);
const TR = p2tr(PUB[1]!.slice(1), undefined, NETWORK);
const PKH = p2pkh(PUB[2]!, NETWORK);
const DEST = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
const CHANGE = WPKH.address!;

const txid = (n: number) => n.toString(16).padStart(2, "0").repeat(32);

const UTXOS = [
  {
    txid: txid(1),
    vout: 0,
    valueSats: "50000",
    scriptPubKeyHex: hex.encode(WPKH.script),
  },
  {
    txid: txid(2),
    vout: 1,
    valueSats: 70000,
    scriptPubKeyHex: hex.encode(TR.script),
    tapInternalKeyHex: hex.encode(PUB[1]!.slice(1)),
  },
];

async function setup(t: TestApp) {
  return (await t.key("acme", ["psbt", "read"])).secret;
}

async function post(t: TestApp, key: string, path: string, body: unknown) {
  return await t.call(path, { key, method: "POST", body });
}

function signInputs(psbt: string, inputs: number[]): string {
  const tx = Transaction.fromPSBT(base64.decode(psbt), PSBT_TX_OPTS);
  for (const i of inputs) tx.signIdx(PRIV[i]!, i);
  return base64.encode(tx.toPSBT());
}

dbTest(
  "PSBT lifecycle over HTTP: create → sign apart → combine → finalize → broadcast",
  async (db) => {
    await using t = buildTestApp(db);
    const key = await setup(t);
    const created = await post(t, key, "/v1/psbt", {
      outputs: [{ address: DEST, amountSats: "60000" }],
      utxos: UTXOS,
      feeRateSatPerVb: 2.5,
      changeAddress: CHANGE,
      selection: "all",
    });
    assert.equal(created.status, 201, await created.clone().text());
    const c = await created.json();
    assert.equal(c.psbtVersion, 0);
    assert.equal(c.feeRateSource, "explicit");
    assert.equal(c.targetFeeRateSatPerVb, "2.5");
    assert.equal(BigInt(c.inputsSats), 120_000n);
    assert.equal(
      BigInt(c.inputsSats) - BigInt(c.outputsSats) - BigInt(c.changeSats),
      BigInt(c.feeSats),
    );
    assert.equal(c.changeOutputIndex, 1);

    // Two signers each sign their own input of the same unsigned PSBT.
    const a = signInputs(c.psbt, [0]);
    const b = signInputs(c.psbt, [1]);
    const decodedA =
      await (await post(t, key, "/v1/psbt/decode", { psbt: a, verifySignatures: true }))
        .json();
    assert.deepEqual(decodedA.inputs.map((i: { signed: boolean }) => i.signed), [true, false]);
    assert.equal(decodedA.inputs[0].signatureStatus, "valid");
    assert.equal(decodedA.feeSats, c.feeSats);
    assert.equal(decodedA.feeRate.exact, false, "size estimated before finalizing");
    const unchecked = await (await post(t, key, "/v1/psbt/decode", { psbt: a })).json();
    assert.equal(unchecked.inputs[0].signatureStatus, "not-checked");
    assert.equal(unchecked.inputs[0].signed, true);

    // A signature that does not verify is reported, and finalize refuses it.
    const sig = Transaction.fromPSBT(base64.decode(a), PSBT_TX_OPTS).getInput(0).partialSig![0]!;
    const badSig = sig[1].slice();
    badSig[10]! ^= 1;
    const forged = Transaction.fromPSBT(base64.decode(c.psbt), PSBT_TX_OPTS);
    forged.updateInput(0, { partialSig: [[sig[0], badSig]] });
    const forgedB64 = base64.encode(forged.toPSBT());
    const checked = await (await post(t, key, "/v1/psbt/decode", {
      psbt: forgedB64,
      verifySignatures: true,
    })).json();
    assert.equal(checked.inputs[0].signatureStatus, "invalid");
    assert.ok(checked.warnings.some((w: { code: string }) => w.code === "invalid-signature"));
    const refused = await assertProblem(
      await post(t, key, "/v1/psbt/finalize", { psbt: forgedB64 }),
      422,
    );
    assert.match(String(refused.detail), /input 0 has an invalid signature/);

    const combined = await post(t, key, "/v1/psbt/combine", { psbts: [a, b] });
    assert.equal(combined.status, 200);
    const { psbt: both } = await combined.json();

    const finalized = await post(t, key, "/v1/psbt/finalize", { psbt: both });
    assert.equal(finalized.status, 200, await finalized.clone().text());
    const f = await finalized.json();
    assert.equal(f.transaction.feeSats, c.feeSats);
    assert.ok(f.transaction.vsize <= c.vsize, "the estimate is an upper bound");

    const decodedFinal = await (await post(t, key, "/v1/psbt/decode", { psbt: f.psbt })).json();
    assert.equal(decodedFinal.txid, f.transaction.txid);
    assert.equal(decodedFinal.feeRate.exact, true);
    assert.equal(decodedFinal.vsize, f.transaction.vsize);
    assert.equal(decodedFinal.rbf, true);

    const sent = await post(t, key, "/v1/tx/broadcast", { hex: f.transaction.hex });
    assert.equal(sent.status, 201);
    assert.equal((await sent.json()).txid, f.transaction.txid);
    assert.deepEqual(t.chain.broadcasts, [f.transaction.txid]);
  },
);

dbTest("POST /v1/psbt funds from addresses with the backend's coins and estimate", async (db) => {
  await using t = buildTestApp(db);
  const key = await setup(t);
  const prev = new Transaction();
  prev.addInput({ txid: txid(9), index: 0 });
  prev.addOutput({ script: PKH.script, amount: 90_000n });
  t.chain.utxos.set(PKH.address!, [
    { txid: prev.id, vout: 0, valueSats: 90_000n, confirmations: 6 },
  ]);
  t.chain.known.set(prev.id, {
    txid: prev.id,
    hex: hex.encode(prev.unsignedTx),
    status: { state: "unconfirmed" },
  });
  t.chain.utxos.set(WPKH.address!, [
    { txid: txid(3), vout: 2, valueSats: 40_000n, confirmations: 1 },
  ]);
  t.chain.feeSatPerKvb = 3_000;
  const res = await post(t, key, "/v1/psbt", {
    outputs: [{ address: DEST, amountSats: 100_000 }],
    fundFrom: { addresses: [PKH.address, WPKH.address] },
    confTarget: 2,
    changeAddress: CHANGE,
    psbtVersion: 2,
  });
  assert.equal(res.status, 201, await res.clone().text());
  const body = await res.json();
  assert.equal(body.psbtVersion, 2);
  assert.equal(body.feeRateSource, "estimate");
  assert.equal(body.estimateTargetBlocks, 2);
  assert.equal(body.targetFeeRateSatPerVb, "3");
  assert.equal(body.selectedInputs.length, 2);
  const tx = Transaction.fromPSBT(base64.decode(body.psbt), PSBT_TX_OPTS);
  const legacy = [...Array(tx.inputsLength).keys()].map((i) => tx.getInput(i))
    .find((i) => hex.encode(i.txid!) === prev.id);
  assert.ok(legacy?.nonWitnessUtxo !== undefined, "legacy coin carries its previous tx");
});

dbTest(
  "POST /v1/psbt funds from a ranged descriptor; inputs carry BIP32 origins for the signer",
  async (db) => {
    await using t = buildTestApp(db);
    const key = await setup(t);
    const root = HDKey.fromMasterSeed(new Uint8Array(32).fill(7));
    const acct = root.derive("m/84'/0'/0'");
    const fp = root.fingerprint.toString(16).padStart(8, "0");
    const descriptor = `wpkh([${fp}/84h/0h/0h]${acct.publicExtendedKey}/0/*)`;
    const at3 = p2wpkh(root.derive("m/84'/0'/0'/0/3").publicKey!, NETWORK);
    t.chain.utxos.set(at3.address!, [{
      txid: txid(5),
      vout: 1,
      valueSats: 80_000n,
      confirmations: 4,
    }]);
    const res = await post(t, key, "/v1/psbt", {
      outputs: [{ address: DEST, amountSats: "30000" }],
      fundFrom: { descriptors: [{ descriptor, range: [0, 5] }] },
      feeRateSatPerVb: 1,
      changeAddress: CHANGE,
    });
    assert.equal(res.status, 201, await res.clone().text());
    const body = await res.json();
    const tx = Transaction.fromPSBT(base64.decode(body.psbt), PSBT_TX_OPTS);
    const [pub, origin] = tx.getInput(0).bip32Derivation![0]!;
    assert.deepEqual(pub, root.derive("m/84'/0'/0'/0/3").publicKey);
    assert.equal(origin.fingerprint, root.fingerprint);
    const H = 0x80000000;
    assert.deepEqual(origin.path, [84 + H, H, H, 0, 3]);
    // A signer holding only the master key finds and signs the input from its origin.
    assert.equal(tx.sign(root as unknown as Parameters<Transaction["sign"]>[0]), 1);
    const finalized = await post(t, key, "/v1/psbt/finalize", {
      psbt: base64.encode(tx.toPSBT()),
    });
    assert.equal(finalized.status, 200, await finalized.clone().text());

    const wrongNet = await assertProblem(
      await post(t, key, "/v1/psbt", {
        outputs: [{ address: DEST, amountSats: "30000" }],
        fundFrom: {
          descriptors: [{
            descriptor: `wpkh(${
              HDKey.fromMasterSeed(new Uint8Array(32).fill(7), {
                private: 0x04358394,
                public: 0x043587cf,
              }).publicExtendedKey
            }/0/*)`,
          }],
        },
        feeRateSatPerVb: 1,
        changeAddress: CHANGE,
      }),
      422,
    );
    assert.match(String(wrongNet.detail), /fundFrom\.descriptors\[0\]/);
    const secret = await assertProblem(
      await post(t, key, "/v1/psbt", {
        outputs: [{ address: DEST, amountSats: "30000" }],
        fundFrom: { descriptors: [{ descriptor: `wpkh(${root.privateExtendedKey}/0/*)` }] },
        feeRateSatPerVb: 1,
        changeAddress: CHANGE,
      }),
      422,
    );
    assert.doesNotMatch(JSON.stringify(secret), /xprv/);
  },
);

dbTest("POST /v1/psbt refuses bad requests with 400/422 problems naming the field", async (db) => {
  await using t = buildTestApp(db);
  const key = await setup(t);
  const base = {
    outputs: [{ address: DEST, amountSats: "60000" }],
    utxos: UTXOS,
    feeRateSatPerVb: 2,
    changeAddress: CHANGE,
  };
  const both = await assertProblem(
    await post(t, key, "/v1/psbt", { ...base, fundFrom: { addresses: [CHANGE] } }),
    400,
  );
  assert.match(String(both.detail), /exactly one of utxos, fundFrom/);
  await assertProblem(
    await post(t, key, "/v1/psbt", { ...base, confTarget: 3 }),
    400,
  );
  await assertProblem(
    await post(t, key, "/v1/psbt", { ...base, outputs: [{ address: DEST, amountSats: 1.5 }] }),
    400,
  );
  await assertProblem(
    await post(t, key, "/v1/psbt", {
      ...base,
      outputs: [{ address: DEST, amountSats: "2100000000000001" }],
    }),
    400,
  );
  await assertProblem(await post(t, key, "/v1/psbt", { ...base, feeRateSatPerVb: 0.5 }), 400);
  const dust = await assertProblem(
    await post(t, key, "/v1/psbt", { ...base, outputs: [{ address: DEST, amountSats: "100" }] }),
    422,
  );
  assert.match(String(dust.detail), /dust/);
  const testnet = await assertProblem(
    await post(t, key, "/v1/psbt", {
      ...base,
      outputs: [{ address: "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", amountSats: "60000" }],
    }),
    422,
  );
  assert.match(String(testnet.detail), /outputs\[0\]\.address/);
  const poor = await assertProblem(
    await post(t, key, "/v1/psbt", { ...base, outputs: [{ address: DEST, amountSats: "500000" }] }),
    422,
  );
  assert.match(String(poor.detail), /insufficient|not enough/i);
  const p2wsh = await assertProblem(
    await post(t, key, "/v1/psbt", {
      ...base,
      utxos: undefined,
      fundFrom: { addresses: ["bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"] },
    }),
    422,
  );
  assert.match(String(p2wsh.detail), /without its script/);
});

dbTest("without a chain backend, explicit coins work and estimates are 503", async (db) => {
  await using t = buildTestApp(db, {}, { backend: null });
  const key = await setup(t);
  const base = {
    outputs: [{ address: DEST, amountSats: "60000" }],
    utxos: UTXOS,
    changeAddress: CHANGE,
  };
  assert.equal((await post(t, key, "/v1/psbt", { ...base, feeRateSatPerVb: 1 })).status, 201);
  await assertProblem(await post(t, key, "/v1/psbt", { ...base, confTarget: 6 }), 503);
});

dbTest("decode warns on a fee far above the current estimate (fat-finger guard)", async (db) => {
  await using t = buildTestApp(db);
  const key = await setup(t);
  const created = await (await post(t, key, "/v1/psbt", {
    outputs: [{ address: DEST, amountSats: "60000" }],
    utxos: UTXOS,
    feeRateSatPerVb: 300,
    changeAddress: CHANGE,
    selection: "all",
  })).json();
  t.chain.feeSatPerKvb = 2_000;
  const decoded = await (await post(t, key, "/v1/psbt/decode", { psbt: created.psbt })).json();
  assert.equal(decoded.currentFeeRateSatPerVb, "2");
  assert.ok(
    decoded.warnings.some((w: { code: string }) => w.code === "fee-rate-high"),
    JSON.stringify(decoded.warnings),
  );
  // Hex is accepted too and gives the same report.
  const asHex = hex.encode(base64.decode(created.psbt));
  const again = await (await post(t, key, "/v1/psbt/decode", { psbt: asHex })).json();
  assert.deepEqual(again, decoded);
});

dbTest("combine and finalize refuse what cannot work with 422 problems", async (db) => {
  await using t = buildTestApp(db);
  const key = await setup(t);
  const make = async (amount: string) =>
    (await (await post(t, key, "/v1/psbt", {
      outputs: [{ address: DEST, amountSats: amount }],
      utxos: UTXOS,
      feeRateSatPerVb: 2,
      changeAddress: CHANGE,
      selection: "all",
    })).json()).psbt as string;
  const one = await make("60000");
  const other = await make("61000");
  const diff = await assertProblem(
    await post(t, key, "/v1/psbt/combine", { psbts: [one, other] }),
    422,
  );
  assert.match(String(diff.detail), /different transactions/);
  const unsigned = await assertProblem(
    await post(t, key, "/v1/psbt/finalize", { psbt: one }),
    422,
  );
  assert.match(String(unsigned.detail), /input 0 has no signatures/);
  const bad = await assertProblem(
    await post(t, key, "/v1/psbt/combine", { psbts: [one, "cHNidP8BAAo="] }),
    422,
  );
  assert.match(String(bad.detail), /^psbts\[1\]: /);
  await assertProblem(await post(t, key, "/v1/psbt/decode", { psbt: "not a psbt" }), 422);
});

dbTest("PSBT routes need the psbt scope", async (db) => {
  await using t = buildTestApp(db);
  const key = (await t.key("acme", ["read"])).secret;
  await assertProblem(await post(t, key, "/v1/psbt/decode", { psbt: "cHNidP8=" }), 403);
});
