/**
 * BIP174 vectors through signPsbt(): the role workflow's master key signs its
 * PSBT exactly as the BIP's two signers do (RFC 6979, so byte-identical), and
 * every "signer must fail" PSBT is refused with nothing signed.
 */
import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { hex } from "@scure/base";
import { parsePsbt } from "../../../src/bitcoin/psbt_parse.ts";
import { ValidationError } from "../../../src/errors/app_error.ts";
import { openKey, type SigningKey } from "../../../src/hsm_server/signing/key_material.ts";
import { signPsbt } from "../../../src/hsm_server/signing/psbt_signer.ts";

interface Case {
  description: string;
  category: string;
  hex: string;
}
interface Workflow {
  master_key: { xprv: string };
  updater: { pubkeys: { pubkey: string; path: string }[] };
  [role: string]: unknown;
}
const VECTORS = JSON.parse(
  await Deno.readTextFile(new URL("../../vectors/bip174/bip-0174-vectors.json", import.meta.url)),
) as { cases: Case[]; role_workflow: Workflow };
const workflow = VECTORS.role_workflow;
const resultHex = (role: string) => (workflow[role] as { result: { hex: string } }).result.hex;
const parse = (h: string) => parsePsbt(h, { network: "testnet4" }).tx;

/** The workflow's tprv as `bip32` material (chain code ‖ private key). */
function workflowKey(): SigningKey {
  const master = HDKey.fromExtendedKey(workflow.master_key.xprv, {
    private: 0x04358394,
    public: 0x043587cf,
  });
  const material = new Uint8Array([...master.chainCode!, ...master.privateKey!]);
  master.wipePrivateData();
  const key = openKey("bip32", material, "testnet4");
  material.fill(0);
  return key;
}

Deno.test("openKey() on the BIP174 workflow master: fingerprint d90c6a4f and the updater's pubkeys", () => {
  const key = workflowKey();
  assert.equal(key.fingerprintHex, "d90c6a4f");
  for (const { pubkey, path } of workflow.updater.pubkeys) {
    const indexes = path.split("/").slice(1).map((p) =>
      p.endsWith("'") ? 0x8000_0000 + Number(p.slice(0, -1)) : Number(p)
    );
    assert.equal(hex.encode(key.publicKeyAt(indexes)), pubkey, path);
  }
});

Deno.test("signPsbt() with the BIP174 master key makes exactly the BIP's four signatures (signer 1 + signer 2)", () => {
  const key = workflowKey();
  const tx = parse(resultHex("updater_add_sighash_all"));
  const result = signPsbt(tx, key, { network: "testnet4" });
  assert.equal(result.signed.length, 4);
  const combined = parse(resultHex("combiner"));
  for (let i = 0; i < tx.inputsLength; i++) {
    const ours = new Map(
      (result.tx.getInput(i).partialSig ?? []).map(([k, s]) => [hex.encode(k), hex.encode(s)]),
    );
    const bip = new Map(
      (combined.getInput(i).partialSig ?? []).map(([k, s]) => [hex.encode(k), hex.encode(s)]),
    );
    assert.deepEqual(ours, bip, `input ${i}`);
  }
});

const mustFail = VECTORS.cases.filter((c) => c.category === "signer_must_fail");

/**
 * What each vector is refused for. #0 spends a P2PKH output of a key outside
 * the workflow (no derivation records), so it belongs to no key of ours; its
 * check is exercised in psbt_signer_test.ts with an input that does.
 */
const EXPECTED: Record<string, { check: string; input?: number }> = {
  "A Witness UTXO is provided for a non-witness input": { check: "no-owned-input" },
  "redeemScript with non-witness UTXO does not match the scriptPubKey": {
    check: "redeem-script-mismatch",
    input: 0,
  },
  "redeemScript with witness UTXO does not match the scriptPubKey": {
    check: "redeem-script-mismatch",
    input: 1,
  },
  "witnessScript with witness UTXO does not match the redeemScript": {
    check: "witness-script-mismatch",
    input: 1,
  },
};

Deno.test("BIP174 vectors: 4 signer-must-fail cases, each with an expectation", () => {
  assert.equal(mustFail.length, 4);
  for (const c of mustFail) assert.ok(EXPECTED[c.description], c.description);
});

for (const [i, c] of mustFail.entries()) {
  Deno.test(`signPsbt() refuses BIP174 signer-must-fail #${i}, signing nothing: ${c.description}`, () => {
    const key = workflowKey();
    const tx = parse(c.hex);
    const before = hex.encode(tx.toPSBT());
    const expected = EXPECTED[c.description]!;
    assert.throws(() => signPsbt(tx, key, { network: "testnet4" }), (e: unknown) => {
      assert.ok(e instanceof ValidationError, `#${i}: ${String(e)}`);
      assert.equal(e.status, 422, `#${i}`);
      assert.equal(e.extensions["check"], expected.check, `#${i}: ${e.message}`);
      if (expected.input !== undefined) {
        assert.equal(e.extensions["input"], expected.input, `#${i}`);
      }
      return true;
    });
    assert.equal(hex.encode(tx.toPSBT()), before, `#${i}: the PSBT is unchanged`);
  });
}
