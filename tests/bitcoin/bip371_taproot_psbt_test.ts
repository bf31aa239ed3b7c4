import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { parsePsbt } from "../../src/bitcoin/psbt_parse.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";
import { inspectPsbt } from "../../src/bitcoin/psbt_inspect.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

interface Case {
  description: string;
  valid: boolean;
  category: "invalid_parse" | "valid_parse";
  hex: string;
  base64: string;
}

const { cases } = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/bip371/bip-0371-vectors.json", import.meta.url)),
) as { cases: Case[] };

const label = (i: number, c: Case) => `BIP371 case ${i} (${c.category}): ${c.description}`;

const EXPECTED_REASON: Record<number, RegExp> = {
  0: /input 0: invalid public key/,
  1: /input 0: a taproot signature must be 64 or 65 bytes/,
  2: /input 0: a taproot signature must be 64 or 65 bytes/,
  3: /input 0: invalid public key/,
  4: /output 1: invalid public key/,
  5: /output 1: invalid public key/,
  6: /input 0: a key or value is longer than its type allows/,
  7: /input 0: a taproot signature must be 64 or 65 bytes/,
  8: /input 0: a taproot signature must be 64 or 65 bytes/,
  9: /input 0: a key or value is longer than its type allows/,
  10: /input 0: a key or value is longer than its type allows/,
};

Deno.test("BIP371 vectors: counts match the provenance (11 invalid, 6 valid)", () => {
  assert.equal(cases.filter((c) => c.category === "invalid_parse").length, 11);
  assert.equal(cases.filter((c) => c.category === "valid_parse").length, 6);
});

Deno.test("parsePsbt() rejects every BIP371 invalid case with a 422 naming the input/output", () => {
  let n = 0;
  cases.forEach((c, i) => {
    if (c.category !== "invalid_parse") return;
    for (const text of [c.base64, c.hex]) {
      assert.throws(() => parsePsbt(text, { network: "testnet4" }), (err: unknown) => {
        assert.ok(err instanceof ValidationError, label(i, c));
        assert.equal(err.status, 422, label(i, c));
        assert.match(err.message, EXPECTED_REASON[i]!, label(i, c));
        return true;
      }, label(i, c));
    }
    n++;
  });
  assert.equal(n, 11);
});

Deno.test("parsePsbt() parses every BIP371 valid case and re-serialises it byte-exact", () => {
  let n = 0;
  cases.forEach((c, i) => {
    if (c.category !== "valid_parse") return;
    for (const text of [c.base64, c.hex]) {
      const parsed = parsePsbt(text, { network: "testnet4" });
      assert.equal(hex.encode(parsed.tx.toPSBT()), c.hex, `${label(i, c)}: round trip`);
    }
    n++;
  });
  assert.equal(n, 6);
});

Deno.test("verifyInputSignatures() checks the BIP371 key-path and script-path signatures", () => {
  // Case 11: key-path input without signature; case 12: with PSBT_IN_TAP_KEY_SIG;
  // case 16: script-path input with three PSBT_IN_TAP_SCRIPT_SIG entries.
  const unsigned = parsePsbt(cases[11]!.base64, { network: "testnet4" });
  assert.equal(verifyInputSignatures(unsigned.tx, 0).status, "unsigned");
  const keyPath = verifyInputSignatures(
    parsePsbt(cases[12]!.base64, { network: "testnet4" }).tx,
    0,
  );
  assert.equal(keyPath.status, "valid", JSON.stringify(keyPath));
  assert.deepEqual(keyPath.signatures.map((s) => [s.kind, s.source, s.sighashType]), [
    ["schnorr", "tap_key_sig", 0],
  ]);
  const scriptPath = verifyInputSignatures(
    parsePsbt(cases[16]!.base64, { network: "testnet4" }).tx,
    0,
  );
  assert.equal(scriptPath.status, "valid", JSON.stringify(scriptPath));
  assert.equal(scriptPath.signatures.length, 3);
  assert.ok(scriptPath.signatures.every((s) => s.source === "tap_script_sig"));
});

Deno.test("verifyInputSignatures() flags a tampered BIP371 PSBT_IN_TAP_KEY_SIG", () => {
  const c = cases[12]!;
  const sig = hex.encode(parsePsbt(c.hex, { network: "testnet4" }).tx.getInput(0).tapKeySig!);
  const flipped = sig.slice(0, 126) +
    (parseInt(sig.slice(126, 128), 16) ^ 1).toString(16).padStart(2, "0");
  const tampered = parsePsbt(c.hex.replace(sig, flipped), { network: "testnet4" });
  assert.equal(verifyInputSignatures(tampered.tx, 0).status, "invalid");
});

Deno.test("inspectPsbt() marks BIP371 outputs with PSBT_OUT_TAP_BIP32_DERIVATION as change and estimates taproot sizes", () => {
  for (const i of [13, 15]) {
    const report = inspectPsbt(parsePsbt(cases[i]!.base64, { network: "testnet4" }), {
      network: "testnet4",
    });
    assert.equal(report.outputs[0]!.isChange, true, label(i, cases[i]!));
    assert.equal(report.outputs[0]!.scriptType, "p2tr", label(i, cases[i]!));
    assert.equal(report.inputs[0]!.scriptType, "p2tr", label(i, cases[i]!));
    assert.equal(report.feeRate?.exact, false, label(i, cases[i]!));
    assert.deepEqual(report.warnings, [], label(i, cases[i]!));
  }
  // Key path: 1 witness item of 64 bytes → 41 × 4 + 1 + 1 + 64 = 230 WU.
  const keyPath = inspectPsbt(parsePsbt(cases[11]!.base64, { network: "testnet4" }), {
    network: "testnet4",
  });
  assert.equal(keyPath.inputs[0]!.weight, 230);
});
