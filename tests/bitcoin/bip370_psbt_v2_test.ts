import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { parsePsbt } from "../../src/bitcoin/psbt_parse.ts";
import { inspectPsbt } from "../../src/bitcoin/psbt_inspect.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

interface Case {
  description: string;
  valid: boolean;
  category: "invalid_parse" | "valid_parse" | "locktime";
  hex: string;
  base64: string;
  expected_locktime?: number | null;
}

const { cases } = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/bip370/bip-0370-vectors.json", import.meta.url)),
) as { cases: Case[] };

const label = (i: number, c: Case) => `BIP370 case ${i} (${c.category}): ${c.description}`;

const V0_FIELD_NOT_ALLOWED: Record<number, string> = {
  1: "PSBT_GLOBAL_TX_VERSION",
  2: "PSBT_GLOBAL_FALLBACK_LOCKTIME",
  3: "PSBT_GLOBAL_INPUT_COUNT",
  4: "PSBT_GLOBAL_OUTPUT_COUNT",
  5: "PSBT_GLOBAL_TX_MODIFIABLE",
  6: "PSBT_IN_PREVIOUS_TXID",
  7: "PSBT_IN_OUTPUT_INDEX",
  8: "PSBT_IN_SEQUENCE",
  9: "PSBT_IN_REQUIRED_TIME_LOCKTIME",
  10: "PSBT_IN_REQUIRED_HEIGHT_LOCKTIME",
  11: "PSBT_OUT_AMOUNT",
  12: "PSBT_OUT_SCRIPT",
};
const V2_MISSING: Record<number, string> = {
  14: "PSBT_GLOBAL_INPUT_COUNT",
  15: "PSBT_GLOBAL_OUTPUT_COUNT",
  16: "PSBT_GLOBAL_TX_VERSION",
  17: "PSBT_IN_PREVIOUS_TXID",
  18: "PSBT_IN_OUTPUT_INDEX",
  19: "PSBT_OUT_AMOUNT",
  20: "PSBT_OUT_SCRIPT",
};

function expectedReason(i: number): RegExp {
  if (V0_FIELD_NOT_ALLOWED[i]) {
    return new RegExp(`${V0_FIELD_NOT_ALLOWED[i]} is not allowed in a version 0 PSBT`);
  }
  if (V2_MISSING[i]) return new RegExp(`a version 2 PSBT requires ${V2_MISSING[i]}`);
  if (i === 0 || i === 13) return /PSBT_GLOBAL_UNSIGNED_TX is not allowed in a version 2 PSBT/;
  if (i === 21) return /input 0: PSBT_IN_REQUIRED_TIME_LOCKTIME must be at least 500000000/;
  if (i === 22 || i === 23) {
    return /input 0: PSBT_IN_REQUIRED_HEIGHT_LOCKTIME must be between 1 and 499999999/;
  }
  throw new Error(`no expected reason for case ${i}`);
}

function rejects(text: string, reason: RegExp, msg: string): void {
  assert.throws(() => parsePsbt(text, { network: "testnet4" }), (err: unknown) => {
    assert.ok(err instanceof ValidationError, msg);
    assert.equal(err.status, 422, msg);
    assert.match(err.message, /^Invalid PSBT: /, msg);
    assert.match(err.message, reason, msg);
    return true;
  }, msg);
}

Deno.test("BIP370 vectors: counts match the provenance (24 invalid, 14 valid, 9 locktime)", () => {
  const count = (cat: Case["category"]) => cases.filter((c) => c.category === cat).length;
  assert.equal(count("invalid_parse"), 24);
  assert.equal(count("valid_parse"), 14);
  assert.equal(count("locktime"), 9);
});

Deno.test("parsePsbt() rejects every BIP370 invalid case with a 422 naming the field", () => {
  let n = 0;
  cases.forEach((c, i) => {
    if (c.category !== "invalid_parse") return;
    rejects(c.base64, expectedReason(i), `${label(i, c)} (base64)`);
    rejects(c.hex, expectedReason(i), `${label(i, c)} (hex)`);
    n++;
  });
  assert.equal(n, 24);
});

Deno.test("parsePsbt() parses every BIP370 valid case as PSBTv2 and re-serialises it byte-exact", () => {
  let n = 0;
  cases.forEach((c, i) => {
    if (c.category !== "valid_parse") return;
    for (const text of [c.base64, c.hex]) {
      const parsed = parsePsbt(text, { network: "testnet4" });
      assert.equal(parsed.version, 2, label(i, c));
      assert.equal(hex.encode(parsed.tx.toPSBT()), c.hex, `${label(i, c)}: round trip`);
    }
    n++;
  });
  assert.equal(n, 14);
});

Deno.test("parsePsbt() determines the BIP370 locktime of each locktime case, or refuses when it cannot", () => {
  let determined = 0;
  let refused = 0;
  cases.forEach((c, i) => {
    if (c.category !== "locktime") return;
    if (c.expected_locktime === null) {
      // "locktime cannot be determined ... must be an error": such a PSBT can never be finalized.
      rejects(c.base64, /the locktime cannot be determined/, label(i, c));
      refused++;
      return;
    }
    const parsed = parsePsbt(c.base64, { network: "testnet4" });
    assert.equal(parsed.tx.lockTime, c.expected_locktime, label(i, c));
    assert.equal(hex.encode(parsed.tx.toPSBT()), c.hex, `${label(i, c)}: round trip`);
    assert.equal(inspectPsbt(parsed, { network: "testnet4" }).locktime, c.expected_locktime);
    determined++;
  });
  assert.equal(determined, 8);
  assert.equal(refused, 1);
});

Deno.test("inspectPsbt() reports PSBTv2 sequence-based RBF signalling from PSBT_IN_SEQUENCE", () => {
  // Case 26: PSBT_IN_SEQUENCE = 0xfffffffe (not RBF); case 24 has no sequence (0xffffffff).
  const withSeq = inspectPsbt(parsePsbt(cases[26]!.base64, { network: "testnet4" }), {
    network: "testnet4",
  });
  assert.equal(withSeq.inputs[0]!.sequence, 0xfffffffe);
  assert.equal(withSeq.rbf, false);
  const noSeq = inspectPsbt(parsePsbt(cases[24]!.base64, { network: "testnet4" }), {
    network: "testnet4",
  });
  assert.equal(noSeq.inputs[0]!.sequence, 0xffffffff);
  assert.equal(noSeq.psbtVersion, 2);
});
