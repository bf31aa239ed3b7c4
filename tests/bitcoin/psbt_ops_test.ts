/**
 * BIP174 role workflow (combiner, unknown-key combiner, finalizer, extractor)
 * through `psbt_ops.ts`, plus its error paths.
 */
import assert from "node:assert/strict";
import { base64, hex } from "@scure/base";
import { _DebugPSBT, Transaction } from "@scure/btc-signer";
import { parsePsbt } from "../../src/bitcoin/psbt_parse.ts";
import {
  combinePsbts,
  extractTransaction,
  finalizePsbt,
  psbtVersionOf,
} from "../../src/bitcoin/psbt_ops.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

interface Encoded {
  hex: string;
}
const VECTORS = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/bip174/bip-0174-vectors.json", import.meta.url)),
) as {
  role_workflow: {
    creator: { result: Encoded };
    updater: { result: Encoded };
    updater_add_sighash_all: { result: Encoded };
    signer_1: { result: Encoded };
    signer_2: { result: Encoded };
    combiner: { inputs: string[]; result: Encoded };
    finalizer: { input: string; result: Encoded };
    extractor: { input: string; result_tx_hex: string };
    combiner_unknown_keys: { inputs: Encoded[]; result: Encoded };
  };
};
const RW = VECTORS.role_workflow;

const parse = (h: string) => parsePsbt(h, { network: "testnet4" }).tx;
const bytesOf = (b64: string) => hex.encode(base64.decode(b64));
/** The raw key-value pairs of every map, order-insensitive (scure's debug decoder). */
const maps = (h: string) => _DebugPSBT.decode(hex.decode(h));

function rejects(fn: () => unknown, pattern: RegExp, extensions?: Record<string, unknown>): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.status, 422);
    assert.match(e.message, pattern);
    if (extensions) assert.deepEqual(e.extensions, extensions);
    return true;
  });
}

Deno.test("combinePsbts() merges the BIP174 signer outputs into the combiner's PSBT", () => {
  assert.deepEqual(RW.combiner.inputs, ["signer_1.result", "signer_2.result"]);
  const combined = combinePsbts([parse(RW.signer_1.result.hex), parse(RW.signer_2.result.hex)]);
  const got = bytesOf(combined.psbtBase64);
  const expected = RW.combiner.result.hex;
  assert.equal(combined.psbtVersion, 0);
  // Same key-value pairs in every map, same length.
  assert.deepEqual(maps(got), maps(expected));
  assert.equal(got.length, expected.length);
  // Byte-exact against the canonical serialisation of the expected PSBT. The
  // BIP's own bytes list input 1's two partial signatures in Bitcoin Core's
  // map order (by key hash); scure orders keys lexicographically, as BIP174
  // leaves key order within a map unspecified.
  assert.equal(got, hex.encode(parse(expected).toPSBT(0)));
  // Order of the operands does not change the content.
  const reversed = combinePsbts([parse(RW.signer_2.result.hex), parse(RW.signer_1.result.hex)]);
  assert.equal(bytesOf(reversed.psbtBase64), got);
});

Deno.test("combinePsbts() passes unknown keys through (BIP174 unknown-key combiner vector, byte-exact)", () => {
  const [a, b] = RW.combiner_unknown_keys.inputs;
  const combined = combinePsbts([parse(a!.hex), parse(b!.hex)]);
  assert.equal(bytesOf(combined.psbtBase64), RW.combiner_unknown_keys.result.hex);
});

Deno.test("finalizePsbt() produces the BIP174 finalizer's PSBT byte-exact", () => {
  assert.equal(RW.finalizer.input, "combiner.result");
  const input = parse(RW.combiner.result.hex);
  const before = hex.encode(input.toPSBT(0));
  const finalized = finalizePsbt(input);
  assert.equal(bytesOf(finalized.psbtBase64), RW.finalizer.result.hex);
  assert.equal(finalized.psbtVersion, 0);
  assert.equal(hex.encode(input.toPSBT(0)), before, "the argument was modified");
  // Already-final inputs are left alone.
  assert.equal(
    bytesOf(finalizePsbt(parse(RW.finalizer.result.hex)).psbtBase64),
    RW.finalizer.result.hex,
  );
});

Deno.test("extractTransaction() produces the BIP174 extractor's transaction byte-exact", () => {
  assert.equal(RW.extractor.input, "finalizer.result");
  const psbt = parse(RW.finalizer.result.hex);
  const extracted = extractTransaction(psbt);
  assert.equal(extracted.hex, RW.extractor.result_tx_hex);
  const raw = Transaction.fromRaw(hex.decode(RW.extractor.result_tx_hex), {
    allowUnknownOutputs: true,
  });
  assert.equal(extracted.txid, raw.id);
  assert.notEqual(extracted.wtxid, extracted.txid);
  assert.equal(extracted.weight, raw.weight);
  assert.equal(extracted.vsize, raw.vsize);
  // Fee recomputed from the UTXO data the PSBT carries: inputs − outputs.
  let inputs = 0n;
  for (let i = 0; i < psbt.inputsLength; i++) {
    const input = psbt.getInput(i);
    inputs += input.witnessUtxo?.amount ?? input.nonWitnessUtxo!.outputs[input.index!]!.amount;
  }
  let outputs = 0n;
  for (let i = 0; i < psbt.outputsLength; i++) outputs += psbt.getOutput(i).amount!;
  assert.equal(extracted.feeSats, inputs - outputs);
  assert.equal(extracted.feeSats, 10_000n);
});

Deno.test("combine → finalize → extract chains from the two signers to the BIP's transaction, in PSBT v2 too", () => {
  for (const version of [0, 2] as const) {
    const signers = [RW.signer_1, RW.signer_2].map((s) =>
      parse(hex.encode(parse(s.result.hex).toPSBT(version)))
    );
    const combined = combinePsbts(signers);
    assert.equal(combined.psbtVersion, version);
    assert.equal(psbtVersionOf(combined.tx), version);
    const finalized = finalizePsbt(combined.tx);
    assert.equal(finalized.psbtVersion, version);
    assert.equal(extractTransaction(finalized.tx).hex, RW.extractor.result_tx_hex, `v${version}`);
  }
  // Mixed versions: the result takes the version of the first PSBT.
  const v2 = parse(hex.encode(parse(RW.signer_2.result.hex).toPSBT(2)));
  assert.equal(combinePsbts([parse(RW.signer_1.result.hex), v2]).psbtVersion, 0);
  assert.equal(combinePsbts([v2, parse(RW.signer_1.result.hex)]).psbtVersion, 2);
});

Deno.test("combinePsbts() refuses PSBTs of different transactions or with conflicting fields", () => {
  rejects(
    () =>
      combinePsbts([parse(RW.combiner.result.hex), parse(RW.combiner_unknown_keys.inputs[0]!.hex)]),
    /^Cannot combine PSBTs: PSBTs are for different transactions$/,
    { psbtIndex: 1 },
  );
  const other = parse(RW.updater.result.hex);
  other.updateInput(0, { sighashType: 2 });
  rejects(
    () => combinePsbts([parse(RW.updater_add_sighash_all.result.hex), other]),
    /PSBT 1 has a different value for a field/,
    { psbtIndex: 1 },
  );
  // A single PSBT combines to itself.
  const one = combinePsbts([parse(RW.signer_1.result.hex)]);
  assert.equal(bytesOf(one.psbtBase64), RW.signer_1.result.hex);
});

Deno.test("finalizePsbt() names the input that cannot be finalized and why", () => {
  rejects(
    () => finalizePsbt(parse(RW.creator.result.hex)),
    /^Cannot finalize PSBT: input 0 has no UTXO data/,
    {
      input: 0,
    },
  );
  rejects(() => finalizePsbt(parse(RW.updater.result.hex)), /input 0 has no signatures/, {
    input: 0,
  });
  rejects(
    () => finalizePsbt(parse(RW.signer_1.result.hex)),
    /input 0 has 1 of the 2 signatures its 2-of-2 multisig needs/,
    { input: 0 },
  );
  // Flip one bit of the first signature's R: the signature no longer verifies.
  const sig = "3044022074018ad4180097b873323c0015720b3684cc8123891048e7dbcd9b55ad679c99";
  const tampered = RW.combiner.result.hex.replace(sig, sig.slice(0, -2) + "98");
  assert.notEqual(tampered, RW.combiner.result.hex);
  rejects(() => finalizePsbt(parse(tampered)), /input 0 has an invalid signature/, { input: 0 });
  rejects(
    () => finalizePsbt(parse(RW.combiner_unknown_keys.inputs[0]!.hex)),
    /input 0 has no UTXO data/,
  );
});

Deno.test("extractTransaction() refuses PSBTs that are not final", () => {
  rejects(
    () => extractTransaction(parse(RW.combiner.result.hex)),
    /^Cannot extract transaction: input 0 is not finalized$/,
    {
      input: 0,
    },
  );
  const empty = parse("70736274ff01000a0000000000000000000000");
  rejects(() => extractTransaction(empty), /has no inputs/);
  rejects(() => finalizePsbt(empty), /has no inputs/);
});

Deno.test("psbt_ops functions reject wrong argument types", () => {
  const table: Array<[string, () => unknown, typeof TypeError | typeof RangeError]> = [
    ["combine null", () => combinePsbts(null as never), TypeError],
    ["combine empty", () => combinePsbts([]), RangeError],
    ["combine item", () => combinePsbts([{} as never]), TypeError],
    ["combine base64", () => combinePsbts(["cHNidP8=" as never]), TypeError],
    ["finalize string", () => finalizePsbt("cHNidP8=" as never), TypeError],
    ["extract null", () => extractTransaction(null as never), TypeError],
    ["version undefined", () => psbtVersionOf(undefined as never), TypeError],
  ];
  for (const [name, fn, err] of table) assert.throws(fn, err, name);
});
