/**
 * Argument checks for the pure functions of `src/bitcoin` (the [noble]
 * `abytes`/`aInRange` pattern): wrong types throw `TypeError`, wrong sizes or
 * ranges `RangeError`, and the message names the parameter and what arrived.
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { describeType } from "../util/describe_type.ts";

export { describeType };

/**
 * Throw unless `value` is a Uint8Array (of `length` bytes when given).
 *
 * @param value the argument
 * @param name its name in messages
 * @param length required length
 */
export function assertBytes(
  value: unknown,
  name: string,
  length?: number,
): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Invalid ${name}: expected a Uint8Array, got ${describeType(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`Invalid ${name}: expected ${length} bytes, got ${value.length}`);
  }
}

/**
 * Throw unless `value` is a non-negative bigint amount of satoshis.
 *
 * @param value the argument
 * @param name its name in messages
 */
export function assertSats(value: unknown, name: string): asserts value is bigint {
  if (typeof value !== "bigint") {
    throw new TypeError(`Invalid ${name}: expected a bigint, got ${describeType(value)}`);
  }
  if (value < 0n) throw new RangeError(`Invalid ${name}: negative`);
}

/**
 * Throw unless `value` is an integer in `min..max`.
 *
 * @param value the argument
 * @param name its name in messages
 * @param min smallest allowed
 * @param max largest allowed
 */
export function assertInteger(
  value: unknown,
  name: string,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Invalid ${name}: expected an integer, got ${describeType(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`Invalid ${name}: ${value} is outside ${min}..${max}`);
  }
}

/**
 * Throw unless `tx` is a scure `Transaction`.
 *
 * @param tx the argument
 */
export function assertTransaction(tx: unknown): asserts tx is Transaction {
  if (
    typeof tx !== "object" || tx === null ||
    typeof (tx as Transaction).preimageWitnessV0 !== "function"
  ) {
    throw new TypeError(`Invalid tx: expected a Transaction, got ${describeType(tx)}`);
  }
}

/**
 * Throw unless `tx` is a Transaction and `index` one of its input indexes.
 *
 * @param tx the transaction
 * @param index an input index
 */
export function assertInputIndex(tx: unknown, index: unknown): asserts tx is Transaction {
  assertTransaction(tx);
  assertInteger(index, "index", 0, Math.max(0, tx.inputsLength - 1));
  if (tx.inputsLength === 0) throw new RangeError("Invalid index: the transaction has no inputs");
}
