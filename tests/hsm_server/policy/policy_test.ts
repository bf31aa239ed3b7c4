import assert from "node:assert/strict";
import { base64, hex } from "@scure/base";
import { HDKey } from "@scure/bip32";
import { p2tr, p2wpkh, Transaction } from "@scure/btc-signer";
import { ValidationError } from "../../../src/errors/app_error.ts";
import { networkParams } from "../../../src/bitcoin/network.ts";
import { parsePsbt } from "../../../src/bitcoin/psbt_parse.ts";
import {
  type CompiledPolicy,
  compilePolicy,
  evaluatePolicy,
  MAX_POLICY_ADDRESSES,
  MAX_POLICY_DERIVED_SCRIPTS,
  MAX_POLICY_DESCRIPTORS,
  parseSigningPolicy,
  type PolicyDecision,
  type PolicyRule,
  policyToJson,
  type RequestFacts,
  requestFacts,
  SigningPolicySchema,
} from "../../../src/hsm_server/policy/policy.ts";

// Keys are made here from fixed seeds with @scure/bip32 (tpub versions: regtest uses test keys).
const NETWORK = "regtest" as const;
const NET = networkParams(NETWORK);
const TEST_VERSIONS = { private: 0x04358394, public: 0x043587cf };
const H = 0x80000000;
const ROOT = HDKey.fromMasterSeed(new Uint8Array(32).fill(7), TEST_VERSIONS);
const OTHER = HDKey.fromMasterSeed(new Uint8Array(32).fill(9), TEST_VERSIONS);
const FP = ROOT.fingerprint;
const ACCOUNT = [84 + H, 1 + H, 0 + H];

function derive(root: HDKey, path: readonly number[]): HDKey {
  return path.reduce((k, i) => k.deriveChild(i), root);
}
function pubAt(root: HDKey, path: readonly number[]): Uint8Array {
  return derive(root, path).publicKey!;
}
function wpkhAt(root: HDKey, path: readonly number[]) {
  return p2wpkh(pubAt(root, path), NET);
}
function txid(n: number): string {
  return n.toString(16).padStart(2, "0").repeat(32);
}

const INPUT_PATH = [...ACCOUNT, 0, 0];
const CHANGE_PATH = [...ACCOUNT, 1, 0];
const SPEND = wpkhAt(ROOT, INPUT_PATH);
const CHANGE = wpkhAt(ROOT, CHANGE_PATH);
const DEST = wpkhAt(OTHER, [...ACCOUNT, 0, 5]);
const DEST2 = wpkhAt(OTHER, [...ACCOUNT, 0, 6]);

type InputSpec = Parameters<Transaction["addInput"]>[0];
type OutputSpec = Parameters<Transaction["addOutput"]>[0];

const KEY_INPUT: InputSpec = {
  txid: txid(1),
  index: 0,
  witnessUtxo: { script: SPEND.script, amount: 1_000_000n },
  bip32Derivation: [[pubAt(ROOT, INPUT_PATH), { fingerprint: FP, path: INPUT_PATH }]],
};
const PAY: OutputSpec = { script: DEST.script, amount: 300_000n };
const CHANGE_OUT: OutputSpec = {
  script: CHANGE.script,
  amount: 690_000n,
  bip32Derivation: [[pubAt(ROOT, CHANGE_PATH), { fingerprint: FP, path: CHANGE_PATH }]],
};

/** A PSBT as the HSM receives it: serialised, then strictly parsed. */
function psbt(inputs: InputSpec[], outputs: OutputSpec[]): Transaction {
  const tx = new Transaction({ allowUnknownOutputs: true });
  // scure refuses to add inputs or outputs once one is signed, so signatures go in last.
  const signatures = inputs.map(({ partialSig, tapKeySig, tapScriptSig, ...rest }) => {
    tx.addInput(rest);
    return { partialSig, tapKeySig, tapScriptSig };
  });
  for (const o of outputs) tx.addOutput(o);
  for (const [i, sigs] of signatures.entries()) {
    const present = Object.fromEntries(Object.entries(sigs).filter(([, v]) => v !== undefined));
    if (Object.keys(present).length > 0) tx.updateInput(i, present, true);
  }
  return parsePsbt(base64.encode(tx.toPSBT()), { network: NETWORK }).tx;
}

/** The error `fn` throws, checked against `type`. */
function thrown<E extends Error>(fn: () => unknown, type: new (...a: never[]) => E): E {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name} to be thrown`);
}

/**
 * The signer's own-output test, as the HSM does it: a derivation of the key whose derived
 * public key is the one listed and pays the output script.
 */
function ownOutput(tx: Transaction) {
  return (index: number): boolean => {
    const out = tx.getOutput(index);
    for (const [pub, d] of out.bip32Derivation ?? []) {
      if (d.fingerprint !== FP) continue;
      const derived = pubAt(ROOT, d.path);
      if (hex.encode(derived) !== hex.encode(pub)) continue;
      if (hex.encode(p2wpkh(pub, NET).script) === hex.encode(out.script!)) return true;
    }
    return false;
  };
}

function factsOf(tx: Transaction): RequestFacts {
  return requestFacts(tx, { network: NETWORK, isOwnOutput: ownOutput(tx), keyFingerprints: [FP] });
}

function compile(policy: unknown): CompiledPolicy {
  return compilePolicy(parseSigningPolicy(policy), NETWORK);
}

function evaluate(
  policy: unknown,
  tx: Transaction,
  spentLast24hSats = 0n,
): PolicyDecision {
  return evaluatePolicy(policy === null ? null : compile(policy), factsOf(tx), {
    network: NETWORK,
    spentLast24hSats,
  });
}

function rules(decision: PolicyDecision): PolicyRule[] {
  return decision.failures.map((f) => f.rule);
}

/** Asserts a denial by exactly `expected` (in order), with client-safe messages. */
function assertDenied(decision: PolicyDecision, expected: PolicyRule[]): void {
  assert.equal(decision.allowed, false);
  assert.deepEqual(rules(decision), expected);
  for (const f of decision.failures) {
    assert.ok(f.message.length > 0);
    assert.ok(!/tprv|xprv|tpub|xpub/.test(f.message), f.message);
  }
}

const STANDARD = psbt([KEY_INPUT], [PAY, CHANGE_OUT]);
const BASE = { networks: ["regtest"] };

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

Deno.test("SigningPolicySchema fills defaults and turns amounts into bigint", () => {
  const p = parseSigningPolicy({
    networks: ["regtest", "signet"],
    maxAmountPerTxSats: "500000",
    maxAmountPer24hSats: "2100000000000000",
    maxFeeSats: "0",
    maxFeeRateSatPerVb: 2.5,
  });
  assert.equal(p.maxAmountPerTxSats, 500_000n);
  assert.equal(p.maxAmountPer24hSats, 2_100_000_000_000_000n);
  assert.equal(p.maxFeeSats, 0n);
  assert.deepEqual(p.sighashTypes, [1, 0]);
  assert.equal(p.changeToOwnDerivations, true);
  assert.equal(p.destinations, undefined);
});

Deno.test("SigningPolicySchema refuses unknown fields, bad amounts and oversized lists", () => {
  const bad: [string, unknown][] = [
    ["unknown top-level field", { ...BASE, maxAmountPerTx: "1" }],
    ["unknown destinations field", { ...BASE, destinations: { addrs: [] } }],
    [
      "unknown descriptor field",
      { ...BASE, destinations: { descriptors: [{ descriptor: "x", start: 0 }] } },
    ],
    ["no networks", { networks: [] }],
    ["missing networks", {}],
    ["unknown network", { networks: ["testnet3"] }],
    ["repeated network", { networks: ["regtest", "regtest"] }],
    ["amount as number", { ...BASE, maxAmountPerTxSats: 1000 }],
    ["amount with leading zero", { ...BASE, maxAmountPerTxSats: "01" }],
    ["negative amount", { ...BASE, maxFeeSats: "-1" }],
    ["fractional amount", { ...BASE, maxAmountPer24hSats: "1.5" }],
    ["amount above 21M BTC", { ...BASE, maxAmountPerTxSats: "2100000000000001" }],
    ["negative fee rate", { ...BASE, maxFeeRateSatPerVb: -1 }],
    ["fee rate not finite", { ...BASE, maxFeeRateSatPerVb: Infinity }],
    ["unknown sighash type", { ...BASE, sighashTypes: [4] }],
    ["empty sighash list", { ...BASE, sighashTypes: [] }],
    ["change flag not boolean", { ...BASE, changeToOwnDerivations: "yes" }],
    [
      "too many addresses",
      {
        ...BASE,
        destinations: {
          addresses: Array.from({ length: MAX_POLICY_ADDRESSES + 1 }, () => DEST.address!),
        },
      },
    ],
    [
      "too many descriptors",
      {
        ...BASE,
        destinations: {
          descriptors: Array.from(
            { length: MAX_POLICY_DESCRIPTORS + 1 },
            () => ({ descriptor: `addr(${DEST.address})` }),
          ),
        },
      },
    ],
    [
      "range end before start",
      { ...BASE, destinations: { descriptors: [{ descriptor: "x", range: [5, 4] }] } },
    ],
    [
      "range over 1000 indexes",
      { ...BASE, destinations: { descriptors: [{ descriptor: "x", range: [0, 1000] }] } },
    ],
    [
      "ranged descriptors expanding to more than MAX_POLICY_DERIVED_SCRIPTS scripts",
      {
        ...BASE,
        destinations: {
          descriptors: Array.from(
            { length: MAX_POLICY_DERIVED_SCRIPTS / 1000 + 1 },
            () => ({ descriptor: "wpkh(xpub/0/*)" }),
          ),
        },
      },
    ],
  ];
  for (const [label, input] of bad) {
    assert.equal(SigningPolicySchema.safeParse(input).success, false, label);
    assert.throws(() => parseSigningPolicy(input), ValidationError, label);
  }
  assert.equal(
    SigningPolicySchema.safeParse({
      ...BASE,
      destinations: { addresses: Array.from({ length: MAX_POLICY_ADDRESSES }, () => "a") },
    }).success,
    true,
  );
});

Deno.test("parseSigningPolicy() names every invalid field in its issues", () => {
  const err = thrown(
    () => parseSigningPolicy({ networks: [], maxFeeSats: "x", extra: 1 }),
    ValidationError,
  );
  assert.equal(err.status, 422);
  const paths = err.issues.map((i) => i.path);
  assert.ok(paths.includes("policy.networks"), paths.join());
  assert.ok(paths.includes("policy.maxFeeSats"), paths.join());
  assert.ok(paths.some((p) => p === "policy" || p.startsWith("policy")), paths.join());
});

Deno.test("policyToJson() round-trips through the schema", () => {
  const p = parseSigningPolicy({
    networks: ["regtest"],
    maxAmountPerTxSats: "1",
    maxAmountPer24hSats: "2",
    maxFeeSats: "3",
    maxFeeRateSatPerVb: 4.5,
    destinations: { addresses: [DEST.address!], descriptors: [{ descriptor: "d", range: [1, 2] }] },
    sighashTypes: [1],
    changeToOwnDerivations: false,
  });
  const json = policyToJson(p);
  assert.equal(json.maxAmountPerTxSats, "1");
  assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
  assert.deepEqual(parseSigningPolicy(json), p);
});

// ---------------------------------------------------------------------------------------------
// compilePolicy
// ---------------------------------------------------------------------------------------------

Deno.test("compilePolicy() accepts the stored JSON form and applies its defaults", () => {
  const compiled = compilePolicy(
    { networks: ["regtest"], maxAmountPerTxSats: "10" } as never,
    NETWORK,
  );
  assert.equal(compiled.policy.maxAmountPerTxSats, 10n);
  assert.equal(compiled.policy.changeToOwnDerivations, true);
  assert.deepEqual([...compiled.sighashTypes].sort(), [0, 1]);
  assert.ok(Object.isFrozen(compiled));
  assert.throws(
    () => compilePolicy({ networks: ["regtest"], x: 1 } as never, NETWORK),
    ValidationError,
  );
});

Deno.test("compilePolicy() refuses addresses and descriptors not valid on the network", () => {
  const mainnetXpub = HDKey.fromMasterSeed(new Uint8Array(32).fill(3)).publicExtendedKey;
  const err = thrown(
    () =>
      compile({
        ...BASE,
        destinations: {
          addresses: [DEST.address!, p2wpkh(pubAt(OTHER, [1]), networkParams("mainnet")).address!],
          descriptors: [{ descriptor: `wpkh(${mainnetXpub}/0/*)` }, { descriptor: "nonsense(" }],
        },
      }),
    ValidationError,
  );
  assert.equal(err.status, 422);
  assert.deepEqual(err.issues.map((i) => i.path), [
    "policy.destinations.addresses.1",
    "policy.destinations.descriptors.0",
    "policy.destinations.descriptors.1",
  ]);
  for (const i of err.issues) assert.ok(!i.message.includes(mainnetXpub), i.message);
});

Deno.test("compilePolicy() and evaluatePolicy() reject wrong argument types", () => {
  assert.throws(() => compilePolicy(BASE as never, "bitcoin" as never), TypeError);
  const facts = factsOf(STANDARD);
  const ctx = { network: NETWORK, spentLast24hSats: 0n };
  const forged = { ...compile(BASE) };
  assert.throws(() => evaluatePolicy(forged, facts, ctx), TypeError);
  assert.throws(() => evaluatePolicy(compile(BASE), null as never, ctx), TypeError);
  assert.throws(
    () => evaluatePolicy(compile(BASE), facts, { network: NETWORK, spentLast24hSats: 0 as never }),
    TypeError,
  );
  assert.throws(
    () => evaluatePolicy(compile(BASE), facts, { network: NETWORK, spentLast24hSats: -1n }),
    RangeError,
  );
});

// ---------------------------------------------------------------------------------------------
// requestFacts
// ---------------------------------------------------------------------------------------------

Deno.test("requestFacts() reports outputs, own change, amount, fee and vsize", () => {
  const facts = factsOf(STANDARD);
  assert.deepEqual(facts.outputs.map((o) => [o.index, o.own, o.claimedChange, o.valueSats]), [
    [0, false, false, 300_000n],
    [1, true, true, 690_000n],
  ]);
  assert.equal(facts.outputs[0]!.address, DEST.address);
  assert.equal(facts.outputs[0]!.scriptPubKeyHex, hex.encode(DEST.script));
  assert.equal(facts.amountSats, 300_000n);
  assert.equal(facts.feeSats, 10_000n);
  assert.ok(facts.vsize !== null && facts.vsize > 100 && facts.vsize < 200, String(facts.vsize));
  assert.deepEqual(facts.sighashTypes, []);
  assert.deepEqual(facts.networkFindings, []);
});

Deno.test("requestFacts() has no fee when an input lacks UTXO data", () => {
  const tx = psbt([KEY_INPUT, { txid: txid(2), index: 1 }], [PAY, CHANGE_OUT]);
  assert.equal(factsOf(tx).feeSats, null);
});

Deno.test("requestFacts() reads sighash types from PSBT fields and existing signatures", () => {
  const tr = p2tr(pubAt(OTHER, [2]).slice(1), undefined, NET);
  const tx = psbt([
    { ...KEY_INPUT, sighashType: 0x83 },
    {
      txid: txid(3),
      index: 0,
      witnessUtxo: { script: DEST2.script, amount: 5_000n },
      // A DER-shaped signature whose last byte is the hash type (SIGHASH_NONE).
      partialSig: [[
        pubAt(OTHER, [...ACCOUNT, 0, 6]),
        new Uint8Array([0x30, 0x06, 1, 2, 3, 4, 5, 6, 0x02]),
      ]],
    },
    {
      txid: txid(4),
      index: 0,
      witnessUtxo: { script: tr.script, amount: 5_000n },
      tapKeySig: new Uint8Array(64).fill(1),
    },
  ], [PAY, CHANGE_OUT]);
  const facts = factsOf(tx);
  assert.deepEqual(facts.inputs.map((i) => i.sighashTypes), [[0x83], [0x02], [0x00]]);
  assert.deepEqual(facts.sighashTypes, [0x00, 0x02, 0x83]);
});

Deno.test("requestFacts() counts a derivation claim only for the key's fingerprints", () => {
  const foreign: OutputSpec = {
    script: DEST2.script,
    amount: 1_000n,
    bip32Derivation: [[pubAt(OTHER, [...ACCOUNT, 0, 6]), {
      fingerprint: OTHER.fingerprint,
      path: [...ACCOUNT, 0, 6],
    }]],
  };
  const tx = psbt([KEY_INPUT], [PAY, foreign]);
  assert.equal(factsOf(tx).outputs[1]!.claimedChange, false);
  // Without fingerprints, any derivation is a claim (the stricter reading).
  const strict = requestFacts(tx, { network: NETWORK, isOwnOutput: () => false });
  assert.equal(strict.outputs[1]!.claimedChange, true);
});

Deno.test("requestFacts() rejects wrong argument types", () => {
  const own = ownOutput(STANDARD);
  assert.throws(() => requestFacts({} as never, { network: NETWORK, isOwnOutput: own }), TypeError);
  assert.throws(() => requestFacts(STANDARD, null as never), TypeError);
  assert.throws(
    () => requestFacts(STANDARD, { network: "main" as never, isOwnOutput: own }),
    TypeError,
  );
  assert.throws(
    () => requestFacts(STANDARD, { network: NETWORK, isOwnOutput: 1 as never }),
    TypeError,
  );
  assert.throws(
    () => requestFacts(STANDARD, { network: NETWORK, isOwnOutput: () => 1 as never }),
    TypeError,
  );
  assert.throws(
    () => requestFacts(STANDARD, { network: NETWORK, isOwnOutput: own, keyFingerprints: [-1] }),
    RangeError,
  );
});

// ---------------------------------------------------------------------------------------------
// evaluatePolicy: allow, then one denial per rule
// ---------------------------------------------------------------------------------------------

const FULL_POLICY = {
  networks: ["regtest"],
  maxAmountPerTxSats: "300000",
  maxAmountPer24hSats: "1000000",
  destinations: { addresses: [DEST.address!] },
  maxFeeRateSatPerVb: 100,
  maxFeeSats: "10000",
  sighashTypes: [1],
  changeToOwnDerivations: true,
};

Deno.test("evaluatePolicy() allows a request within every limit", () => {
  const decision = evaluate(FULL_POLICY, STANDARD, 700_000n);
  assert.deepEqual(decision, { allowed: true, amountSats: 300_000n, failures: [] });
  assert.equal(evaluate(BASE, STANDARD).allowed, true);
});

Deno.test("evaluatePolicy() rule no-policy: a key without a policy signs nothing", () => {
  const decision = evaluate(null, STANDARD);
  assertDenied(decision, ["no-policy"]);
  assert.equal(decision.amountSats, 300_000n);
});

Deno.test("evaluatePolicy() rule network: the HSM's network is not in the policy", () => {
  assertDenied(evaluate({ networks: ["mainnet", "signet"] }, STANDARD), ["network"]);
  // Compiled for another network than the one evaluated.
  const compiled = compilePolicy(parseSigningPolicy({ networks: ["regtest", "signet"] }), "signet");
  assertDenied(
    evaluatePolicy(compiled, factsOf(STANDARD), { network: NETWORK, spentLast24hSats: 0n }),
    ["network"],
  );
});

Deno.test("evaluatePolicy() rule network: the PSBT derives keys with mainnet's coin type", () => {
  const path = [84 + H, 0 + H, 0 + H, 0, 0];
  const tx = psbt([{
    ...KEY_INPUT,
    bip32Derivation: [[pubAt(ROOT, path), { fingerprint: FP, path }]],
  }], [PAY]);
  const decision = evaluate(BASE, tx);
  assertDenied(decision, ["network"]);
  assert.match(decision.failures[0]!.message, /coin type 0'/);
});

Deno.test("evaluatePolicy() rule max-amount-per-tx", () => {
  const decision = evaluate({ ...BASE, maxAmountPerTxSats: "299999" }, STANDARD);
  assertDenied(decision, ["max-amount-per-tx"]);
  assert.match(decision.failures[0]!.message, /300000 sat exceeds .* 299999 sat/);
});

Deno.test("evaluatePolicy() rule max-amount-per-24h counts what was already signed", () => {
  const policy = { ...BASE, maxAmountPer24hSats: "1000000" };
  assert.equal(evaluate(policy, STANDARD, 700_000n).allowed, true);
  const decision = evaluate(policy, STANDARD, 700_001n);
  assertDenied(decision, ["max-amount-per-24h"]);
  assert.match(decision.failures[0]!.message, /300000 sat plus 700001 sat/);
});

Deno.test("evaluatePolicy() rule destination names each output off the allowlist", () => {
  const opReturn: OutputSpec = { script: new Uint8Array([0x6a, 0x01, 0x00]), amount: 0n };
  const tx = psbt([KEY_INPUT], [
    PAY,
    { script: DEST2.script, amount: 1_000n },
    CHANGE_OUT,
    opReturn,
  ]);
  const decision = evaluate({ ...BASE, destinations: { addresses: [DEST.address!] } }, tx);
  assertDenied(decision, ["destination", "destination"]);
  assert.match(decision.failures[0]!.message, new RegExp(`Output 1 pays "${DEST2.address}"`));
  assert.match(decision.failures[1]!.message, /Output 3 pays a script without an address/);
  // Own change needs no allowlist entry; an empty allowlist allows only own outputs.
  assertDenied(evaluate({ ...BASE, destinations: {} }, STANDARD), ["destination"]);
  assert.equal(
    evaluate({ ...BASE, destinations: {} }, psbt([KEY_INPUT], [CHANGE_OUT])).allowed,
    true,
  );
});

Deno.test("evaluatePolicy() rule max-fee-rate", () => {
  const facts = factsOf(STANDARD);
  const rate = Number(facts.feeSats!) / facts.vsize!; // ~70 sat/vB
  assert.equal(evaluate({ ...BASE, maxFeeRateSatPerVb: Math.ceil(rate) }, STANDARD).allowed, true);
  const decision = evaluate({ ...BASE, maxFeeRateSatPerVb: 50 }, STANDARD);
  assertDenied(decision, ["max-fee-rate"]);
  assert.match(decision.failures[0]!.message, /exceeds the limit of 50 sat\/vB/);
});

Deno.test("evaluatePolicy() rule max-fee", () => {
  assert.equal(evaluate({ ...BASE, maxFeeSats: "10000" }, STANDARD).allowed, true);
  assertDenied(evaluate({ ...BASE, maxFeeSats: "9999" }, STANDARD), ["max-fee"]);
});

Deno.test("evaluatePolicy() rule fee-unknown: fee limits without UTXO data fail closed", () => {
  const tx = psbt([KEY_INPUT, { txid: txid(2), index: 1 }], [PAY, CHANGE_OUT]);
  assertDenied(evaluate({ ...BASE, maxFeeSats: "10000" }, tx), ["fee-unknown"]);
  assertDenied(evaluate({ ...BASE, maxFeeRateSatPerVb: 10 }, tx), ["fee-unknown"]);
  // Without a fee rule an unknown fee is no reason to refuse.
  assert.equal(evaluate(BASE, tx).allowed, true);
});

Deno.test("evaluatePolicy() rule fee-unknown: a fee rate limit with an unknown size fails closed", () => {
  // P2WSH without its witness script: the spending size cannot be estimated.
  const wsh = { script: hex.decode(`0020${"ab".repeat(32)}`) };
  const tx = psbt([KEY_INPUT, {
    txid: txid(5),
    index: 0,
    witnessUtxo: { script: wsh.script, amount: 10_000n },
  }], [PAY, CHANGE_OUT]);
  const facts = factsOf(tx);
  assert.equal(facts.vsize, null);
  assert.equal(facts.feeSats, 20_000n);
  assertDenied(evaluate({ ...BASE, maxFeeRateSatPerVb: 1000 }, tx), ["fee-unknown"]);
  assert.equal(evaluate({ ...BASE, maxFeeSats: "20000" }, tx).allowed, true);
});

Deno.test("evaluatePolicy() rule sighash names the input and the type", () => {
  const tx = psbt([{ ...KEY_INPUT, sighashType: 0x83 }], [PAY, CHANGE_OUT]);
  const decision = evaluate(BASE, tx);
  assertDenied(decision, ["sighash"]);
  assert.match(decision.failures[0]!.message, /Input 0 uses sighash SINGLE\|ANYONECANPAY/);
  assert.equal(evaluate({ ...BASE, sighashTypes: [0x83] }, tx).allowed, true);
  // The defaults allow ALL and DEFAULT; a policy of ALL only refuses DEFAULT.
  const all = psbt([{ ...KEY_INPUT, sighashType: 0x01 }], [PAY, CHANGE_OUT]);
  assert.equal(evaluate(BASE, all).allowed, true);
  const dflt = psbt([{ ...KEY_INPUT, sighashType: 0x00 }], [PAY, CHANGE_OUT]);
  assertDenied(evaluate({ ...BASE, sighashTypes: [1] }, dflt), ["sighash"]);
});

Deno.test("evaluatePolicy() rule change: a claimed change output not derived from the key", () => {
  // Names the key's fingerprint and a real derived key, but pays someone else's script.
  const lying: OutputSpec = { ...CHANGE_OUT, script: DEST2.script };
  const tx = psbt([KEY_INPUT], [PAY, lying]);
  const facts = factsOf(tx);
  assert.equal(facts.outputs[1]!.own, false);
  assert.equal(facts.outputs[1]!.claimedChange, true);
  assert.equal(facts.amountSats, 990_000n); // it leaves the key, so it counts
  const decision = evaluate(BASE, tx);
  assertDenied(decision, ["change"]);
  assert.match(decision.failures[0]!.message, /^Output 1 /);
  // Opting out keeps it counted as spent (and subject to the allowlist), never as change.
  const optOut = evaluate({ ...BASE, changeToOwnDerivations: false }, tx);
  assert.deepEqual(optOut, { allowed: true, amountSats: 990_000n, failures: [] });
  assertDenied(
    evaluate({ ...BASE, changeToOwnDerivations: false, maxAmountPerTxSats: "300000" }, tx),
    ["max-amount-per-tx"],
  );
});

Deno.test("evaluatePolicy() lists every failed rule together, in rule order", () => {
  const lying: OutputSpec = { ...CHANGE_OUT, script: DEST2.script };
  const tx = psbt([{ ...KEY_INPUT, sighashType: 0x82 }], [PAY, lying]);
  const decision = evaluate(
    {
      networks: ["signet", "regtest"],
      maxAmountPerTxSats: "1000",
      maxAmountPer24hSats: "1000000",
      destinations: { addresses: [DEST.address!] },
      maxFeeRateSatPerVb: 1,
      maxFeeSats: "1",
      sighashTypes: [1],
    },
    tx,
    500_000n,
  );
  assertDenied(decision, [
    "max-amount-per-tx",
    "max-amount-per-24h",
    "destination",
    "max-fee-rate",
    "max-fee",
    "sighash",
    "change",
  ]);
  assert.equal(decision.amountSats, 990_000n);
});

// ---------------------------------------------------------------------------------------------
// Descriptor allowlist
// ---------------------------------------------------------------------------------------------

const OTHER_ACCOUNT = derive(OTHER, ACCOUNT);
const OTHER_FP_HEX = OTHER.fingerprint.toString(16).padStart(8, "0");
const RANGED = `wpkh([${OTHER_FP_HEX}/84h/1h/0h]${OTHER_ACCOUNT.publicExtendedKey}/0/*)`;

function payTo(script: Uint8Array): Transaction {
  return psbt([KEY_INPUT], [{ script, amount: 300_000n }, CHANGE_OUT]);
}

Deno.test("evaluatePolicy() descriptor allowlist: ranged descriptors expand over 0..999", () => {
  const compiled = compile({ ...BASE, destinations: { descriptors: [{ descriptor: RANGED }] } });
  assert.equal(compiled.allowedScripts?.size, 1000);
  const check = (script: Uint8Array) =>
    evaluatePolicy(compiled, factsOf(payTo(script)), { network: NETWORK, spentLast24hSats: 0n });
  assert.equal(check(wpkhAt(OTHER, [...ACCOUNT, 0, 0]).script).allowed, true);
  assert.equal(check(wpkhAt(OTHER, [...ACCOUNT, 0, 999]).script).allowed, true);
  assertDenied(check(wpkhAt(OTHER, [...ACCOUNT, 0, 1000]).script), ["destination"]);
  assertDenied(check(wpkhAt(OTHER, [...ACCOUNT, 1, 0]).script), ["destination"]);
});

Deno.test("evaluatePolicy() descriptor allowlist: explicit ranges and fixed descriptors", () => {
  const fixed = `tr(${hex.encode(pubAt(OTHER, [7]).slice(1))})`;
  const compiled = compile({
    ...BASE,
    destinations: {
      addresses: [DEST.address!],
      descriptors: [{ descriptor: RANGED, range: [1500, 1509] }, { descriptor: fixed }],
    },
  });
  assert.equal(compiled.allowedScripts?.size, 12);
  const check = (script: Uint8Array) =>
    evaluatePolicy(compiled, factsOf(payTo(script)), { network: NETWORK, spentLast24hSats: 0n });
  assert.equal(check(wpkhAt(OTHER, [...ACCOUNT, 0, 1505]).script).allowed, true);
  assertDenied(check(wpkhAt(OTHER, [...ACCOUNT, 0, 4]).script), ["destination"]);
  assert.equal(check(p2tr(pubAt(OTHER, [7]).slice(1), undefined, NET).script).allowed, true);
  assert.equal(check(DEST.script).allowed, true);
});
