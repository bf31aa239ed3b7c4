import assert from "node:assert/strict";
import fc from "fast-check";
import { base64, hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  NETWORK,
  p2ms,
  p2pk,
  p2pkh,
  p2sh,
  p2tr,
  p2wpkh,
  p2wsh,
  TEST_NETWORK,
  Transaction,
} from "@scure/btc-signer";
import {
  createPsbt,
  type CreatePsbtRequest,
  MAX_FEE_RATE_SAT_PER_KVB,
  MIN_FEE_RATE_SAT_PER_KVB,
  SEQUENCE_NO_RBF,
  SEQUENCE_RBF,
  type UtxoInput,
} from "../../src/bitcoin/psbt_create.ts";
import { PSBT_TX_OPTS } from "../../src/bitcoin/psbt_parse.ts";
import { extractTransaction, finalizePsbt } from "../../src/bitcoin/psbt_ops.ts";
import { assertSignable } from "../../src/bitcoin/signing_check.ts";
import { networkParams } from "../../src/bitcoin/network.ts";
import { feeForVsize, feeRateSatPerKvb } from "../../src/bitcoin/amount.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

const PRIV = [1, 2, 3, 4].map((n) => hex.decode(n.toString(16).padStart(64, "0")));
const PUB = PRIV.map((k) => secp256k1.getPublicKey(k, true));
const XONLY = PUB.map((p) => p.slice(1));

const WPKH = p2wpkh(PUB[0]!, NETWORK);
const TR = p2tr(XONLY[1]!, undefined, NETWORK);
const PKH = p2pkh(PUB[2]!, NETWORK);
const SH_WPKH = p2sh(p2wpkh(PUB[3]!), NETWORK);
const MS = p2ms(2, [PUB[0]!, PUB[1]!, PUB[2]!]);
const WSH_MS = p2wsh(MS, NETWORK);
const DEST = p2wpkh(PUB[3]!, NETWORK).address!;
const CHANGE = p2tr(XONLY[0]!, undefined, NETWORK).address!;

function txid(n: number): string {
  return n.toString(16).padStart(2, "0").repeat(32);
}

/** A previous transaction paying `script` at output 1, for legacy inputs. */
function previousTx(script: Uint8Array, amount: bigint): { txid: string; raw: string } {
  const prev = new Transaction({ allowUnknownOutputs: true });
  prev.addInput({ txid: txid(0xee), index: 3 });
  prev.addOutput({ script: p2wpkh(PUB[3]!).script, amount: 1_000n });
  prev.addOutput({ script, amount });
  return { txid: prev.id, raw: hex.encode(prev.unsignedTx) };
}

const PKH_PREV = previousTx(PKH.script, 80_000n);

const UTXOS: Record<string, UtxoInput> = {
  wpkh: {
    txid: txid(1),
    vout: 0,
    valueSats: 50_000n,
    scriptPubKeyHex: hex.encode(WPKH.script),
    confirmations: 3,
  },
  tr: {
    txid: txid(2),
    vout: 1,
    valueSats: 70_000n,
    scriptPubKeyHex: hex.encode(TR.script),
    tapInternalKeyHex: hex.encode(XONLY[1]!),
    confirmations: 10,
  },
  pkh: {
    txid: PKH_PREV.txid,
    vout: 1,
    valueSats: 80_000n,
    scriptPubKeyHex: hex.encode(PKH.script),
    nonWitnessUtxoHex: PKH_PREV.raw,
    confirmations: 1,
  },
  shwpkh: {
    txid: txid(4),
    vout: 0,
    valueSats: 60_000n,
    scriptPubKeyHex: hex.encode(SH_WPKH.script),
    redeemScriptHex: hex.encode(SH_WPKH.redeemScript!),
    confirmations: 2,
  },
  wshms: {
    txid: txid(5),
    vout: 2,
    valueSats: 90_000n,
    scriptPubKeyHex: hex.encode(WSH_MS.script),
    witnessScriptHex: hex.encode(MS.script),
    confirmations: 2,
  },
};

function without(
  u: UtxoInput,
  key: "nonWitnessUtxoHex" | "redeemScriptHex" | "witnessScriptHex",
): UtxoInput {
  const copy = { ...u };
  delete copy[key];
  return copy;
}

function request(extra: Partial<CreatePsbtRequest> = {}): CreatePsbtRequest {
  return {
    outputs: [{ address: DEST, amountSats: 100_000n }],
    utxos: Object.values(UTXOS),
    feeRateSatPerKvb: 2_500,
    changeAddress: CHANGE,
    ...extra,
  };
}

const MAINNET = { network: "mainnet" as const };

function parse(b64: string): Transaction {
  return Transaction.fromPSBT(base64.decode(b64), PSBT_TX_OPTS);
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${String(e)}`);
    assert.equal(e.status, 422);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("createPsbt() builds a v0 PSBT with UTXO data, RBF sequences and change last", () => {
  const created = createPsbt(request({ selection: "all", locktime: 850_000 }), MAINNET);
  const tx = parse(created.psbtBase64);
  assert.equal(created.psbtVersion, 0);
  assert.equal(tx.opts.PSBTVersion, 0);
  assert.equal(tx.lockTime, 850_000);
  assert.equal(tx.inputsLength, 5);
  assert.equal(tx.outputsLength, 2);
  assert.equal(created.changeOutputIndex, 1);
  assert.equal(tx.getOutput(0).amount, 100_000n);
  assert.equal(tx.getOutput(1).amount, created.changeSats);
  assert.equal(tx.getOutputAddress(1, NETWORK), CHANGE);
  // Exact conservation on the serialised PSBT.
  assert.equal(tx.fee, created.feeSats);
  assert.equal(created.inputsSats, 350_000n);
  assert.equal(created.inputsSats - created.outputsSats - created.changeSats, created.feeSats);
  assert.equal(created.feeSats, feeForVsize(created.vsize, 2_500));
  assert.equal(created.feeRateSatPerKvb, feeRateSatPerKvb(created.feeSats, created.vsize));
  assert.deepEqual(
    created.selectedInputs.map((i) => `${i.txid}:${i.vout}`),
    Object.values(UTXOS).map((u) => `${u.txid}:${u.vout}`),
  );
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    assert.equal(input.sequence, SEQUENCE_RBF, `input ${i} sequence`);
  }
  // BIP174: legacy input carries the previous transaction and no witness UTXO.
  assert.equal(tx.getInput(2).witnessUtxo, undefined);
  assert.ok(tx.getInput(2).nonWitnessUtxo);
  for (const i of [0, 1, 3, 4]) assert.ok(tx.getInput(i).witnessUtxo, `input ${i} witness UTXO`);
  assert.deepEqual(tx.getInput(1).tapInternalKey, XONLY[1]);
  assert.deepEqual(tx.getInput(3).redeemScript, SH_WPKH.redeemScript);
  assert.deepEqual(tx.getInput(4).witnessScript, MS.script);
  // What we create passes the signer's own checks.
  assertSignable(tx);
  assert.deepEqual(created.warnings, []);
});

Deno.test("createPsbt() emits PSBT v2 on request", () => {
  const created = createPsbt(request({ psbtVersion: 2 }), MAINNET);
  const tx = parse(created.psbtBase64);
  assert.equal(created.psbtVersion, 2);
  assert.equal(tx.opts.PSBTVersion, 2);
  assert.equal(tx.fee, created.feeSats);
});

Deno.test("createPsbt() output signs, finalizes and extracts within its size and fee estimates", () => {
  for (const [name, utxo] of Object.entries(UTXOS)) {
    const created = createPsbt(
      request({
        utxos: [utxo],
        outputs: [{ address: DEST, amountSats: 20_000n }],
        selection: "all",
      }),
      MAINNET,
    );
    const tx = parse(created.psbtBase64);
    for (const k of PRIV) {
      try {
        tx.sign(k);
      } catch {
        // key not used by this input
      }
    }
    const finalized = finalizePsbt(tx);
    const extracted = extractTransaction(finalized.tx);
    assert.equal(extracted.feeSats, created.feeSats, name);
    assert.ok(
      extracted.vsize <= created.vsize,
      `${name}: actual ${extracted.vsize} > estimated ${created.vsize}`,
    );
    assert.ok(created.vsize - extracted.vsize <= 2, `${name}: estimate too loose`);
    assert.ok(
      feeRateSatPerKvb(extracted.feeSats!, extracted.vsize) >= 2_500,
      `${name}: fee rate below target`,
    );
  }
});

Deno.test("createPsbt() auto-selects coins and reports unconfirmed inputs", () => {
  const created = createPsbt(
    request({ outputs: [{ address: DEST, amountSats: 40_000n }] }),
    MAINNET,
  );
  assert.ok(created.selectedInputs.length >= 1);
  assert.equal(parse(created.psbtBase64).fee, created.feeSats);

  const unconfirmed = { ...UTXOS["wpkh"]!, confirmations: 0 };
  const only = createPsbt(
    request({ utxos: [unconfirmed], outputs: [{ address: DEST, amountSats: 10_000n }] }),
    MAINNET,
  );
  assert.ok(only.warnings.some((w) => /unconfirmed/.test(w)));
  rejects(
    () => createPsbt(request({ utxos: [unconfirmed], minConfirmations: 1 }), MAINNET),
    /Insufficient funds/,
  );
});

Deno.test("createPsbt() gives dust change to the fee and says so", () => {
  // 50,000 in; fee at 1 sat/vB for 1 P2WPKH in, 1 P2WPKH out is 110 sat.
  const created = createPsbt(
    request({
      utxos: [UTXOS["wpkh"]!],
      outputs: [{ address: DEST, amountSats: 49_700n }],
      feeRateSatPerKvb: 1_000,
    }),
    MAINNET,
  );
  assert.equal(created.changeOutputIndex, null);
  assert.equal(created.feeSats, 300n);
  assert.ok(
    created.warnings.some((w) => /below the dust threshold .* added to the fee/.test(w)),
    String(created.warnings),
  );
});

Deno.test("createPsbt() without RBF uses nSequence 0xfffffffe and warns", () => {
  const created = createPsbt(request({ rbf: false, selection: "all" }), MAINNET);
  const tx = parse(created.psbtBase64);
  for (let i = 0; i < tx.inputsLength; i++) assert.equal(tx.getInput(i).sequence, SEQUENCE_NO_RBF);
  assert.ok(created.warnings.some((w) => /RBF/.test(w)));
});

Deno.test("createPsbt() adds one OP_RETURN output of up to 80 bytes", () => {
  const data = "ab".repeat(80);
  const created = createPsbt(
    request({ outputs: [{ address: DEST, amountSats: 10_000n }, { opReturnHex: data }] }),
    MAINNET,
  );
  const tx = parse(created.psbtBase64);
  assert.equal(hex.encode(tx.getOutput(1).script!), `6a4c50${data}`);
  assert.equal(tx.getOutput(1).amount, 0n);
  rejects(
    () => createPsbt(request({ outputs: [{ opReturnHex: data + "ab" }] }), MAINNET),
    /at most 80 bytes/,
  );
  rejects(
    () => createPsbt(request({ outputs: [{ opReturnHex: "00" }, { opReturnHex: "01" }] }), MAINNET),
    /only one OP_RETURN/,
  );
});

Deno.test("createPsbt() works on regtest addresses and refuses mainnet ones there", () => {
  const regtest = networkParams("regtest");
  const created = createPsbt(
    request({
      outputs: [{ address: p2wpkh(PUB[3]!, regtest).address!, amountSats: 10_000n }],
      changeAddress: p2tr(XONLY[0]!, undefined, regtest).address!,
    }),
    { network: "regtest" },
  );
  assert.ok(created.psbtBase64.startsWith("cHNidP8"));
  rejects(() => createPsbt(request(), { network: "regtest" }), /another network .*mainnet/);
});

Deno.test("createPsbt() rejects semantically invalid requests with a 422 that says why", () => {
  const wpkh = UTXOS["wpkh"]!;
  const bare = p2ms(1, [PUB[0]!]).script;
  const cases: Array<[string, Partial<CreatePsbtRequest>, RegExp]> = [
    [
      "dust output",
      { outputs: [{ address: DEST, amountSats: 293n }] },
      /293 sat is below the dust threshold of 294 sat/,
    ],
    ["no outputs", { outputs: [] }, /at least one output/],
    ["no utxos", { utxos: [] }, /at least one UTXO/],
    [
      "insufficient",
      { outputs: [{ address: DEST, amountSats: 10_000_000n }] },
      /Insufficient funds: missing \d+ sat/,
    ],
    [
      "fee rate too low",
      { feeRateSatPerKvb: MIN_FEE_RATE_SAT_PER_KVB - 1 },
      /0.999 sat\/vB is below the minimum relay fee rate of 1 sat\/vB/,
    ],
    [
      "fee rate absurd",
      { feeRateSatPerKvb: MAX_FEE_RATE_SAT_PER_KVB + 1 },
      /above the maximum of 5000 sat\/vB/,
    ],
    ["testnet address", {
      outputs: [{ address: p2wpkh(PUB[0]!, TEST_NETWORK).address!, amountSats: 10_000n }],
    }, /another network/],
    [
      "garbage address",
      { outputs: [{ address: "bc1qnotanaddress", amountSats: 10_000n }] },
      /Not a valid Bitcoin address/,
    ],
    [
      "anchor output",
      { outputs: [{ address: "bc1pfeessrawgf", amountSats: 10_000n }] },
      /unsupported output type "p2a"/,
    ],
    ["witness v2 output", {
      outputs: [{ address: "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", amountSats: 10_000n }],
    }, /unsupported output type/],
    [
      "change address network",
      { changeAddress: p2wpkh(PUB[0]!, TEST_NETWORK).address! },
      /changeAddress: Address is for another network/,
    ],
    [
      "outputs above 21M BTC",
      {
        outputs: [{ address: DEST, amountSats: 1_500_000_000_000_000n }, {
          address: DEST,
          amountSats: 1_500_000_000_000_000n,
        }],
      },
      /total exceeds 21,000,000 BTC/,
    ],
    [
      "utxos above 21M BTC",
      {
        utxos: [{ ...wpkh, valueSats: 2_000_000_000_000_000n }, {
          ...wpkh,
          vout: 1,
          valueSats: 2_000_000_000_000_000n,
        }],
      },
      /total exceeds 21,000,000 BTC/,
    ],
    ["duplicate outpoint", { utxos: [wpkh, { ...wpkh }] }, /duplicate outpoint/],
    ["bad txid", { utxos: [{ ...wpkh, txid: "zz" }] }, /txid: expected 64 hex digits/],
    [
      "bad script hex",
      { utxos: [{ ...wpkh, scriptPubKeyHex: "0014zz" }] },
      /scriptPubKeyHex: not even-length hex/,
    ],
    [
      "legacy without previous tx",
      { utxos: [without(UTXOS["pkh"]!, "nonWitnessUtxoHex")] },
      /previous transaction is required/,
    ],
    [
      "previous tx of another txid",
      { utxos: [{ ...UTXOS["pkh"]!, txid: txid(9) }] },
      /txid does not match/,
    ],
    [
      "previous tx amount",
      { utxos: [{ ...UTXOS["pkh"]!, valueSats: 80_001n }] },
      /differs from the amount/,
    ],
    [
      "vout outside previous tx",
      { utxos: [{ ...UTXOS["pkh"]!, vout: 7 }] },
      /not an output of the previous transaction/,
    ],
    [
      "P2SH without redeem script",
      { utxos: [without(UTXOS["shwpkh"]!, "redeemScriptHex")] },
      /required to spend a P2SH output/,
    ],
    ["wrong redeem script", {
      utxos: [{ ...UTXOS["shwpkh"]!, redeemScriptHex: hex.encode(p2wpkh(PUB[0]!).script) }],
    }, /does not hash to the P2SH/],
    [
      "P2WSH without witness script",
      { utxos: [without(UTXOS["wshms"]!, "witnessScriptHex")] },
      /required to spend a P2WSH/,
    ],
    [
      "P2WSH non-multisig",
      {
        utxos: [{
          ...UTXOS["wshms"]!,
          scriptPubKeyHex: hex.encode(p2wsh(p2pk(PUB[0]!)).script),
          witnessScriptHex: hex.encode(p2pk(PUB[0]!).script),
        }],
      },
      /only multisig witness scripts/,
    ],
    ["taproot internal key mismatch", {
      utxos: [{ ...UTXOS["tr"]!, tapInternalKeyHex: hex.encode(XONLY[2]!) }],
    }, /does not tweak to the output key/],
    [
      "bare multisig input",
      { utxos: [{ ...wpkh, scriptPubKeyHex: hex.encode(bare) }] },
      /unsupported input type/,
    ],
    [
      "witness script on P2WPKH",
      { utxos: [{ ...wpkh, witnessScriptHex: hex.encode(MS.script) }] },
      /not P2WSH/,
    ],
    [
      "negative utxo value",
      { utxos: [{ ...wpkh, valueSats: 0n }] },
      /between 1 sat and 21,000,000 BTC/,
    ],
    ["locktime", { locktime: 2 ** 32 }, /locktime: expected an integer/],
  ];
  for (const [name, extra, pattern] of cases) {
    try {
      createPsbt(request(extra), MAINNET);
      assert.fail(`${name}: accepted`);
    } catch (e) {
      assert.ok(e instanceof ValidationError, `${name}: ${String(e)}`);
      assert.equal(e.status, 422, name);
      assert.match(e.message, pattern, name);
    }
  }
});

Deno.test("createPsbt() enforces the absolute fee cap and the standard weight", () => {
  rejects(
    () => createPsbt(request(), { network: "mainnet", maxFeeSats: 100n }),
    /exceeds the limit of 100 sat/,
  );
  // 3,300 P2WPKH outputs weigh more than 400,000 WU.
  const outputs = Array.from({ length: 3_300 }, () => ({ address: DEST, amountSats: 300n }));
  const big = { ...UTXOS["wpkh"]!, valueSats: 5_000_000n };
  rejects(
    () =>
      createPsbt(
        request({ outputs, utxos: [big], feeRateSatPerKvb: 1000, selection: "all" }),
        MAINNET,
      ),
    /standard weight of 400000 WU/,
  );
});

Deno.test("createPsbt() property: the serialised PSBT conserves money exactly", () => {
  const utxoArb = fc.record({
    n: fc.integer({ min: 1, max: 250 }),
    vout: fc.integer({ min: 0, max: 3 }),
    value: fc.bigInt({ min: 1_000n, max: 2_000_000n }),
    tr: fc.boolean(),
    confirmations: fc.integer({ min: 0, max: 5 }),
  });
  fc.assert(
    fc.property(
      fc.uniqueArray(utxoArb, { minLength: 1, maxLength: 12, selector: (u) => `${u.n}:${u.vout}` }),
      fc.array(fc.bigInt({ min: 330n, max: 1_000_000n }), { minLength: 1, maxLength: 4 }),
      fc.integer({ min: 1_000, max: 50_000 }),
      fc.constantFrom<"all" | "auto">("all", "auto"),
      fc.constantFrom<0 | 2>(0, 2),
      (us, amounts, rate, selection, psbtVersion) => {
        const utxos: UtxoInput[] = us.map((u) => ({
          txid: txid(u.n),
          vout: u.vout,
          valueSats: u.value,
          scriptPubKeyHex: hex.encode(u.tr ? TR.script : WPKH.script),
          confirmations: u.confirmations,
        }));
        const outputs = amounts.map((a, i) => ({
          address: i % 2 ? DEST : TR.address!,
          amountSats: a,
        }));
        let created;
        try {
          created = createPsbt(
            {
              outputs,
              utxos,
              feeRateSatPerKvb: rate,
              changeAddress: CHANGE,
              selection,
              psbtVersion,
            },
            MAINNET,
          );
        } catch (e) {
          assert.ok(
            e instanceof ValidationError && /Insufficient funds/.test(e.message),
            String(e),
          );
          return;
        }
        const tx = parse(created.psbtBase64);
        let inputs = 0n;
        for (let i = 0; i < tx.inputsLength; i++) inputs += tx.getInput(i).witnessUtxo!.amount;
        let outs = 0n;
        for (let i = 0; i < tx.outputsLength; i++) outs += tx.getOutput(i).amount!;
        assert.equal(inputs - outs, created.feeSats);
        assert.equal(inputs, created.inputsSats);
        amounts.forEach((a, i) => assert.equal(tx.getOutput(i).amount, a));
        if (created.changeOutputIndex !== null) {
          assert.equal(created.changeOutputIndex, amounts.length);
          assert.equal(tx.getOutput(created.changeOutputIndex).amount, created.changeSats);
          assert.ok(created.changeSats >= 330n);
        } else assert.equal(tx.outputsLength, amounts.length);
        assert.ok(created.feeSats >= feeForVsize(created.vsize, rate));
        const keys = new Set(created.selectedInputs.map((i) => `${i.txid}:${i.vout}`));
        assert.equal(keys.size, created.selectedInputs.length);
      },
    ),
    { numRuns: 150, seed: 42 },
  );
});

Deno.test("createPsbt() rejects wrong argument types", () => {
  const table: Array<[string, () => unknown, typeof TypeError | typeof RangeError]> = [
    ["request null", () => createPsbt(null as never, MAINNET), TypeError],
    ["options null", () => createPsbt(request(), null as never), TypeError],
    ["network", () => createPsbt(request(), { network: "mainet" as never }), TypeError],
    ["outputs", () => createPsbt(request({ outputs: "x" as never }), MAINNET), TypeError],
    ["output null", () => createPsbt(request({ outputs: [null as never] }), MAINNET), TypeError],
    [
      "amount number",
      () => createPsbt(request({ outputs: [{ address: DEST, amountSats: 5 as never }] }), MAINNET),
      TypeError,
    ],
    [
      "address number",
      () => createPsbt(request({ outputs: [{ address: 5 as never, amountSats: 5n }] }), MAINNET),
      TypeError,
    ],
    [
      "opReturn number",
      () => createPsbt(request({ outputs: [{ opReturnHex: 5 as never }] }), MAINNET),
      TypeError,
    ],
    ["utxos", () => createPsbt(request({ utxos: {} as never }), MAINNET), TypeError],
    [
      "utxo value",
      () => createPsbt(request({ utxos: [{ ...UTXOS["wpkh"]!, valueSats: 5 as never }] }), MAINNET),
      TypeError,
    ],
    [
      "utxo vout",
      () => createPsbt(request({ utxos: [{ ...UTXOS["wpkh"]!, vout: "0" as never }] }), MAINNET),
      TypeError,
    ],
    [
      "utxo script",
      () =>
        createPsbt(
          request({ utxos: [{ ...UTXOS["wpkh"]!, scriptPubKeyHex: 1 as never }] }),
          MAINNET,
        ),
      TypeError,
    ],
    [
      "fee rate",
      () => createPsbt(request({ feeRateSatPerKvb: "1000" as never }), MAINNET),
      TypeError,
    ],
    ["rbf", () => createPsbt(request({ rbf: "yes" as never }), MAINNET), TypeError],
    ["psbtVersion", () => createPsbt(request({ psbtVersion: 1 as never }), MAINNET), RangeError],
    ["selection", () => createPsbt(request({ selection: "some" as never }), MAINNET), RangeError],
    [
      "maxFeeSats",
      () => createPsbt(request(), { network: "mainnet", maxFeeSats: 1 as never }),
      RangeError,
    ],
    [
      "changeAddress",
      () => createPsbt(request({ changeAddress: null as never }), MAINNET),
      TypeError,
    ],
  ];
  for (const [name, fn, err] of table) assert.throws(fn, err, name);
});
