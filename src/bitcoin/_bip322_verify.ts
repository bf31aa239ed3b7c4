/**
 * BIP-322 "Verification Process" (bitcoin/bips `bip-0322.mediawiki`) for the
 * scripts this service understands: P2PKH, P2SH-P2WPKH, P2WPKH and taproot
 * key-path spends. The BIP lets a validator without a full script interpreter
 * stop at step 2 with *inconclusive* for any other script; that is what
 * happens here for P2WSH, bare/P2SH multisig, tapscript spends, annexes and
 * future witness versions.
 *
 * Rules applied to each understood input, in the BIP's order:
 * - required (else *invalid*): SIGHASH_ALL only (taproot: DEFAULT or ALL),
 *   strict DER (BIP66) and low-S (BIP146) ECDSA, minimal pushes, the
 *   templates' exact stack shapes (CLEANSTACK), compressed keys in witness v0
 *   (WITNESS_PUBKEYTYPE), no witness on legacy inputs, BIP340/341 checks;
 * - upgradeable (else *inconclusive*): `to_sign` version 0 or 2, witness
 *   versions ≤ 1.
 *
 * nSequence of the first input and nLockTime are not checked: the BIP reports
 * them as "valid at time T and age S", and none of these templates reads them.
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { classifyScript, witnessProgram } from "./script_type.ts";
import {
  legacySighash,
  type PrevOut,
  segwitV0Sighash,
  taprootSighash,
  verifyEcdsa,
  verifySchnorr,
} from "./sighash.ts";
import { bytesEqual, hash160 } from "./_util.ts";
import { p2pkhScript } from "./_signature_checks.ts";
import { toScure, type VirtualInput, type VirtualTx } from "./_bip322_tx.ts";

/** Outcome of a verification, in the BIP's three states (time/age left out). */
export type Verdict =
  | { state: "valid" }
  | { state: "invalid"; reason: string }
  | { state: "inconclusive"; reason: string };

const SIGHASH_ALL = 0x01;
const SIGHASH_DEFAULT = 0x00;
const ANNEX_TAG = 0x50;
const OP_PUSHDATA1 = 0x4c;
const OP_PUSHDATA2 = 0x4d;
const OP_PUSHDATA4 = 0x4e;

type Plan =
  | { kind: "p2pkh"; keyHash: Uint8Array }
  | { kind: "p2wpkh"; keyHash: Uint8Array; nested: boolean }
  | { kind: "p2tr"; outputKey: Uint8Array };

/**
 * Verify every input of `toSign` against the outputs it spends.
 *
 * @param toSign the signed `to_sign` transaction (structure already checked by the caller)
 * @param prevouts the output each input spends, in input order (`to_spend`'s output first)
 */
export function verifyToSign(toSign: VirtualTx, prevouts: readonly PrevOut[]): Verdict {
  if (prevouts.length !== toSign.inputs.length) {
    return { state: "invalid", reason: "an input has no known spent output" };
  }
  const structural = checkOutpoints(toSign);
  if (structural !== null) return { state: "invalid", reason: structural };

  // Step 2: stop with "inconclusive" unless every script is one we evaluate.
  const plans: Plan[] = [];
  for (let i = 0; i < toSign.inputs.length; i++) {
    const plan = planInput(toSign.inputs[i]!, prevouts[i]!);
    if (plan.state !== "plan") {
      return { state: plan.state, reason: `input ${i}: ${plan.reason}` };
    }
    plans.push(plan.plan);
  }

  // Step 3: required rules.
  let tx: Transaction;
  try {
    tx = toScure(toSign);
  } catch {
    return { state: "invalid", reason: "to_sign is not a valid transaction" };
  }
  for (let i = 0; i < plans.length; i++) {
    const reason = checkInput(tx, toSign.inputs[i]!, i, plans[i]!, prevouts);
    if (reason !== null) return { state: "invalid", reason: `input ${i}: ${reason}` };
  }

  // Step 4: upgradeable rules.
  if (toSign.version !== 0 && toSign.version !== 2) {
    return { state: "inconclusive", reason: `to_sign version ${toSign.version} is not 0 or 2` };
  }
  return { state: "valid" };
}

/** Consensus `CheckTransaction` rules that concern inputs: no duplicates, no null prevout. */
function checkOutpoints(tx: VirtualTx): string | null {
  const seen = new Set<string>();
  for (const input of tx.inputs) {
    const key = `${Array.from(input.prevTxid).join(",")}:${input.prevIndex}`;
    if (seen.has(key)) return "to_sign spends the same output twice";
    seen.add(key);
    if (input.prevIndex === 0xffffffff && input.prevTxid.every((b) => b === 0)) {
      return "to_sign spends the null outpoint";
    }
  }
  return null;
}

type PlanResult =
  | { state: "plan"; plan: Plan }
  | { state: "invalid" | "inconclusive"; reason: string };

function planInput(input: VirtualInput, prev: PrevOut): PlanResult {
  const script = prev.script;
  const type = classifyScript(script);
  switch (type) {
    case "p2pkh":
      return { state: "plan", plan: { kind: "p2pkh", keyHash: script.slice(3, 23) } };
    case "p2wpkh":
      return { state: "plan", plan: { kind: "p2wpkh", keyHash: script.slice(2), nested: false } };
    case "p2tr": {
      const stack = input.witness;
      if (stack.length > 1) {
        // BIP341: with two or more items the last may be an annex, else it is a script-path spend.
        return {
          state: "inconclusive",
          reason: stack[stack.length - 1]![0] === ANNEX_TAG
            ? "a taproot annex is not evaluated"
            : "taproot script-path spends are not evaluated",
        };
      }
      return { state: "plan", plan: { kind: "p2tr", outputKey: script.slice(2) } };
    }
    case "p2sh": {
      // BIP16: the scriptSig must be push-only and its last push is the redeemScript.
      const pushes = readPushes(input.scriptSig);
      if (pushes === null) return { state: "invalid", reason: "P2SH scriptSig is not push-only" };
      const redeemScript = pushes[pushes.length - 1];
      if (redeemScript === undefined) return { state: "invalid", reason: "empty P2SH scriptSig" };
      if (!bytesEqual(hash160(redeemScript), script.slice(2, 22))) {
        return { state: "invalid", reason: "redeemScript does not match the P2SH address" };
      }
      if (classifyScript(redeemScript) !== "p2wpkh") {
        return {
          state: "inconclusive",
          reason: "only P2SH-wrapped P2WPKH redeemScripts are evaluated",
        };
      }
      return {
        state: "plan",
        plan: { kind: "p2wpkh", keyHash: redeemScript.slice(2), nested: true },
      };
    }
    default: {
      const wp = witnessProgram(script);
      if (wp !== null && wp.version > 1) {
        return { state: "inconclusive", reason: "segwit versions greater than 1 are forbidden" };
      }
      return { state: "inconclusive", reason: `${type} scripts are not evaluated here` };
    }
  }
}

/** Required rules for one planned input; null when it is satisfied. */
function checkInput(
  tx: Transaction,
  input: VirtualInput,
  index: number,
  plan: Plan,
  prevouts: readonly PrevOut[],
): string | null {
  const prev = prevouts[index]!;
  switch (plan.kind) {
    case "p2pkh": {
      // A witness on a non-witness spend fails consensus (WITNESS_UNEXPECTED).
      if (input.witness.length > 0) return "witness data on a P2PKH input";
      const pushes = readPushes(input.scriptSig);
      if (pushes === null) return "scriptSig is not minimal push-only";
      if (pushes.length !== 2) return "P2PKH scriptSig must push a signature and a public key";
      const [sig, pubkey] = pushes as [Uint8Array, Uint8Array];
      if (!isStrictPubkey(pubkey)) return "public key is not a valid SEC1 encoding";
      if (!bytesEqual(hash160(pubkey), plan.keyHash)) {
        return "public key does not match the address";
      }
      return checkEcdsa(sig, pubkey, () => legacySighash(tx, index, prev.script, SIGHASH_ALL));
    }
    case "p2wpkh": {
      if (plan.nested) {
        // BIP141: a P2SH-P2WPKH scriptSig is exactly the one push of the redeemScript.
        const expected = Uint8Array.of(0x16, 0x00, 0x14, ...plan.keyHash);
        if (!bytesEqual(input.scriptSig, expected)) {
          return "P2SH-P2WPKH scriptSig must be exactly the push of the redeemScript";
        }
      } else if (input.scriptSig.length > 0) {
        return "native segwit input with a non-empty scriptSig";
      }
      if (input.witness.length !== 2) return "P2WPKH witness must hold a signature and a key";
      const [sig, pubkey] = input.witness as [Uint8Array, Uint8Array];
      // WITNESS_PUBKEYTYPE: witness v0 keys are compressed.
      if (pubkey.length !== 33 || (pubkey[0] !== 0x02 && pubkey[0] !== 0x03)) {
        return "witness public key is not compressed";
      }
      if (!bytesEqual(hash160(pubkey), plan.keyHash)) {
        return "public key does not match the address";
      }
      const scriptCode = p2pkhScript(plan.keyHash);
      return checkEcdsa(
        sig,
        pubkey,
        () => segwitV0Sighash(tx, index, scriptCode, prev.amountSats, SIGHASH_ALL),
      );
    }
    case "p2tr": {
      if (input.scriptSig.length > 0) return "taproot input with a non-empty scriptSig";
      // Planning let through one item at most.
      const sig = input.witness[0];
      if (sig === undefined) return "empty taproot witness";
      let hashType: number;
      if (sig.length === 64) hashType = SIGHASH_DEFAULT;
      else if (sig.length === 65) {
        // BIP341: an explicit 0x00 byte is invalid; BIP-322 allows only SIGHASH_ALL.
        hashType = sig[64]!;
        if (hashType !== SIGHASH_ALL) return "taproot signature does not use SIGHASH_ALL";
      } else return "taproot signature must be 64 or 65 bytes";
      const sighash = taprootSighash(tx, index, prevouts, hashType);
      return verifySchnorr(plan.outputKey, sighash, sig.subarray(0, 64))
        ? null
        : "signature does not verify";
    }
  }
}

/** ECDSA required rules: SIGHASH_ALL, strict DER, low S, and a verifying signature. */
function checkEcdsa(
  sigWithType: Uint8Array,
  pubkey: Uint8Array,
  sighash: () => Uint8Array,
): string | null {
  if (sigWithType.length === 0) return "empty signature";
  if (!isValidSignatureEncoding(sigWithType)) return "signature is not strict DER (BIP66)";
  if (sigWithType[sigWithType.length - 1] !== SIGHASH_ALL) {
    return "signature does not use SIGHASH_ALL";
  }
  const { valid, lowS } = verifyEcdsa(pubkey, sighash(), sigWithType.subarray(0, -1));
  if (!valid) return "signature does not verify";
  if (!lowS) return "signature has a high S value (BIP146 LOW_S)";
  return null;
}

/**
 * Bitcoin Core `IsValidSignatureEncoding` (BIP66 strict DER plus the sighash byte).
 *
 * @param sig DER signature followed by its sighash byte
 */
export function isValidSignatureEncoding(sig: Uint8Array): boolean {
  const size = sig.length;
  if (size < 9 || size > 73) return false;
  if (sig[0] !== 0x30) return false;
  if (sig[1] !== size - 3) return false;
  const lenR = sig[3]!;
  if (5 + lenR >= size) return false;
  const lenS = sig[5 + lenR]!;
  if (lenR + lenS + 7 !== size) return false;
  if (sig[2] !== 0x02) return false;
  if (lenR === 0) return false;
  if (sig[4]! & 0x80) return false;
  if (lenR > 1 && sig[4] === 0x00 && !(sig[5]! & 0x80)) return false;
  if (sig[lenR + 4] !== 0x02) return false;
  if (lenS === 0) return false;
  if (sig[lenR + 6]! & 0x80) return false;
  if (lenS > 1 && sig[lenR + 6] === 0x00 && !(sig[lenR + 7]! & 0x80)) return false;
  return true;
}

/** STRICTENC `IsCompressedOrUncompressedPubKey`. */
function isStrictPubkey(pubkey: Uint8Array): boolean {
  if (pubkey.length === 33) return pubkey[0] === 0x02 || pubkey[0] === 0x03;
  if (pubkey.length === 65) return pubkey[0] === 0x04;
  return false;
}

/**
 * The data pushes of a script that is push-only with minimal pushes
 * (MINIMALDATA), or null. OP_1..OP_16 and OP_1NEGATE are not accepted: no
 * template evaluated here uses them in a scriptSig.
 */
function readPushes(script: Uint8Array): Uint8Array[] | null {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < script.length) {
    const op = script[at++]!;
    let len: number;
    if (op <= 0x4b) len = op;
    else if (op === OP_PUSHDATA1) {
      if (at + 1 > script.length) return null;
      len = script[at]!;
      at += 1;
      if (len <= 0x4b) return null;
    } else if (op === OP_PUSHDATA2) {
      if (at + 2 > script.length) return null;
      len = script[at]! | (script[at + 1]! << 8);
      at += 2;
      if (len <= 0xff) return null;
    } else if (op === OP_PUSHDATA4) {
      // Any push that needs PUSHDATA4 exceeds the 520-byte element limit.
      return null;
    } else return null;
    if (at + len > script.length) return null;
    const data = script.slice(at, at + len);
    at += len;
    // MINIMALDATA: a one-byte 1..16 or 0x81 must use OP_1..OP_16 / OP_1NEGATE.
    if (len === 1 && ((data[0]! >= 1 && data[0]! <= 16) || data[0] === 0x81)) return null;
    out.push(data);
  }
  return out;
}
