/**
 * Deterministic coin selection. Pure: the same candidates and parameters
 * always give the same selection, and every amount is an exact bigint.
 *
 * Strategy, after Bitcoin Core `src/wallet/coinselection.cpp`
 * (https://github.com/bitcoin/bitcoin/blob/master/src/wallet/coinselection.cpp):
 * 1. Branch and Bound (Murch, "An Evaluation of Coin Selection Strategies",
 *    2016): search for an input set whose effective value lands within
 *    `[target, target + cost of change]`, so no change output is needed,
 *    minimising Core's waste metric.
 * 2. Otherwise the cheaper (by waste) of the smallest single coin that pays
 *    for everything including change, and largest-first accumulation.
 * Confirmed coins are tried before unconfirmed ones. Effective value is a
 * coin's value minus the fee its input costs at the target rate; coins whose
 * input costs at least their value are never selected.
 *
 * Every candidate solution is re-priced exactly (whole transaction weight,
 * ⌈vsize × rate / 1000⌉) before it is accepted, so the heuristics' per-input
 * rounding can never make a transaction pay less than the target fee rate.
 *
 * @module
 */
import { feeForVsize, MAX_MONEY_SATS } from "./amount.ts";
import {
  dustThreshold,
  type InputTotals,
  MAX_STANDARD_TX_WEIGHT,
  outputWeight,
  txWeight,
  weightToVsize,
} from "./tx_size.ts";
import { ValidationError } from "../errors/app_error.ts";

/**
 * Core's default discard fee rate (`DEFAULT_DISCARD_FEE`, 10 sat/vB): what
 * spending a change output later is assumed to cost.
 */
export const DISCARD_FEE_RATE_SAT_PER_KVB = 10_000;
/** Core's default long-term fee rate for waste (`DEFAULT_CONSOLIDATE_FEERATE`, 10 sat/vB). */
export const LONG_TERM_FEE_RATE_SAT_PER_KVB = 10_000;
/** Branch-and-Bound search budget (Core `TOTAL_TRIES`). */
const BNB_TOTAL_TRIES = 100_000;
/**
 * Weight units added to the fixed part of the transaction while searching:
 * the segwit marker/flag (2) plus slack for the CompactSize input count
 * growing past 252 (8) and vsize rounding (3). Search only; final prices are exact.
 */
const SEARCH_BASE_SLACK_WEIGHT = 13;

/** One spendable coin offered to the selector. */
export interface CoinCandidate {
  /** Caller's key for the coin, e.g. `txid:vout`; must be unique. */
  id: string;
  /** Value in satoshis. */
  valueSats: bigint;
  /** Weight of the input spending it once signed (see `inputWeight`). */
  inputWeight: number;
  /** True when the input carries a witness. */
  witness: boolean;
  /** Confirmations, or `null` when unknown. */
  confirmations: number | null;
}

/** What the selected inputs must pay for. */
export interface SelectionParams {
  /** scriptPubKeys of the recipient outputs (change excluded). */
  outputScripts: readonly Uint8Array[];
  /** Sum of the recipient outputs. */
  outputsSats: bigint;
  /** scriptPubKey a change output would pay. */
  changeScript: Uint8Array;
  /** Weight an input spending the change output would have (for the cost of change). */
  changeSpendWeight: number;
  /** Target fee rate, sat/kvB. */
  feeRateSatPerKvb: number;
  /** Long-term fee rate for the waste metric, sat/kvB; default {@linkcode LONG_TERM_FEE_RATE_SAT_PER_KVB}. */
  longTermFeeRateSatPerKvb?: number;
  /** Coins with fewer confirmations are not used; default 0 (unknown counts as 0). */
  minConfirmations?: number;
  /** Weight limit of the whole transaction; default {@linkcode MAX_STANDARD_TX_WEIGHT}. */
  maxWeight?: number;
}

/** Which heuristic produced a selection. */
export type SelectionAlgorithm = "bnb" | "single" | "largest-first" | "all";

/** An exactly priced input set. */
export interface Selection {
  /** Chosen coins, in the order the candidates were given. */
  selected: CoinCandidate[];
  /** Heuristic that found it. */
  algorithm: SelectionAlgorithm;
  /** Sum of the selected values. */
  inputsSats: bigint;
  /** Fee paid: inputs − outputs − change, exactly. */
  feeSats: bigint;
  /** Change value, `0n` when there is no change output. */
  changeSats: bigint;
  /** Whether a change output is added (as the last output). */
  hasChange: boolean;
  /** Satoshis above the target fee that went to the fee because change would be dust. */
  excessToFeeSats: bigint;
  /** Estimated weight of the signed transaction. */
  weight: number;
  /** ⌈weight / 4⌉. */
  vsize: number;
}

interface Pool {
  coin: CoinCandidate;
  order: number;
  fee: bigint;
  longTermFee: bigint;
  effective: bigint;
}

interface Prepared {
  params: Required<SelectionParams>;
  dust: bigint;
  maxWeight: number;
}

function feeForWeight(weight: number, satPerKvb: number): bigint {
  return feeForVsize(weightToVsize(weight), satPerKvb);
}

function assertRate(value: unknown, name: string): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid ${name}: expected a number, got ${typeof value}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Invalid ${name}: expected a non-negative integer sat/kvB, got ${value}`);
  }
}

function prepare(candidates: readonly CoinCandidate[], params: SelectionParams): Prepared {
  if (!Array.isArray(candidates)) throw new TypeError("Invalid candidates: expected an array");
  if (typeof params !== "object" || params === null) {
    throw new TypeError("Invalid params: expected an object");
  }
  if (!Array.isArray(params.outputScripts)) {
    throw new TypeError("Invalid params.outputScripts: expected an array");
  }
  for (const s of params.outputScripts) {
    if (!(s instanceof Uint8Array)) {
      throw new TypeError("Invalid params.outputScripts: expected Uint8Arrays");
    }
  }
  if (typeof params.outputsSats !== "bigint") {
    throw new TypeError("Invalid params.outputsSats: expected a bigint");
  }
  if (params.outputsSats < 0n || params.outputsSats > MAX_MONEY_SATS) {
    throw new RangeError("Invalid params.outputsSats: out of range");
  }
  if (!(params.changeScript instanceof Uint8Array)) {
    throw new TypeError("Invalid params.changeScript: expected a Uint8Array");
  }
  if (!Number.isSafeInteger(params.changeSpendWeight) || params.changeSpendWeight <= 0) {
    throw new RangeError("Invalid params.changeSpendWeight: expected a positive integer");
  }
  assertRate(params.feeRateSatPerKvb, "params.feeRateSatPerKvb");
  const longTerm = params.longTermFeeRateSatPerKvb ?? LONG_TERM_FEE_RATE_SAT_PER_KVB;
  assertRate(longTerm, "params.longTermFeeRateSatPerKvb");
  const minConfirmations = params.minConfirmations ?? 0;
  if (!Number.isSafeInteger(minConfirmations) || minConfirmations < 0) {
    throw new RangeError("Invalid params.minConfirmations: expected a non-negative integer");
  }
  const maxWeight = params.maxWeight ?? MAX_STANDARD_TX_WEIGHT;
  if (!Number.isSafeInteger(maxWeight) || maxWeight <= 0) {
    throw new RangeError("Invalid params.maxWeight: expected a positive integer");
  }
  const ids = new Set<string>();
  for (const [i, c] of candidates.entries()) {
    if (typeof c !== "object" || c === null) {
      throw new TypeError(`Invalid candidates[${i}]: expected an object`);
    }
    if (typeof c.id !== "string") {
      throw new TypeError(`Invalid candidates[${i}].id: expected a string`);
    }
    if (ids.has(c.id)) throw new RangeError(`Invalid candidates: duplicate id "${c.id}"`);
    ids.add(c.id);
    if (typeof c.valueSats !== "bigint") {
      throw new TypeError(`Invalid candidates[${i}].valueSats: expected a bigint`);
    }
    if (c.valueSats <= 0n || c.valueSats > MAX_MONEY_SATS) {
      throw new RangeError(`Invalid candidates[${i}].valueSats: out of range`);
    }
    if (!Number.isSafeInteger(c.inputWeight) || c.inputWeight <= 0) {
      throw new RangeError(`Invalid candidates[${i}].inputWeight: expected a positive integer`);
    }
    if (typeof c.witness !== "boolean") {
      throw new TypeError(`Invalid candidates[${i}].witness: expected a boolean`);
    }
    if (
      c.confirmations !== null && (!Number.isSafeInteger(c.confirmations) || c.confirmations < 0)
    ) {
      throw new RangeError(
        `Invalid candidates[${i}].confirmations: expected a non-negative integer or null`,
      );
    }
  }
  return {
    params: {
      ...params,
      longTermFeeRateSatPerKvb: longTerm,
      minConfirmations,
      maxWeight,
    },
    dust: dustThreshold(params.changeScript),
    maxWeight,
  };
}

/** Running totals of an input set. */
interface Tally {
  inputsSats: bigint;
  totals: InputTotals;
}

function tally(coins: readonly CoinCandidate[]): Tally {
  const t: Tally = { inputsSats: 0n, totals: { count: 0, weight: 0, nonWitnessCount: 0 } };
  for (const c of coins) addToTally(t, c);
  return t;
}

function addToTally(t: Tally, c: CoinCandidate): void {
  t.inputsSats += c.valueSats;
  t.totals.count++;
  t.totals.weight += c.inputWeight;
  if (!c.witness) t.totals.nonWitnessCount++;
}

type Priced = Omit<Selection, "selected" | "algorithm">;

/** Exact price of an input set: change if it clears dust, else the remainder goes to fee. */
function price(t: Tally, prep: Prepared): Priced | { missingSats: bigint } {
  const { params } = prep;
  const weightNoChange = txWeight(t.totals, params.outputScripts);
  const weightChange = txWeight(t.totals, [...params.outputScripts, params.changeScript]);
  const feeNoChange = feeForWeight(weightNoChange, params.feeRateSatPerKvb);
  const feeChange = feeForWeight(weightChange, params.feeRateSatPerKvb);
  const available = t.inputsSats - params.outputsSats;
  if (available - feeChange >= prep.dust && weightChange <= prep.maxWeight) {
    return {
      inputsSats: t.inputsSats,
      feeSats: feeChange,
      changeSats: available - feeChange,
      hasChange: true,
      excessToFeeSats: 0n,
      weight: weightChange,
      vsize: weightToVsize(weightChange),
    };
  }
  if (available - feeNoChange >= 0n) {
    return {
      inputsSats: t.inputsSats,
      feeSats: available,
      changeSats: 0n,
      hasChange: false,
      excessToFeeSats: available - feeNoChange,
      weight: weightNoChange,
      vsize: weightToVsize(weightNoChange),
    };
  }
  return { missingSats: feeNoChange - available };
}

/** Price `pools` and return it as a selection in candidate order, or null when unfunded or too heavy. */
function accept(
  pools: readonly Pool[],
  prep: Prepared,
  algorithm: SelectionAlgorithm,
): Selection | null {
  const selected = [...pools].sort(byOrder).map((p) => p.coin);
  const priced = price(tally(selected), prep);
  if ("missingSats" in priced || priced.weight > prep.maxWeight) return null;
  return { selected, algorithm, ...priced };
}

/** Core's waste: input fees above their long-term price, plus change cost or excess. */
function waste(s: Selection, pool: ReadonlyMap<string, Pool>, costOfChange: bigint): bigint {
  let w = 0n;
  for (const c of s.selected) {
    const p = pool.get(c.id);
    if (p !== undefined) w += p.fee - p.longTermFee;
  }
  return w + (s.hasChange ? costOfChange : s.excessToFeeSats);
}

/**
 * Core's Branch and Bound: depth-first over coins sorted by effective value,
 * inclusion branch first, pruning branches that cannot reach the target, that
 * overshoot it by more than the cost of change, or (when fees are above the
 * long-term rate) that are already more wasteful than the best found.
 */
function branchAndBound(
  pool: readonly Pool[],
  target: bigint,
  costOfChange: bigint,
  feeRateHigh: boolean,
  maxInputWeight: number,
): Pool[] | null {
  let available = pool.reduce((n, p) => n + p.effective, 0n);
  if (available < target) return null;
  let value = 0n;
  let weight = 0;
  let currentWaste = 0n;
  let bestWaste: bigint | null = null;
  let best: number[] | null = null;
  const chosen: number[] = [];
  for (let tries = 0, i = 0; tries < BNB_TOTAL_TRIES; tries++, i++) {
    let backtrack = false;
    if (
      value + available < target || value > target + costOfChange ||
      (feeRateHigh && bestWaste !== null && currentWaste > bestWaste)
    ) {
      backtrack = true;
    } else if (weight > maxInputWeight) {
      backtrack = true;
    } else if (value >= target) {
      const total = currentWaste + (value - target);
      if (bestWaste === null || total <= bestWaste) {
        best = [...chosen];
        bestWaste = total;
      }
      backtrack = true;
    }
    if (backtrack) {
      if (chosen.length === 0) break;
      const last = chosen[chosen.length - 1]!;
      // Give back the coins skipped after the last included one, then exclude it.
      for (i--; i > last; i--) available += pool[i]!.effective;
      const p = pool[i]!;
      value -= p.effective;
      weight -= p.coin.inputWeight;
      currentWaste -= p.fee - p.longTermFee;
      chosen.pop();
    } else {
      const p = pool[i]!;
      available -= p.effective;
      const prev = pool[i - 1];
      // Skip a coin equal to the previous, excluded one: same subtree already searched.
      if (
        chosen.length === 0 || chosen[chosen.length - 1] === i - 1 || prev === undefined ||
        p.effective !== prev.effective || p.fee !== prev.fee
      ) {
        chosen.push(i);
        value += p.effective;
        weight += p.coin.inputWeight;
        currentWaste += p.fee - p.longTermFee;
      }
    }
  }
  return best === null ? null : best.map((k) => pool[k]!);
}

function byOrder(a: Pool, b: Pool): number {
  return a.order - b.order;
}

function tierSolution(
  tier: readonly Pool[],
  prep: Prepared,
  poolById: ReadonlyMap<string, Pool>,
): Selection | null {
  const { params } = prep;
  const rate = params.feeRateSatPerKvb;
  const costOfChange = feeForWeight(outputWeight(params.changeScript), rate) +
    feeForWeight(params.changeSpendWeight, DISCARD_FEE_RATE_SAT_PER_KVB);
  const baseWeight = txWeight({ count: 0, weight: 0, nonWitnessCount: 0 }, params.outputScripts) +
    SEARCH_BASE_SLACK_WEIGHT;
  const target = params.outputsSats + feeForWeight(baseWeight, rate);
  const sorted = [...tier].sort((a, b) =>
    a.effective === b.effective ? a.order - b.order : a.effective > b.effective ? -1 : 1
  );

  const bnb = branchAndBound(
    sorted,
    target,
    costOfChange,
    rate > params.longTermFeeRateSatPerKvb,
    prep.maxWeight - baseWeight,
  );
  if (bnb !== null) {
    const s = accept(bnb, prep, "bnb");
    if (s !== null) return s;
  }

  const options: Selection[] = [];
  // Smallest single coin that pays for the outputs and the fee.
  for (let k = sorted.length - 1; k >= 0; k--) {
    const p = sorted[k]!;
    const priced = price(tally([p.coin]), prep);
    if (!("missingSats" in priced)) {
      const s = accept([p], prep, "single");
      if (s !== null) options.push(s);
      break;
    }
  }
  // Largest first until funded (running totals keep this linear).
  const running = tally([]);
  for (const [k, p] of sorted.entries()) {
    addToTally(running, p.coin);
    if (!("missingSats" in price(running, prep))) {
      const s = accept(sorted.slice(0, k + 1), prep, "largest-first");
      if (s !== null) options.push(s);
      break;
    }
  }
  let best: Selection | null = null;
  let bestWaste = 0n;
  for (const s of options) {
    const w = waste(s, poolById, costOfChange);
    if (
      best === null || w < bestWaste ||
      (w === bestWaste && s.selected.length < best.selected.length)
    ) {
      best = s;
      bestWaste = w;
    }
  }
  return best;
}

/**
 * Choose inputs from `candidates` to pay `params.outputsSats` plus the fee at
 * `params.feeRateSatPerKvb`, adding change only when it is not dust.
 *
 * @param candidates coins that may be spent
 * @param params outputs, change script, fee rate and limits
 * @returns an exactly priced selection
 * @throws ValidationError (422) when the eligible coins cannot pay, naming the shortfall
 */
export function selectCoins(
  candidates: readonly CoinCandidate[],
  params: SelectionParams,
): Selection {
  const prep = prepare(candidates, params);
  const { params: p } = prep;
  const pool: Pool[] = [];
  let unconfirmedExcluded = 0;
  let uneconomic = 0;
  for (const [order, coin] of candidates.entries()) {
    if ((coin.confirmations ?? 0) < p.minConfirmations) {
      unconfirmedExcluded++;
      continue;
    }
    const fee = feeForWeight(coin.inputWeight, p.feeRateSatPerKvb);
    const effective = coin.valueSats - fee;
    // A coin whose input costs at least its value only lowers the funds.
    if (effective <= 0n) {
      uneconomic++;
      continue;
    }
    pool.push({
      coin,
      order,
      fee,
      longTermFee: feeForWeight(coin.inputWeight, p.longTermFeeRateSatPerKvb),
      effective,
    });
  }
  const poolById = new Map(pool.map((q) => [q.coin.id, q]));
  const confirmed = pool.filter((q) =>
    (q.coin.confirmations ?? 0) >= Math.max(1, p.minConfirmations)
  );
  if (confirmed.length > 0 && confirmed.length < pool.length) {
    const s = tierSolution(confirmed, prep, poolById);
    if (s !== null) return s;
  }
  const s = tierSolution(pool, prep, poolById);
  if (s !== null) return s;
  throw insufficientFunds(pool, prep, { unconfirmedExcluded, uneconomic });
}

function insufficientFunds(
  pool: readonly Pool[],
  prep: Prepared,
  excluded: { unconfirmedExcluded: number; uneconomic: number },
): ValidationError {
  const all = price(tally(pool.map((q) => q.coin)), prep);
  const notes: string[] = [];
  if (excluded.unconfirmedExcluded > 0) {
    notes.push(
      `${excluded.unconfirmedExcluded} UTXO(s) below ${prep.params.minConfirmations} confirmations not used`,
    );
  }
  if (excluded.uneconomic > 0) {
    notes.push(`${excluded.uneconomic} UTXO(s) worth less than the fee to spend them not used`);
  }
  const suffix = notes.length > 0 ? ` (${notes.join("; ")})` : "";
  if ("missingSats" in all) {
    return new ValidationError(
      `Insufficient funds: missing ${all.missingSats} sat to pay the outputs and the fee${suffix}`,
      { status: 422, extensions: { missingSats: all.missingSats.toString() } },
    );
  }
  return new ValidationError(
    `Transaction too large: the inputs needed exceed the standard weight of ${prep.maxWeight} WU${suffix}`,
    { status: 422 },
  );
}

/**
 * Price a fixed input set (every coin is spent): change if it clears dust,
 * otherwise the remainder goes to the fee.
 *
 * @param coins the inputs, all spent
 * @param params outputs, change script, fee rate and limits
 * @throws ValidationError (422) when the coins cannot pay or the transaction is too heavy
 */
export function priceSelection(
  coins: readonly CoinCandidate[],
  params: SelectionParams,
): Selection {
  const prep = prepare(coins, params);
  const priced = price(tally(coins), prep);
  if ("missingSats" in priced) {
    throw new ValidationError(
      `Insufficient funds: missing ${priced.missingSats} sat to pay the outputs and the fee`,
      { status: 422, extensions: { missingSats: priced.missingSats.toString() } },
    );
  }
  if (priced.weight > prep.maxWeight) {
    throw new ValidationError(
      `Transaction too large: ${priced.weight} WU exceeds the standard weight of ${prep.maxWeight} WU`,
      { status: 422 },
    );
  }
  return { selected: [...coins], algorithm: "all", ...priced };
}
