import assert from "node:assert/strict";
import { bech32 } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { decodeBolt11, type DecodedBolt11 } from "../../../src/layer2/lightning/bolt11.ts";
import { ValidationError } from "../../../src/errors/app_error.ts";
import { encodeBolt11, type EncodeBolt11Options } from "../../_helpers/bolt11_encode.ts";

interface ValidVector {
  index: number;
  title: string;
  invoice: string;
  network: string;
  hrp: string;
  currency_prefix: string;
  amount_msat: number | null;
  timestamp: number;
  signature_hex: string;
  recovery_flag: number;
  signing_data_hex: string;
  signing_hash_hex: string;
  payment_secret: string;
  payment_hash: string;
  description?: string;
  description_hash?: string;
  description_preimage?: string;
  expiry?: number;
  min_final_cltv_expiry_delta?: number;
  features_bits: number[];
  fallbacks?: { version: number; type: string; program_hex: string; address: string }[];
  route_hints?: {
    pubkey: string;
    short_channel_id: string;
    fee_base_msat: number;
    fee_proportional_millionths: number;
    cltv_expiry_delta: number;
  }[][];
  metadata?: string;
  ignored_fields?: { tag: string; data_length: number; version?: number }[];
  unknown_fields?: { tag: string; data_length: number }[];
  signature_is_high_s: boolean;
  payee_pubkey: string;
}
interface InvalidVector {
  index: number;
  reason: string;
  failure_class: string;
  invoice: string;
}
interface Vectors {
  common: {
    signing_private_key: string;
    payee_pubkey: string;
    defaults_when_absent: Record<string, number>;
  };
  valid: ValidVector[];
  invalid: InvalidVector[];
}

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../../vectors/bolt11/vectors.json", import.meta.url)),
) as Vectors;

/** Every key a valid vector may carry, and whether the test below compares it. */
const HANDLED_KEYS = new Set([
  "index",
  "title",
  "invoice",
  "network",
  "hrp",
  "currency_prefix",
  "amount_msat",
  "timestamp",
  "signature_hex",
  "recovery_flag",
  "signing_data_hex",
  "signing_hash_hex",
  "payment_secret",
  "payment_hash",
  "description",
  "description_hash",
  "description_preimage",
  "expiry",
  "min_final_cltv_expiry_delta",
  "features_bits",
  "fallbacks",
  "route_hints",
  "metadata",
  "ignored_fields",
  "unknown_fields",
  "signature_is_high_s",
  "payee_pubkey",
  // Provenance notes, not decoded values.
  "payee_pubkey_source",
  "spec_stated_fields_checked",
  "note",
]);

const NETWORKS: Record<string, DecodedBolt11["network"]> = {
  "bitcoin mainnet": "mainnet",
  "bitcoin testnet": "testnet",
  "bitcoin signet": "signet",
  "bitcoin regtest": "regtest",
};

const CURRENCY_PREFIX: Record<DecodedBolt11["network"], string> = {
  mainnet: "lnbc",
  testnet: "lntb",
  signet: "lntbs",
  regtest: "lnbcrt",
};

/** The reason slug each invalid vector's failure class must produce. */
const EXPECTED_REASON: Record<string, string> = {
  unknown_even_feature_bit: "unknown-required-feature",
  bad_bech32_checksum: "bad-checksum",
  no_bech32_separator: "no-separator",
  mixed_case: "mixed-case",
  signature_not_recoverable: "unrecoverable-signature",
  too_short: "too-short",
  invalid_amount_multiplier: "invalid-multiplier",
  sub_millisatoshi_amount: "sub-msat-amount",
  missing_payment_secret: "missing-payment-secret",
  high_s_signature_with_n_field: "high-s-signature",
};

const hexToBytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const NODE_KEY = hexToBytes(vectors.common.signing_private_key);
const NODE_PUB = vectors.common.payee_pubkey;
const OTHER_KEY = hexToBytes("11".repeat(32));
const HASH = "0001020304050607080900010203040506070809000102030405060708090102";
const SECRET = "11".repeat(32);
const T0 = 1_700_000_000;

/** Option overrides; an explicit `undefined` removes the default (e.g. the description). */
type Overrides = { [K in keyof EncodeBolt11Options]?: EncodeBolt11Options[K] | undefined };

function base(over: Overrides = {}): EncodeBolt11Options {
  const opts: Record<string, unknown> = {
    network: "mainnet",
    amountMsat: 250_000_000n,
    paymentHash: HASH,
    paymentSecret: SECRET,
    description: "coffee",
    timestamp: T0,
    nodeKey: NODE_KEY,
    ...over,
  };
  for (const key of Object.keys(opts)) if (opts[key] === undefined) delete opts[key];
  return opts as unknown as EncodeBolt11Options;
}

/** Asserts a 422 `ValidationError` naming `reason`, with a message and no stack in it. */
function assertRejects(
  input: string,
  reason: string,
  label: string,
  detail?: RegExp,
): ValidationError {
  let caught: unknown;
  try {
    decodeBolt11(input, { now: new Date(T0 * 1000) });
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof ValidationError,
    `${label}: expected ValidationError, got ${String(caught)}`,
  );
  assert.equal(caught.status, 422, `${label}: status`);
  assert.equal(caught.code, "unprocessable", `${label}: code`);
  assert.equal(caught.extensions.reason, reason, `${label}: reason (message: ${caught.message})`);
  assert.ok(
    caught.message.length > 0 && !/\n\s+at /.test(caught.message),
    `${label}: plain message`,
  );
  if (detail !== undefined) assert.match(caught.message, detail, `${label}: message`);
  return caught;
}

/** Words of an invoice (without checksum), for hand-made variants. */
function wordsOf(invoice: string): { prefix: string; words: number[] } {
  return bech32.decode(invoice.toLowerCase() as `${string}1${string}`, false);
}

/** Re-encode with a valid checksum (the signature may then be wrong). */
function reencode(prefix: string, words: number[]): string {
  return bech32.encode(prefix, words, false);
}

// ---------------------------------------------------------------------------
// Spec vectors
// ---------------------------------------------------------------------------

Deno.test("BOLT11 vectors: the file holds 16 valid and 10 invalid examples", () => {
  assert.equal(vectors.valid.length, 16);
  assert.equal(vectors.invalid.length, 10);
});

for (const v of vectors.valid) {
  Deno.test(`decodeBolt11() decodes valid vector ${v.index}: ${v.title.slice(0, 70)}`, () => {
    const label = `valid ${v.index}`;
    for (const key of Object.keys(v)) {
      assert.ok(HANDLED_KEYS.has(key), `${label}: unhandled vector key ${key}`);
    }

    const d = decodeBolt11(v.invoice, { now: new Date(0) });
    assert.equal(d.network, NETWORKS[v.network], `${label}: network`);
    assert.equal(d.hrp, v.hrp, `${label}: hrp`);
    assert.ok(d.hrp.startsWith(v.currency_prefix), `${label}: currency prefix`);
    assert.equal(CURRENCY_PREFIX[d.network], v.currency_prefix, `${label}: prefix ↔ network`);
    assert.equal(
      d.amountMsat,
      v.amount_msat === null ? null : BigInt(v.amount_msat),
      `${label}: amount`,
    );
    assert.equal(d.timestamp.getTime(), v.timestamp * 1000, `${label}: timestamp`);
    assert.equal(d.signature.compact, v.signature_hex, `${label}: signature`);
    assert.equal(d.signature.recoveryId, v.recovery_flag, `${label}: recovery id`);
    assert.equal(d.signature.highS, v.signature_is_high_s, `${label}: high-S`);
    assert.equal(
      toHex(sha256(hexToBytes(v.signing_data_hex))),
      v.signing_hash_hex,
      `${label}: vector self-check`,
    );
    assert.equal(d.signingHash, v.signing_hash_hex, `${label}: signing hash`);
    assert.equal(d.paymentHash, v.payment_hash, `${label}: payment hash`);
    assert.equal(d.paymentSecret, v.payment_secret, `${label}: payment secret`);
    assert.equal(d.description, v.description ?? null, `${label}: description`);
    assert.equal(d.descriptionHash, v.description_hash ?? null, `${label}: description hash`);
    if (v.description_preimage !== undefined) {
      const digest = toHex(sha256(new TextEncoder().encode(v.description_preimage)));
      assert.equal(d.descriptionHash, digest, `${label}: h commits to the preimage`);
    }
    assert.equal(
      d.expirySeconds,
      v.expiry ?? vectors.common.defaults_when_absent.expiry_seconds,
      `${label}: expiry`,
    );
    assert.equal(
      d.expiresAt.getTime(),
      (v.timestamp + d.expirySeconds) * 1000,
      `${label}: expiresAt`,
    );
    assert.equal(
      d.minFinalCltvExpiry,
      v.min_final_cltv_expiry_delta ??
        vectors.common.defaults_when_absent.min_final_cltv_expiry_delta,
      `${label}: min final cltv`,
    );
    assert.deepEqual(d.features.bits, v.features_bits, `${label}: feature bits`);
    assert.deepEqual(
      d.fallbackAddresses,
      (v.fallbacks ?? []).map((f) => f.address),
      `${label}: fallbacks`,
    );
    assert.deepEqual(
      d.routeHints,
      (v.route_hints ?? []).map((route) =>
        route.map((h) => ({
          pubkey: h.pubkey,
          shortChannelId: h.short_channel_id,
          feeBaseMsat: h.fee_base_msat,
          feeProportionalMillionths: h.fee_proportional_millionths,
          cltvExpiryDelta: h.cltv_expiry_delta,
        }))
      ),
      `${label}: route hints`,
    );
    assert.equal(d.paymentMetadata, v.metadata ?? null, `${label}: payment metadata`);
    const skipped = [...(v.ignored_fields ?? []), ...(v.unknown_fields ?? [])]
      .map((f) => `${f.tag}/${f.data_length}`).sort();
    assert.deepEqual(
      d.skippedFields.map((f) => `${f.tag}/${f.dataLength}`).sort(),
      skipped,
      `${label}: skipped`,
    );
    assert.equal(d.payeePubkey, v.payee_pubkey, `${label}: payee`);
    assert.equal(d.payeeSource, "recovered", `${label}: payee source`);
    assert.equal(d.expired, false, `${label}: not expired at the epoch`);
  });
}

for (const v of vectors.invalid) {
  Deno.test(`decodeBolt11() rejects invalid vector ${v.index}: ${v.reason}`, () => {
    const reason = EXPECTED_REASON[v.failure_class];
    assert.ok(
      reason !== undefined,
      `invalid ${v.index}: no expected reason for ${v.failure_class}`,
    );
    assertRejects(v.invoice, reason, `invalid ${v.index} (${v.failure_class})`);
  });
}

Deno.test("decodeBolt11() names the unknown even feature bit of invalid vector 0", () => {
  const err = assertRejects(
    vectors.invalid[0]!.invoice,
    "unknown-required-feature",
    "invalid 0",
    /\b100\b/,
  );
  assert.deepEqual(err.extensions.unknownBits, [100]);
});

Deno.test("decodeBolt11() names features known in invoices and keeps unknown odd bits", () => {
  const d = decodeBolt11(vectors.valid[14]!.invoice);
  assert.deepEqual(d.features.names, [
    "var_onion_optin",
    "payment_secret",
    "option_payment_metadata",
  ]);
  const coffee = decodeBolt11(vectors.valid[11]!.invoice);
  assert.deepEqual(coffee.features.bits, [8, 14, 99]);
  assert.deepEqual(coffee.features.names, ["var_onion_optin", "payment_secret"]);
});

Deno.test("decodeBolt11() accepts an all upper-case invoice like its lower-case form", () => {
  const upper = decodeBolt11(vectors.valid[12]!.invoice);
  const lower = decodeBolt11(vectors.valid[12]!.invoice.toLowerCase());
  assert.deepEqual(upper, lower);
});

Deno.test("decodeBolt11() recovers the spec's signer from the high-S example only after normalising s", () => {
  const v = vectors.valid[15]!;
  // The raw (libsecp256k1-style) recovery with the high s names another key: the test documents why
  // the decoder normalises s before recovering.
  const sig = secp256k1.Signature.fromBytes(hexToBytes(v.signature_hex), "compact");
  const raw = sig.addRecoveryBit(v.recovery_flag).recoverPublicKey(hexToBytes(v.signing_hash_hex));
  assert.notEqual(raw.toHex(true), NODE_PUB);
  assert.equal(decodeBolt11(v.invoice).payeePubkey, NODE_PUB);
});

// ---------------------------------------------------------------------------
// Encoder round trips
// ---------------------------------------------------------------------------

for (const network of ["mainnet", "testnet", "signet", "regtest"] as const) {
  Deno.test(`encodeBolt11() → decodeBolt11() round-trips a ${network} invoice`, () => {
    const text = encodeBolt11(base({ network, expirySeconds: 600, minFinalCltvExpiry: 40 }));
    assert.ok(text.startsWith(`${CURRENCY_PREFIX[network]}2500u1`), text.slice(0, 12));
    const d = decodeBolt11(text, { now: new Date(T0 * 1000) });
    assert.equal(d.network, network);
    assert.equal(d.amountMsat, 250_000_000n);
    assert.equal(d.paymentHash, HASH);
    assert.equal(d.paymentSecret, SECRET);
    assert.equal(d.description, "coffee");
    assert.equal(d.descriptionHash, null);
    assert.equal(d.expirySeconds, 600);
    assert.equal(d.minFinalCltvExpiry, 40);
    assert.equal(d.timestamp.getTime(), T0 * 1000);
    assert.equal(d.payeePubkey, NODE_PUB);
    assert.deepEqual(d.features.bits, [8, 14]);
    assert.equal(d.paymentMetadata, null);
    assert.deepEqual(d.skippedFields, []);
  });
}

Deno.test("encodeBolt11() → decodeBolt11() round-trips an any-amount invoice", () => {
  const text = encodeBolt11(base({ amountMsat: null }));
  assert.ok(text.startsWith("lnbc1"));
  assert.equal(decodeBolt11(text).amountMsat, null);
  const regtest = encodeBolt11(base({ network: "regtest", amountMsat: null }));
  assert.ok(regtest.startsWith("lnbcrt1"));
  const d = decodeBolt11(regtest);
  assert.equal(d.network, "regtest");
  assert.equal(d.amountMsat, null);
});

Deno.test("encodeBolt11() uses the shortest multiplier and decodeBolt11() reads each back", () => {
  const cases: [bigint, string][] = [
    [1n, "lnbc10p1"],
    [99n, "lnbc990p1"],
    [100n, "lnbc1n1"],
    [101n, "lnbc1010p1"],
    [100_000n, "lnbc1u1"],
    [100_000_000n, "lnbc1m1"],
    [100_000_000_000n, "lnbc11"],
    [2_100_000_000_000_000_000n, "lnbc210000001"],
    [967_878_534n, "lnbc9678785340p1"],
  ];
  for (const [msat, prefix] of cases) {
    const text = encodeBolt11(base({ amountMsat: msat }));
    assert.ok(text.startsWith(prefix), `${msat}: ${text.slice(0, prefix.length)} vs ${prefix}`);
    assert.equal(decodeBolt11(text).amountMsat, msat, `${msat} msat`);
  }
});

Deno.test("encodeBolt11() → decodeBolt11() round-trips a description hash", () => {
  const long = "x".repeat(1000);
  const digest = toHex(sha256(new TextEncoder().encode(long)));
  const d = decodeBolt11(encodeBolt11(base({ description: undefined, descriptionHash: digest })));
  assert.equal(d.description, null);
  assert.equal(d.descriptionHash, digest);
});

Deno.test("encodeBolt11() → decodeBolt11() round-trips an empty and a non-ASCII description", () => {
  assert.equal(decodeBolt11(encodeBolt11(base({ description: "" }))).description, "");
  assert.equal(
    decodeBolt11(encodeBolt11(base({ description: "ナンセンス 1杯 ☕" }))).description,
    "ナンセンス 1杯 ☕",
  );
  const d = decodeBolt11(encodeBolt11(base({ description: undefined })));
  assert.equal(d.description, null);
  assert.equal(d.descriptionHash, null);
});

Deno.test("encodeBolt11() → decodeBolt11() round-trips feature bits, known and unknown odd", () => {
  const d = decodeBolt11(encodeBolt11(base({ features: [9, 15, 17, 25, 49, 101, 255] })));
  assert.deepEqual(d.features.bits, [9, 15, 17, 25, 49, 101, 255]);
  assert.deepEqual(d.features.names, [
    "var_onion_optin",
    "payment_secret",
    "basic_mpp",
    "option_route_blinding",
    "option_payment_metadata",
  ]);
  const none = decodeBolt11(encodeBolt11(base({ features: [] })));
  assert.deepEqual(none.features, { bits: [], names: [] });
});

Deno.test("decodeBolt11() reads payment metadata, fallbacks and route hints written as raw fields", () => {
  const program = hexToBytes("751e76e8199196d454941c45d1b3a323f1433bd6");
  const hop = new Uint8Array(51);
  hop.set(secp256k1.getPublicKey(OTHER_KEY, true), 0);
  hop.set([0x09, 0x0a, 0x0b, 0x00, 0x01, 0x02, 0x00, 0x03], 33); // 592395x258x3
  hop.set([0xff, 0xff, 0xff, 0xff], 41); // fee_base_msat: u32 max
  hop.set([0x00, 0x00, 0x01, 0xf4], 45); // 500 ppm
  hop.set([0x00, 0x90], 49); // 144 blocks
  const text = encodeBolt11(base({
    network: "regtest",
    extraFields: [
      { tag: "m", words: bech32.toWords(hexToBytes("01fafaf0")) },
      { tag: "f", words: [0, ...bech32.toWords(program)] },
      { tag: "f", words: [17, ...bech32.toWords(program)] },
      { tag: "f", words: [31, ...bech32.toWords(program)] }, // unknown version: skipped
      { tag: "r", words: bech32.toWords(hop) },
    ],
  }));
  const d = decodeBolt11(text);
  assert.equal(d.paymentMetadata, "01fafaf0");
  assert.deepEqual(d.fallbackAddresses, [
    bech32.encode("bcrt", [0, ...bech32.toWords(program)]),
    "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r",
  ]);
  assert.deepEqual(d.skippedFields, [{ tag: "f", dataLength: 33 }]);
  assert.deepEqual(d.routeHints, [[{
    pubkey: toHex(secp256k1.getPublicKey(OTHER_KEY, true)),
    shortChannelId: "592395x258x3",
    feeBaseMsat: 4_294_967_295,
    feeProportionalMillionths: 500,
    cltvExpiryDelta: 144,
  }]]);
});

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

Deno.test("decodeBolt11() flags an invoice expired from timestamp + expiry on", () => {
  const text = encodeBolt11(base({ expirySeconds: 60 }));
  const at = (s: number) => decodeBolt11(text, { now: new Date((T0 + s) * 1000) });
  assert.equal(at(0).expired, false);
  assert.equal(at(59).expired, false);
  assert.equal(at(60).expired, true);
  assert.equal(at(3600).expired, true);
  assert.equal(at(-10).expired, false);
  assert.equal(at(0).expiresAt.getTime(), (T0 + 60) * 1000);
});

Deno.test("decodeBolt11() uses the default expiry of 3600 s when x is absent", () => {
  const text = encodeBolt11(base());
  const d = decodeBolt11(text, { now: new Date((T0 + 3599) * 1000) });
  assert.equal(d.expirySeconds, 3600);
  assert.equal(d.expired, false);
  assert.equal(decodeBolt11(text, { now: new Date((T0 + 3600) * 1000) }).expired, true);
});

Deno.test("decodeBolt11() treats an expiry of 0 as expired at its own timestamp", () => {
  const d = decodeBolt11(encodeBolt11(base({ expirySeconds: 0 })), { now: new Date(T0 * 1000) });
  assert.equal(d.expirySeconds, 0);
  assert.equal(d.expired, true);
});

Deno.test("decodeBolt11() defaults now to the current time", () => {
  const fresh = encodeBolt11(base({ timestamp: Math.floor(Date.now() / 1000) }));
  assert.equal(decodeBolt11(fresh).expired, false);
  assert.equal(decodeBolt11(encodeBolt11(base({ timestamp: 1 }))).expired, true);
});

// ---------------------------------------------------------------------------
// Signature rules
// ---------------------------------------------------------------------------

Deno.test("decodeBolt11() verifies against an n field instead of recovering", () => {
  const d = decodeBolt11(encodeBolt11(base({ includePayeeNodeId: true })));
  assert.equal(d.payeePubkey, NODE_PUB);
  assert.equal(d.payeeSource, "n-field");
});

Deno.test("decodeBolt11() rejects a signature that does not match the n field", () => {
  const otherPub = secp256k1.getPublicKey(OTHER_KEY, true);
  const text = encodeBolt11(base({ extraFields: [{ tag: "n", words: bech32.toWords(otherPub) }] }));
  assertRejects(text, "invalid-signature", "n of another key");
});

Deno.test("decodeBolt11() rejects an n field that is not a curve point", () => {
  const bogus = new Uint8Array(33).fill(0xff);
  bogus[0] = 0x02;
  const text = encodeBolt11(base({ extraFields: [{ tag: "n", words: bech32.toWords(bogus) }] }));
  assertRejects(text, "invalid-payee-key", "n off the curve");
});

Deno.test("decodeBolt11() rejects a high-S signature when an n field is present", () => {
  assertRejects(
    encodeBolt11(base({ includePayeeNodeId: true, highS: true })),
    "high-s-signature",
    "high-S + n",
  );
});

Deno.test("decodeBolt11() accepts a high-S signature without n and recovers the signer", () => {
  const d = decodeBolt11(encodeBolt11(base({ highS: true })));
  assert.equal(d.signature.highS, true);
  assert.equal(d.payeePubkey, NODE_PUB);
});

Deno.test("decodeBolt11() recovers a different payee when a signed field is altered", () => {
  const { prefix, words } = wordsOf(encodeBolt11(base()));
  words[10] = words[10]! ^ 1; // inside the p field
  const d = decodeBolt11(reencode(prefix, words));
  assert.notEqual(d.payeePubkey, NODE_PUB);
  // With an n field the same alteration cannot go unnoticed.
  const withN = wordsOf(encodeBolt11(base({ includePayeeNodeId: true })));
  withN.words[10] = withN.words[10]! ^ 1;
  assertRejects(reencode(withN.prefix, withN.words), "invalid-signature", "altered with n");
});

Deno.test("decodeBolt11() rejects a recovery id above 3 and an out-of-range r", () => {
  const { prefix, words } = wordsOf(encodeBolt11(base()));
  const data = words.slice(0, -104);
  const sig = bech32.fromWords(words.slice(-104));
  const badRecid = Uint8Array.from(sig);
  badRecid[64] = 4;
  assertRejects(
    reencode(prefix, [...data, ...bech32.toWords(badRecid)]),
    "invalid-signature",
    "recid 4",
  );
  const zeroR = Uint8Array.from(sig);
  zeroR.fill(0, 0, 32);
  assertRejects(
    reencode(prefix, [...data, ...bech32.toWords(zeroR)]),
    "invalid-signature",
    "r = 0",
  );
  const maxS = Uint8Array.from(sig);
  maxS.fill(0xff, 32, 64);
  assertRejects(
    reencode(prefix, [...data, ...bech32.toWords(maxS)]),
    "invalid-signature",
    "s >= n",
  );
});

// ---------------------------------------------------------------------------
// Field rules
// ---------------------------------------------------------------------------

Deno.test("decodeBolt11() rejects invoices without p or s", () => {
  assertRejects(encodeBolt11(base({ omit: ["p"] })), "missing-payment-hash", "no p");
  assertRejects(encodeBolt11(base({ omit: ["s"] })), "missing-payment-secret", "no s");
});

Deno.test("decodeBolt11() rejects a second p, s, d, x, c, 9 or m field", () => {
  const hash = bech32.toWords(hexToBytes("22".repeat(32)));
  const cases: [string, number[], Overrides][] = [
    ["p", hash, {}],
    ["s", hash, {}],
    ["d", bech32.toWords(new TextEncoder().encode("tea")), {}],
    ["x", [1], { expirySeconds: 60 }],
    ["c", [1], { minFinalCltvExpiry: 40 }],
    ["9", [1], {}],
    ["m", [0, 0], { extraFields: [{ tag: "m", words: [0, 0] }] }],
  ];
  for (const [tag, words, over] of cases) {
    const extra = [...(over.extraFields ?? []), { tag, words }];
    assertRejects(
      encodeBolt11(base({ ...over, extraFields: extra })),
      "duplicate-field",
      `second ${tag}`,
    );
  }
});

Deno.test("decodeBolt11() skips p, h, s and n fields of the wrong length", () => {
  const d = decodeBolt11(encodeBolt11(base({
    extraFields: [
      { tag: "p", words: new Array(51).fill(0) },
      { tag: "h", words: new Array(53).fill(0) },
      { tag: "s", words: new Array(10).fill(0) },
      { tag: "n", words: new Array(52).fill(0) },
      { tag: "3", words: [] }, // "3" is tag 17: unknown
    ],
  })));
  assert.equal(d.paymentHash, HASH);
  assert.equal(d.descriptionHash, null);
  assert.equal(d.payeeSource, "recovered");
  assert.deepEqual(d.skippedFields.map((f) => `${f.tag}/${f.dataLength}`), [
    "p/51",
    "h/53",
    "s/10",
    "n/52",
    "3/0",
  ]);
});

Deno.test("decodeBolt11() rejects both a description and a description hash", () => {
  const text = encodeBolt11(base({ descriptionHash: "ab".repeat(32) }));
  assertRejects(text, "conflicting-description", "d and h");
});

Deno.test("decodeBolt11() rejects a description that is not UTF-8", () => {
  const words = bech32.toWords(Uint8Array.of(0x31, 0xff, 0xfe, 0xfd));
  assertRejects(
    encodeBolt11(base({ description: undefined, extraFields: [{ tag: "d", words }] })),
    "invalid-field",
    "bad UTF-8",
    /UTF-8/,
  );
});

Deno.test("decodeBolt11() rejects field data with non-zero or excess padding", () => {
  const words = bech32.toWords(hexToBytes(HASH));
  words[51] = words[51]! | 1; // 260 bits carry 4 padding bits: set one
  assertRejects(
    encodeBolt11(base({ omit: ["p"], extraFields: [{ tag: "p", words }] })),
    "invalid-field",
    "padding",
  );
  // One word is 5 bits: no byte and 5 padding bits.
  assertRejects(
    encodeBolt11(base({ description: undefined, extraFields: [{ tag: "d", words: [0] }] })),
    "invalid-field",
    "excess padding",
  );
});

Deno.test("decodeBolt11() rejects unknown even feature bits and missing dependencies", () => {
  const err = assertRejects(
    encodeBolt11(base({ features: [8, 14, 22, 102] })),
    "unknown-required-feature",
    "even",
  );
  assert.deepEqual(err.extensions.unknownBits, [22, 102]);
  assertRejects(
    encodeBolt11(base({ features: [8, 17] })),
    "missing-feature-dependency",
    "mpp without secret",
  );
});

Deno.test("decodeBolt11() rejects malformed route hints and out-of-range numbers", () => {
  assertRejects(
    encodeBolt11(base({ extraFields: [{ tag: "r", words: bech32.toWords(new Uint8Array(50)) }] })),
    "invalid-field",
    "short hop",
  );
  const hop = new Uint8Array(51); // pubkey of zeros: not a point
  assertRejects(
    encodeBolt11(base({ extraFields: [{ tag: "r", words: bech32.toWords(hop) }] })),
    "invalid-field",
    "hop key",
  );
  assertRejects(
    encodeBolt11(base({ extraFields: [{ tag: "c", words: [4, 0, 0, 0, 0, 0, 0] }] })),
    "invalid-field",
    "c above u32",
  );
  assertRejects(
    encodeBolt11(base({ extraFields: [{ tag: "x", words: new Array(11).fill(31) }] })),
    "invalid-field",
    "x too large",
  );
});

Deno.test("decodeBolt11() rejects a field that runs past the signature", () => {
  const { prefix, words } = wordsOf(encodeBolt11(base()));
  const truncated = [...words.slice(0, 7), 1, 31, 31, ...words.slice(-104)];
  assertRejects(reencode(prefix, truncated), "truncated-field", "long field");
  const header = [...words.slice(0, 7), 1, ...words.slice(-104)];
  assertRejects(reencode(prefix, header), "truncated-field", "cut header");
});

// ---------------------------------------------------------------------------
// Text and human-readable part
// ---------------------------------------------------------------------------

Deno.test("decodeBolt11() rejects malformed text with a reason per defect", () => {
  const good = encodeBolt11(base());
  const cases: [string, string, string][] = [
    ["", "empty", "empty"],
    ["lnbc1" + "q".repeat(7100), "too-long", "too long"],
    [good.slice(0, 20) + "é" + good.slice(21), "invalid-character", "non-ASCII"],
    [good.slice(0, 20) + " " + good.slice(21), "invalid-character", "space"],
    [good.slice(0, 20) + "b" + good.slice(21), "invalid-character", "b is not bech32"],
    [good.replace("lnbc", "LNBC"), "mixed-case", "mixed case"],
    [good.slice(good.indexOf("1") + 1), "no-separator", "no separator"],
    ["1" + good.slice(good.lastIndexOf("1") + 1), "no-separator", "empty hrp"],
    ["lnbc1qqqqq", "too-short", "no checksum room"],
    [good.slice(0, -1) + (good.endsWith("q") ? "p" : "q"), "bad-checksum", "checksum"],
  ];
  for (const [input, reason, label] of cases) assertRejects(input, reason, label);
});

Deno.test("decodeBolt11() rejects unknown prefixes, networks and amounts", () => {
  const { words } = wordsOf(encodeBolt11(base()));
  const cases: [string, string][] = [
    ["bc", "unknown-prefix"],
    ["xlnbc", "unknown-prefix"],
    ["lnltc", "unknown-network"],
    ["lntbx", "unknown-network"],
    ["ln", "unknown-network"],
    ["lnbc0", "invalid-amount"],
    ["lnbc0m", "invalid-amount"],
    ["lnbc025u", "invalid-amount"],
    ["lnbc25mm", "invalid-amount"],
    ["lnbc2.5m", "invalid-amount"],
    ["lnbc25x", "invalid-multiplier"],
    ["lnbc15p", "sub-msat-amount"],
    ["lnbc21000001", "invalid-amount"],
    ["lnbc999999999999999999999p", "invalid-amount"],
  ];
  for (const [hrp, reason] of cases) assertRejects(reencode(hrp, words), reason, `hrp ${hrp}`);
});

// ---------------------------------------------------------------------------
// Argument types
// ---------------------------------------------------------------------------

Deno.test("decodeBolt11() throws TypeError for arguments of the wrong type", () => {
  const good = encodeBolt11(base());
  const badTexts: unknown[] = [undefined, null, 42, 1n, {}, [], new String(good), Symbol("x")];
  for (const t of badTexts) {
    assert.throws(() => decodeBolt11(t as string), TypeError, `text ${String(typeof t)}`);
  }
  const badOpts: unknown[] = [null, 5, "now"];
  for (const o of badOpts) {
    assert.throws(() => decodeBolt11(good, o as { now?: Date }), TypeError, `opts ${String(o)}`);
  }
  const badNows: unknown[] = [null, "2024-01-01", 0, new Date(Number.NaN), {}];
  for (const now of badNows) {
    assert.throws(() => decodeBolt11(good, { now: now as Date }), TypeError, `now ${String(now)}`);
  }
});
