/**
 * Read the deny-list files (the I/O half of `deny_list.ts`).
 *
 * @module
 */
import { type DenyList, denyListFromText } from "./deny_list.ts";

/** File name of the OFAC list inside the deny-list directory. */
export const OFAC_FILE = "ofac_sanctioned_addresses_XBT.txt";
/** File name of the ransomware CSV inside the deny-list directory. */
export const RANSOMWARE_FILE = "ransomware_addresses_showing_the_receipts.csv";

/**
 * Load the deny list from a directory holding {@linkcode OFAC_FILE} and
 * {@linkcode RANSOMWARE_FILE} (`models/data/risk/` in this repository).
 *
 * @param dir the directory
 * @returns the deny list
 * @throws Deno.errors.NotFound when a file is missing; SyntaxError when one is malformed
 */
export async function loadDenyList(dir: string): Promise<DenyList> {
  if (typeof dir !== "string" || dir.length === 0) {
    throw new TypeError("Invalid dir: expected a non-empty string");
  }
  const base = dir.endsWith("/") ? dir : `${dir}/`;
  const [ofacText, ransomwareCsv] = await Promise.all([
    Deno.readTextFile(`${base}${OFAC_FILE}`),
    Deno.readTextFile(`${base}${RANSOMWARE_FILE}`),
  ]);
  return denyListFromText({ ofacText, ransomwareCsv });
}
