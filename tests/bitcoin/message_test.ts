import assert from "node:assert/strict";
import fc from "fast-check";
import { NETWORK, p2pkh, p2sh, p2tr, p2wpkh, TEST_NETWORK, WIF } from "@scure/btc-signer";
import { base64, hex } from "@scure/base";
import { schnorr, secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  bip322MessageHash,
  legacyMessageHash,
  MAX_MESSAGE_SIGNATURE_LENGTH,
  type MessageSignatureFormat,
  signMessage,
  verifyMessage,
} from "../../src/bitcoin/message.ts";
import {
  buildToSign,
  buildToSpend,
  displayTxid,
  encodeWitness,
  parseTx,
  serializeTx,
  txidOf,
} from "../../src/bitcoin/_bip322_tx.ts";
import { isValidSignatureEncoding } from "../../src/bitcoin/_bip322_verify.ts";
import { addressToScript } from "../../src/bitcoin/address.ts";
import { networkParams } from "../../src/bitcoin/network.ts";
import type { BitcoinNetwork } from "../../src/bitcoin/network.ts";
import { ValidationError } from "../../src/errors/mod.ts";

// ---------------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------------

interface SignedVector {
  message: string;
  private_keys: string[];
  address: string;
  type: string;
  bip322_signatures: string[];
  tx_version?: number;
  lock_time?: number;
  sequence?: number;
}
interface ErrorVector {
  description: string;
  message: string;
  address: string;
  signature: string;
}
interface Basic {
  tx_hashes: {
    message: string;
    address: string;
    message_hash: string;
    to_spend_tx_hash: string;
    to_sign_tx_hash: string;
  }[];
  simple: SignedVector[];
  error: ErrorVector[];
}
interface Generated {
  simple: SignedVector[];
  full: SignedVector[];
  proof_of_funds: SignedVector[];
  error: ErrorVector[];
}
interface Legacy {
  sign: {
    source: string;
    network: BitcoinNetwork;
    private_key_hex?: string;
    private_key_wif?: string;
    address: string;
    message: string;
    signature: string;
  }[];
  verify: {
    source: string;
    network: BitcoinNetwork;
    address: string;
    signature: string;
    message: string;
    core_result: string;
  }[];
}

async function load<T>(name: string): Promise<T> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`../vectors/bip322/${name}`, import.meta.url)),
  ) as T;
}

const basic = await load<Basic>("basic-test-vectors.json");
const generated = await load<Generated>("generated-test-vectors.json");
const legacy = await load<Legacy>("legacy-signmessage-vectors.json");

/** Script types this service verifies; the rest are "inconclusive" for it (BIP-322 step 2). */
const IN_SCOPE = new Set(["p2pkh", "p2wpkh", "p2sh-p2wpkh", "p2tr"]);

type Section = "basic.simple" | "generated.simple" | "generated.full" | "generated.proof_of_funds";
const signedSections: [Section, SignedVector[]][] = [
  ["basic.simple", basic.simple],
  ["generated.simple", generated.simple],
  ["generated.full", generated.full],
  ["generated.proof_of_funds", generated.proof_of_funds],
];
const expectedFormat = (sig: string) =>
  sig.startsWith("pof") ? "proof-of-funds" : sig.startsWith("ful") ? "full" : "simple";

const mainnetKey = (wif: string) => WIF(NETWORK).decode(wif);

Deno.test("BIP-322 vector files hold the expected number of cases", () => {
  assert.equal(basic.tx_hashes.length, 3);
  assert.equal(basic.simple.length, 4);
  assert.equal(basic.simple.flatMap((v) => v.bip322_signatures).length, 6);
  assert.equal(basic.error.length, 8);
  assert.equal(generated.simple.length, 4);
  assert.equal(generated.full.length, 10);
  assert.equal(generated.proof_of_funds.length, 3);
  assert.equal(generated.error.length, 28);
  assert.equal(legacy.sign.length, 2);
  assert.equal(legacy.verify.length, 10);
});

Deno.test("bip322MessageHash() matches each BIP-322 message-hash vector", () => {
  for (const [i, v] of basic.tx_hashes.entries()) {
    assert.equal(hex.encode(bip322MessageHash(v.message)), v.message_hash, `tx_hashes[${i}]`);
    assert.equal(
      hex.encode(bip322MessageHash(new TextEncoder().encode(v.message))),
      v.message_hash,
      `tx_hashes[${i}] as bytes`,
    );
  }
});

Deno.test("to_spend and to_sign txids match each BIP-322 transaction-hash vector", () => {
  for (const [i, v] of basic.tx_hashes.entries()) {
    const challenge = addressToScript(v.address, "mainnet")!;
    const toSpend = buildToSpend(bip322MessageHash(v.message), challenge);
    assert.equal(displayTxid(txidOf(toSpend)), v.to_spend_tx_hash, `tx_hashes[${i}] to_spend`);
    const toSign = buildToSign(txidOf(toSpend));
    assert.equal(displayTxid(txidOf(toSign)), v.to_sign_tx_hash, `tx_hashes[${i}] to_sign`);
    // The unsigned to_sign has no witness, so the encoding round-trips byte for byte.
    assert.deepEqual(
      serializeTx(parseTx(serializeTx(toSign, true)), true),
      serializeTx(toSign, true),
    );
  }
});

Deno.test("verifyMessage() accepts every in-scope BIP-322 vector signature", () => {
  let checked = 0;
  for (const [section, vectors] of signedSections) {
    for (const [i, v] of vectors.entries()) {
      if (!IN_SCOPE.has(v.type)) continue;
      for (const [j, sig] of v.bip322_signatures.entries()) {
        const label = `${section}[${i}] ${v.type} signature ${j}`;
        const result = verifyMessage(v.address, v.message, sig, "mainnet");
        assert.equal(result.valid, true, `${label}: ${result.reason}`);
        assert.equal(result.format, expectedFormat(sig), label);
        if (result.format === "proof-of-funds") {
          assert.match(result.reason ?? "", /not checked/, label);
        }
        checked++;
      }
    }
  }
  // basic: 4 P2WPKH + 1 P2TR; generated simple: 2; full: 4; proof of funds: 3.
  assert.equal(checked, 14);
});

Deno.test("verifyMessage() reports out-of-scope BIP-322 vector scripts as inconclusive, not valid", () => {
  let checked = 0;
  for (const [section, vectors] of signedSections) {
    for (const [i, v] of vectors.entries()) {
      if (IN_SCOPE.has(v.type)) continue;
      for (const sig of v.bip322_signatures) {
        const result = verifyMessage(v.address, v.message, sig, "mainnet");
        assert.equal(result.valid, false, `${section}[${i}] ${v.type}`);
        assert.match(result.reason ?? "", /^inconclusive: /, `${section}[${i}] ${v.type}`);
        checked++;
      }
    }
  }
  assert.equal(checked, 9);
});

Deno.test("verifyMessage() returns valid: false for every BIP-322 error vector", () => {
  for (const [name, list] of [["basic", basic.error], ["generated", generated.error]] as const) {
    for (const [i, v] of list.entries()) {
      const result = verifyMessage(v.address, v.message, v.signature, "mainnet");
      assert.equal(result.valid, false, `${name}.error[${i}] ${v.description}`);
    }
  }
});

Deno.test("verifyMessage() accepts the vector signatures without their prefix too", () => {
  for (const [section, vectors] of signedSections) {
    if (section === "generated.proof_of_funds") continue; // pof has no unprefixed form
    for (const [i, v] of vectors.entries()) {
      if (!IN_SCOPE.has(v.type)) continue;
      for (const sig of v.bip322_signatures) {
        const bare = /^(smp|ful)/.test(sig) ? sig.slice(3) : sig;
        const result = verifyMessage(v.address, v.message, bare, "mainnet");
        assert.equal(result.valid, true, `${section}[${i}] ${v.type} unprefixed: ${result.reason}`);
      }
    }
  }
});

Deno.test("verifyMessage() rejects a simple signature sent with the full prefix", () => {
  const v = basic.simple[1]!;
  const sig = "ful" + v.bip322_signatures[0]!.slice(3);
  const result = verifyMessage(v.address, v.message, sig, "mainnet");
  assert.equal(result.valid, false);
  assert.equal(result.format, "full");
});

Deno.test("signMessage() reproduces the deterministic P2WPKH vector signatures (RFC 6979)", () => {
  for (const [i, v] of basic.simple.entries()) {
    if (v.type !== "p2wpkh") continue;
    const sig = signMessage(mainnetKey(v.private_keys[0]!), v.address, v.message, {
      network: "mainnet",
      format: "simple",
    });
    assert.ok(v.bip322_signatures.includes(sig), `basic.simple[${i}]`);
  }
});

Deno.test("signMessage() re-signs every single-key in-scope vector message in both formats", () => {
  for (const [section, vectors] of signedSections) {
    for (const [i, v] of vectors.entries()) {
      if (!IN_SCOPE.has(v.type) || v.private_keys.length !== 1) continue;
      const key = mainnetKey(v.private_keys[0]!);
      const formats: MessageSignatureFormat[] = v.type === "p2wpkh" || v.type === "p2tr"
        ? ["simple", "full"]
        : ["full"];
      for (const format of formats) {
        const sig = signMessage(key, v.address, v.message, { network: "mainnet", format });
        const result = verifyMessage(v.address, v.message, sig, "mainnet");
        assert.deepEqual(result, { valid: true, format }, `${section}[${i}] ${v.type} ${format}`);
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Legacy signmessage
// ---------------------------------------------------------------------------------------------

Deno.test("signMessage() legacy reproduces Bitcoin Core's signmessage vectors", () => {
  for (const [i, v] of legacy.sign.entries()) {
    const key = v.private_key_hex !== undefined
      ? hex.decode(v.private_key_hex)
      : WIF(TEST_NETWORK).decode(v.private_key_wif!);
    const sig = signMessage(key, v.address, v.message, { network: v.network, format: "legacy" });
    assert.equal(sig, v.signature, `legacy.sign[${i}] (${v.source})`);
  }
});

Deno.test("verifyMessage() agrees with Bitcoin Core's verifymessage vectors", () => {
  for (const [i, v] of legacy.verify.entries()) {
    const label = `legacy.verify[${i}] ${v.core_result} (${v.source})`;
    if (v.core_result === "ERR_INVALID_ADDRESS") {
      assert.throws(
        () => verifyMessage(v.address, v.message, v.signature, v.network),
        (e: unknown) => e instanceof ValidationError && e.status === 422,
        label,
      );
      continue;
    }
    const result = verifyMessage(v.address, v.message, v.signature, v.network);
    assert.equal(result.valid, v.core_result === "OK", `${label}: ${result.reason}`);
  }
});

Deno.test("verifyMessage() refuses a legacy signature for the key's P2SH-P2WPKH and P2WPKH addresses", () => {
  // rpc_signmessagewithprivkey.py: "test that verifying with non-P2PKH addresses throws error".
  const v = legacy.sign[1]!;
  const pub = secp256k1.getPublicKey(WIF(TEST_NETWORK).decode(v.private_key_wif!), true);
  for (
    const address of [
      p2sh(p2wpkh(pub, TEST_NETWORK), TEST_NETWORK).address!,
      p2wpkh(pub, TEST_NETWORK).address!,
    ]
  ) {
    const result = verifyMessage(address, v.message, v.signature, "testnet4");
    assert.equal(result.valid, false, address);
  }
});

Deno.test("legacyMessageHash() is SHA256d over the magic, a CompactSize length and the message", () => {
  const enc = new TextEncoder();
  const sha256d = (b: Uint8Array) => sha256(sha256(b));
  const magic = enc.encode("Bitcoin Signed Message:\n");
  assert.deepEqual(
    legacyMessageHash("..."),
    sha256d(Uint8Array.of(24, ...magic, 3, ...enc.encode("..."))),
  );
  const long = "a".repeat(300); // 300 = 0xfd 0x2c 0x01 as a CompactSize
  assert.deepEqual(
    legacyMessageHash(long),
    sha256d(Uint8Array.of(24, ...magic, 0xfd, 0x2c, 0x01, ...enc.encode(long))),
  );
});

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

const KEY = hex.decode("0f5d2a8b7c3e19d4a6b2c8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9");

function addresses(key: Uint8Array, network: BitcoinNetwork) {
  const params = networkParams(network);
  const pub = secp256k1.getPublicKey(key, true);
  return {
    p2pkh: p2pkh(pub, params).address!,
    "p2sh-p2wpkh": p2sh(p2wpkh(pub, params), params).address!,
    p2wpkh: p2wpkh(pub, params).address!,
    p2tr: p2tr(schnorr.getPublicKey(key), undefined, params).address!,
  };
}

const ROUND_TRIPS: {
  type: keyof ReturnType<typeof addresses>;
  formats: MessageSignatureFormat[];
}[] = [
  { type: "p2pkh", formats: ["legacy", "full"] },
  { type: "p2sh-p2wpkh", formats: ["full"] },
  { type: "p2wpkh", formats: ["simple", "full"] },
  { type: "p2tr", formats: ["simple", "full"] },
];

Deno.test("signMessage() → verifyMessage() round-trips every type, format and prefix choice", () => {
  for (const network of ["mainnet", "testnet4", "regtest"] as const) {
    const addrs = addresses(KEY, network);
    for (const { type, formats } of ROUND_TRIPS) {
      for (const format of formats) {
        for (
          const prefixed of format === "legacy" ? [undefined, false] : [undefined, true, false]
        ) {
          const label = `${network} ${type} ${format} prefixed=${prefixed}`;
          // noble is slow on this machine (~10 ms per verify): the long and unicode messages run once.
          const messages = network === "mainnet"
            ? ["", "ünïcödé ✓ 😀 " + "x".repeat(300)]
            : ["Hello World"];
          for (const message of messages) {
            const sig = signMessage(KEY, addrs[type], message, {
              network,
              format,
              ...(prefixed === undefined ? {} : { prefixed }),
            });
            const hasPrefix = /^(smp|ful)/.test(sig);
            assert.equal(hasPrefix, format !== "legacy" && prefixed !== false, label);
            const result = verifyMessage(addrs[type], message, sig, network);
            assert.deepEqual(result, { valid: true, format }, label);
          }
        }
      }
    }
  }
});

Deno.test("signMessage() refuses the simple format for P2PKH and P2SH-P2WPKH with a 422", () => {
  const addrs = addresses(KEY, "mainnet");
  // The same key's P2WPKH witness cannot stand in for the P2SH-P2WPKH address: to_sign would need
  // the redeemScript push in its scriptSig, which a simple signature does not carry.
  const simple = signMessage(KEY, addrs.p2wpkh, "m", { network: "mainnet", format: "simple" });
  const wrapped = verifyMessage(addrs["p2sh-p2wpkh"], "m", simple, "mainnet");
  assert.equal(wrapped.valid, false);
  assert.equal(wrapped.format, "simple");
  for (const type of ["p2pkh", "p2sh-p2wpkh"] as const) {
    assert.throws(
      () => signMessage(KEY, addrs[type], "m", { network: "mainnet", format: "simple" }),
      (e: unknown) => e instanceof ValidationError && e.status === 422,
      type,
    );
  }
});

Deno.test("signMessage() refuses the legacy format for non-P2PKH addresses and a legacy prefix", () => {
  const addrs = addresses(KEY, "mainnet");
  for (const type of ["p2sh-p2wpkh", "p2wpkh", "p2tr"] as const) {
    assert.throws(
      () => signMessage(KEY, addrs[type], "m", { network: "mainnet", format: "legacy" }),
      (e: unknown) => e instanceof ValidationError && e.status === 422,
      type,
    );
  }
  assert.throws(
    () =>
      signMessage(KEY, addrs.p2pkh, "m", { network: "mainnet", format: "legacy", prefixed: true }),
    (e: unknown) => e instanceof ValidationError && e.status === 422,
  );
});

Deno.test("signMessage() refuses an address the key does not control with a 422", () => {
  const other = addresses(hex.decode("11".repeat(32)), "mainnet");
  for (const [type, address] of Object.entries(other)) {
    for (const format of ["full", "simple", "legacy"] as const) {
      assert.throws(
        () => signMessage(KEY, address, "m", { network: "mainnet", format }),
        (e: unknown) => e instanceof ValidationError && e.status === 422,
        `${type} ${format}`,
      );
    }
  }
  // A P2WSH address is not a single-key output this service signs for.
  const p2wshAddress = "bc1qp0ahvfh83088w49k405szqgg4f3pptr7p2g06tdxfjcd40z4lh4q95lsz9";
  assert.throws(
    () => signMessage(KEY, p2wshAddress, "m", { network: "mainnet", format: "full" }),
    (e: unknown) => e instanceof ValidationError && e.status === 422,
  );
});

Deno.test("signMessage() and verifyMessage() refuse another network's or an invalid address with a 422", () => {
  const testnet = addresses(KEY, "testnet4");
  const mainnet = addresses(KEY, "mainnet");
  const is422 = (e: unknown) => e instanceof ValidationError && e.status === 422;
  for (const address of [...Object.values(testnet), "not-an-address", ""]) {
    assert.throws(() => verifyMessage(address, "m", "smpAA==", "mainnet"), is422, address);
    assert.throws(
      () => signMessage(KEY, address, "m", { network: "mainnet", format: "full" }),
      is422,
      address,
    );
  }
  for (const address of Object.values(mainnet)) {
    assert.throws(() => verifyMessage(address, "m", "smpAA==", "regtest"), is422, address);
  }
});

// ---------------------------------------------------------------------------------------------
// Tampering and garbage
// ---------------------------------------------------------------------------------------------

Deno.test("verifyMessage() rejects a changed message for every type and format", () => {
  const addrs = addresses(KEY, "mainnet");
  for (const { type, formats } of ROUND_TRIPS) {
    for (const format of formats) {
      const sig = signMessage(KEY, addrs[type], "pay 1 BTC", { network: "mainnet", format });
      assert.equal(verifyMessage(addrs[type], "pay 1 BTC", sig, "mainnet").valid, true);
      for (const other of ["pay 2 BTC", "pay 1 BTC ", "Pay 1 BTC", ""]) {
        const result = verifyMessage(addrs[type], other, sig, "mainnet");
        assert.equal(result.valid, false, `${type} ${format} "${other}"`);
      }
    }
  }
});

Deno.test("verifyMessage() rejects single-bit flips across a signature's bytes", () => {
  const addrs = addresses(KEY, "mainnet");
  for (const { type, formats } of ROUND_TRIPS) {
    for (const format of formats) {
      const sig = signMessage(KEY, addrs[type], "tamper", { network: "mainnet", format });
      const prefix = format === "legacy" ? "" : sig.slice(0, 3);
      const bytes = base64.decode(sig.slice(prefix.length));
      // Every 7th byte and the last four (sighash byte, lock time), one bit each alternating
      // between the low and the high bit: ~30 verifications per signature keeps this test fast.
      const positions = [...bytes.keys()].filter((i) => i % 7 === 0 || i >= bytes.length - 4);
      for (const i of positions) {
        for (const bit of [i % 2 === 0 ? 0x01 : 0x80]) {
          const copy = bytes.slice();
          copy[i]! ^= bit;
          const result = verifyMessage(
            addrs[type],
            "tamper",
            prefix + base64.encode(copy),
            "mainnet",
          );
          // Flipping nSequence/nLockTime bits of a full signature's to_sign leaves it valid only when
          // the signature does not commit to them; every template here commits (SIGHASH_ALL).
          assert.equal(result.valid, false, `${type} ${format} byte ${i} bit ${bit}`);
        }
      }
    }
  }
});

Deno.test("verifyMessage() rejects a valid signature moved to another key's address", () => {
  const mine = addresses(KEY, "mainnet");
  const theirs = addresses(hex.decode("22".repeat(32)), "mainnet");
  for (const { type, formats } of ROUND_TRIPS) {
    for (const format of formats) {
      const sig = signMessage(KEY, mine[type], "m", { network: "mainnet", format });
      assert.equal(
        verifyMessage(theirs[type], "m", sig, "mainnet").valid,
        false,
        `${type} ${format}`,
      );
    }
  }
});

Deno.test("verifyMessage() rejects high-S, non-SIGHASH_ALL and non-DER variants of a valid P2WPKH signature", () => {
  const addrs = addresses(KEY, "mainnet");
  const good = signMessage(KEY, addrs.p2wpkh, "m", { network: "mainnet", format: "simple" });
  const witness = decodeStack(base64.decode(good.slice(3)));
  const [sigWithType, pubkey] = witness as [Uint8Array, Uint8Array];
  const der = sigWithType.subarray(0, -1);
  const parsed = secp256k1.Signature.fromBytes(der, "der");
  const highS = new secp256k1.Signature(parsed.r, secp256k1.Point.CURVE().n - parsed.s).toBytes(
    "der",
  );
  const variants: [string, Uint8Array][] = [
    ["high S", Uint8Array.of(...highS, 0x01)],
    ["SIGHASH_NONE", Uint8Array.of(...der, 0x02)],
    ["SIGHASH_ALL|ANYONECANPAY", Uint8Array.of(...der, 0x81)],
    ["trailing byte inside DER", Uint8Array.of(0x30, der[1]! + 1, ...der.subarray(2), 0x00, 0x01)],
    ["empty signature", new Uint8Array()],
  ];
  for (const [name, sig] of variants) {
    const text = "smp" + base64.encode(encodeWitness([sig, pubkey]));
    assert.equal(verifyMessage(addrs.p2wpkh, "m", text, "mainnet").valid, false, name);
  }
  const uncompressed = secp256k1.getPublicKey(KEY, false);
  const text = "smp" + base64.encode(encodeWitness([sigWithType, uncompressed]));
  assert.equal(verifyMessage(addrs.p2wpkh, "m", text, "mainnet").valid, false, "uncompressed key");
});

Deno.test("verifyMessage() rejects a full signature whose to_sign has an extra output or a second input", () => {
  const addrs = addresses(KEY, "mainnet");
  const sig = signMessage(KEY, addrs.p2wpkh, "m", { network: "mainnet", format: "full" });
  const tx = parseTx(base64.decode(sig.slice(3)));
  const extraOutput = {
    ...tx,
    outputs: [...tx.outputs, { amountSats: 0n, script: Uint8Array.of(0x6a) }],
  };
  const extraInput = {
    ...tx,
    inputs: [...tx.inputs, { ...tx.inputs[0]!, prevIndex: 1, witness: [Uint8Array.of(1)] }],
  };
  for (
    const [name, variant] of [["extra output", extraOutput], ["extra input", extraInput]] as const
  ) {
    const text = "ful" + base64.encode(serializeTx(variant, true));
    const result = verifyMessage(addrs.p2wpkh, "m", text, "mainnet");
    assert.equal(result.valid, false, name);
  }
});

Deno.test("verifyMessage() reports a modified proof of funds as invalid", () => {
  const v = generated.proof_of_funds[0]!;
  const sig = v.bip322_signatures[0]!;
  assert.equal(verifyMessage(v.address, v.message + "!", sig, "mainnet").valid, false, "message");
  const bytes = base64.decode(sig.slice(3));
  // Flip a byte inside the last input's final witness signature (near the end of the PSBT).
  bytes[bytes.length - 60]! ^= 0x01;
  assert.equal(
    verifyMessage(v.address, v.message, "pof" + base64.encode(bytes), "mainnet").valid,
    false,
  );
  // A full transaction is not a PSBT.
  const full = signMessage(KEY, addresses(KEY, "mainnet").p2pkh, v.message, {
    network: "mainnet",
    format: "full",
  });
  const result = verifyMessage(
    addresses(KEY, "mainnet").p2pkh,
    v.message,
    "pof" + full.slice(3),
    "mainnet",
  );
  assert.deepEqual(result.valid, false);
  assert.equal(result.format, "proof-of-funds");
});

Deno.test("verifyMessage() returns valid: false for an empty or oversized signature", () => {
  const addrs = addresses(KEY, "mainnet");
  const empty = verifyMessage(addrs.p2wpkh, "m", "", "mainnet");
  assert.deepEqual(empty.valid, false);
  assert.equal(empty.format, null);
  const huge = verifyMessage(
    addrs.p2wpkh,
    "m",
    "A".repeat(MAX_MESSAGE_SIGNATURE_LENGTH + 1),
    "mainnet",
  );
  assert.equal(huge.valid, false);
});

Deno.test("verifyMessage() never throws and never accepts random signatures (fast-check, 300 runs)", () => {
  const addrs = addresses(KEY, "mainnet");
  const allAddresses = [
    ...Object.values(addrs),
    "bc1qp0ahvfh83088w49k405szqgg4f3pptr7p2g06tdxfjcd40z4lh4q95lsz9",
  ];
  const signature = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => base64.encode(b)),
    fc.tuple(fc.constantFrom("smp", "ful", "pof", ""), fc.uint8Array({ maxLength: 300 }))
      .map(([p, b]) => p + base64.encode(b)),
    // Near-misses: a 65-byte legacy-shaped blob with a valid header.
    fc.tuple(fc.integer({ min: 27, max: 34 }), fc.uint8Array({ minLength: 64, maxLength: 64 }))
      .map(([h, b]) => base64.encode(Uint8Array.of(h, ...b))),
    // Near-misses: a two-item witness stack shaped like a P2WPKH satisfaction.
    fc.tuple(
      fc.uint8Array({ minLength: 71, maxLength: 72 }),
      fc.uint8Array({ minLength: 33, maxLength: 33 }),
    )
      .map(([s, k]) => "smp" + base64.encode(encodeWitness([s, k]))),
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...allAddresses),
      fc.string({ maxLength: 40 }),
      signature,
      (address, message, sig) => {
        const result = verifyMessage(address, message, sig, "mainnet");
        return result.valid === false;
      },
    ),
    { numRuns: 300, seed: 322 },
  );
});

// ---------------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------------

Deno.test("verifyMessage(), signMessage() and the hashes reject wrong argument types", () => {
  const addr = addresses(KEY, "mainnet").p2wpkh;
  const opts = { network: "mainnet", format: "simple" } as const;
  const cases: [string, () => unknown, typeof TypeError | typeof RangeError][] = [
    [
      "verify: address number",
      () => verifyMessage(1 as unknown as string, "m", "s", "mainnet"),
      TypeError,
    ],
    [
      "verify: message null",
      () => verifyMessage(addr, null as unknown as string, "s", "mainnet"),
      TypeError,
    ],
    [
      "verify: signature bytes",
      () => verifyMessage(addr, "m", new Uint8Array() as unknown as string, "mainnet"),
      TypeError,
    ],
    [
      "verify: network",
      () => verifyMessage(addr, "m", "s", "bitcoin" as BitcoinNetwork),
      TypeError,
    ],
    [
      "sign: key string",
      () => signMessage("00" as unknown as Uint8Array, addr, "m", opts),
      TypeError,
    ],
    ["sign: key 31 bytes", () => signMessage(new Uint8Array(31), addr, "m", opts), RangeError],
    ["sign: key zero", () => signMessage(new Uint8Array(32), addr, "m", opts), RangeError],
    [
      "sign: key ≥ n",
      () => signMessage(new Uint8Array(32).fill(0xff), addr, "m", opts),
      RangeError,
    ],
    ["sign: message number", () => signMessage(KEY, addr, 5 as unknown as string, opts), TypeError],
    [
      "sign: options null",
      () => signMessage(KEY, addr, "m", null as unknown as typeof opts),
      TypeError,
    ],
    [
      "sign: format",
      () =>
        signMessage(KEY, addr, "m", {
          network: "mainnet",
          format: "pof" as MessageSignatureFormat,
        }),
      TypeError,
    ],
    [
      "sign: prefixed",
      () => signMessage(KEY, addr, "m", { ...opts, prefixed: "yes" as unknown as boolean }),
      TypeError,
    ],
    [
      "sign: network",
      () => signMessage(KEY, addr, "m", { network: "main" as BitcoinNetwork, format: "simple" }),
      TypeError,
    ],
    ["hash: number", () => bip322MessageHash(7 as unknown as string), TypeError],
    ["legacy hash: array", () => legacyMessageHash([1] as unknown as string), TypeError],
  ];
  for (const [name, call, type] of cases) assert.throws(call, type, name);
});

Deno.test("isValidSignatureEncoding() follows BIP66 on edge encodings", () => {
  const der = (r: number[], s: number[]) =>
    Uint8Array.of(0x30, 4 + r.length + s.length, 0x02, r.length, ...r, 0x02, s.length, ...s, 0x01);
  assert.equal(
    isValidSignatureEncoding(der([0x01, ...Array(31).fill(1)], [0x01, ...Array(31).fill(1)])),
    true,
  );
  assert.equal(
    isValidSignatureEncoding(der([0x80, ...Array(31).fill(1)], [0x01])),
    false,
    "negative R",
  );
  assert.equal(isValidSignatureEncoding(der([0x00, 0x01], [0x01])), false, "padded R");
  assert.equal(isValidSignatureEncoding(der([], [0x01])), false, "empty R");
  assert.equal(isValidSignatureEncoding(new Uint8Array(8)), false, "too short");
  assert.equal(isValidSignatureEncoding(new Uint8Array(74)), false, "too long");
});

function decodeStack(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 1;
  for (let i = 0; i < bytes[0]!; i++) {
    const len = bytes[at]!;
    out.push(bytes.slice(at + 1, at + 1 + len));
    at += 1 + len;
  }
  return out;
}
