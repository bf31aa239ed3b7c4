/**
 * Fuzzing `decodeBolt11()`: whatever string arrives, the decoder returns a
 * result or throws a 422 `ValidationError`, never anything else. Inputs range
 * from arbitrary Unicode to re-checksummed mutations of real invoices, which
 * get past the bech32 checksum and exercise field parsing and signatures.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { bech32 } from "@scure/base";
import { decodeBolt11, type DecodedBolt11 } from "../../../src/layer2/lightning/bolt11.ts";
import { ValidationError } from "../../../src/errors/app_error.ts";
import { encodeBolt11, type EncodeBolt11Options } from "../../_helpers/bolt11_encode.ts";

interface Vectors {
  common: { signing_private_key: string; payee_pubkey: string };
  valid: { invoice: string }[];
  invalid: { invoice: string }[];
}

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../../vectors/bolt11/vectors.json", import.meta.url)),
) as Vectors;

const hexToBytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const NODE_KEY = hexToBytes(vectors.common.signing_private_key);
const NOW = new Date(1_700_000_000_000);
const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const RUNS = 300;

/** Seeds: every spec example (valid and invalid) plus invoices with n, r, f and m fields. */
const SEEDS: string[] = [
  ...vectors.valid.map((v) => v.invoice),
  ...vectors.invalid.map((v) => v.invoice),
  encodeBolt11({
    network: "regtest",
    amountMsat: 1n,
    paymentHash: "ab".repeat(32),
    paymentSecret: "cd".repeat(32),
    description: "fuzz",
    expirySeconds: 60,
    minFinalCltvExpiry: 144,
    features: [8, 14, 17, 49, 101],
    nodeKey: NODE_KEY,
    includePayeeNodeId: true,
    extraFields: [
      { tag: "m", words: bech32.toWords(Uint8Array.of(1, 2, 3)) },
      { tag: "f", words: [0, ...bech32.toWords(new Uint8Array(20).fill(7))] },
    ],
  }),
];

/** Decodes, asserting that a failure is a 422 ValidationError with a reason slug. */
function decodeOrReject(text: string): DecodedBolt11 | null {
  try {
    return decodeBolt11(text, { now: NOW });
  } catch (err) {
    if (!(err instanceof ValidationError)) {
      throw new Error(
        `decodeBolt11 threw a non-ValidationError for ${JSON.stringify(text)}: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
    assert.equal(err.status, 422);
    assert.match(String(err.extensions.reason), /^[a-z0-9-]+$/);
    assert.ok(err.message.length > 0);
    return null;
  }
}

function wordsOf(invoice: string): { prefix: string; words: number[] } {
  return bech32.decode(invoice.toLowerCase() as `${string}1${string}`, false);
}

const seedArb = fc.constantFrom(...SEEDS);
const invoiceChar = fc.constantFrom(
  ..."lnbcrtsLNBC1023456789munpx" + CHARSET + CHARSET.toUpperCase() + " é\u0000",
);

Deno.test("decodeBolt11() fuzz: arbitrary Unicode strings give a result or a ValidationError", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), (s) => {
      decodeOrReject(s);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodeBolt11() fuzz: invoice-like character soup gives a result or a ValidationError", () => {
  fc.assert(
    fc.property(fc.string({ unit: invoiceChar, maxLength: 900 }), (s) => {
      decodeOrReject(s);
      decodeOrReject(`lnbc1${s}`);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodeBolt11() fuzz: random words under a valid checksum give a result or a ValidationError", () => {
  const hrp = fc.constantFrom(
    "lnbc",
    "lntb",
    "lntbs",
    "lnbcrt",
    "lnbc2500u",
    "lnbc10p",
    "lnbc15p",
    "lnbc0",
    "lnxy",
  );
  fc.assert(
    fc.property(
      hrp,
      fc.array(fc.integer({ min: 0, max: 31 }), { maxLength: 700 }),
      (prefix, words) => {
        decodeOrReject(bech32.encode(prefix, words, false));
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("decodeBolt11() fuzz: random tagged fields under a valid checksum give a result or a ValidationError", () => {
  const word = fc.integer({ min: 0, max: 31 });
  const field = fc.record({
    tag: fc.oneof(word, fc.constantFrom(1, 3, 5, 6, 9, 13, 16, 19, 23, 24, 27)),
    data: fc.oneof(
      fc.array(word, { maxLength: 120 }),
      fc.constantFrom(52, 53, 33, 82, 7).chain((n) =>
        fc.array(word, { minLength: n, maxLength: n })
      ),
    ),
  });
  fc.assert(
    fc.property(
      fc.array(word, { minLength: 7, maxLength: 7 }),
      fc.array(field, { maxLength: 12 }),
      fc.oneof(
        fc.array(word, { minLength: 104, maxLength: 104 }),
        // r ‖ s ‖ a recovery id of 0..3, so recovery is attempted rather than refused up front.
        fc.tuple(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 3 }))
          .map(([rs, recid]) => bech32.toWords(Uint8Array.of(...rs, recid))),
      ),
      (timestamp, fields, signature) => {
        const words = [...timestamp];
        for (const f of fields) {
          words.push(f.tag, f.data.length >> 5, f.data.length & 31, ...f.data);
        }
        words.push(...signature);
        decodeOrReject(bech32.encode("lnbc", words, false));
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("decodeBolt11() fuzz: flipped, inserted and deleted characters give a result or a ValidationError", () => {
  const edit = fc.record({
    kind: fc.constantFrom("flip", "insert", "delete"),
    at: fc.nat(),
    char: fc.oneof(
      fc.constantFrom(...CHARSET, "1", "B", "O"),
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    ),
  });
  fc.assert(
    fc.property(seedArb, fc.array(edit, { minLength: 1, maxLength: 4 }), (seed, edits) => {
      let s = seed;
      for (const e of edits) {
        const i = e.at % (s.length + 1);
        if (e.kind === "flip") s = s.slice(0, i) + e.char + s.slice(i + 1);
        else if (e.kind === "insert") s = s.slice(0, i) + e.char + s.slice(i);
        else s = s.slice(0, i) + s.slice(i + 1);
      }
      decodeOrReject(s);
      decodeOrReject(s.toUpperCase());
    }),
    { numRuns: RUNS },
  );
});

Deno.test("decodeBolt11() fuzz: every truncation of two invoices is rejected with a ValidationError", () => {
  for (const seed of [SEEDS[5]!, SEEDS[SEEDS.length - 1]!]) {
    for (let i = 0; i < seed.length; i++) {
      assert.equal(decodeOrReject(seed.slice(0, i)), null, `prefix of length ${i}`);
      assert.equal(decodeOrReject(seed.slice(i + 1)), null, `suffix from ${i + 1}`);
    }
  }
});

Deno.test("decodeBolt11() fuzz: re-checksummed word changes fail or name another payee", () => {
  // Seeds without an `n` field: recovery always yields some key, so the property
  // is that the signature binds every word (the hrp is fixed here).
  const recovered = SEEDS.filter((s) => decodeOrReject(s)?.payeeSource === "recovered");
  fc.assert(
    fc.property(
      fc.constantFrom(...recovered),
      fc.array(fc.record({ at: fc.nat(), word: fc.integer({ min: 0, max: 31 }) }), {
        minLength: 1,
        maxLength: 3,
      }),
      (seed, edits) => {
        const original = decodeBolt11(seed, { now: NOW });
        const { prefix, words } = wordsOf(seed);
        const mutated = [...words];
        for (const e of edits) mutated[e.at % mutated.length] = e.word;
        fc.pre(mutated.some((w, i) => w !== words[i]));
        const d = decodeOrReject(bech32.encode(prefix, mutated, false));
        if (d !== null) assert.notEqual(d.payeePubkey, original.payeePubkey);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("encodeBolt11() → decodeBolt11() property: every encodable invoice round-trips", () => {
  const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex);
  const knownOdd = [9, 15, 17, 25, 49];
  const opts = fc.record({
    network: fc.constantFrom("mainnet", "testnet", "signet", "regtest"),
    amountMsat: fc.option(fc.bigInt(1n, 2_100_000_000_000_000_000n)),
    paymentHash: hex32,
    paymentSecret: hex32,
    description: fc.option(
      fc.string({ unit: "grapheme", maxLength: 150 }).filter((d) =>
        new TextEncoder().encode(d).length <= 639
      ),
      { nil: undefined },
    ),
    expirySeconds: fc.option(fc.integer({ min: 0, max: 10 * 365 * 86400 }), { nil: undefined }),
    minFinalCltvExpiry: fc.option(fc.integer({ min: 0, max: 0xffff_ffff }), { nil: undefined }),
    timestamp: fc.integer({ min: 0, max: 2 ** 35 - 1 }),
    features: fc.subarray([8, 14, ...knownOdd, 101, 255, 1021]),
    highS: fc.boolean(),
    includePayeeNodeId: fc.boolean(),
  });
  fc.assert(
    fc.property(opts, (o) => {
      // basic_mpp needs payment_secret; low-S only with `n`.
      const features = o.features.includes(17) ? [...o.features, 14] : o.features;
      const input: EncodeBolt11Options = {
        network: o.network,
        amountMsat: o.amountMsat,
        paymentHash: o.paymentHash,
        paymentSecret: o.paymentSecret,
        timestamp: o.timestamp,
        features,
        nodeKey: NODE_KEY,
        highS: o.highS && !o.includePayeeNodeId,
        includePayeeNodeId: o.includePayeeNodeId,
        ...(o.description === undefined ? {} : { description: o.description }),
        ...(o.expirySeconds === undefined ? {} : { expirySeconds: o.expirySeconds }),
        ...(o.minFinalCltvExpiry === undefined ? {} : { minFinalCltvExpiry: o.minFinalCltvExpiry }),
      };
      const d = decodeBolt11(encodeBolt11(input), { now: NOW });
      assert.equal(d.network, o.network);
      assert.equal(d.amountMsat, o.amountMsat);
      assert.equal(d.paymentHash, o.paymentHash);
      assert.equal(d.paymentSecret, o.paymentSecret);
      assert.equal(d.description, o.description ?? null);
      assert.equal(d.expirySeconds, o.expirySeconds ?? 3600);
      assert.equal(d.minFinalCltvExpiry, o.minFinalCltvExpiry ?? 18);
      assert.equal(d.timestamp.getTime(), o.timestamp * 1000);
      assert.deepEqual(d.features.bits, [...new Set(features)].sort((a, b) => a - b));
      assert.equal(d.payeePubkey, vectors.common.payee_pubkey);
      assert.equal(d.payeeSource, o.includePayeeNodeId ? "n-field" : "recovered");
      assert.equal(d.expired, NOW.getTime() >= (o.timestamp + d.expirySeconds) * 1000);
    }),
    { numRuns: 200 },
  );
});
