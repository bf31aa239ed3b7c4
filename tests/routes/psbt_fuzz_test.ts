/**
 * fast-check fuzzing of the PSBT routes: random bytes and mutated valid PSBTs
 * (BIP174/370/371 vectors) must only ever produce 200 or a 4xx problem.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { base64, hex } from "@scure/base";
import { dbTest } from "../_helpers/db.ts";
import { buildTestApp, type TestApp } from "../_helpers/app.ts";

interface Case {
  valid: boolean;
  base64: string;
  expected_locktime?: number | null;
}

async function validPsbts(): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (
    const f of [
      "bip174/bip-0174-vectors.json",
      "bip370/bip-0370-vectors.json",
      "bip371/bip-0371-vectors.json",
    ]
  ) {
    const v = JSON.parse(await Deno.readTextFile(new URL(`../vectors/${f}`, import.meta.url))) as {
      cases: Case[];
    };
    // BIP370: a PSBT whose locktime cannot be determined "must be an error".
    for (const c of v.cases) {
      if (c.valid && c.expected_locktime !== null) out.push(base64.decode(c.base64));
    }
  }
  return out;
}

const SEEDS = await validPsbts();

/** One edit of a valid PSBT: flip, set, insert, delete or truncate. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    n: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(seed: Uint8Array, edits: Mutation[]): Uint8Array {
  let b = seed.slice();
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % b.length;
    switch (e.kind) {
      case "flip":
        if (b.length > 0) b[at]! ^= 1 << e.bit;
        break;
      case "set":
        if (b.length > 0) b[at] = e.byte;
        break;
      case "insert":
        b = new Uint8Array([...b.subarray(0, at), ...e.bytes, ...b.subarray(at)]);
        break;
      case "delete":
        b = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + e.n)]);
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

async function expectNo5xx(t: TestApp, key: string, path: string, body: unknown) {
  const res = await t.call(path, { key, method: "POST", body });
  const text = await res.text();
  assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), `${res.status} ${text}`);
  const parsed = JSON.parse(text);
  if (res.status !== 200) {
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.equal(typeof parsed.detail, "string");
  }
}

dbTest("fuzz: /v1/psbt/decode answers random bytes with 4xx only", async (db) => {
  await using t = buildTestApp(db);
  const key = (await t.key("acme", ["psbt"])).secret;
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 512 }),
      fc.boolean(),
      fc.boolean(),
      async (bytes, withMagic, asHex) => {
        const data = withMagic ? new Uint8Array([0x70, 0x73, 0x62, 0x74, 0xff, ...bytes]) : bytes;
        const text = asHex ? hex.encode(data) : base64.encode(data);
        await expectNo5xx(t, key, "/v1/psbt/decode", { psbt: text });
      },
    ),
    { numRuns: 300 },
  );
  // Arbitrary strings, not just encodings of bytes.
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 200, unit: "binary" }), async (s) => {
      await expectNo5xx(t, key, "/v1/psbt/decode", { psbt: s });
    }),
    { numRuns: 150 },
  );
});

dbTest("fuzz: mutated valid PSBTs through decode, combine and finalize: 200 or 4xx", async (db) => {
  await using t = buildTestApp(db);
  const key = (await t.key("acme", ["psbt"])).secret;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: SEEDS.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      fc.constantFrom("/v1/psbt/decode", "/v1/psbt/combine", "/v1/psbt/finalize"),
      async (i, edits, path) => {
        const seed = SEEDS[i]!;
        const psbt = base64.encode(mutate(seed, edits));
        const body = path === "/v1/psbt/combine"
          ? { psbts: [base64.encode(seed), psbt] }
          : { psbt };
        await expectNo5xx(t, key, path, body);
      },
    ),
    { numRuns: 600 },
  );
});

dbTest("every valid vector decodes with 200", async (db) => {
  await using t = buildTestApp(db);
  const key = (await t.key("acme", ["psbt"])).secret;
  for (const seed of SEEDS) {
    const res = await t.call("/v1/psbt/decode", {
      key,
      method: "POST",
      body: { psbt: base64.encode(seed) },
    });
    assert.equal(res.status, 200, await res.text());
  }
});
