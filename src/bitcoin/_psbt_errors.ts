/**
 * Client-facing explanations of PSBTs `@scure/btc-signer` rejects: which map
 * (global, input n, output n) and which BIP174/BIP370/BIP371 rule, using the
 * field names of the BIPs (PSBT_IN_WITNESS_UTXO, ...) instead of library
 * messages. Library text never reaches a client unfiltered: unknown messages
 * are shortened and stripped of hex.
 *
 * @module
 */
import { PSBTInputCoder, PSBTOutputCoder, RawPSBTV0, RawPSBTV2 } from "@scure/btc-signer/psbt.js";
import { RawOldTx } from "@scure/btc-signer/script.js";
import { psbtVersionOf, type RawMap, readCompactSizeValue, splitPsbtMaps } from "./psbt_maps.ts";

const GLOBAL_FIELDS: Record<string, string> = {
  unsignedTx: "PSBT_GLOBAL_UNSIGNED_TX",
  xpub: "PSBT_GLOBAL_XPUB",
  txVersion: "PSBT_GLOBAL_TX_VERSION",
  fallbackLocktime: "PSBT_GLOBAL_FALLBACK_LOCKTIME",
  inputCount: "PSBT_GLOBAL_INPUT_COUNT",
  outputCount: "PSBT_GLOBAL_OUTPUT_COUNT",
  txModifiable: "PSBT_GLOBAL_TX_MODIFIABLE",
  version: "PSBT_GLOBAL_VERSION",
};
const INPUT_FIELDS: Record<string, string> = {
  nonWitnessUtxo: "PSBT_IN_NON_WITNESS_UTXO",
  witnessUtxo: "PSBT_IN_WITNESS_UTXO",
  partialSig: "PSBT_IN_PARTIAL_SIG",
  sighashType: "PSBT_IN_SIGHASH_TYPE",
  redeemScript: "PSBT_IN_REDEEM_SCRIPT",
  witnessScript: "PSBT_IN_WITNESS_SCRIPT",
  bip32Derivation: "PSBT_IN_BIP32_DERIVATION",
  finalScriptSig: "PSBT_IN_FINAL_SCRIPTSIG",
  finalScriptWitness: "PSBT_IN_FINAL_SCRIPTWITNESS",
  porCommitment: "PSBT_IN_POR_COMMITMENT",
  ripemd160: "PSBT_IN_RIPEMD160",
  sha256: "PSBT_IN_SHA256",
  hash160: "PSBT_IN_HASH160",
  hash256: "PSBT_IN_HASH256",
  txid: "PSBT_IN_PREVIOUS_TXID",
  index: "PSBT_IN_OUTPUT_INDEX",
  sequence: "PSBT_IN_SEQUENCE",
  requiredTimeLocktime: "PSBT_IN_REQUIRED_TIME_LOCKTIME",
  requiredHeightLocktime: "PSBT_IN_REQUIRED_HEIGHT_LOCKTIME",
  tapKeySig: "PSBT_IN_TAP_KEY_SIG",
  tapScriptSig: "PSBT_IN_TAP_SCRIPT_SIG",
  tapLeafScript: "PSBT_IN_TAP_LEAF_SCRIPT",
  tapBip32Derivation: "PSBT_IN_TAP_BIP32_DERIVATION",
  tapInternalKey: "PSBT_IN_TAP_INTERNAL_KEY",
  tapMerkleRoot: "PSBT_IN_TAP_MERKLE_ROOT",
};
const OUTPUT_FIELDS: Record<string, string> = {
  redeemScript: "PSBT_OUT_REDEEM_SCRIPT",
  witnessScript: "PSBT_OUT_WITNESS_SCRIPT",
  bip32Derivation: "PSBT_OUT_BIP32_DERIVATION",
  amount: "PSBT_OUT_AMOUNT",
  script: "PSBT_OUT_SCRIPT",
  tapInternalKey: "PSBT_OUT_TAP_INTERNAL_KEY",
  tapTree: "PSBT_OUT_TAP_TREE",
  tapBip32Derivation: "PSBT_OUT_TAP_BIP32_DERIVATION",
};

type MapKind = "global" | "input" | "output";

function fieldName(name: string, kind?: MapKind): string {
  const tables = kind === "input"
    ? [INPUT_FIELDS]
    : kind === "output"
    ? [OUTPUT_FIELDS]
    : kind === "global"
    ? [GLOBAL_FIELDS]
    : [GLOBAL_FIELDS, INPUT_FIELDS, OUTPUT_FIELDS];
  for (const t of tables) if (t[name] !== undefined) return t[name];
  return `field "${name}"`;
}

/** Rules turning scure's messages into client-facing reasons, first match wins. */
const REASONS: [RegExp, (m: RegExpMatchArray, kind?: MapKind) => string][] = [
  [/duplicate key=([0-9a-f]+)/, (m) => `duplicate key 0x${shortHex(m[1]!)}`],
  [/Same keys: (\w+)/, (m, k) => `duplicate ${fieldName(m[1]!, k)}`],
  [/Non-empty key for (\w+)/, (m, k) => `${fieldName(m[1]!, k)} must have no key data`],
  [/Key type with empty key and no key=(\w+)/, (m, k) => `${fieldName(m[1]!, k)} needs key data`],
  [
    /PSBTv(\d+): field (\w+) is not allowed/,
    (m) => `${fieldName(m[2]!)} is not allowed in a version ${m[1]} PSBT`,
  ],
  [
    /PSBTv(\d+): missing required field (\w+)/,
    (m) => `a version ${m[1]} PSBT requires ${fieldName(m[2]!)}`,
  ],
  [
    /PSBTv0: missing unsignedTx/,
    () => "missing the unsigned transaction (PSBT_GLOBAL_UNSIGNED_TX)",
  ],
  [
    /input scriptSig found in unsignedTx/,
    () => "the unsigned transaction has a non-empty scriptSig",
  ],
  [
    /incompatible height-based and time-based locktime/,
    () =>
      "the locktime cannot be determined: inputs require both a block-height and a time locktime",
  ],
  [/wrong timeLocktime/, () => "PSBT_IN_REQUIRED_TIME_LOCKTIME must be at least 500000000"],
  [/wrong heighLocktime/, () => "PSBT_IN_REQUIRED_HEIGHT_LOCKTIME must be between 1 and 499999999"],
  [
    /Wrong PSBT version|Unknown PSBT version/,
    () => "unsupported PSBT version (only 0 and 2 exist)",
  ],
  [
    /nonWitnessUtxo: wrong txid/,
    () => "PSBT_IN_NON_WITNESS_UTXO does not hash to the input's previous txid",
  ],
  [
    /witnessUtxo different from nonWitnessUtxo/,
    () => "PSBT_IN_WITNESS_UTXO differs from the output in PSBT_IN_NON_WITNESS_UTXO",
  ],
  [
    /not in nonWitnessUtxo|incorect output index/,
    () => "the previous output index is not in PSBT_IN_NON_WITNESS_UTXO",
  ],
  [
    /Schnorr signature should be 64 or 65 bytes/,
    () => "a taproot signature must be 64 or 65 bytes",
  ],
  [
    /tapLeafScript version/,
    () => "PSBT_IN_TAP_LEAF_SCRIPT leaf version does not match its control block",
  ],
  [/tapTree/, () => "PSBT_OUT_TAP_TREE is not a complete depth-first taproot tree"],
  [/TaprootControlBlock/, () => "a taproot control block has too many merkle path elements"],
  [
    /GlobalXPUB|PSBT_GLOBAL_XPUB/,
    () => "PSBT_GLOBAL_XPUB is inconsistent with its derivation path",
  ],
  [/validateOutput: wrong amount/, () => "PSBT_OUT_AMOUNT is negative"],
  [/empty finalScriptWitness/, () => "PSBT_IN_FINAL_SCRIPTWITNESS is empty"],
  [/Empty partialSig/, () => "PSBT_IN_PARTIAL_SIG is empty"],
  [/Proprietary key/, () => "a proprietary key is malformed"],
  [/MuSig2/i, () => "a MuSig2 field is malformed"],
  [/Wrong CompactSize/, () => "a length uses a non-minimal CompactSize encoding"],
  [/non-Schnorr key|square root|pubkey|point|public key/i, () => "invalid public key"],
  [
    /Not outputs inputs|Wrong number of input maps|Unexpected outputs left/,
    () => "the number of input/output maps does not match the transaction",
  ],
  [/bytes \d+ bits left after unpack/, () => "a key or value is longer than its type allows"],
  [
    /Unexpected end of buffer|readBytes|Wrong length/,
    () => "a key or value is shorter than its type requires",
  ],
];

function shortHex(h: string): string {
  return h.length > 16 ? `${h.slice(0, 16)}…` : h;
}

function reasonOf(err: unknown, kind?: MapKind): string {
  const msg = err instanceof Error ? err.message : String(err);
  for (const [re, fn] of REASONS) {
    const m = msg.match(re);
    if (m !== null) return fn(m, kind);
  }
  // Unknown library message: keep it short and drop hex dumps (no PSBT internals in problems).
  const cleaned = msg.replace(/Reader\([^)]*\):\s*/g, "").replace(/[0-9a-f]{16,}/gi, "…");
  return `malformed data (${cleaned.slice(0, 120)})`;
}

/** Map counts from the global map, when it is readable. */
function mapCounts(global: RawMap): { inputs: number; outputs: number } | null {
  const get = (t: number) => global.entries.find((e) => e.keyType === t && e.keyData.length === 0);
  const unsigned = get(0x00);
  if (unsigned !== undefined) {
    try {
      const tx = RawOldTx.decode(unsigned.value);
      return { inputs: tx.inputs.length, outputs: tx.outputs.length };
    } catch {
      return null;
    }
  }
  const inputs = get(0x04), outputs = get(0x05);
  if (inputs === undefined || outputs === undefined) return null;
  const i = readCompactSizeValue(inputs.value), o = readCompactSizeValue(outputs.value);
  return i === null || o === null ? null : { inputs: i, outputs: o };
}

function mapName(index: number, counts: { inputs: number; outputs: number } | null): string {
  if (index === 0) return "the global map";
  if (counts === null) return `map ${index}`;
  if (index <= counts.inputs) return `input ${index - 1}`;
  if (index <= counts.inputs + counts.outputs) return `output ${index - 1 - counts.inputs}`;
  return `map ${index} (after the last output)`;
}

/**
 * Explain why scure rejected `bytes`: framing problems first (magic,
 * truncation, duplicate keys, map counts), then the first input or output map
 * scure's own map decoder refuses, then the PSBT-level rule.
 *
 * @param bytes the PSBT scure rejected
 * @param err scure's error
 * @returns a client-safe reason, without the "Invalid PSBT: " prefix
 */
export function explainPsbtError(bytes: Uint8Array, err: unknown): string {
  const split = splitPsbtMaps(bytes);
  const global = split.ok ? split.maps[0] : undefined;
  const counts = global === undefined ? null : mapCounts(global);
  if (!split.ok) {
    const full = splitPsbtMaps(bytes, split.mapIndex);
    const where = mapName(split.mapIndex, full.ok && full.maps[0] ? mapCounts(full.maps[0]) : null);
    switch (split.problem) {
      case "magic":
        return 'does not start with the PSBT magic bytes "psbt\\xff"';
      case "truncated":
        return `truncated in ${where}`;
      case "duplicate-key":
        return `duplicate key 0x${shortHex(split.keyHex ?? "")} in ${where}`;
      case "bad-length":
        return `malformed key in ${where}`;
    }
  }
  const maps = split.maps;
  if (global === undefined) return "missing the global map";
  const version = psbtVersionOf(bytes);
  if (version === 2) {
    // BIP370: v2 frames its maps with the global counts and has no unsigned transaction; scure's
    // v2 decoder cannot even count maps without them, so name the missing field here.
    const has = (t: number) => global.entries.some((e) => e.keyType === t);
    if (has(0x00)) return "PSBT_GLOBAL_UNSIGNED_TX is not allowed in a version 2 PSBT";
    if (!has(0x04)) return "a version 2 PSBT requires PSBT_GLOBAL_INPUT_COUNT";
    if (!has(0x05)) return "a version 2 PSBT requires PSBT_GLOBAL_OUTPUT_COUNT";
  }
  if (counts !== null) {
    const expected = 1 + counts.inputs + counts.outputs;
    // BIP174 vector "PSBT missing outputs": fewer maps than the transaction has inputs+outputs.
    // (One extra empty output map is tolerated by scure for bip174js-made PSBTs.)
    if (maps.length < expected) {
      const n = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
      const found = maps.length - 1;
      return `expected ${expected - 1} maps after the global map (${n(counts.inputs, "input")}, ${
        n(counts.outputs, "output")
      }), found ${found}`;
    }
    for (let i = 1; i < Math.min(maps.length, expected); i++) {
      const isInput = i <= counts.inputs;
      const coder = isInput ? PSBTInputCoder : PSBTOutputCoder;
      try {
        coder.decode(bytes.subarray(maps[i]!.start, maps[i]!.end));
      } catch (e) {
        return `${mapName(i, counts)}: ${reasonOf(e, isInput ? "input" : "output")}`;
      }
    }
  }
  // PSBT-level rules (version fields, counts): ask the decoder of the version the PSBT claims,
  // since Transaction.fromPSBT reports the v0 decoder's error for v2 PSBTs too.
  try {
    (version === 2 ? RawPSBTV2 : RawPSBTV0).decode(bytes);
  } catch (e) {
    return reasonOf(e);
  }
  return reasonOf(err);
}
