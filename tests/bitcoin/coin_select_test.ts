import assert from "node:assert/strict";
import fc from "fast-check";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { p2tr, p2wpkh } from "@scure/btc-signer";
import {
  type CoinCandidate,
  priceSelection,
  selectCoins,
  type Selection,
  type SelectionParams,
} from "../../src/bitcoin/coin_select.ts";
import {
  dustThreshold,
  type InputSpend,
  inputWeight,
  sumInputs,
  txWeight,
  weightToVsize,
} from "../../src/bitcoin/tx_size.ts";
import { feeForVsize } from "../../src/bitcoin/amount.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

const PUB = secp256k1.getPublicKey(hex.decode("01".padStart(64, "0")), true);
const WPKH = p2wpkh(PUB).script;
const TR = p2tr(PUB.slice(1)).script;
const P2WPKH_IN = inputWeight({ kind: "p2wpkh" });

function coin(id: string, valueSats: bigint, confirmations: number | null = 6): CoinCandidate {
  return { id, valueSats, inputWeight: P2WPKH_IN.weight, witness: true, confirmations };
}

function params(outputsSats: bigint, extra: Partial<SelectionParams> = {}): SelectionParams {
  return {
    outputScripts: [WPKH],
    outputsSats,
    changeScript: WPKH,
    changeSpendWeight: P2WPKH_IN.weight,
    feeRateSatPerKvb: 1000,
    ...extra,
  };
}

/** The invariants every selection must satisfy, recomputed independently. */
function assertSound(s: Selection, candidates: readonly CoinCandidate[], p: SelectionParams): void {
  const ids = s.selected.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length, "a coin is selected twice");
  for (const c of s.selected) assert.ok(candidates.includes(c), `unknown coin ${c.id}`);
  const inputs = s.selected.reduce((n, c) => n + c.valueSats, 0n);
  assert.equal(s.inputsSats, inputs);
  // Conservation: inputs = outputs + change + fee, exactly.
  assert.equal(inputs - p.outputsSats - s.feeSats, s.changeSats);
  if (!s.hasChange) assert.equal(s.changeSats, 0n);
  else assert.ok(s.changeSats >= dustThreshold(p.changeScript), "change below dust");
  const outs = s.hasChange ? [...p.outputScripts, p.changeScript] : [...p.outputScripts];
  const weight = txWeight(
    sumInputs(s.selected.map((c) => ({ weight: c.inputWeight, witness: c.witness }))),
    outs,
  );
  assert.equal(s.weight, weight);
  assert.equal(s.vsize, weightToVsize(weight));
  assert.ok(s.feeSats >= feeForVsize(s.vsize, p.feeRateSatPerKvb), "fee below the target rate");
  assert.ok(s.weight <= (p.maxWeight ?? 400_000));
  for (const c of s.selected) {
    assert.ok((c.confirmations ?? 0) >= (p.minConfirmations ?? 0), "coin below minConfirmations");
  }
}

Deno.test("selectCoins() finds the changeless Branch-and-Bound solution", () => {
  // One coin pays 100,000 + its fee almost exactly: no change output needed.
  const exact = coin("exact", 100_123n);
  const candidates = [coin("big", 2_000_000n), exact, coin("small", 30_000n)];
  const p = params(100_000n);
  const s = selectCoins(candidates, p);
  assertSound(s, candidates, p);
  assert.equal(s.algorithm, "bnb");
  assert.deepEqual(s.selected.map((c) => c.id), ["exact"]);
  assert.equal(s.hasChange, false);
  assert.equal(s.feeSats, 123n);
  assert.equal(s.vsize, 110);
  // 13 sat above the 110 sat fee would be dust change: it goes to the fee.
  assert.equal(s.excessToFeeSats, 13n);
});

Deno.test("selectCoins() adds change when no changeless set exists (largest-first or single coin)", () => {
  const candidates = [coin("a", 60_000n), coin("b", 50_000n), coin("c", 40_000n)];
  const p = params(100_000n);
  const s = selectCoins(candidates, p);
  assertSound(s, candidates, p);
  assert.equal(s.hasChange, true);
  assert.equal(s.algorithm, "largest-first");
  assert.deepEqual(s.selected.map((c) => c.id), ["a", "b"]);

  const single = selectCoins([coin("x", 500_000n), coin("y", 150_000n), coin("z", 10_000n)], p);
  assert.equal(single.algorithm, "single");
  assert.deepEqual(single.selected.map((c) => c.id), ["y"]);
});

Deno.test("selectCoins() prefers confirmed coins and respects minConfirmations", () => {
  const candidates = [coin("unconfirmed-exact", 100_123n, 0), coin("confirmed", 300_000n, 3)];
  const s = selectCoins(candidates, params(100_000n));
  assert.deepEqual(s.selected.map((c) => c.id), ["confirmed"]);

  // Only the unconfirmed coin could pay: it is used when allowed...
  const only = [coin("u", 150_000n, 0), coin("c", 1_000n, 1)];
  assert.deepEqual(selectCoins(only, params(100_000n)).selected.map((c) => c.id), ["u"]);
  // ...and refused under minConfirmations, naming why.
  assert.throws(
    () => selectCoins(only, params(100_000n, { minConfirmations: 1 })),
    (e: unknown) =>
      e instanceof ValidationError && e.status === 422 &&
      /Insufficient funds/.test(e.message) && /below 1 confirmations/.test(e.message),
  );
  // Unknown confirmation counts count as 0.
  assert.throws(() =>
    selectCoins([coin("n", 150_000n, null)], params(1_000n, { minConfirmations: 1 }))
  );
});

Deno.test("selectCoins() skips coins worth less than the fee to spend them", () => {
  // At 10 sat/vB a P2WPKH input costs 680 sat; a 600 sat coin only lowers the funds.
  const candidates = [coin("dust", 600n), coin("ok", 20_000n)];
  const p = params(10_000n, { feeRateSatPerKvb: 10_000 });
  const s = selectCoins(candidates, p);
  assert.deepEqual(s.selected.map((c) => c.id), ["ok"]);
  assert.throws(
    () => selectCoins([coin("dust", 600n)], params(1_000n, { feeRateSatPerKvb: 10_000 })),
    /worth less than the fee to spend them/,
  );
});

Deno.test("selectCoins() reports the exact shortfall", () => {
  const candidates = [coin("a", 50_000n), coin("b", 40_000n)];
  const p = params(100_000n);
  // Spending both: 2 inputs + 1 output = 40 + 544 + 124 + 2 = 710 WU → 178 vB → 178 sat.
  const need = 100_000n + 178n - 90_000n;
  assert.throws(
    () => selectCoins(candidates, p),
    (e: unknown) =>
      e instanceof ValidationError && e.status === 422 &&
      e.extensions["missingSats"] === need.toString() &&
      e.message.includes(`missing ${need} sat`),
  );
});

Deno.test("selectCoins() respects the weight limit", () => {
  const many = Array.from({ length: 20 }, (_, i) => coin(`c${i}`, 10_000n));
  assert.throws(
    () => selectCoins(many, params(150_000n, { maxWeight: 2_000 })),
    (e: unknown) => e instanceof ValidationError && /standard weight/.test(e.message),
  );
});

Deno.test("selectCoins() is deterministic", () => {
  const candidates = Array.from(
    { length: 40 },
    (_, i) => coin(`c${i}`, BigInt(5_000 + ((i * 7919) % 97_000))),
  );
  const p = params(333_333n, { feeRateSatPerKvb: 3_500 });
  assert.deepEqual(selectCoins(candidates, p), selectCoins(candidates, p));
});

Deno.test("priceSelection() spends every coin and prices change exactly", () => {
  const candidates = [coin("a", 60_000n), coin("b", 50_000n)];
  const p = params(100_000n);
  const s = priceSelection(candidates, p);
  assertSound(s, candidates, p);
  assert.equal(s.algorithm, "all");
  assert.equal(s.selected.length, 2);
  assert.equal(s.hasChange, true);
  assert.throws(() => priceSelection([coin("a", 1_000n)], p), /Insufficient funds: missing/);
});

const SPENDS: InputSpend[] = [
  { kind: "p2wpkh" },
  { kind: "p2tr-keypath" },
  { kind: "p2pkh" },
  { kind: "p2sh-p2wpkh" },
  { kind: "p2wsh-multisig", m: 2, scriptBytes: 105 },
];

const candidatesArb = fc.uniqueArray(
  fc.record({
    id: fc.integer({ min: 0, max: 9999 }).map((n) => `c${n}`),
    value: fc.bigInt({ min: 1n, max: 5_000_000n }),
    spend: fc.constantFrom(...SPENDS),
    confirmations: fc.option(fc.integer({ min: 0, max: 10 }), { nil: null }),
  }),
  { minLength: 1, maxLength: 30, selector: (c) => c.id },
).map((list) =>
  list.map((c): CoinCandidate => {
    const w = inputWeight(c.spend);
    return {
      id: c.id,
      valueSats: c.value,
      inputWeight: w.weight,
      witness: w.witness,
      confirmations: c.confirmations,
    };
  })
);

const paramsArb = fc.record({
  outputs: fc.array(
    fc.record({ tr: fc.boolean(), amount: fc.bigInt({ min: 330n, max: 3_000_000n }) }),
    { minLength: 1, maxLength: 5 },
  ),
  changeTr: fc.boolean(),
  rate: fc.integer({ min: 1000, max: 200_000 }),
  minConfirmations: fc.integer({ min: 0, max: 2 }),
}).map((r): SelectionParams => ({
  outputScripts: r.outputs.map((o) => (o.tr ? TR : WPKH)),
  outputsSats: r.outputs.reduce((n, o) => n + o.amount, 0n),
  changeScript: r.changeTr ? TR : WPKH,
  changeSpendWeight: inputWeight(r.changeTr ? { kind: "p2tr-keypath" } : { kind: "p2wpkh" }).weight,
  feeRateSatPerKvb: r.rate,
  minConfirmations: r.minConfirmations,
}));

Deno.test("selectCoins() property: sound selections, or a 422 only when even every eligible coin cannot pay", () => {
  let funded = 0;
  let unfunded = 0;
  fc.assert(
    fc.property(candidatesArb, paramsArb, (candidates, p) => {
      let s: Selection;
      try {
        s = selectCoins(candidates, p);
      } catch (e) {
        assert.ok(e instanceof ValidationError && e.status === 422, String(e));
        // The selector may only give up when spending every eligible coin fails too.
        const eligible = candidates.filter((c) =>
          (c.confirmations ?? 0) >= (p.minConfirmations ?? 0) &&
          c.valueSats > feeForVsize(weightToVsize(c.inputWeight), p.feeRateSatPerKvb)
        );
        assert.throws(() => priceSelection(eligible, p), ValidationError);
        unfunded++;
        return;
      }
      assertSound(s, candidates, p);
      funded++;
    }),
    { numRuns: 400, seed: 0x5eed },
  );
  assert.ok(funded > 50 && unfunded > 10, `funded ${funded}, unfunded ${unfunded}`);
});

Deno.test("priceSelection() property: conservation of money is exact", () => {
  fc.assert(
    fc.property(candidatesArb, paramsArb, (candidates, p) => {
      try {
        assertSound(priceSelection(candidates, { ...p, minConfirmations: 0 }), candidates, {
          ...p,
          minConfirmations: 0,
        });
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
      }
    }),
    { numRuns: 300, seed: 0xc0ffee },
  );
});

Deno.test("selectCoins()/priceSelection() reject wrong types and ranges", () => {
  const ok = params(1_000n);
  const c = coin("a", 10_000n);
  const table: Array<[string, () => unknown, typeof TypeError | typeof RangeError]> = [
    ["candidates not array", () => selectCoins({} as never, ok), TypeError],
    ["params null", () => selectCoins([c], null as never), TypeError],
    ["outputScripts", () => selectCoins([c], { ...ok, outputScripts: "x" as never }), TypeError],
    [
      "outputScripts item",
      () => selectCoins([c], { ...ok, outputScripts: ["00" as never] }),
      TypeError,
    ],
    ["outputsSats number", () => selectCoins([c], { ...ok, outputsSats: 1 as never }), TypeError],
    ["outputsSats negative", () => selectCoins([c], { ...ok, outputsSats: -1n }), RangeError],
    ["changeScript", () => selectCoins([c], { ...ok, changeScript: "00" as never }), TypeError],
    ["changeSpendWeight", () => selectCoins([c], { ...ok, changeSpendWeight: 0 }), RangeError],
    [
      "fee rate string",
      () => selectCoins([c], { ...ok, feeRateSatPerKvb: "1" as never }),
      TypeError,
    ],
    ["fee rate float", () => selectCoins([c], { ...ok, feeRateSatPerKvb: 1.5 }), RangeError],
    ["minConfirmations", () => selectCoins([c], { ...ok, minConfirmations: -1 }), RangeError],
    ["maxWeight", () => selectCoins([c], { ...ok, maxWeight: 0 }), RangeError],
    ["duplicate id", () => selectCoins([c, c], ok), RangeError],
    ["value number", () => selectCoins([{ ...c, valueSats: 5 as never }], ok), TypeError],
    ["value zero", () => selectCoins([{ ...c, valueSats: 0n }], ok), RangeError],
    ["weight", () => selectCoins([{ ...c, inputWeight: -4 }], ok), RangeError],
    ["witness", () => selectCoins([{ ...c, witness: 1 as never }], ok), TypeError],
    ["confirmations", () => selectCoins([{ ...c, confirmations: 1.5 }], ok), RangeError],
    ["priceSelection candidates", () => priceSelection(null as never, ok), TypeError],
  ];
  for (const [name, fn, err] of table) assert.throws(fn, err, name);
});
