/**
 * Verification of the signatures a PSBT (or a raw transaction) carries for one
 * input, against that input's signature hash.
 *
 * Specs:
 * - Legacy sighash: Bitcoin Core `SignatureHash()` (pre-segwit algorithm).
 * - BIP143 "Transaction Signature Verification for Version 0 Witness Program".
 * - BIP341 "Signature validation rules" / `SigMsg` (key path and, with BIP342
 *   "Tapscript", the script path's `tapleaf_hash`).
 * - BIP340 "Verification" for Schnorr signatures, ECDSA per SEC1 with the
 *   BIP66 strict-DER encoding and the BIP146 low-S rule (reported separately:
 *   high-S is valid in consensus but non-standard since Core 0.11.1).
 * - BIP174 / BIP371 field semantics (`PSBT_IN_PARTIAL_SIG`, `PSBT_IN_TAP_KEY_SIG`,
 *   `PSBT_IN_TAP_SCRIPT_SIG`, `PSBT_IN_FINAL_SCRIPTSIG`, `PSBT_IN_FINAL_SCRIPTWITNESS`).
 *
 * The signature messages are computed by `@scure/btc-signer`'s preimage
 * functions and checked with `@noble/curves`; nothing here signs. The edge
 * uses this to check what a client or the HSM hands back before answering.
 *
 * @module
 */
import { OutScript, Script, type Transaction } from "@scure/btc-signer";
import { sha256 } from "@noble/hashes/sha2.js";
import { assertInputIndex, describeType } from "./_assert.ts";
import { classifyScript } from "./script_type.ts";
import type { PrevOut } from "./sighash.ts";
import { bytesEqual, hash160 } from "./_util.ts";
import {
  checkPartialSig,
  checkTapKeySig,
  checkTapScriptSig,
  ecdsaCheck,
  type EcdsaScheme,
  InputContext,
  p2pkhScript,
  schnorrCheck,
  type SignatureCheck,
  type SignatureSource,
} from "./_signature_checks.ts";

export type { PrevOut } from "./sighash.ts";
export {
  psbtPrevout,
  type SignatureCheck,
  type SignatureSource,
  type TxInput,
} from "./_signature_checks.ts";

// BIP341: a last witness element starting with 0x50 (with ≥ 2 elements) is the annex.
const ANNEX_TAG = 0x50;

/** Signature state of one input. */
export interface InputSignatureReport {
  /**
   * `unsigned`: no signature and not finalized; `valid`: every signature checks;
   * `invalid`: at least one does not; `unverifiable`: data is missing (UTXO,
   * scripts) or the spending script is one this module does not evaluate.
   */
  status: "unsigned" | "valid" | "invalid" | "unverifiable";
  /** The input carries PSBT_IN_FINAL_SCRIPTSIG or PSBT_IN_FINAL_SCRIPTWITNESS. */
  finalized: boolean;
  /** Each signature's result. */
  signatures: SignatureCheck[];
  /** Set for `unverifiable` inputs without individual signature checks. */
  reason?: string;
}

/** Options of {@linkcode verifyInputSignatures}. */
export interface VerifyOptions {
  /**
   * The outputs spent by every input of `tx`, in input order. Defaults to the
   * PSBT's witness/non-witness UTXO fields; required for raw transactions.
   */
  prevouts?: readonly (PrevOut | null)[];
}

/**
 * Check every signature input `index` carries.
 *
 * Non-final inputs: each `PSBT_IN_PARTIAL_SIG`, `PSBT_IN_TAP_KEY_SIG` and
 * `PSBT_IN_TAP_SCRIPT_SIG`. Finalized inputs: the signatures inside the final
 * scriptSig/witness for P2PKH, P2PK, P2WPKH, P2SH-P2WPKH, multisig (bare, P2SH,
 * P2WSH, P2SH-P2WSH), single-key witness scripts and taproot key-path and
 * single-key tapscript spends; other scripts are `unverifiable`.
 *
 * @param tx a parsed PSBT (or raw transaction with `options.prevouts`)
 * @param index input index
 * @param options explicit prevouts
 * @example
 * ```ts
 * const { tx } = parsePsbt(body.psbt, { network });
 * verifyInputSignatures(tx, 0).status; // "valid"
 * ```
 */
export function verifyInputSignatures(
  tx: Transaction,
  index: number,
  options: VerifyOptions = {},
): InputSignatureReport {
  assertInputIndex(tx, index);
  if (options.prevouts !== undefined) {
    if (!Array.isArray(options.prevouts)) {
      throw new TypeError(
        `Invalid prevouts: expected an array, got ${describeType(options.prevouts)}`,
      );
    }
    if (options.prevouts.length !== tx.inputsLength) {
      throw new RangeError(
        `Invalid prevouts: expected ${tx.inputsLength} entries, got ${options.prevouts.length}`,
      );
    }
  }
  const ctx = new InputContext(tx, index, options.prevouts);
  const input = ctx.input;
  const finalized = input.finalScriptSig !== undefined && input.finalScriptSig.length > 0 ||
    input.finalScriptWitness !== undefined && input.finalScriptWitness.length > 0;
  const checks: SignatureCheck[] = [];
  let reason: string | undefined;
  if (finalized) {
    reason = checkFinal(ctx, checks);
  } else {
    for (const [pubkey, sig] of input.partialSig ?? []) {
      checks.push(checkPartialSig(ctx, pubkey, sig));
    }
    if (input.tapKeySig) checks.push(checkTapKeySig(ctx, input.tapKeySig, "tap_key_sig"));
    for (const [key, sig] of input.tapScriptSig ?? []) {
      checks.push(checkTapScriptSig(ctx, key.pubKey, key.leafHash, sig));
    }
    if (checks.length === 0) return { status: "unsigned", finalized: false, signatures: [] };
  }
  let status: InputSignatureReport["status"] = "valid";
  if (checks.some((c) => c.status === "invalid")) status = "invalid";
  else if (reason !== undefined || checks.some((c) => c.status === "unverifiable")) {
    status = "unverifiable";
  }
  return { status, finalized, signatures: checks, ...(reason === undefined ? {} : { reason }) };
}

// ---------------------------------------------------------------------------------------------
// Finalized inputs
// ---------------------------------------------------------------------------------------------

/** Fill `checks` from the final scriptSig/witness; returns a reason when nothing could be checked. */
function checkFinal(ctx: InputContext, checks: SignatureCheck[]): string | undefined {
  const prev = ctx.prevout();
  if (prev === null) return "missing UTXO data";
  const scriptSig = ctx.input.finalScriptSig ?? new Uint8Array();
  const witness = ctx.input.finalScriptWitness ?? [];
  const sigPushes = decodePushes(scriptSig);
  if (sigPushes === null) return "final scriptSig is not push-only";
  const type = classifyScript(prev.script);
  const legacy = (scriptCode: Uint8Array): EcdsaScheme => ({ kind: "legacy", scriptCode });
  const segwit = (scriptCode: Uint8Array): EcdsaScheme => ({
    kind: "segwit",
    scriptCode,
    amountSats: prev.amountSats,
  });
  switch (type) {
    case "p2pkh":
      return checkKeyHashSpend(
        ctx,
        checks,
        sigPushes,
        prev.script.slice(3, 23),
        legacy(prev.script),
        "final_script_sig",
      );
    case "p2pk": {
      const pk = OutScript.decode(prev.script) as { pubkey: Uint8Array };
      if (sigPushes.length !== 1) return "unexpected P2PK scriptSig";
      checks.push(
        ecdsaCheck(ctx, legacy(prev.script), pk.pubkey, sigPushes[0]!, "final_script_sig"),
      );
      return undefined;
    }
    case "multisig":
      return checkMultisig(
        ctx,
        checks,
        prev.script,
        sigPushes.slice(1),
        legacy(prev.script),
        "final_script_sig",
      );
    case "p2wpkh":
      return checkKeyHashSpend(
        ctx,
        checks,
        witness,
        prev.script.slice(2),
        segwit(p2pkhScript(prev.script.slice(2))),
        "final_script_witness",
      );
    case "p2wsh":
      return checkWitnessScript(ctx, checks, witness, prev.script.slice(2), segwit);
    case "p2sh": {
      const redeemScript = sigPushes[sigPushes.length - 1];
      if (redeemScript === undefined) return "empty P2SH scriptSig";
      if (!bytesEqual(hash160(redeemScript), prev.script.slice(2, 22))) {
        checks.push(mismatch("final_script_sig", "redeemScript does not match the P2SH output"));
        return undefined;
      }
      const inner = classifyScript(redeemScript);
      if (inner === "p2wpkh") {
        const hash = redeemScript.slice(2);
        return checkKeyHashSpend(
          ctx,
          checks,
          witness,
          hash,
          segwit(p2pkhScript(hash)),
          "final_script_witness",
        );
      }
      if (inner === "p2wsh") {
        return checkWitnessScript(ctx, checks, witness, redeemScript.slice(2), segwit);
      }
      if (inner === "multisig") {
        return checkMultisig(
          ctx,
          checks,
          redeemScript,
          sigPushes.slice(1, -1),
          legacy(redeemScript),
          "final_script_sig",
        );
      }
      return `cannot evaluate a P2SH redeemScript of type ${inner}`;
    }
    case "p2tr":
      return checkFinalTaproot(ctx, checks, witness);
    default:
      return `cannot evaluate a ${type} output`;
  }
}

function mismatch(source: SignatureSource, reason: string): SignatureCheck {
  return { kind: "ecdsa", source, pubkeyHex: "", sighashType: -1, status: "invalid", reason };
}

/** `<sig> <pubkey>` spends (P2PKH, P2WPKH, P2SH-P2WPKH): the key must hash to `keyHash`. */
function checkKeyHashSpend(
  ctx: InputContext,
  checks: SignatureCheck[],
  stack: Uint8Array[],
  keyHash: Uint8Array,
  scheme: EcdsaScheme,
  source: SignatureSource,
): string | undefined {
  if (stack.length !== 2) return "unexpected number of stack items for a key-hash spend";
  const [sig, pubkey] = stack as [Uint8Array, Uint8Array];
  if (!bytesEqual(hash160(pubkey), keyHash)) {
    checks.push(mismatch(source, "public key does not match the output's key hash"));
    return undefined;
  }
  checks.push(ecdsaCheck(ctx, scheme, pubkey, sig, source));
  return undefined;
}

/** P2WSH / P2SH-P2WSH: last witness item is the script; multisig and `<pk> CHECKSIG` are checked. */
function checkWitnessScript(
  ctx: InputContext,
  checks: SignatureCheck[],
  witness: Uint8Array[],
  program: Uint8Array,
  segwit: (scriptCode: Uint8Array) => EcdsaScheme,
): string | undefined {
  const ws = witness[witness.length - 1];
  if (ws === undefined) return "empty witness";
  if (!bytesEqual(sha256(ws), program)) {
    checks.push(mismatch("final_script_witness", "witnessScript does not match the P2WSH program"));
    return undefined;
  }
  const type = classifyScript(ws);
  if (type === "multisig") {
    return checkMultisig(ctx, checks, ws, witness.slice(1, -1), segwit(ws), "final_script_witness");
  }
  if (type === "p2pk" && witness.length === 2) {
    const { pubkey } = OutScript.decode(ws) as { pubkey: Uint8Array };
    checks.push(ecdsaCheck(ctx, segwit(ws), pubkey, witness[0]!, "final_script_witness"));
    return undefined;
  }
  return `cannot evaluate a witnessScript of type ${type}`;
}

/** OP_CHECKMULTISIG semantics: signatures match keys in order, each key used at most once. */
function checkMultisig(
  ctx: InputContext,
  checks: SignatureCheck[],
  script: Uint8Array,
  sigs: Uint8Array[],
  scheme: EcdsaScheme,
  source: SignatureSource,
): string | undefined {
  const ms = OutScript.decode(script) as { m: number; pubkeys: Uint8Array[] };
  const present = sigs.filter((s) => s.length > 0);
  if (present.length === 0) return "no signatures in the multisig satisfaction";
  let k = 0;
  for (const sig of present) {
    let found: SignatureCheck | undefined;
    while (k < ms.pubkeys.length && found === undefined) {
      const check = ecdsaCheck(ctx, scheme, ms.pubkeys[k++]!, sig, source);
      if (check.status === "valid") found = check;
    }
    checks.push(
      found ?? {
        kind: "ecdsa",
        source,
        pubkeyHex: "",
        sighashType: sig[sig.length - 1] ?? -1,
        status: "invalid",
        reason: "no remaining multisig key verifies this signature",
      },
    );
  }
  if (present.length < ms.m) {
    checks.push(mismatch(source, `multisig needs ${ms.m} signatures, found ${present.length}`));
  }
  return undefined;
}

function checkFinalTaproot(
  ctx: InputContext,
  checks: SignatureCheck[],
  witness: Uint8Array[],
): string | undefined {
  let stack = witness;
  let annex: Uint8Array | undefined;
  const last = stack[stack.length - 1];
  if (stack.length >= 2 && last !== undefined && last[0] === ANNEX_TAG) {
    annex = last;
    stack = stack.slice(0, -1);
  }
  if (stack.length === 1) {
    checks.push(checkTapKeySig(ctx, stack[0]!, "final_script_witness", annex));
    return undefined;
  }
  if (stack.length < 2) return "empty taproot witness";
  const script = stack[stack.length - 2]!;
  const controlBlock = stack[stack.length - 1]!;
  const args = stack.slice(0, -2);
  // Tapscript `<32-byte key> OP_CHECKSIG` with one signature: the common single-key leaf.
  if (
    controlBlock.length >= 33 && script.length === 34 && script[0] === 0x20 &&
    script[33] === 0xac && args.length === 1
  ) {
    const leafVersion = controlBlock[0]! & 0xfe;
    const leaf = { leafScript: script, leafVersion };
    checks.push(
      schnorrCheck(ctx, script.slice(1, 33), args[0]!, "final_script_witness", {
        leaf,
        ...(annex === undefined ? {} : { annex }),
      }),
    );
    return undefined;
  }
  return "cannot evaluate this tapscript";
}

/** The data pushes of a push-only script, or null when it has other opcodes. */
function decodePushes(script: Uint8Array): Uint8Array[] | null {
  if (script.length === 0) return [];
  let ops: unknown[];
  try {
    ops = Script.decode(script);
  } catch {
    return null;
  }
  const out: Uint8Array[] = [];
  for (const op of ops) {
    if (op instanceof Uint8Array) out.push(op);
    else if (op === 0) out.push(new Uint8Array());
    else return null;
  }
  return out;
}
