/**
 * Weight of PSBT inputs for fee-rate reporting (BIP141 §"Transaction size
 * calculations"): a finalized input weighs what its final scriptSig and witness
 * weigh; an unfinalized one is estimated from the script it spends with
 * worst-case signature sizes (`tx_size.ts`), so estimates never undercount.
 *
 * @module
 */
import { Script, TAPROOT_UNSPENDABLE_KEY } from "@scure/btc-signer";
import { classifyScript, multisigThreshold, type ScriptType } from "./script_type.ts";
import type { PrevOut } from "./sighash.ts";
import type { TxInput } from "./_signature_checks.ts";
import { type InputSpend, inputWeight, MAX_ECDSA_SIG_BYTES, SCHNORR_SIG_BYTES } from "./tx_size.ts";
import { bytesEqual, type InputWeight, pushLength, weighInput } from "./_util.ts";

/**
 * Real weight of a finalized input.
 *
 * @param input the input (with PSBT_IN_FINAL_SCRIPTSIG / PSBT_IN_FINAL_SCRIPTWITNESS)
 */
export function finalInputWeight(input: TxInput): InputWeight {
  const witness = input.finalScriptWitness ?? [];
  return weighInput(
    input.finalScriptSig?.length ?? 0,
    witness.length > 0 ? witness.map((w) => w.length) : null,
  );
}

/**
 * Worst-case weight of a not-yet-finalized input, from its spent script and PSBT scripts.
 *
 * @param prev the spent output, null when the PSBT lacks it (the type is then guessed)
 * @param input the PSBT input
 * @returns the weight, or null when the spending script is unknown
 */
export function estimateInputWeight(prev: PrevOut | null, input: TxInput): InputWeight | null {
  const spend = (s: InputSpend): InputWeight => inputWeight(s);
  const type = prev === null ? guessType(input) : classifyScript(prev.script);
  const ws = input.witnessScript;
  const rs = input.redeemScript;
  switch (type) {
    case "p2pkh":
      return spend({ kind: "p2pkh" });
    case "p2wpkh":
      return spend({ kind: "p2wpkh" });
    case "p2tr":
      return taprootWeight(input);
    case "p2pk":
      return weighInput(pushLength(MAX_ECDSA_SIG_BYTES), null);
    case "multisig": {
      const m = prev === null ? null : multisigThreshold(prev.script);
      return m === null ? null : weighInput(1 + m * pushLength(MAX_ECDSA_SIG_BYTES), null);
    }
    case "p2wsh":
      return ws === undefined ? null : witnessScriptWeight(ws, "p2wsh");
    case "p2sh": {
      if (rs === undefined) return null;
      const inner = classifyScript(rs);
      if (inner === "p2wpkh") return spend({ kind: "p2sh-p2wpkh" });
      if (inner === "p2wsh") return ws === undefined ? null : witnessScriptWeight(ws, "p2sh-p2wsh");
      const m = multisigThreshold(rs);
      if (m !== null) return spend({ kind: "p2sh-multisig", m, scriptBytes: rs.length });
      return null;
    }
    default:
      return null;
  }
}

/** Input type from PSBT fields alone, for inputs without UTXO data (estimate only). */
function guessType(input: TxInput): ScriptType | null {
  if (input.tapInternalKey || input.tapKeySig || input.tapLeafScript?.length) return "p2tr";
  if (input.redeemScript) return "p2sh";
  if (input.witnessScript) return "p2wsh";
  return null;
}

function witnessScriptWeight(ws: Uint8Array, wrap: "p2wsh" | "p2sh-p2wsh"): InputWeight | null {
  const m = multisigThreshold(ws);
  if (m !== null) return inputWeight({ kind: `${wrap}-multisig`, m, scriptBytes: ws.length });
  if (classifyScript(ws) === "p2pk") {
    return weighInput(wrap === "p2wsh" ? 0 : pushLength(34), [MAX_ECDSA_SIG_BYTES, ws.length]);
  }
  return null;
}

/**
 * Taproot: key path (64-byte signature, 65 with an explicit sighash) unless only
 * script paths are possible (no internal key, or BIP341's unspendable NUMS point); then the
 * cheapest leaf with one signature per 32-byte key it contains.
 */
function taprootWeight(input: TxInput): InputWeight | null {
  const keyPathPossible = input.tapInternalKey !== undefined &&
    !bytesEqual(input.tapInternalKey, TAPROOT_UNSPENDABLE_KEY);
  if (input.tapKeySig !== undefined || keyPathPossible || !input.tapLeafScript?.length) {
    const sigBytes = input.tapKeySig?.length ??
      (input.sighashType !== undefined && input.sighashType !== 0 ? 65 : SCHNORR_SIG_BYTES);
    return weighInput(0, [sigBytes]);
  }
  let best: InputWeight | null = null;
  for (const [cb, scriptWithVersion] of input.tapLeafScript) {
    const script = scriptWithVersion.subarray(0, -1);
    const keys = countXOnlyPushes(script);
    const cbBytes = 33 + 32 * cb.merklePath.length;
    const w = weighInput(0, [...Array(keys).fill(SCHNORR_SIG_BYTES), script.length, cbBytes]);
    if (best === null || w.weight < best.weight) best = w;
  }
  return best;
}

function countXOnlyPushes(script: Uint8Array): number {
  let ops: unknown[];
  try {
    ops = Script.decode(script);
  } catch {
    return 1;
  }
  const keys = ops.filter((op) => op instanceof Uint8Array && op.length === 32).length;
  return Math.max(1, keys);
}
