/**
 * Deterministic deny-list rules: Bitcoin addresses on the OFAC SDN list
 * (`0xB10C/ofac-sanctioned-digital-currency-addresses`, one address a line)
 * and ransomware payment addresses from Cable, Gray & McCoy (2024), "Showing
 * the Receipts: Understanding the Modern Ransomware Ecosystem", eCrime
 * (`cablej/showing-the-receipts` `addresses.csv`, CC BY 4.0). A match is a
 * fact about an address, not a model output, and is reported beside the
 * anomaly score rather than mixed into it.
 *
 * Addresses are compared exactly, except that bech32/bech32m addresses
 * (BIP173/BIP350) are lower-cased on both sides: their encoding is
 * case-insensitive, base58 is not. Pure: the files are read by
 * `deny_list_file.ts`.
 *
 * @module
 */

/** Which list an address is on. */
export type DenyListName = "ofac" | "ransomware";

/** One listed address. */
export interface DenyListEntry {
  /** The address as listed. */
  address: string;
  /** The list. */
  list: DenyListName;
  /** Where the entry comes from (list and, for ransomware, the dataset's `type` column). */
  source: string;
}

/** A match of {@linkcode DenyList.match}. */
export interface DenyListMatch {
  /** The list. */
  list: DenyListName;
  /** Where the entry comes from. */
  source: string;
}

/** A set of listed addresses. */
export interface DenyList {
  /** Number of distinct addresses. */
  readonly size: number;
  /**
   * The list an address is on, null when on none (OFAC wins when on both).
   *
   * @param address an address as it appears in a transaction
   */
  match(address: string): DenyListMatch | null;
}

/** Source label of OFAC entries. */
export const OFAC_SOURCE = "OFAC SDN list (0xB10C/ofac-sanctioned-digital-currency-addresses)";
/** Source label prefix of ransomware entries; the dataset's `type` follows in parentheses. */
export const RANSOMWARE_SOURCE =
  "Cable, Gray & McCoy (2024), Showing the Receipts (cablej/showing-the-receipts, CC BY 4.0)";

/**
 * Parse the OFAC address list: one address a line; blank lines and `#` comments are skipped.
 *
 * @param text the file's text
 * @returns the entries in file order
 */
export function parseOfacList(text: string): DenyListEntry[] {
  if (typeof text !== "string") {
    throw new TypeError(`Invalid text: expected a string, got ${typeof text}`);
  }
  const entries: DenyListEntry[] = [];
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith("#")) continue;
    if (/\s|,/.test(line)) {
      throw new SyntaxError(`Invalid OFAC list: line ${n + 1} is not a single address`);
    }
    entries.push({ address: line, list: "ofac", source: OFAC_SOURCE });
  }
  return entries;
}

/**
 * Parse the ransomware CSV (`address,type,amountReceivedUSD,amountReceivedBTC`).
 * Fields are plain (the file has no quoting); a quoted field is refused rather
 * than misread.
 *
 * @param text the file's text
 * @returns the entries in file order
 * @throws SyntaxError when the header lacks `address`, a row is short or a field is quoted
 */
export function parseRansomwareCsv(text: string): DenyListEntry[] {
  if (typeof text !== "string") {
    throw new TypeError(`Invalid text: expected a string, got ${typeof text}`);
  }
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? "").replace(/^\uFEFF/, "").split(",").map((h) => h.trim());
  const addressAt = header.indexOf("address");
  const typeAt = header.indexOf("type");
  if (addressAt < 0) throw new SyntaxError("Invalid ransomware CSV: no `address` column");
  const entries: DenyListEntry[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.trim().length === 0) continue;
    if (line.includes('"')) {
      throw new SyntaxError(`Invalid ransomware CSV: line ${n + 1} has a quoted field`);
    }
    const fields = line.split(",").map((f) => f.trim());
    const address = fields[addressAt];
    if (address === undefined || address.length === 0) {
      throw new SyntaxError(`Invalid ransomware CSV: line ${n + 1} has no address`);
    }
    const type = typeAt >= 0 ? fields[typeAt] : undefined;
    entries.push({
      address,
      list: "ransomware",
      source: type === undefined || type.length === 0
        ? RANSOMWARE_SOURCE
        : `${RANSOMWARE_SOURCE} (${type})`,
    });
  }
  return entries;
}

/**
 * The comparison key of an address: bech32/bech32m (an `hrp` of bc, tb or
 * bcrt followed by `1`) lower-cased, anything else unchanged.
 *
 * @param address an address
 */
export function denyListKey(address: string): string {
  if (typeof address !== "string") {
    throw new TypeError(`Invalid address: expected a string, got ${typeof address}`);
  }
  const trimmed = address.trim();
  return /^(bc|tb|bcrt)1/i.test(trimmed) ? trimmed.toLowerCase() : trimmed;
}

/**
 * Build a deny list from parsed entries. When an address is listed more than
 * once, the first OFAC entry wins, else the first entry.
 *
 * @param entries entries of {@linkcode parseOfacList} and {@linkcode parseRansomwareCsv}
 */
export function createDenyList(entries: readonly DenyListEntry[]): DenyList {
  if (!Array.isArray(entries)) {
    throw new TypeError(`Invalid entries: expected an array, got ${typeof entries}`);
  }
  const byKey = new Map<string, DenyListMatch>();
  for (const [i, e] of entries.entries()) {
    if (typeof e !== "object" || e === null || typeof e.address !== "string") {
      throw new TypeError(`Invalid entries[${i}]: expected a DenyListEntry`);
    }
    if (e.list !== "ofac" && e.list !== "ransomware") {
      throw new RangeError(`Invalid entries[${i}].list: ${String(e.list)}`);
    }
    const key = denyListKey(e.address);
    const known = byKey.get(key);
    if (known === undefined || (known.list !== "ofac" && e.list === "ofac")) {
      byKey.set(key, Object.freeze({ list: e.list, source: e.source }));
    }
  }
  return Object.freeze({
    size: byKey.size,
    match(address: string): DenyListMatch | null {
      return byKey.get(denyListKey(address)) ?? null;
    },
  });
}

/**
 * Parse both files and build the deny list.
 *
 * @param files the OFAC list text and the ransomware CSV text
 */
export function denyListFromText(files: { ofacText: string; ransomwareCsv: string }): DenyList {
  if (typeof files !== "object" || files === null) {
    throw new TypeError("Invalid files: expected { ofacText, ransomwareCsv }");
  }
  return createDenyList([
    ...parseOfacList(files.ofacText),
    ...parseRansomwareCsv(files.ransomwareCsv),
  ]);
}
