/** BIP32 derivation paths: checks, text form and parsing. */
import assert from "node:assert/strict";
import { bip32Path } from "@scure/btc-signer";
import {
  assertDerivationPath,
  formatDerivationPath,
  HARDENED_OFFSET,
  parseDerivationPath,
} from "../../src/bitcoin/derivation_path.ts";

const H = HARDENED_OFFSET;

Deno.test("formatDerivationPath() writes m/…, hardened levels with '", () => {
  assert.equal(formatDerivationPath([]), "m");
  assert.equal(formatDerivationPath([H + 84, H, H + 2, 0, 17]), "m/84'/0'/2'/0/17");
  assert.equal(formatDerivationPath([H - 1, 2 ** 32 - 1]), "m/2147483647/2147483647'");
});

Deno.test("parseDerivationPath() reads what formatDerivationPath() writes, and agrees with scure's bip32Path", () => {
  const paths = [
    [],
    [0],
    [H],
    [H + 84, H, H, 0, 5],
    [H - 1, 2 ** 32 - 1],
    new Array(255).fill(H + 1),
  ];
  for (const p of paths) {
    const text = formatDerivationPath(p);
    assert.deepEqual(parseDerivationPath(text), p, text);
    assert.deepEqual(bip32Path(text), p, text);
  }
  assert.deepEqual(parseDerivationPath("m/86h/1H/0h/0/3"), [H + 86, H + 1, H, 0, 3]);
});

Deno.test("parseDerivationPath() refuses malformed text with RangeError, wrong types with TypeError", () => {
  const bad = [
    "",
    "M/0",
    "m/",
    "/0",
    "0/1",
    "m//1",
    "m/01",
    "m/-1",
    "m/1''",
    "m/2147483648",
    "m/2147483648'",
    "m/1.5",
    "m/ 1",
    `m${"/0".repeat(256)}`,
  ];
  for (const text of bad) assert.throws(() => parseDerivationPath(text), RangeError, text);
  assert.throws(() => parseDerivationPath(["m"] as unknown as string), TypeError);
});

Deno.test("assertDerivationPath() accepts at most 255 u32 indexes", () => {
  assertDerivationPath([]);
  assertDerivationPath(new Array(255).fill(2 ** 32 - 1));
  const cases: [unknown, ErrorConstructor][] = [
    ["m/0", TypeError],
    [null, TypeError],
    [[0.5], TypeError],
    [["1"], TypeError],
    [[1n], TypeError],
    [[-1], RangeError],
    [[2 ** 32], RangeError],
    [new Array(256).fill(0), RangeError],
  ];
  for (const [path, type] of cases) {
    assert.throws(() => assertDerivationPath(path), type, String(path));
  }
  assert.throws(() => assertDerivationPath("x", "options.path"), /Invalid options\.path:/);
});
