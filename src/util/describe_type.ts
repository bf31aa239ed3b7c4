/**
 * How argument errors name the type of what they got.
 *
 * @module
 */

/**
 * Short description of a value's type for argument errors.
 *
 * @param value anything
 * @returns `"null"`, `"array"`, `"Uint8Array(<length>)"` or the `typeof`
 */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  return typeof value;
}
