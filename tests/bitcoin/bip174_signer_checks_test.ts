/**
 * BIP174 "signer must fail" vectors and the role-workflow signer inputs,
 * through the edge's parser and `assertSignable`.
 */
import assert from "node:assert/strict";
import { parsePsbt } from "../../src/bitcoin/psbt_parse.ts";
import { assertSignable, type SignerCheck } from "../../src/bitcoin/signing_check.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

interface Case {
  description: string;
  category: string;
  hex: string;
}
const VECTORS = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/bip174/bip-0174-vectors.json", import.meta.url)),
) as { cases: Case[]; role_workflow: Record<string, { result?: { hex: string } }> };

const parse = (hex: string) => parsePsbt(hex, { network: "testnet4" }).tx;

/** Expected refusal per "signer must fail" vector, by description. */
const EXPECTED: Record<string, { input: number; check: SignerCheck }> = {
  "A Witness UTXO is provided for a non-witness input": {
    input: 0,
    check: "witness-utxo-for-non-witness-input",
  },
  "redeemScript with non-witness UTXO does not match the scriptPubKey": {
    input: 0,
    check: "redeem-script-mismatch",
  },
  "redeemScript with witness UTXO does not match the scriptPubKey": {
    input: 1,
    check: "redeem-script-mismatch",
  },
  "witnessScript with witness UTXO does not match the redeemScript": {
    input: 1,
    check: "witness-script-mismatch",
  },
};

const mustFail = VECTORS.cases.filter((c) => c.category === "signer_must_fail");

Deno.test("BIP174 vectors: there are 4 signer-must-fail cases, each with an expectation", () => {
  assert.equal(mustFail.length, 4);
  for (const c of mustFail) assert.ok(EXPECTED[c.description], c.description);
});

for (const [i, c] of mustFail.entries()) {
  Deno.test(`assertSignable() refuses BIP174 signer-must-fail #${i}: ${c.description}`, () => {
    const expected = EXPECTED[c.description]!;
    const tx = parse(c.hex); // valid PSBT: it parses
    assert.throws(() => assertSignable(tx), (e: unknown) => {
      assert.ok(e instanceof ValidationError, `#${i}: ${String(e)}`);
      assert.equal(e.status, 422, `#${i}`);
      assert.deepEqual(e.extensions, expected, `#${i}`);
      assert.match(e.message, new RegExp(`^Cannot sign PSBT: input ${expected.input} `), `#${i}`);
      return true;
    });
    // Refused also when only the offending input is asked about.
    assert.throws(() => assertSignable(tx, expected.input), ValidationError, `#${i} by index`);
  });
}

Deno.test("assertSignable() accepts the BIP174 role-workflow signer inputs", () => {
  // The PSBTs the BIP's signers start from, and the ones later roles see.
  for (const role of ["updater", "updater_add_sighash_all", "signer_1", "signer_2", "combiner"]) {
    const tx = parse(VECTORS.role_workflow[role]!.result!.hex);
    assertSignable(tx);
    for (let i = 0; i < tx.inputsLength; i++) assertSignable(tx, i);
  }
});

Deno.test("assertSignable() accepts the valid BIP174 PSBTs that carry UTXO data and refuses the rest", () => {
  const valid = VECTORS.cases.filter((c) => c.category === "valid_parse");
  assert.equal(valid.length, 10);
  let accepted = 0;
  for (const [i, c] of valid.entries()) {
    const tx = parse(c.hex);
    const missingUtxo = Array.from({ length: tx.inputsLength }, (_, k) => tx.getInput(k))
      .some((input) =>
        !input.witnessUtxo && !input.nonWitnessUtxo && !input.finalScriptSig &&
        !input.finalScriptWitness
      );
    if (tx.inputsLength === 0) {
      assert.throws(() => assertSignable(tx), /it has no inputs/, `valid #${i}`);
    } else if (missingUtxo) {
      assert.throws(
        () => assertSignable(tx),
        (e: unknown) => e instanceof ValidationError && e.extensions["check"] === "missing-utxo",
        `valid #${i}: ${c.description}`,
      );
    } else {
      assertSignable(tx);
      accepted++;
    }
  }
  assert.equal(accepted, 7);
});

Deno.test("assertSignable() refuses the BIP174 creator output: no UTXO data yet", () => {
  const tx = parse(VECTORS.role_workflow["creator"]!.result!.hex);
  assert.throws(
    () => assertSignable(tx),
    (e: unknown) =>
      e instanceof ValidationError && e.extensions["check"] === "missing-utxo" &&
      e.extensions["input"] === 0,
  );
});
