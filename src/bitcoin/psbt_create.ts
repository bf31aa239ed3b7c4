/**
 * PSBT Creator and Updater: build an unsigned transaction paying the given
 * outputs from the given UTXOs, with coin selection, a change output, RBF
 * signalling and the dust/standardness rules Bitcoin Core relays by.
 *
 * Specs: BIP174 §"Creator", §"Updater" (PSBT_IN_WITNESS_UTXO for segwit
 * inputs, PSBT_IN_NON_WITNESS_UTXO for legacy ones); BIP370 (PSBT version 2);
 * BIP125 (nSequence ≤ 0xfffffffd signals replaceability); Bitcoin Core
 * `src/policy/policy.cpp` (`IsStandardTx`: dust, one OP_RETURN of ≤ 83
 * script bytes, weight ≤ 400,000).
 * https://github.com/bitcoin/bips/blob/master/bip-0174.mediawiki#creator
 *
 * Amounts are bigint satoshis; the fee is ⌈estimated vsize × rate / 1000⌉ and
 * inputs = outputs + change + fee holds exactly.
 *
 * @module
 */
import { Script, Transaction } from "@scure/btc-signer";
import { base64, hex } from "@scure/base";
import { feeRateSatPerKvb, formatSatPerVb, MAX_MONEY_SATS } from "./amount.ts";
import type { BitcoinNetwork } from "./network.ts";
import { assertNetwork, describeAddress } from "./address.ts";
import { classifyScript } from "./script_type.ts";
import { dustThreshold, inputWeight } from "./tx_size.ts";
import { type CoinCandidate, priceSelection, selectCoins, type Selection } from "./coin_select.ts";
import { type PreparedUtxo, prepareUtxo, type UtxoInput } from "./psbt_utxo.ts";
import { ValidationError } from "../errors/app_error.ts";

export type { UtxoInput } from "./psbt_utxo.ts";

/** Lowest fee rate accepted, sat/kvB: 1 sat/vB, the relay floor most of the network still enforces. */
export const MIN_FEE_RATE_SAT_PER_KVB = 1000;
/**
 * Highest fee rate accepted, sat/kvB (5,000 sat/vB). Mempool peaks have stayed
 * below ~2,000 sat/vB, and Core's own `sendrawtransaction` guard
 * (`DEFAULT_MAX_RAW_TX_FEE_RATE`) is 10,000 sat/vB; anything above this is a
 * unit mistake (sat/vB sent as sat/kvB twice), not a fee anyone means to pay.
 */
export const MAX_FEE_RATE_SAT_PER_KVB = 5_000_000;
/** Largest absolute fee accepted by default: 0.1 BTC, Core's wallet `-maxtxfee` default. */
export const MAX_FEE_SATS = 10_000_000n;
/** Largest OP_RETURN payload: 80 bytes (Core's classic `-datacarriersize` of 83 script bytes). */
export const MAX_OP_RETURN_BYTES = 80;
/** nSequence that signals BIP125 replaceability and enables nLockTime. */
export const SEQUENCE_RBF = 0xfffffffd;
/** nSequence without RBF signalling that still enables nLockTime (what Core's wallet uses). */
export const SEQUENCE_NO_RBF = 0xfffffffe;

/** A payment output or an OP_RETURN data output (value 0). */
export type OutputRequest = { address: string; amountSats: bigint } | { opReturnHex: string };

/** What to build. */
export interface CreatePsbtRequest {
  /** 1..N outputs, kept in this order; change, if any, is appended last. */
  outputs: readonly OutputRequest[];
  /** Coins to fund from: all of them (`selection: "all"`) or a subset chosen by coin selection. */
  utxos: readonly UtxoInput[];
  /** Target fee rate in sat/kvB (1 sat/vB = 1000). */
  feeRateSatPerKvb: number;
  /** Where change goes. */
  changeAddress: string;
  /** Signal BIP125 replaceability; default true. */
  rbf?: boolean;
  /** nLockTime; default 0. */
  locktime?: number;
  /** PSBT version to emit; default 0. */
  psbtVersion?: 0 | 2;
  /** `"auto"` (default) selects coins; `"all"` spends every UTXO given. */
  selection?: "all" | "auto";
  /** Coins with fewer confirmations are not selected; default 0. */
  minConfirmations?: number;
}

/** Environment and limits. */
export interface CreatePsbtOptions {
  /** Network addresses must belong to. */
  network: BitcoinNetwork;
  /** Absolute fee cap in satoshis; default {@linkcode MAX_FEE_SATS}. */
  maxFeeSats?: bigint;
}

/** A spent coin. */
export interface SelectedInput {
  txid: string;
  vout: number;
  valueSats: bigint;
}

/** The unsigned PSBT and how it was priced. */
export interface CreatedPsbt {
  psbtBase64: string;
  psbtVersion: 0 | 2;
  /** Fee paid: inputs − outputs, exactly. */
  feeSats: bigint;
  /** Estimated vsize once signed (worst-case signature sizes). */
  vsize: number;
  /** Fee rate actually paid over the estimated vsize, sat/kvB, rounded down. */
  feeRateSatPerKvb: number;
  /** Index of the change output, or null when change would have been dust. */
  changeOutputIndex: number | null;
  changeSats: bigint;
  inputsSats: bigint;
  /** Sum of the requested outputs (change excluded). */
  outputsSats: bigint;
  /** Spent coins, in input order. */
  selectedInputs: SelectedInput[];
  /** Heuristic that chose the inputs. */
  algorithm: Selection["algorithm"];
  /** Things the caller should know (dust change added to the fee, unconfirmed inputs...). */
  warnings: string[];
}

function reject(
  path: string,
  message: string,
  extensions: Record<string, unknown> = {},
): ValidationError {
  return new ValidationError(`Invalid request: ${path}: ${message}`, {
    status: 422,
    issues: [{ path, message }],
    extensions,
  });
}

/** Output types this service pays to: the ones every wallet can spend. */
const PAYABLE_TYPES = new Set(["p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"]);

/**
 * scriptPubKey of `address` on `network`, refusing other networks and output
 * types a standard wallet cannot be expected to spend (anchors, future
 * witness versions: funds sent there may be unspendable or anyone-can-spend).
 */
function addressScript(address: unknown, network: BitcoinNetwork, path: string): Uint8Array {
  if (typeof address !== "string") {
    throw new TypeError(`Invalid ${path}: expected a string, got ${typeof address}`);
  }
  const described = describeAddress(address, network);
  if (!described.valid) throw reject(path, described.reason);
  if (!PAYABLE_TYPES.has(described.type)) {
    throw reject(
      path,
      `unsupported output type "${described.type}" (supported: P2PKH, P2SH, P2WPKH, P2WSH, P2TR)`,
    );
  }
  return hex.decode(described.scriptPubKeyHex);
}

interface BuiltOutput {
  script: Uint8Array;
  amount: bigint;
  address: string | null;
}

function buildOutputs(outputs: readonly OutputRequest[], network: BitcoinNetwork): BuiltOutput[] {
  if (!Array.isArray(outputs)) throw new TypeError("Invalid request.outputs: expected an array");
  if (outputs.length === 0) throw reject("outputs", "at least one output is required");
  const built: BuiltOutput[] = [];
  let dataOutputs = 0;
  let total = 0n;
  for (const [i, o] of outputs.entries()) {
    const path = `outputs[${i}]`;
    if (typeof o !== "object" || o === null) {
      throw new TypeError(`Invalid ${path}: expected an object`);
    }
    if ("opReturnHex" in o) {
      if (typeof o.opReturnHex !== "string") {
        throw new TypeError(`Invalid ${path}.opReturnHex: expected a string`);
      }
      if (o.opReturnHex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(o.opReturnHex)) {
        throw reject(`${path}.opReturnHex`, "not even-length hex");
      }
      const data = hex.decode(o.opReturnHex.toLowerCase());
      if (data.length > MAX_OP_RETURN_BYTES) {
        throw reject(`${path}.opReturnHex`, `at most ${MAX_OP_RETURN_BYTES} bytes of data`);
      }
      // Core relays a single data-carrier output per transaction (pre-v30 policy).
      if (++dataOutputs > 1) throw reject(path, "only one OP_RETURN output is standard");
      const script = data.length === 0
        ? Script.encode(["RETURN"])
        : Script.encode(["RETURN", data]);
      built.push({ script, amount: 0n, address: null });
      continue;
    }
    const script = addressScript(o.address, network, `${path}.address`);
    if (typeof o.amountSats !== "bigint") {
      throw new TypeError(`Invalid ${path}.amountSats: expected a bigint`);
    }
    if (o.amountSats <= 0n || o.amountSats > MAX_MONEY_SATS) {
      throw reject(`${path}.amountSats`, "must be between 1 sat and 21,000,000 BTC");
    }
    // Core's IsDust: an output worth less than the fee to spend it is not relayed.
    const dust = dustThreshold(script);
    if (o.amountSats < dust) {
      throw reject(
        `${path}.amountSats`,
        `${o.amountSats} sat is below the dust threshold of ${dust} sat`,
        {
          dustThresholdSats: dust.toString(),
        },
      );
    }
    total += o.amountSats;
    if (total > MAX_MONEY_SATS) throw reject("outputs", "total exceeds 21,000,000 BTC");
    built.push({ script, amount: o.amountSats, address: o.address });
  }
  return built;
}

function checkFeeRate(rate: unknown): number {
  if (typeof rate !== "number") {
    throw new TypeError(`Invalid request.feeRateSatPerKvb: expected a number`);
  }
  if (!Number.isSafeInteger(rate) || rate < 0) {
    throw reject("feeRateSatPerKvb", "expected a whole number of sat/kvB");
  }
  if (rate < MIN_FEE_RATE_SAT_PER_KVB) {
    throw reject(
      "feeRateSatPerKvb",
      `${formatSatPerVb(rate)} sat/vB is below the minimum relay fee rate of ${
        formatSatPerVb(MIN_FEE_RATE_SAT_PER_KVB)
      } sat/vB`,
    );
  }
  if (rate > MAX_FEE_RATE_SAT_PER_KVB) {
    throw reject(
      "feeRateSatPerKvb",
      `${formatSatPerVb(rate)} sat/vB is above the maximum of ${
        formatSatPerVb(MAX_FEE_RATE_SAT_PER_KVB)
      } sat/vB`,
    );
  }
  return rate;
}

function prepareUtxos(utxos: readonly UtxoInput[]): PreparedUtxo[] {
  if (!Array.isArray(utxos)) throw new TypeError("Invalid request.utxos: expected an array");
  if (utxos.length === 0) throw reject("utxos", "at least one UTXO is required");
  const seen = new Set<string>();
  const prepared: PreparedUtxo[] = [];
  let total = 0n;
  for (const [i, u] of utxos.entries()) {
    const p = prepareUtxo(u, `utxos[${i}]`);
    // The same outpoint twice would be a transaction spending one coin twice.
    if (seen.has(p.id)) throw reject(`utxos[${i}]`, `duplicate outpoint ${p.id}`);
    seen.add(p.id);
    total += p.valueSats;
    if (total > MAX_MONEY_SATS) throw reject("utxos", "total exceeds 21,000,000 BTC");
    prepared.push(p);
  }
  return prepared;
}

function optionalInteger(
  value: unknown,
  path: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number") throw new TypeError(`Invalid request.${path}: expected a number`);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw reject(path, `expected an integer in ${min}..${max}`);
  }
  return value;
}

/**
 * Build an unsigned PSBT paying `request.outputs` from `request.utxos`.
 *
 * @param request outputs, UTXOs, fee rate, change address and options
 * @param options network and limits
 * @returns the base64 PSBT with its exact fee and estimated size
 * @throws ValidationError (422) for dust outputs, insufficient funds, fee rates
 *   outside the accepted range, wrong-network or non-standard addresses,
 *   duplicate or inconsistent UTXOs, and non-standard transactions
 * @example
 * ```ts
 * const created = createPsbt({
 *   outputs: [{ address: "bc1q...", amountSats: 50_000n }],
 *   utxos: [{ txid: "ab...", vout: 0, valueSats: 100_000n, scriptPubKeyHex: "0014..." }],
 *   feeRateSatPerKvb: 2000,
 *   changeAddress: "bc1q...",
 * }, { network: "mainnet" });
 * ```
 */
export function createPsbt(request: CreatePsbtRequest, options: CreatePsbtOptions): CreatedPsbt {
  if (typeof request !== "object" || request === null) {
    throw new TypeError("Invalid request: expected an object");
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Invalid options: expected an object");
  }
  assertNetwork(options.network);
  const maxFeeSats = options.maxFeeSats ?? MAX_FEE_SATS;
  if (typeof maxFeeSats !== "bigint" || maxFeeSats < 0n) {
    throw new RangeError("Invalid options.maxFeeSats");
  }
  const rate = checkFeeRate(request.feeRateSatPerKvb);
  const rbf = request.rbf ?? true;
  if (typeof rbf !== "boolean") throw new TypeError("Invalid request.rbf: expected a boolean");
  const locktime = optionalInteger(request.locktime, "locktime", 0, 0xffffffff) ?? 0;
  const minConfirmations =
    optionalInteger(request.minConfirmations, "minConfirmations", 0, 1_000_000) ?? 0;
  const psbtVersion = request.psbtVersion ?? 0;
  if (psbtVersion !== 0 && psbtVersion !== 2) {
    throw new RangeError("Invalid request.psbtVersion: expected 0 or 2");
  }
  const mode = request.selection ?? "auto";
  if (mode !== "auto" && mode !== "all") {
    throw new RangeError('Invalid request.selection: expected "auto" or "all"');
  }

  const outputs = buildOutputs(request.outputs, options.network);
  const changeScript = addressScript(request.changeAddress, options.network, "changeAddress");
  const utxos = prepareUtxos(request.utxos);
  const outputsSats = outputs.reduce((n, o) => n + o.amount, 0n);

  const byId = new Map(utxos.map((u) => [u.id, u]));
  const candidates: CoinCandidate[] = utxos.map((u) => ({
    id: u.id,
    valueSats: u.valueSats,
    inputWeight: u.weight.weight,
    witness: u.weight.witness,
    confirmations: u.confirmations,
  }));
  const params = {
    outputScripts: outputs.map((o) => o.script),
    outputsSats,
    changeScript,
    changeSpendWeight: changeSpendWeight(changeScript),
    feeRateSatPerKvb: rate,
    minConfirmations,
  };
  const selection = mode === "all"
    ? priceSelection(candidates, params)
    : selectCoins(candidates, params);
  if (selection.feeSats > maxFeeSats) {
    throw reject(
      "feeRateSatPerKvb",
      `fee of ${selection.feeSats} sat exceeds the limit of ${maxFeeSats} sat`,
      {
        feeSats: selection.feeSats.toString(),
      },
    );
  }

  const tx = new Transaction({
    version: 2,
    lockTime: locktime,
    // OP_RETURN is an "unknown" output to scure; every output was checked above.
    allowUnknownOutputs: outputs.some((o) => o.address === null),
  });
  const sequence = rbf ? SEQUENCE_RBF : SEQUENCE_NO_RBF;
  const selected: PreparedUtxo[] = [];
  for (const c of selection.selected) {
    const u = byId.get(c.id);
    if (u === undefined) throw new RangeError(`Selection returned an unknown coin ${c.id}`);
    selected.push(u);
    try {
      tx.addInput({ ...u.psbtInput, sequence });
    } catch (cause) {
      throw new ValidationError(`Invalid UTXO: ${u.id}: inconsistent input data`, {
        status: 422,
        cause,
      });
    }
  }
  for (const o of outputs) tx.addOutput({ script: o.script, amount: o.amount });
  let changeOutputIndex: number | null = null;
  if (selection.hasChange) {
    changeOutputIndex = tx.addOutput({ script: changeScript, amount: selection.changeSats });
  }

  // Conservation, checked on what scure will serialise: inputs = outputs + fee.
  if (tx.fee !== selection.feeSats) {
    throw new RangeError("Fee mismatch between selection and transaction");
  }

  return {
    psbtBase64: base64.encode(tx.toPSBT(psbtVersion)),
    psbtVersion,
    feeSats: selection.feeSats,
    vsize: selection.vsize,
    feeRateSatPerKvb: feeRateSatPerKvb(selection.feeSats, selection.vsize),
    changeOutputIndex,
    changeSats: selection.changeSats,
    inputsSats: selection.inputsSats,
    outputsSats,
    selectedInputs: selected.map((u) => ({ txid: u.txid, vout: u.vout, valueSats: u.valueSats })),
    algorithm: selection.algorithm,
    warnings: warningsFor(selection, selected, outputs, changeScript, rbf, rate),
  };
}

/** Weight of a later input spending the change output, for the cost of change. */
function changeSpendWeight(script: Uint8Array): number {
  switch (classifyScript(script)) {
    case "p2pkh":
      return inputWeight({ kind: "p2pkh" }).weight;
    case "p2wpkh":
      return inputWeight({ kind: "p2wpkh" }).weight;
    case "p2tr":
      return inputWeight({ kind: "p2tr-keypath" }).weight;
    case "p2sh":
      return inputWeight({ kind: "p2sh-p2wpkh" }).weight;
    default:
      // P2WSH: unknown script; assume a 2-of-3 multisig, the common case.
      return inputWeight({ kind: "p2wsh-multisig", m: 2, scriptBytes: 105 }).weight;
  }
}

function warningsFor(
  selection: Selection,
  selected: readonly PreparedUtxo[],
  outputs: readonly BuiltOutput[],
  changeScript: Uint8Array,
  rbf: boolean,
  rate: number,
): string[] {
  const warnings: string[] = [];
  if (!selection.hasChange && selection.excessToFeeSats > 0n) {
    warnings.push(
      `Change of ${selection.excessToFeeSats} sat is below the dust threshold of ${
        dustThreshold(changeScript)
      } sat for the change address (or not worth an output) and was added to the fee`,
    );
  }
  const unconfirmed = selected.filter((u) => u.confirmations === 0).length;
  if (unconfirmed > 0) warnings.push(`${unconfirmed} selected input(s) are unconfirmed`);
  const uneconomic = selected.filter((u) => {
    const fee = (BigInt(Math.ceil(u.weight.weight / 4)) * BigInt(rate) + 999n) / 1000n;
    return u.valueSats <= fee;
  });
  if (uneconomic.length > 0) {
    warnings.push(
      `${uneconomic.length} input(s) cost more in fee than they are worth at this fee rate`,
    );
  }
  const seen = new Set<string>();
  for (const o of outputs) {
    if (o.address === null) continue;
    const key = hex.encode(o.script);
    if (seen.has(key)) {
      warnings.push(`Address "${o.address}" is paid by more than one output`);
    }
    seen.add(key);
  }
  if (seen.has(hex.encode(changeScript))) warnings.push("The change address is also a recipient");
  if (!rbf) {
    warnings.push("RBF signalling is off; nodes running full-RBF may still accept a replacement");
  }
  return warnings;
}
