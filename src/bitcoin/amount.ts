/**
 * Exact money arithmetic. Amounts are `bigint` satoshis, never floats; fee
 * rates are integer sat/kvB (1 sat/vB = 1000 sat/kvB), so the units upstreams
 * use convert without rounding surprises: Esplora's sat/vB (a float, e.g. 2.5)
 * ×1000, Bitcoin Core's BTC/kvB ×10^8.
 *
 * @module
 */

/** Satoshis in one bitcoin. */
export const SATS_PER_BTC = 100_000_000n;
/** The 21,000,000 BTC supply cap in satoshis; no valid amount exceeds it. */
export const MAX_MONEY_SATS = 21_000_000n * SATS_PER_BTC;

/**
 * Parse an amount given as a JSON string of digits or a safe integer.
 *
 * @param value `"12345"` or `12345`
 * @returns satoshis
 * @throws RangeError when not a whole number in 0..21,000,000 BTC
 */
export function parseSats(value: unknown): bigint {
  let sats: bigint;
  if (typeof value === "string" && /^(0|[1-9]\d{0,15})$/.test(value)) sats = BigInt(value);
  else if (typeof value === "number" && Number.isSafeInteger(value)) sats = BigInt(value);
  else if (typeof value === "bigint") sats = value;
  else {throw new RangeError(
      "Invalid amount: expected whole satoshis as a digit string or safe integer",
    );}
  if (sats < 0n || sats > MAX_MONEY_SATS) {
    throw new RangeError("Invalid amount: must be between 0 and 21,000,000 BTC in satoshis");
  }
  return sats;
}

/**
 * Convert a BTC amount as Bitcoin Core writes it (a JSON number with at most
 * 8 decimals) to satoshis. The number is formatted to 8 decimals and read as
 * digits, so 0.1 + 0.2 style float noise cannot leak into the result.
 *
 * @param btc e.g. `6.26983001`
 */
export function btcToSats(btc: number): bigint {
  if (typeof btc !== "number" || !Number.isFinite(btc)) {
    throw new TypeError(`Invalid BTC amount: expected a finite number, got ${typeof btc}`);
  }
  const negative = btc < 0;
  const [whole = "0", frac = ""] = Math.abs(btc).toFixed(8).split(".");
  const sats = BigInt(whole) * SATS_PER_BTC + BigInt(frac.padEnd(8, "0"));
  if (sats > MAX_MONEY_SATS) throw new RangeError("Invalid BTC amount: above 21,000,000 BTC");
  return negative ? -sats : sats;
}

/**
 * Format satoshis as a BTC decimal string with 8 decimals (for Core RPC params).
 *
 * @param sats amount
 */
export function satsToBtcString(sats: bigint): string {
  if (typeof sats !== "bigint") throw new TypeError("Invalid amount: expected a bigint");
  const negative = sats < 0n;
  const abs = negative ? -sats : sats;
  const s = `${abs / SATS_PER_BTC}.${(abs % SATS_PER_BTC).toString().padStart(8, "0")}`;
  return negative ? `-${s}` : s;
}

/**
 * Bitcoin Core fee rate (BTC/kvB) to integer sat/kvB.
 *
 * @param btcPerKvb e.g. `0.00001` (1 sat/vB)
 */
export function btcPerKvbToSatPerKvb(btcPerKvb: number): number {
  const sats = btcToSats(btcPerKvb);
  if (sats < 0n) throw new RangeError("Invalid fee rate: negative");
  return Number(sats);
}

/**
 * Esplora/mempool fee rate (sat/vB, possibly fractional) to integer sat/kvB,
 * rounded up: an estimate must never come out lower than the upstream said.
 *
 * @param satPerVb e.g. `2.5`
 */
export function satPerVbToSatPerKvb(satPerVb: number): number {
  if (typeof satPerVb !== "number" || !Number.isFinite(satPerVb) || satPerVb < 0) {
    throw new RangeError("Invalid fee rate: expected a non-negative finite sat/vB number");
  }
  // toFixed(3) first: 2.5 * 1000 is exact, but 1.001 * 1000 is 1000.9999999999999.
  return Math.ceil(Number((satPerVb * 1000).toFixed(3)));
}

/**
 * Fee for `vsize` virtual bytes at `satPerKvb`, rounded up to whole satoshis.
 *
 * @param vsize virtual size
 * @param satPerKvb fee rate
 */
export function feeForVsize(vsize: number, satPerKvb: number): bigint {
  if (!Number.isSafeInteger(vsize) || vsize < 0) throw new RangeError("Invalid vsize");
  if (!Number.isSafeInteger(satPerKvb) || satPerKvb < 0) throw new RangeError("Invalid fee rate");
  return (BigInt(vsize) * BigInt(satPerKvb) + 999n) / 1000n;
}

/**
 * Fee rate in sat/kvB paid by `feeSats` over `vsize`, rounded down.
 *
 * @param feeSats fee
 * @param vsize virtual size (> 0)
 */
export function feeRateSatPerKvb(feeSats: bigint, vsize: number): number {
  if (!Number.isSafeInteger(vsize) || vsize <= 0) throw new RangeError("Invalid vsize");
  return Number((feeSats * 1000n) / BigInt(vsize));
}

/**
 * Render sat/kvB as a sat/vB decimal string, e.g. 2500 → `"2.5"`.
 *
 * @param satPerKvb fee rate
 */
export function formatSatPerVb(satPerKvb: number): string {
  const whole = Math.trunc(satPerKvb / 1000);
  const frac = String(satPerKvb % 1000).padStart(3, "0").replace(/0+$/, "");
  return frac === "" ? String(whole) : `${whole}.${frac}`;
}
