import assert from "node:assert/strict";
import { _DebugPSBT } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { parsePsbt } from "../../src/bitcoin/psbt_parse.ts";
import { verifyInputSignatures } from "../../src/bitcoin/signatures.ts";
import { inspectPsbt } from "../../src/bitcoin/psbt_inspect.ts";
import { parseRawTx } from "../../src/bitcoin/tx_metrics.ts";
import { ValidationError } from "../../src/errors/app_error.ts";

interface Case {
  description: string;
  valid: boolean;
  category: "invalid_parse" | "valid_parse" | "signer_must_fail";
  hex: string;
  base64: string;
}
interface Encoded {
  hex: string;
  base64?: string;
}
interface Vectors {
  cases: Case[];
  role_workflow: Record<string, { result?: Encoded; inputs?: unknown[]; result_tx_hex?: string }>;
}

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../vectors/bip174/bip-0174-vectors.json", import.meta.url)),
) as Vectors;

const label = (i: number, c: Case) => `BIP174 case ${i} (${c.category}): ${c.description}`;

// What each invalid case must say: the reason a client reads in the 422 problem.
const EXPECTED_REASON: Record<number, RegExp> = {
  0: /does not start with the PSBT magic/,
  1: /expected 3 maps after the global map \(1 input, 2 outputs\), found 1/,
  2: /unsigned transaction has a non-empty scriptSig/,
  3: /missing the unsigned transaction/,
  4: /duplicate key 0x00 in input 0/,
  5: /PSBT_GLOBAL_UNSIGNED_TX must have no key data/,
  6: /input 0: PSBT_IN_WITNESS_UTXO must have no key data/,
  7: /input 0: invalid public key/,
  8: /input 0: PSBT_IN_REDEEM_SCRIPT must have no key data/,
  9: /input 0: PSBT_IN_WITNESS_SCRIPT must have no key data/,
  10: /input 0: invalid public key/,
  11: /input 0: PSBT_IN_NON_WITNESS_UTXO must have no key data/,
  12: /input 0: PSBT_IN_FINAL_SCRIPTSIG must have no key data/,
  13: /input 1: PSBT_IN_FINAL_SCRIPTWITNESS must have no key data/,
  14: /output 0: invalid public key/,
  15: /input 0: PSBT_IN_SIGHASH_TYPE must have no key data/,
  16: /output 0: PSBT_OUT_REDEEM_SCRIPT must have no key data/,
  17: /output 1: PSBT_OUT_WITNESS_SCRIPT must have no key data/,
  18: /shorter than its type requires/,
  19: /longer than its type allows/,
};

function assertRejected(input: string, reason: RegExp, msg: string): void {
  assert.throws(
    () => parsePsbt(input, { network: "testnet4" }),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError, `${msg}: ValidationError, got ${String(err)}`);
      assert.equal(err.status, 422, msg);
      assert.match(err.message, /^Invalid PSBT: /, msg);
      assert.match(err.message, reason, msg);
      assert.doesNotMatch(err.message, /Reader\(|[0-9a-f]{20,}/, `${msg}: no library internals`);
      return true;
    },
    msg,
  );
}

Deno.test("BIP174 vectors: counts match the provenance (20 invalid, 10 valid, 4 signer-must-fail)", () => {
  const count = (cat: Case["category"]) => vectors.cases.filter((c) => c.category === cat).length;
  assert.equal(count("invalid_parse"), 20);
  assert.equal(count("valid_parse"), 10);
  assert.equal(count("signer_must_fail"), 4);
});

Deno.test("parsePsbt() rejects every BIP174 invalid case with a 422 naming the problem", () => {
  let n = 0;
  vectors.cases.forEach((c, i) => {
    if (c.category !== "invalid_parse") return;
    const reason = EXPECTED_REASON[i];
    assert.ok(reason, `${label(i, c)}: has an expected reason`);
    assertRejected(c.base64, reason, `${label(i, c)} (base64)`);
    assertRejected(c.hex, reason, `${label(i, c)} (hex)`);
    n++;
  });
  assert.equal(n, 20);
});

Deno.test("parsePsbt() parses every BIP174 valid and signer-must-fail case and re-serialises it byte-exact", () => {
  let n = 0;
  vectors.cases.forEach((c, i) => {
    if (c.category === "invalid_parse") return;
    for (const text of [c.base64, c.hex]) {
      const parsed = parsePsbt(text, { network: "testnet4" });
      assert.equal(parsed.version, 0, label(i, c));
      assert.equal(hex.encode(parsed.bytes), c.hex, `${label(i, c)}: bytes kept`);
      assert.equal(hex.encode(parsed.tx.toPSBT()), c.hex, `${label(i, c)}: round trip`);
    }
    assert.equal(parsePsbt(c.hex, { network: "testnet4" }).format, "hex");
    assert.equal(parsePsbt(c.base64, { network: "testnet4" }).format, "base64");
    n++;
  });
  assert.equal(n, 14);
});

/** Every PSBT of the BIP's role workflow, by role name. */
function workflowPsbts(): [string, Encoded][] {
  const out: [string, Encoded][] = [];
  for (const [role, step] of Object.entries(vectors.role_workflow)) {
    if (step.result?.hex !== undefined) out.push([role, step.result]);
    (step.inputs ?? []).forEach((x, i) => {
      if (typeof x === "object" && x !== null && "hex" in x) {
        out.push([`${role}.inputs[${i}]`, x as Encoded]);
      }
    });
  }
  return out;
}

Deno.test("parsePsbt() round-trips the BIP174 role workflow PSBTs (combiner: same key-value pairs, keys sorted)", () => {
  const all = workflowPsbts();
  assert.equal(all.length, 10);
  for (const [role, enc] of all) {
    const parsed = parsePsbt(enc.hex, { network: "testnet4" });
    if (enc.base64 !== undefined) {
      assert.equal(hex.encode(parsePsbt(enc.base64, { network: "testnet4" }).bytes), enc.hex, role);
    }
    const out = parsed.tx.toPSBT();
    if (role === "combiner") {
      // The BIP's combiner output lists PSBT_IN_PARTIAL_SIG keys in Bitcoin Core's order (by key
      // id), not byte order; scure always writes keys sorted. The round trip is lossless: the
      // same maps with the same key-value pairs; `ParsedPsbt.bytes` keeps the original order.
      assert.notEqual(hex.encode(out), enc.hex, "combiner: re-ordered");
      assert.deepEqual(_DebugPSBT.decode(out), _DebugPSBT.decode(hex.decode(enc.hex)), role);
      assert.equal(
        hex.encode(parsePsbt(hex.encode(out), { network: "testnet4" }).tx.toPSBT()),
        hex.encode(out),
      );
    } else {
      assert.equal(hex.encode(out), enc.hex, `BIP174 workflow ${role}: byte-exact round trip`);
    }
  }
});

Deno.test("verifyInputSignatures() accepts the BIP174 workflow signatures (signers, combiner, finalizer)", () => {
  const wf = vectors.role_workflow;
  const expected: Record<string, number[]> = {
    // signatures per input: each signer signs one key of each 2-of-2 multisig input.
    signer_1: [1, 1],
    signer_2: [1, 1],
    combiner: [2, 2],
    finalizer: [2, 2],
  };
  for (const [role, counts] of Object.entries(expected)) {
    const { tx } = parsePsbt(wf[role]!.result!.hex, { network: "testnet4" });
    for (let i = 0; i < tx.inputsLength; i++) {
      const r = verifyInputSignatures(tx, i);
      assert.equal(r.status, "valid", `${role} input ${i}: ${JSON.stringify(r)}`);
      assert.equal(r.signatures.length, counts[i], `${role} input ${i}`);
      assert.equal(r.finalized, role === "finalizer", `${role} input ${i}`);
      for (const s of r.signatures) {
        assert.equal(s.sighashType, 1, `${role} input ${i}: SIGHASH_ALL`);
      }
    }
  }
  const unsigned = parsePsbt(wf.updater_add_sighash_all!.result!.hex, { network: "testnet4" });
  assert.equal(verifyInputSignatures(unsigned.tx, 0).status, "unsigned");
});

Deno.test("verifyInputSignatures() flags a tampered BIP174 workflow signature as invalid", () => {
  const original = vectors.role_workflow.signer_1!.result!.hex;
  const { tx } = parsePsbt(original, { network: "testnet4" });
  const sig = hex.encode(tx.getInput(0).partialSig![0]![1]);
  // Flip one bit of r (byte 10 of the DER signature) inside the PSBT bytes.
  const flipped = sig.slice(0, 20) +
    (parseInt(sig.slice(20, 22), 16) ^ 1).toString(16).padStart(2, "0") +
    sig.slice(22);
  const tampered = parsePsbt(original.replace(sig, flipped), { network: "testnet4" });
  const r = verifyInputSignatures(tampered.tx, 0);
  assert.equal(r.status, "invalid");
  assert.equal(r.signatures[0]?.reason, "signature does not verify");
  assert.equal(verifyInputSignatures(tampered.tx, 1).status, "valid");
});

Deno.test("inspectPsbt() on the BIP174 finalizer output: exact fee rate, size equal to the extracted transaction", () => {
  const wf = vectors.role_workflow;
  const parsed = parsePsbt(wf.finalizer!.result!.hex, { network: "testnet4" });
  const report = inspectPsbt(parsed, { network: "testnet4" });
  const extracted = parseRawTx(wf.extractor!.result_tx_hex!);
  assert.equal(report.weight, extracted.weight);
  assert.equal(report.vsize, extracted.vsize);
  assert.equal(report.txid, extracted.txid);
  assert.equal(report.feeSats, 10_000n);
  assert.deepEqual(report.feeRate, {
    satPerKvb: Math.floor(10_000_000 / extracted.vsize),
    exact: true,
  });
  assert.ok(report.inputs.every((i) => i.finalized && i.signatureStatus === "valid"));
});
