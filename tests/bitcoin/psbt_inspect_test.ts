import assert from "node:assert/strict";
import { base64, hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  NETWORK,
  OutScript,
  p2ms,
  p2pkh,
  p2sh,
  p2tr,
  p2wpkh,
  p2wsh,
  Script,
  SigHash,
  Transaction,
} from "@scure/btc-signer";
import {
  FAT_FINGER,
  type InspectOptions,
  inspectPsbt,
  type PsbtReport,
  type PsbtWarningCode,
  sighashName,
} from "../../src/bitcoin/psbt_inspect.ts";
import { type ParsedPsbt, parsePsbt } from "../../src/bitcoin/psbt_parse.ts";
import { createPsbt } from "../../src/bitcoin/psbt_create.ts";
import { parseRawTx } from "../../src/bitcoin/tx_metrics.ts";
import { feeRateSatPerKvb } from "../../src/bitcoin/amount.ts";
import type { BitcoinNetwork } from "../../src/bitcoin/network.ts";

// PSBTs are built here with @scure/btc-signer (the BIP174/370/371 vectors have their own
// inspectPsbt checks in bip17{4}/bip370/bip371 tests) and always go through parsePsbt.
const PRIV = [1, 2, 3, 4, 5].map((n) => hex.decode(n.toString(16).padStart(64, "0")));
const PUB = PRIV.map((k) => secp256k1.getPublicKey(k, true));
const XONLY = PUB.map((p) => p.slice(1));

const WPKH = p2wpkh(PUB[0]!, NETWORK);
const TR = p2tr(XONLY[1]!, undefined, NETWORK);
const PKH = p2pkh(PUB[2]!, NETWORK);
const SH_WPKH = p2sh(p2wpkh(PUB[3]!), NETWORK);
const MS = p2ms(2, [PUB[0]!, PUB[1]!, PUB[2]!]);
const WSH_MS = p2wsh(MS, NETWORK);
const DEST = p2wpkh(PUB[4]!, NETWORK);
const NON_STANDARD = hex.decode("51"); // bare OP_TRUE: no template matches
const FINGERPRINT = 0x12345678;
const H = 0x80000000;

function txid(n: number): string {
  return n.toString(16).padStart(2, "0").repeat(32);
}

/** A previous transaction paying `script` at output 1, for the legacy input's non-witness UTXO. */
function previousTx(script: Uint8Array, amount: bigint): Transaction {
  const prev = new Transaction();
  prev.addInput({ txid: txid(0xee), index: 0 });
  prev.addOutput({ script: DEST.script, amount: 1_000n });
  prev.addOutput({ script, amount });
  return prev;
}
const PKH_PREV = previousTx(PKH.script, 80_000n);

type InputSpec = Parameters<Transaction["addInput"]>[0];
type OutputSpec = Parameters<Transaction["addOutput"]>[0];

/** The five spend types, each with the UTXO data a BIP174 updater attaches. */
const INPUTS = {
  wpkh: { txid: txid(1), index: 0, witnessUtxo: { script: WPKH.script, amount: 50_000n } },
  tr: {
    txid: txid(2),
    index: 1,
    witnessUtxo: { script: TR.script, amount: 70_000n },
    tapInternalKey: XONLY[1]!,
  },
  pkh: { txid: PKH_PREV.id, index: 1, nonWitnessUtxo: PKH_PREV.toBytes(true, false) },
  shwpkh: {
    txid: txid(4),
    index: 0,
    witnessUtxo: { script: SH_WPKH.script, amount: 60_000n },
    redeemScript: SH_WPKH.redeemScript!,
  },
  wshms: {
    txid: txid(5),
    index: 2,
    witnessUtxo: { script: WSH_MS.script, amount: 90_000n },
    witnessScript: MS.script,
  },
} satisfies Record<string, InputSpec>;
const ALL_INPUTS: InputSpec[] = Object.values(INPUTS);
const INPUT_ADDRESSES = [WPKH.address, TR.address, PKH.address, SH_WPKH.address, WSH_MS.address];
const INPUT_TYPES = ["p2wpkh", "p2tr", "p2pkh", "p2sh", "p2wsh"];
const INPUTS_SATS = 350_000n;

function build(
  inputs: readonly InputSpec[],
  outputs: readonly OutputSpec[],
  opts: ConstructorParameters<typeof Transaction>[0] = {},
): Transaction {
  const tx = new Transaction({ allowUnknownOutputs: true, allowUnknownInputs: true, ...opts });
  for (const i of inputs) tx.addInput({ sequence: 0xfffffffd, ...i });
  for (const o of outputs) tx.addOutput(o);
  return tx;
}

function parse(tx: Transaction, network: BitcoinNetwork = "mainnet"): ParsedPsbt {
  return parsePsbt(base64.encode(tx.toPSBT()), { network });
}

function inspect(
  tx: Transaction,
  options: Partial<InspectOptions> = {},
): PsbtReport {
  const network = options.network ?? "mainnet";
  return inspectPsbt(parse(tx, network), { network, ...options });
}

const codes = (r: PsbtReport): PsbtWarningCode[] => r.warnings.map((w) => w.code);

/** Sign every input the five keys can sign (the multisig needs two of them). */
function signAll(tx: Transaction): void {
  for (const k of PRIV) {
    try {
      tx.sign(k);
    } catch {
      // this key signs none of the inputs
    }
  }
}

/** Outputs paying `amount` to DEST and the rest minus `fee` to a change output. */
function payAndChange(inputsSats: bigint, fee: bigint, amount = 100_000n): OutputSpec[] {
  return [
    { script: DEST.script, amount },
    { script: TR.script, amount: inputsSats - amount - fee },
  ];
}

Deno.test("inspectPsbt() reports an unsigned PSBT's exact fee and an estimated, upper-bound size", () => {
  const tx = build(ALL_INPUTS, payAndChange(INPUTS_SATS, 5_000n));
  const r = inspect(tx);
  assert.equal(r.psbtVersion, 0);
  assert.equal(r.totalInputSats, INPUTS_SATS);
  assert.equal(r.totalOutputSats, INPUTS_SATS - 5_000n);
  assert.equal(r.feeSats, 5_000n);
  assert.equal(r.txid, null);
  assert.ok(r.weight !== null && r.vsize === Math.ceil(r.weight / 4));
  assert.deepEqual(r.feeRate, { satPerKvb: feeRateSatPerKvb(5_000n, r.vsize!), exact: false });
  assert.deepEqual(r.warnings, []);
  assert.ok(r.inputs.every((i) => !i.signed && !i.finalized && !i.weightExact));
  assert.ok(r.inputs.every((i) => i.signatureStatus === "unsigned"));
  assert.equal(r.inputs.reduce((s, i) => s + i.weight!, 0) < r.weight!, true);

  // Signed and finalized: size is the real one, and the estimate was above it by < 1 vB an input.
  signAll(tx);
  tx.finalize();
  const final = inspect(tx);
  const extracted = parseRawTx(tx.extract());
  assert.equal(final.weight, extracted.weight);
  assert.equal(final.vsize, extracted.vsize);
  assert.equal(final.txid, extracted.txid);
  assert.equal(final.feeSats, 5_000n);
  assert.deepEqual(final.feeRate, {
    satPerKvb: feeRateSatPerKvb(5_000n, extracted.vsize),
    exact: true,
  });
  assert.ok(r.weight! >= extracted.weight, `estimate ${r.weight} < actual ${extracted.weight}`);
  assert.ok(r.vsize! - extracted.vsize <= tx.inputsLength, `estimate ${r.vsize} too loose`);
  assert.ok(final.inputs.every((i) => i.finalized && i.weightExact && i.signed));
  assert.deepEqual(
    final.inputs.map((i) => [i.signatureStatus, i.signatures.map((s) => s.status)]),
    [["valid", ["valid"]], ["valid", ["valid"]], ["valid", ["valid"]], ["valid", ["valid"]], [
      "valid",
      ["valid", "valid"],
    ]],
  );
  assert.deepEqual(final.warnings, []);
});

Deno.test("inspectPsbt(): signed but not finalized inputs are signed, verified and still estimated", () => {
  const tx = build(ALL_INPUTS, payAndChange(INPUTS_SATS, 5_000n));
  signAll(tx);
  const r = inspect(tx);
  assert.ok(r.inputs.every((i) => i.signed && !i.finalized), "signed, not finalized");
  assert.deepEqual(r.inputs.map((i) => i.signatureStatus), Array(5).fill("valid"));
  assert.deepEqual(r.inputs.map((i) => i.signatures.length), [1, 1, 1, 1, 3]);
  assert.deepEqual(r.inputs[1]!.signatures.map((s) => [s.kind, s.source]), [
    ["schnorr", "tap_key_sig"],
  ]);
  assert.equal(r.feeRate?.exact, false);
  assert.equal(r.txid, null);
  // One input finalized: its weight is exact, the transaction's still an estimate.
  tx.finalizeIdx(0);
  const mixed = inspect(tx);
  assert.deepEqual(mixed.inputs.map((i) => i.weightExact), [true, false, false, false, false]);
  assert.equal(mixed.feeRate?.exact, false);
  assert.ok(mixed.weight! <= r.weight!);
});

Deno.test("inspectPsbt() names each input's outpoint, value, script type and address, and whether it is signed", () => {
  const tx = build(ALL_INPUTS, payAndChange(INPUTS_SATS, 5_000n));
  const before = inspect(tx);
  assert.deepEqual(
    before.inputs.map((i) => [i.index, i.outpoint, i.valueSats, i.scriptType, i.address, i.signed]),
    ALL_INPUTS.map((spec, n) => [
      n,
      `${spec.txid}:${spec.index}`,
      [50_000n, 70_000n, 80_000n, 60_000n, 90_000n][n],
      INPUT_TYPES[n],
      INPUT_ADDRESSES[n],
      false,
    ]),
  );
  assert.ok(before.inputs.every((i) => i.sequence === 0xfffffffd));
  // The same inputs on testnet4 get tb1/m/2 addresses.
  const testnet = inspect(tx, { network: "testnet4" });
  assert.match(testnet.inputs[0]!.address!, /^tb1q/);
  assert.match(testnet.inputs[1]!.address!, /^tb1p/);
  assert.match(testnet.inputs[2]!.address!, /^[mn]/);
  assert.match(testnet.inputs[3]!.address!, /^2/);
  tx.sign(PRIV[0]!);
  const after = inspect(tx);
  // PRIV[0] signs the P2WPKH input and its share of the 2-of-3 multisig.
  assert.deepEqual(after.inputs.map((i) => i.signed), [true, false, false, false, true]);
  assert.equal(after.inputs[4]!.signatureStatus, "valid");
});

Deno.test("inspectPsbt() agrees with createPsbt() on the fee and estimated vsize of what it built", () => {
  const utxos = ALL_INPUTS.map((spec, n) => ({
    txid: spec.txid as string,
    vout: spec.index as number,
    valueSats: [50_000n, 70_000n, 80_000n, 60_000n, 90_000n][n]!,
    scriptPubKeyHex: hex.encode(
      n === 2 ? PKH.script : (spec as { witnessUtxo: { script: Uint8Array } }).witnessUtxo.script,
    ),
    ...(n === 1 ? { tapInternalKeyHex: hex.encode(XONLY[1]!) } : {}),
    ...(n === 2 ? { nonWitnessUtxoHex: hex.encode(PKH_PREV.toBytes(true, false)) } : {}),
    ...(n === 3 ? { redeemScriptHex: hex.encode(SH_WPKH.redeemScript!) } : {}),
    ...(n === 4 ? { witnessScriptHex: hex.encode(MS.script) } : {}),
  }));
  for (const psbtVersion of [0, 2] as const) {
    const created = createPsbt({
      outputs: [{ address: DEST.address!, amountSats: 100_000n }],
      utxos,
      feeRateSatPerKvb: 3_000,
      changeAddress: TR.address!,
      selection: "all",
      psbtVersion,
    }, { network: "mainnet" });
    const parsed = parsePsbt(created.psbtBase64, { network: "mainnet" });
    const r = inspectPsbt(parsed, { network: "mainnet", currentFeeRateSatPerKvb: 3_000 });
    assert.equal(r.psbtVersion, psbtVersion);
    assert.equal(r.feeSats, created.feeSats);
    assert.equal(r.vsize, created.vsize);
    assert.deepEqual(r.feeRate, { satPerKvb: created.feeRateSatPerKvb, exact: false });
    assert.equal(r.rbf, true);
    assert.deepEqual(r.warnings, []);
  }
});

Deno.test("inspectPsbt() warns missing-utxo and leaves fee and fee rate null when an input has no UTXO data", () => {
  const bare = { txid: txid(9), index: 0 };
  const tx = build([INPUTS.wpkh, bare], [{ script: DEST.script, amount: 10_000n }]);
  const r = inspect(tx);
  assert.deepEqual(codes(r), ["missing-utxo", "size-unknown"]);
  assert.equal(r.warnings[0]!.message, "Input 1 has no UTXO data: fee and fee rate are unknown");
  assert.equal(r.totalInputSats, null);
  assert.equal(r.feeSats, null);
  assert.equal(r.feeRate, null);
  assert.equal(r.weight, null);
  assert.equal(r.vsize, null);
  assert.deepEqual(
    [r.inputs[1]!.valueSats, r.inputs[1]!.scriptType, r.inputs[1]!.address, r.inputs[1]!.weight],
    [null, null, null, null],
  );
  assert.equal(r.inputs[0]!.valueSats, 50_000n);
  // A taproot internal key lets the size be estimated; the fee stays unknown.
  const withKey = inspect(
    build([INPUTS.wpkh, { ...bare, tapInternalKey: XONLY[1]! }], [
      { script: DEST.script, amount: 10_000n },
    ]),
  );
  assert.deepEqual(codes(withKey), ["missing-utxo"]);
  assert.ok(withKey.vsize !== null);
  assert.equal(withKey.feeSats, null);
  assert.equal(withKey.feeRate, null);
});

Deno.test("inspectPsbt() warns fee-rate-high above 10x the current estimate, and above 1,000 sat/vB without one", () => {
  const oneIn = (value: bigint, fee: bigint) =>
    build([{ ...INPUTS.wpkh, witnessUtxo: { script: WPKH.script, amount: value } }], [
      { script: DEST.script, amount: value - fee },
    ]);
  const vsize = inspect(oneIn(100_000n, 1_000n)).vsize!;
  assert.equal(vsize, 110); // 1 P2WPKH in, 1 P2WPKH out, 72-byte signature assumed

  // Current estimate 2 sat/vB: exactly 10x (20 sat/vB) passes, above it warns.
  const current = 2_000;
  const atLimit = inspect(oneIn(100_000n, 20n * 110n), { currentFeeRateSatPerKvb: current });
  assert.equal(atLimit.feeRate!.satPerKvb, 20_000);
  assert.deepEqual(codes(atLimit), []);
  const above = inspect(oneIn(100_000n, 20n * 110n + 1n), { currentFeeRateSatPerKvb: current });
  assert.deepEqual(above.warnings, [{
    code: "fee-rate-high",
    message: "Fee rate 20.009 sat/vB is more than 10x the current estimate (2 sat/vB)",
  }]);
  // The same PSBT without an estimate, or with a higher one, is fine.
  assert.deepEqual(codes(inspect(oneIn(100_000n, 20n * 110n + 1n))), []);
  assert.deepEqual(
    codes(inspect(oneIn(100_000n, 20n * 110n + 1n), { currentFeeRateSatPerKvb: 10_000 })),
    [],
  );

  // Absolute: 1,000 sat/vB passes, above it warns; a fee this size is also most of the value.
  assert.equal(FAT_FINGER.maxSatPerKvb, 1_000_000);
  const value = 10_000_000n;
  assert.deepEqual(codes(inspect(oneIn(value, 1_000n * 110n))), []);
  const absurd = inspect(oneIn(value, 1_000n * 110n + 110n));
  assert.deepEqual(absurd.warnings[0], {
    code: "fee-rate-high",
    message: "Fee rate 1001 sat/vB is above 1000 sat/vB",
  });
  // With an estimate, the relative message wins (one fee-rate-high warning, not two).
  const both = inspect(oneIn(value, 1_000n * 110n + 110n), { currentFeeRateSatPerKvb: 5_000 });
  assert.deepEqual(codes(both).filter((c) => c === "fee-rate-high").length, 1);
  assert.match(both.warnings[0]!.message, /more than 10x the current estimate \(5 sat\/vB\)/);
});

Deno.test("inspectPsbt() warns fee-high when the fee is over 10% of the amount sent and at least 100,000 sat", () => {
  const tx = (fee: bigint, sent: bigint) =>
    build([{ ...INPUTS.wpkh, witnessUtxo: { script: WPKH.script, amount: sent + fee } }], [
      { script: DEST.script, amount: sent },
    ]);
  assert.deepEqual(codes(inspect(tx(100_000n, 1_000_000n))), []); // exactly 10 %
  const high = inspect(tx(100_001n, 1_000_000n));
  assert.deepEqual(high.warnings, [{
    code: "fee-high",
    message: "Fee of 100001 sat is more than 10% of the 1000000 sat sent",
  }]);
  // A large share of a small consolidation is below the 100,000 sat floor: no warning.
  assert.deepEqual(codes(inspect(tx(99_999n, 1_000n))), []);
});

Deno.test("inspectPsbt() warns dust-output per output below Core's dust threshold (OP_RETURN excepted)", () => {
  const opReturn = OutScript.encode({ type: "unknown", script: hex.decode("6a0568656c6c6f") });
  const outputs: OutputSpec[] = [
    { script: DEST.script, amount: 293n }, // P2WPKH threshold 294
    { script: DEST.script, amount: 294n },
    { script: PKH.script, amount: 545n }, // P2PKH threshold 546
    { script: TR.script, amount: 329n }, // P2TR threshold 330
    { script: opReturn, amount: 0n },
  ];
  const r = inspect(build([INPUTS.wpkh], outputs));
  assert.deepEqual(r.outputs.map((o) => o.dust), [true, false, true, true, false]);
  assert.deepEqual(r.outputs.map((o) => o.scriptType), [
    "p2wpkh",
    "p2wpkh",
    "p2pkh",
    "p2tr",
    "op_return",
  ]);
  assert.equal(r.outputs[4]!.address, null);
  assert.deepEqual(r.warnings, [
    { code: "dust-output", message: "Output 0 pays 293 sat, below the dust threshold of 294 sat" },
    { code: "dust-output", message: "Output 2 pays 545 sat, below the dust threshold of 546 sat" },
    { code: "dust-output", message: "Output 3 pays 329 sat, below the dust threshold of 330 sat" },
  ]);
});

Deno.test("inspectPsbt() warns non-standard-script for outputs and inputs no template matches", () => {
  const r = inspect(
    build([
      INPUTS.wpkh,
      { txid: txid(7), index: 0, witnessUtxo: { script: NON_STANDARD, amount: 20_000n } },
    ], [{ script: NON_STANDARD, amount: 10_000n }, { script: DEST.script, amount: 50_000n }]),
  );
  assert.equal(r.outputs[0]!.scriptType, "nonstandard");
  assert.equal(r.outputs[0]!.address, null);
  assert.equal(r.inputs[1]!.scriptType, "nonstandard");
  assert.equal(r.inputs[1]!.address, null);
  assert.deepEqual(r.warnings.filter((w) => w.code === "non-standard-script"), [
    { code: "non-standard-script", message: "Input 1 spends a non-standard script" },
    { code: "non-standard-script", message: "Output 0 pays a non-standard script" },
  ]);
  // Its spending size is unknown, so the fee rate is too.
  assert.ok(codes(r).includes("size-unknown"));
  assert.equal(r.feeSats, 10_000n);
  assert.equal(r.feeRate, null);
});

Deno.test("inspectPsbt() warns network-mismatch for coin type 1' paths on mainnet and 0' on test networks", () => {
  const der = (coin: number) => ({ fingerprint: FINGERPRINT, path: [84 + H, coin + H, H, 0, 5] });
  const make = (coin: number) =>
    build([{ ...INPUTS.wpkh, bip32Derivation: [[PUB[0]!, der(coin)]] }], [
      { script: DEST.script, amount: 10_000n, bip32Derivation: [[PUB[4]!, der(coin)]] },
    ]);
  const testPaths = inspect(make(1));
  assert.deepEqual(testPaths.warnings, [
    {
      code: "network-mismatch",
      message: "input 0 derives keys with coin type 1' (test networks)",
    },
    {
      code: "network-mismatch",
      message: "output 0 derives keys with coin type 1' (test networks)",
    },
  ]);
  assert.deepEqual(codes(inspect(make(1), { network: "testnet4" })), []);
  assert.deepEqual(codes(inspect(make(0))), []);
  assert.deepEqual(codes(inspect(make(0), { network: "signet" })), [
    "network-mismatch",
    "network-mismatch",
  ]);
  // Paths outside BIP44/48/49/84/86 carry no network.
  const custom = build([{
    ...INPUTS.wpkh,
    bip32Derivation: [[PUB[0]!, { fingerprint: FINGERPRINT, path: [H, 1 + H] }]],
  }], [{ script: DEST.script, amount: 10_000n }]);
  assert.deepEqual(codes(inspect(custom)), []);
});

Deno.test("inspectPsbt() warns network-mismatch once for BIP174 vectors' testnet xpubs inspected on mainnet", () => {
  const vectors = JSON.parse(
    Deno.readTextFileSync(new URL("../vectors/bip174/bip-0174-vectors.json", import.meta.url)),
  ) as { cases: { description: string; base64: string }[] };
  // BIP174 case 25: a P2WSH 2-of-2 input with two tpub PSBT_GLOBAL_XPUBs.
  const c = vectors.cases[25]!;
  assert.match(c.description, /global xpubs/);
  const onMainnet = inspectPsbt(parsePsbt(c.base64, { network: "mainnet" }), {
    network: "mainnet",
  });
  assert.deepEqual(onMainnet.warnings.filter((w) => w.code === "network-mismatch"), [
    { code: "network-mismatch", message: "PSBT_GLOBAL_XPUB is a test network extended key" },
  ]);
  const onTestnet = inspectPsbt(parsePsbt(c.base64, { network: "testnet4" }), {
    network: "testnet4",
  });
  assert.ok(!codes(onTestnet).includes("network-mismatch"));
});

Deno.test("inspectPsbt() warns non-default-sighash for PSBT_IN_SIGHASH_TYPE and signatures other than ALL/DEFAULT", () => {
  const singleAcp = SigHash.SINGLE_ANYONECANPAY;
  const tx = build([
    { ...INPUTS.wpkh, sighashType: singleAcp },
    { ...INPUTS.tr, sighashType: SigHash.DEFAULT },
    { ...INPUTS.shwpkh, sighashType: SigHash.ALL },
  ], payAndChange(180_000n, 2_000n, 20_000n));
  const unsigned = inspect(tx);
  assert.deepEqual(unsigned.warnings, [
    { code: "non-default-sighash", message: "Input 0 uses SINGLE|ANYONECANPAY" },
  ]);
  assert.deepEqual(unsigned.inputs.map((i) => i.sighashTypes), [
    ["SINGLE|ANYONECANPAY"],
    ["DEFAULT"],
    ["ALL"],
  ]);
  tx.signIdx(PRIV[0]!, 0, [singleAcp]);
  tx.signIdx(PRIV[1]!, 1);
  tx.signIdx(PRIV[3]!, 2);
  const signed = inspect(tx);
  // The signature's own hash type is the same finding: reported once.
  assert.deepEqual(signed.warnings, unsigned.warnings);
  assert.deepEqual(signed.inputs.map((i) => i.signatureStatus), ["valid", "valid", "valid"]);
  assert.equal(signed.inputs[0]!.signatures[0]!.sighashType, singleAcp);
  // Without signature verification the hash types still come from the signatures.
  const notChecked = inspect(tx, { verifySignatures: false });
  assert.deepEqual(notChecked.inputs.map((i) => i.signatureStatus), Array(3).fill("not-checked"));
  assert.deepEqual(notChecked.inputs[0]!.signatures, []);
  assert.deepEqual(notChecked.warnings, unsigned.warnings);
});

Deno.test("sighashName() names the BIP143/BIP341 sighash types and shows others in hex", () => {
  const table: [number, string][] = [
    [0x00, "DEFAULT"],
    [0x01, "ALL"],
    [0x02, "NONE"],
    [0x03, "SINGLE"],
    [0x81, "ALL|ANYONECANPAY"],
    [0x82, "NONE|ANYONECANPAY"],
    [0x83, "SINGLE|ANYONECANPAY"],
    [0x80, "0x80"],
    [0x04, "0x04"],
    [0x181, "0x181"],
  ];
  for (const [type, name] of table) assert.equal(sighashName(type), name, `0x${type.toString(16)}`);
  assert.throws(() => sighashName(-1), RangeError);
  assert.throws(() => sighashName(1.5), RangeError);
});

Deno.test("inspectPsbt() sets rbf when some input's nSequence is below 0xfffffffe (BIP125)", () => {
  const r = (...sequences: number[]) =>
    inspect(build(
      sequences.map((sequence, n) => ({ ...INPUTS.wpkh, index: n, sequence })),
      [{ script: DEST.script, amount: 10_000n }],
    ));
  assert.equal(r(0xffffffff).rbf, false);
  assert.equal(r(0xfffffffe).rbf, false);
  assert.equal(r(0xfffffffe, 0xffffffff).rbf, false);
  assert.equal(r(0xfffffffd).rbf, true);
  assert.equal(r(0xffffffff, 0).rbf, true);
  assert.deepEqual(r(0xfffffffe, 5).inputs.map((i) => i.sequence), [0xfffffffe, 5]);
});

Deno.test("inspectPsbt() marks outputs carrying PSBT_OUT_BIP32_DERIVATION as change", () => {
  const der = { fingerprint: FINGERPRINT, path: [84 + H, H, H, 1, 0] };
  const r = inspect(build([INPUTS.wpkh], [
    { script: DEST.script, amount: 20_000n },
    { script: WPKH.script, amount: 25_000n, bip32Derivation: [[PUB[0]!, der]] },
  ]));
  assert.deepEqual(r.outputs.map((o) => o.isChange), [false, true]);
  assert.deepEqual(r.outputs.map((o) => o.address), [DEST.address, WPKH.address]);
  assert.deepEqual(r.outputs.map((o) => o.scriptPubKeyHex), [
    hex.encode(DEST.script),
    hex.encode(WPKH.script),
  ]);
  assert.deepEqual(r.outputs.map((o) => o.valueSats), [20_000n, 25_000n]);
});

Deno.test("inspectPsbt() warns invalid-signature, outputs-exceed-inputs, script-mismatch and witness-utxo-for-legacy-input", () => {
  // A partial signature with a flipped byte.
  const signed = build([INPUTS.wpkh], [{ script: DEST.script, amount: 40_000n }]);
  signed.sign(PRIV[0]!);
  const [pubkey, sig] = signed.getInput(0).partialSig![0]!;
  const bad = sig.slice();
  bad[10]! ^= 1;
  const tx = build([INPUTS.wpkh], [{ script: DEST.script, amount: 40_000n }]);
  tx.updateInput(0, { partialSig: [[pubkey, bad]] });
  const invalid = inspect(tx);
  assert.deepEqual(codes(invalid), ["invalid-signature"]);
  assert.equal(invalid.inputs[0]!.signatureStatus, "invalid");

  const over = inspect(build([INPUTS.wpkh], [{ script: DEST.script, amount: 50_001n }]));
  assert.deepEqual(over.warnings, [{
    code: "outputs-exceed-inputs",
    message: "Outputs exceed inputs by 1 sat: the transaction is invalid",
  }]);
  assert.equal(over.feeSats, -1n);
  assert.equal(over.feeRate, null);

  const wrongRedeem = inspect(
    build([{ ...INPUTS.shwpkh, redeemScript: p2wpkh(PUB[0]!).script }], [
      { script: DEST.script, amount: 10_000n },
    ], { disableScriptCheck: true }),
  );
  assert.deepEqual(wrongRedeem.warnings.find((w) => w.code === "script-mismatch"), {
    code: "script-mismatch",
    message: "Input 0: PSBT_IN_REDEEM_SCRIPT does not match the spent P2SH output",
  });

  const legacyWitnessUtxo = inspect(
    build([{ txid: txid(3), index: 0, witnessUtxo: { script: PKH.script, amount: 30_000n } }], [
      { script: DEST.script, amount: 10_000n },
    ]),
  );
  assert.deepEqual(codes(legacyWitnessUtxo), ["witness-utxo-for-legacy-input"]);
});

Deno.test("inspectPsbt() throws TypeError/RangeError for wrong arguments", () => {
  const parsed = parse(build([INPUTS.wpkh], [{ script: DEST.script, amount: 10_000n }]));
  const table: [string, () => unknown, ErrorConstructor][] = [
    ["parsed null", () => inspectPsbt(null as never, { network: "mainnet" }), TypeError],
    ["parsed string", () => inspectPsbt("cHNidP8=" as never, { network: "mainnet" }), TypeError],
    ["options null", () => inspectPsbt(parsed, null as never), TypeError],
    ["network unknown", () => inspectPsbt(parsed, { network: "testnet" as never }), TypeError],
    [
      "current rate negative",
      () => inspectPsbt(parsed, { network: "mainnet", currentFeeRateSatPerKvb: -1 }),
      RangeError,
    ],
    [
      "current rate fractional",
      () => inspectPsbt(parsed, { network: "mainnet", currentFeeRateSatPerKvb: 1.5 }),
      RangeError,
    ],
  ];
  for (const [name, call, type] of table) assert.throws(call, type, name);
});

Deno.test("inspectPsbt() names a tapscript signature's hash type, with or without signature checks", () => {
  // A taproot output with internal key PUB[0] and one leaf `<PUB[1]> OP_CHECKSIG`: PRIV[1] can
  // only sign the leaf, so scure adds a PSBT_IN_TAP_SCRIPT_SIG.
  const leafScript = Script.encode([XONLY[1]!, "CHECKSIG"]);
  const out = p2tr(XONLY[0]!, { script: leafScript }, NETWORK, true);
  const spend = {
    txid: txid(8),
    index: 0,
    witnessUtxo: { script: out.script, amount: 30_000n },
    tapInternalKey: XONLY[0]!,
    tapLeafScript: out.tapLeafScript!,
  };
  const outputs = [{ script: DEST.script, amount: 29_000n }];
  const signer = build([{ ...spend, sighashType: SigHash.SINGLE_ANYONECANPAY }], outputs);
  signer.signIdx(PRIV[1]!, 0, [SigHash.SINGLE_ANYONECANPAY]);
  const tapScriptSig = signer.getInput(0).tapScriptSig!;
  assert.equal(tapScriptSig.length, 1);
  assert.equal(tapScriptSig[0]![1].length, 65);
  // The same PSBT without PSBT_IN_SIGHASH_TYPE: only the signature tells the hash type.
  const tx = build([spend], outputs);
  tx.updateInput(0, { tapScriptSig });
  for (const verifySignatures of [true, false]) {
    const r = inspect(tx, { verifySignatures });
    assert.deepEqual(r.inputs[0]!.sighashTypes, ["SINGLE|ANYONECANPAY"], `${verifySignatures}`);
    assert.deepEqual(codes(r), ["non-default-sighash"], `${verifySignatures}`);
    assert.equal(r.inputs[0]!.signed, true);
  }
  const checked = inspect(tx).inputs[0]!;
  assert.equal(checked.signatureStatus, "valid");
  assert.deepEqual(checked.signatures.map((s) => [s.kind, s.source, s.status]), [
    ["schnorr", "tap_script_sig", "valid"],
  ]);
});
