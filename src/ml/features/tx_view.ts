/**
 * One normalised view of a transaction for the risk features, built either
 * from a PSBT (what the edge is asked to sign) or from a raw transaction with
 * the outputs it spends (the real mainnet transactions the model is trained
 * on). Both paths reuse `src/bitcoin`: `inspectPsbt` (UTXO values, script
 * types, BIP32/taproot change marks, estimated or exact vsize),
 * `parseRawTx`/`txFeeAndVsize` (strict decoding, exact fee and vsize),
 * `classifyScript` and `scriptPubKeyToAddress`.
 *
 * Change: a PSBT output is change when it carries PSBT_OUT_BIP32_DERIVATION or
 * PSBT_OUT_TAP_BIP32_DERIVATION (BIP174/BIP371: wallets attach them to outputs
 * they own). A raw transaction carries no such mark, so {@linkcode txViewFromRawTx}
 * applies the usual chain-analysis heuristics (see {@linkcode guessRawTxChange})
 * and leaves `isChange` null when they do not decide.
 *
 * Pure, no I/O.
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import { assertNetwork, scriptPubKeyToAddress } from "../../bitcoin/address.ts";
import { classifyScript } from "../../bitcoin/script_type.ts";
import { inspectPsbt } from "../../bitcoin/psbt_inspect.ts";
import { psbtVersionOf } from "../../bitcoin/psbt_maps.ts";
import { parseRawTx, txFeeAndVsize } from "../../bitcoin/tx_metrics.ts";
import { weightToVsize } from "../../bitcoin/tx_size.ts";

/** Script type of an input whose spent output is not known (PSBT without UTXO data). */
export const UNKNOWN_SCRIPT_TYPE = "unknown";

/** One input of a {@linkcode TxView}. */
export interface TxViewInput {
  /** Value of the spent output, null when unknown. */
  amountSats: bigint | null;
  /** `classifyScript` name of the spent output, or {@linkcode UNKNOWN_SCRIPT_TYPE}. */
  scriptType: string;
  /** nSequence. */
  sequence: number;
}

/** One output of a {@linkcode TxView}. */
export interface TxViewOutput {
  /** Output value. */
  amountSats: bigint;
  /** scriptPubKey (a copy). */
  script: Uint8Array;
  /** `classifyScript` name. */
  scriptType: string;
  /** Address on the view's network, null for scripts without one (OP_RETURN, P2PK, …). */
  address: string | null;
  /** True when change, false when not, null when it cannot be told. */
  isChange: boolean | null;
}

/** A transaction as the risk features see it. */
export interface TxView {
  /** Inputs in order. */
  inputs: TxViewInput[];
  /** Outputs in order. */
  outputs: TxViewOutput[];
  /** nLockTime. */
  locktime: number;
  /** nVersion. */
  version: number;
  /** Virtual size (exact for raw/finalized transactions, a worst-case estimate otherwise). */
  vsize: number;
  /** sum(inputs) − sum(outputs); null when some input value is unknown. */
  feeSats: bigint | null;
}

/** One spent output, as {@linkcode txViewFromRawTx} takes it. */
export interface RawPrevout {
  /** Value of the spent output. */
  amountSats: bigint;
  /** Its scriptPubKey, hex. */
  scriptHex: string;
}

/**
 * The view of a PSBT's transaction.
 *
 * @param tx a PSBT decoded by `parsePsbt` (`src/bitcoin/psbt_parse.ts`)
 * @param network the configured network (addresses)
 * @returns the view; `vsize` is exact when every input is finalized, otherwise the worst-case
 *   estimate of `inspectPsbt`, or the unsigned size when some input's script is unknown
 */
export function txViewFromPsbt(tx: Transaction, network: BitcoinNetwork): TxView {
  if (
    typeof tx !== "object" || tx === null || typeof tx.toPSBT !== "function" ||
    typeof tx.getInput !== "function"
  ) {
    throw new TypeError(`Invalid tx: expected a Transaction, got ${describe(tx)}`);
  }
  assertNetwork(network);
  const bytes = tx.toPSBT();
  // Signatures do not change any feature, and verifying them is the expensive part of inspection.
  const report = inspectPsbt(
    { tx, version: psbtVersionOf(bytes), bytes, format: "base64" },
    { network, verifySignatures: false },
  );
  // Why the fallback: without an input's script its signed size is unknown; the unsigned
  // transaction is a lower bound, which keeps the fee rate an upper bound (never understated).
  const vsize = report.vsize ?? weightToVsize(tx.unsignedTx.length * 4);
  return {
    inputs: report.inputs.map((i) => ({
      amountSats: i.valueSats,
      scriptType: i.scriptType ?? UNKNOWN_SCRIPT_TYPE,
      sequence: i.sequence,
    })),
    outputs: report.outputs.map((o) => ({
      amountSats: o.valueSats,
      script: hex.decode(o.scriptPubKeyHex),
      scriptType: o.scriptType,
      address: o.address,
      isChange: o.isChange,
    })),
    locktime: report.locktime,
    version: report.txVersion,
    vsize,
    feeSats: report.feeSats,
  };
}

/**
 * The view of a raw transaction given the outputs it spends.
 *
 * @param txHex the serialized transaction, hex
 * @param prevouts the spent outputs in input order
 * @param network the network for output addresses
 * @returns the view with exact fee and vsize and heuristic change marks
 * @throws ValidationError (422) when the transaction is malformed or pays more than it spends
 */
export function txViewFromRawTx(
  txHex: string,
  prevouts: readonly RawPrevout[],
  network: BitcoinNetwork,
): TxView {
  if (typeof txHex !== "string") {
    throw new TypeError(`Invalid txHex: expected a string, got ${describe(txHex)}`);
  }
  if (!Array.isArray(prevouts)) {
    throw new TypeError(`Invalid prevouts: expected an array, got ${describe(prevouts)}`);
  }
  assertNetwork(network);
  const prevScripts = prevouts.map((p, i) => {
    if (typeof p !== "object" || p === null) {
      throw new TypeError(`Invalid prevouts[${i}]: expected an object, got ${describe(p)}`);
    }
    if (typeof p.amountSats !== "bigint" || p.amountSats < 0n) {
      throw new TypeError(
        `Invalid prevouts[${i}].amountSats: expected a non-negative bigint, got ${
          describe(p.amountSats)
        }`,
      );
    }
    if (typeof p.scriptHex !== "string" || !/^([0-9a-fA-F]{2})*$/.test(p.scriptHex)) {
      throw new TypeError(`Invalid prevouts[${i}].scriptHex: expected a hex string`);
    }
    return hex.decode(p.scriptHex.toLowerCase());
  });
  const tx = parseRawTx(txHex);
  // txFeeAndVsize checks the prevout count and refuses outputs above inputs.
  const metrics = txFeeAndVsize(tx.bytes, prevouts.map((p) => ({ valueSats: p.amountSats })));
  const inputTypes = prevScripts.map((s) => classifyScript(s));
  const outputs: TxViewOutput[] = tx.outputs.map((o) => ({
    amountSats: o.valueSats,
    script: o.script.slice(),
    scriptType: classifyScript(o.script),
    address: scriptPubKeyToAddress(o.script, network),
    isChange: null,
  }));
  const change = guessRawTxChange(prevScripts, inputTypes, outputs);
  outputs.forEach((o, i) => (o.isChange = change[i] ?? null));
  return {
    inputs: tx.inputs.map((input, i) => ({
      amountSats: prevouts[i]!.amountSats,
      scriptType: inputTypes[i]!,
      sequence: input.sequence,
    })),
    outputs,
    locktime: tx.locktime,
    version: tx.version,
    vsize: metrics.vsize,
    feeSats: metrics.feeSats,
  };
}

// A payment "looks round" when it is a whole number of these (0.001 BTC); change rarely is.
const ROUND_SATS = 100_000n;

/**
 * Change marks for a raw transaction, from the usual heuristics, tried in order:
 * 1. address reuse: outputs paying a script one of the inputs spent are change;
 * 2. a transaction with one spendable output has no change (a sweep or consolidation);
 * 3. script type: when every input has the same type and exactly one spendable output
 *    has it, that output is change (wallets pay change to their own script type);
 * 4. round payment: when exactly one spendable output is not a multiple of 0.001 BTC
 *    and the others are, the odd one is change.
 * Unspendable outputs (OP_RETURN) are never change. When nothing decides, every mark is null.
 *
 * @param prevScripts the spent scripts in input order
 * @param inputTypes their script types
 * @param outputs the outputs (script, value, type)
 * @returns one mark per output
 */
export function guessRawTxChange(
  prevScripts: readonly Uint8Array[],
  inputTypes: readonly string[],
  outputs: readonly Pick<TxViewOutput, "amountSats" | "script" | "scriptType">[],
): (boolean | null)[] {
  const spendable = outputs.map((o) => o.scriptType !== "op_return");
  const mark = (isChange: (i: number) => boolean) =>
    outputs.map((_, i) => spendable[i]! && isChange(i));
  const spent = new Set(prevScripts.map((s) => hex.encode(s)));
  const reused = outputs.map((o) => spent.has(hex.encode(o.script)));
  if (reused.some((r, i) => r && spendable[i]!)) return mark((i) => reused[i]!);
  const candidates = outputs.flatMap((_, i) => (spendable[i]! ? [i] : []));
  if (candidates.length === 1) return mark(() => false);
  if (candidates.length === 0) return outputs.map(() => false);
  const types = new Set(inputTypes);
  if (types.size === 1) {
    const [only] = types;
    const same = candidates.filter((i) => outputs[i]!.scriptType === only);
    if (same.length === 1) return mark((i) => i === same[0]);
  }
  const odd = candidates.filter((i) => outputs[i]!.amountSats % ROUND_SATS !== 0n);
  if (odd.length === 1) return mark((i) => i === odd[0]);
  return outputs.map((_, i) => (spendable[i]! ? null : false));
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  return typeof value;
}
