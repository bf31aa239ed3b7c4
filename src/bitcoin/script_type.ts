/**
 * scriptPubKey classification and standardness.
 *
 * Templates follow Bitcoin Core's `Solver()` (`src/script/solver.cpp`): the
 * recognised output types are P2PKH, P2SH, P2WPKH, P2WSH (BIP141), P2TR
 * (BIP341), P2A (pay-to-anchor), P2PK, bare multisig, OP_RETURN (null data) and
 * witness programs of future versions (BIP141 "witness unknown", BIP350
 * addresses). Everything else is non-standard: Core relays no transaction that
 * creates such an output. Template matching is delegated to
 * `@scure/btc-signer`'s `OutScript`; this module only names the result and adds
 * the two shapes scure leaves as `unknown` (OP_RETURN and future witness
 * versions). Dust thresholds and sizes live in `tx_size.ts`.
 *
 * @module
 */
import { OutScript } from "@scure/btc-signer";
import { describeType } from "./_assert.ts";

/** Output script types the edge names. */
export type ScriptType =
  | "p2pkh"
  | "p2sh"
  | "p2wpkh"
  | "p2wsh"
  | "p2tr"
  | "p2a"
  | "p2pk"
  | "multisig"
  | "op_return"
  | "witness-unknown"
  | "nonstandard";

// OP_0 and OP_1..OP_16: the witness version opcodes of BIP141.
const OP_0 = 0x00;
const OP_1 = 0x51;
const OP_16 = 0x60;
const OP_RETURN = 0x6a;
const OP_DUP = 0x76;
const OP_EQUAL = 0x87;
const OP_EQUALVERIFY = 0x88;
const OP_HASH160 = 0xa9;
const OP_CHECKSIG = 0xac;
/** Largest script Core executes (`MAX_SCRIPT_SIZE`); a longer scriptPubKey can never be spent. */
export const MAX_SCRIPT_SIZE = 10_000;

function assertScript(script: unknown, name: string): asserts script is Uint8Array {
  if (!(script instanceof Uint8Array)) {
    throw new TypeError(`Invalid ${name}: expected a Uint8Array, got ${describeType(script)}`);
  }
}

/**
 * The witness version and program of `script` when it is a BIP141 witness
 * program (`OP_n <2..40 bytes>`), else null.
 *
 * @param script a scriptPubKey
 */
export function witnessProgram(
  script: Uint8Array,
): { version: number; program: Uint8Array } | null {
  assertScript(script, "script");
  // BIP141: a version byte (OP_0 or OP_1..OP_16) then one direct push of 2..40 bytes, nothing else.
  if (script.length < 4 || script.length > 42) return null;
  const op = script[0]!;
  const len = script[1]!;
  if (len + 2 !== script.length || len < 2 || len > 40) return null;
  if (op === OP_0) return { version: 0, program: script.slice(2) };
  if (op >= OP_1 && op <= OP_16) return { version: op - OP_1 + 1, program: script.slice(2) };
  return null;
}

/**
 * Whether an output paying `script` can provably never be spent (Core
 * `CScript::IsUnspendable`): it starts with OP_RETURN or exceeds
 * {@linkcode MAX_SCRIPT_SIZE}. Such outputs are never dust and never in the UTXO set.
 *
 * @param script a scriptPubKey
 */
export function isUnspendable(script: Uint8Array): boolean {
  assertScript(script, "script");
  return (script.length > 0 && script[0] === OP_RETURN) || script.length > MAX_SCRIPT_SIZE;
}

/**
 * The threshold m of an `OP_m <keys> OP_n OP_CHECKMULTISIG` script, null for any other script.
 *
 * @param script a scriptPubKey, redeemScript or witnessScript
 */
export function multisigThreshold(script: Uint8Array): number | null {
  assertScript(script, "script");
  try {
    const decoded = OutScript.decode(script);
    return decoded.type === "ms" ? decoded.m : null;
  } catch {
    return null;
  }
}

/**
 * The output templates almost every transaction uses, matched on their bytes.
 * scure's `OutScript.decode` would also lift a P2TR key onto the curve (a
 * modular square root, ~0.1 ms), which a template check does not need: an
 * off-curve key still makes a P2TR output, only an unspendable one.
 */
function commonTemplate(s: Uint8Array): ScriptType | null {
  switch (s.length) {
    case 22:
      return s[0] === OP_0 && s[1] === 20 ? "p2wpkh" : null;
    case 23:
      return s[0] === OP_HASH160 && s[1] === 20 && s[22] === OP_EQUAL ? "p2sh" : null;
    case 25:
      return s[0] === OP_DUP && s[1] === OP_HASH160 && s[2] === 20 && s[23] === OP_EQUALVERIFY &&
          s[24] === OP_CHECKSIG
        ? "p2pkh"
        : null;
    case 34:
      if (s[1] !== 32) return null;
      return s[0] === OP_0 ? "p2wsh" : s[0] === OP_1 ? "p2tr" : null;
    default:
      return null;
  }
}

/**
 * Name the template of a scriptPubKey.
 *
 * @param script a scriptPubKey
 * @returns the type; `nonstandard` when no template matches
 */
export function classifyScript(script: Uint8Array): ScriptType {
  assertScript(script, "script");
  const common = commonTemplate(script);
  if (common !== null) return common;
  let decoded: { type: string } | undefined;
  try {
    decoded = OutScript.decode(script);
  } catch {
    // scure throws on scripts that do not even parse (a push running past the end, unknown
    // opcodes); those can still be OP_RETURN data or witness programs, checked below.
    decoded = undefined;
  }
  switch (decoded?.type) {
    case "pkh":
      return "p2pkh";
    case "sh":
      return "p2sh";
    case "wpkh":
      return "p2wpkh";
    case "wsh":
      return "p2wsh";
    case "tr":
      return "p2tr";
    case "p2a":
      return "p2a";
    case "pk":
      return "p2pk";
    case "ms":
      return "multisig";
  }
  if (script.length > 0 && script[0] === OP_RETURN) return "op_return";
  const wp = witnessProgram(script);
  // v0 programs must be exactly 20 or 32 bytes (BIP141); other v0 lengths are unspendable, not
  // "future" programs, so they stay non-standard.
  if (wp !== null && wp.version > 0) return "witness-unknown";
  return "nonstandard";
}

/**
 * Whether Core relays a transaction creating an output of this type.
 * Bare multisig is relayed by default (`-permitbaremultisig=1`).
 *
 * @param type a classified script type
 */
export function isStandardOutputType(type: ScriptType): boolean {
  return type !== "nonstandard";
}
