/**
 * Argument checks for `src/pki`: wrong types throw `TypeError`, bad values
 * `RangeError`, and the message names the parameter and what arrived (the
 * same pattern as `src/bitcoin/_assert.ts`).
 *
 * @module
 */
import { isIP } from "node:net";
import { describeType } from "../util/describe_type.ts";

/** RFC 5280 appendix A.1 `ub-common-name`. */
const MAX_COMMON_NAME_LENGTH = 64;

/**
 * A DNS name as it may appear in a dNSName SAN (RFC 5280 §4.2.1.6 with the
 * RFC 1123 host syntax): labels of letters, digits and inner hyphens, at most
 * 63 characters each and 253 in all; an optional leading `*.` wildcard label.
 */
const DNS_NAME =
  /^(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Throw unless `value` is a common name: a non-empty string of at most 64
 * characters without control characters (they would let a name read
 * differently in logs than it compares in the allowlist).
 *
 * @param value the argument
 * @param name its name in messages
 */
export function assertCommonName(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`Invalid ${name}: expected a string, got ${describeType(value)}`);
  }
  if (value.length === 0 || value.length > MAX_COMMON_NAME_LENGTH) {
    throw new RangeError(
      `Invalid ${name}: expected 1 to ${MAX_COMMON_NAME_LENGTH} characters, got ${value.length}`,
    );
  }
  // deno-lint-ignore no-control-regex -- the point is to find control characters
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value) || value.trim() !== value) {
    throw new RangeError(
      `Invalid ${name}: control characters or surrounding spaces in "${JSON.stringify(value)}"`,
    );
  }
}

/**
 * Whether `value` is a DNS name a dNSName SAN may hold.
 *
 * @param value a candidate host name
 */
export function isDnsName(value: string): boolean {
  return value.length <= 253 && DNS_NAME.test(value);
}

/**
 * Throw unless `value` is an array of DNS names (or undefined).
 *
 * @param value the argument
 * @param name its name in messages
 * @returns the names, lower-cased (DNS names compare case-insensitively)
 */
export function checkDnsNames(value: unknown, name: string): string[] {
  return checkEach(value, name, (v, at) => {
    if (!isDnsName(v)) throw new RangeError(`Invalid ${at}: not a DNS name: "${v}"`);
  });
}

/**
 * Throw unless `value` is an array of IPv4/IPv6 addresses (or undefined).
 * IPv6 zone ids and embedded IPv4 forms are refused: an iPAddress SAN holds
 * 4 or 16 bytes, and the encoder does not parse those forms.
 *
 * @param value the argument
 * @param name its name in messages
 * @returns the addresses, lower-cased
 */
export function checkIpAddresses(value: unknown, name: string): string[] {
  return checkEach(value, name, (v, at) => {
    const family = isIP(v);
    if (family === 0 || (family === 6 && /[.%]/.test(v))) {
      throw new RangeError(`Invalid ${at}: not an IP address: "${v}"`);
    }
  });
}

/** An optional array of strings, each passed to `check`; returned lower-cased. */
function checkEach(
  value: unknown,
  name: string,
  check: (item: string, at: string) => void,
): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new TypeError(`Invalid ${name}: expected an array, got ${describeType(value)}`);
  }
  return value.map((v: unknown, i) => {
    const at = `${name}[${i}]`;
    if (typeof v !== "string") {
      throw new TypeError(`Invalid ${at}: expected a string, got ${describeType(v)}`);
    }
    check(v, at);
    return v.toLowerCase();
  });
}

/**
 * Throw unless `value` is a valid `Date` (or undefined).
 *
 * @param value the argument
 * @param name its name in messages
 */
export function assertOptionalDate(
  value: unknown,
  name: string,
): asserts value is Date | undefined {
  if (value === undefined) return;
  if (!(value instanceof Date)) {
    throw new TypeError(`Invalid ${name}: expected a Date, got ${describeType(value)}`);
  }
  if (Number.isNaN(value.getTime())) throw new RangeError(`Invalid ${name}: invalid date`);
}

/**
 * Throw unless `notBefore` is strictly before `notAfter`.
 *
 * @param notBefore start of validity
 * @param notAfter end of validity
 */
export function assertValidityWindow(notBefore: Date, notAfter: Date): void {
  if (notBefore.getTime() >= notAfter.getTime()) {
    throw new RangeError(
      `Invalid validity: notBefore ${notBefore.toISOString()} is not before notAfter ${notAfter.toISOString()}`,
    );
  }
}

/**
 * Throw unless `value` is a string.
 *
 * @param value the argument
 * @param name its name in messages
 */
export function assertString(value: unknown, name: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`Invalid ${name}: expected a string, got ${describeType(value)}`);
  }
}
