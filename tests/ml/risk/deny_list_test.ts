/**
 * Deny lists: parsing the committed OFAC list and ransomware CSV
 * (models/data/risk/), exact matching with bech32 case-folding, and the
 * file loader.
 */
import assert from "node:assert/strict";
import {
  createDenyList,
  denyListFromText,
  denyListKey,
  parseOfacList,
  parseRansomwareCsv,
} from "../../../src/ml/risk/deny_list.ts";
import { loadDenyList } from "../../../src/ml/risk/deny_list_file.ts";

const DIR = new URL("../../../models/data/risk/", import.meta.url);
const ofacText = await Deno.readTextFile(new URL("ofac_sanctioned_addresses_XBT.txt", DIR));
const ransomwareCsv = await Deno.readTextFile(
  new URL("ransomware_addresses_showing_the_receipts.csv", DIR),
);

Deno.test("parseOfacList() reads all 435 lines of the committed OFAC list", () => {
  const entries = parseOfacList(ofacText);
  assert.equal(entries.length, 435);
  assert.equal(entries[0]!.address, "123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX");
  assert.ok(entries.every((e) => e.list === "ofac"));
  assert.deepEqual(parseOfacList("# comment\n\n  1abc  \r\n"), [
    { address: "1abc", list: "ofac", source: entries[0]!.source },
  ]);
  assert.throws(() => parseOfacList("1abc 1def"), SyntaxError);
  assert.throws(() => parseOfacList(1 as unknown as string), TypeError);
});

Deno.test("parseRansomwareCsv() reads 1,013 rows with their dataset type", () => {
  const entries = parseRansomwareCsv(ransomwareCsv);
  assert.equal(entries.length, 1013);
  assert.equal(entries[0]!.address, "34YmbPSXRjewgcqVRcrryUtYqzM25VXrNt");
  assert.match(entries[0]!.source, /Showing the Receipts.*CC BY 4\.0.*\(origCluster\)$/);
  const types = new Map<string, number>();
  for (const e of entries) {
    const t = /\((\w+)\)$/.exec(e.source)![1]!;
    types.set(t, (types.get(t) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(types), {
    origCluster: 465,
    ransomwhere: 292,
    expandedCluster: 256,
  });
  assert.throws(() => parseRansomwareCsv("addr,type\n1abc,x"), SyntaxError);
  assert.throws(() => parseRansomwareCsv('address,type\n"1abc",x'), SyntaxError);
  assert.throws(() => parseRansomwareCsv("address,type\n,x"), SyntaxError);
});

Deno.test("DenyList.match() finds a real OFAC address, bech32 in any case, and nothing else", () => {
  const list = denyListFromText({ ofacText, ransomwareCsv });
  assert.ok(list.size > 1400 && list.size <= 435 + 1013, String(list.size));
  const ofac = list.match("123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX");
  assert.equal(ofac?.list, "ofac");
  assert.match(ofac!.source, /OFAC SDN/);
  // A bech32 address on the OFAC list, written upper-case by a client (QR codes do).
  const bech = parseOfacList(ofacText).find((e) => e.address.startsWith("bc1"))!.address;
  assert.equal(list.match(bech.toUpperCase())?.list, "ofac");
  // base58 is case-sensitive: a case change is another address.
  assert.equal(list.match("123wbudmsjv4gctdvez6qq6z8nxskrj4kx"), null);
  assert.equal(list.match("34YmbPSXRjewgcqVRcrryUtYqzM25VXrNt")?.list, "ransomware");
  assert.equal(list.match("bc1qmpwzkuwsqc9snjvgdt4czhjsnywa5yjdgwyw6k"), null);
  assert.equal(list.match(""), null);
});

Deno.test("createDenyList() lets OFAC win when an address is on both lists", () => {
  const both = createDenyList([
    { address: "BC1QXYZ", list: "ransomware", source: "r" },
    { address: "bc1qxyz", list: "ofac", source: "o" },
  ]);
  assert.equal(both.size, 1);
  assert.deepEqual(both.match("bc1qxyz"), { list: "ofac", source: "o" });
  assert.equal(denyListKey(" tb1QABC "), "tb1qabc");
  assert.equal(denyListKey("3Abc"), "3Abc");
  assert.throws(() => denyListKey(5 as unknown as string), TypeError);
  assert.throws(() => createDenyList("x" as unknown as []), TypeError);
  assert.throws(
    () => createDenyList([{ address: "a", list: "other" as "ofac", source: "" }]),
    RangeError,
  );
});

Deno.test("loadDenyList() reads models/data/risk/", async () => {
  const list = await loadDenyList(new URL(".", DIR).pathname);
  assert.equal(list.match("123WBUDmSJv4GctdVEz6Qq6z8nXSKrJ4KX")?.list, "ofac");
  await assert.rejects(() => loadDenyList("/tmp/no-such-deny-list-dir"), Deno.errors.NotFound);
  await assert.rejects(() => loadDenyList(""), TypeError);
});
