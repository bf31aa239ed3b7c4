/**
 * BOLT11 decoding cost beside its unavoidable core, in the same run: the
 * baseline is the bare secp256k1 public-key recovery of the same signature
 * over the same (precomputed) message hash. The ratio shows what bech32,
 * field parsing, hashing and checks add on top of the curve work. The second
 * invoice carries a route hint, whose node key the decoder also validates.
 *
 * Run: deno bench --frozen --allow-read=. bench/bolt11_bench.ts
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { decodeBolt11 } from "../src/layer2/lightning/bolt11.ts";

interface Vector {
  invoice: string;
  signature_hex: string;
  recovery_flag: number;
  signing_hash_hex: string;
  payee_pubkey: string;
}

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../tests/vectors/bolt11/vectors.json", import.meta.url)),
) as { valid: Vector[] };

const hexToBytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));

// Example 0: any-amount donation invoice, payee recovered from the signature.
const donation = vectors.valid[0]!;
// Example 10: pico-BTC amount, long description, expiry, cltv and a route hint.
const routed = vectors.valid[10]!;
const now = new Date(0);

// noble's "recovered" format is recovery id ‖ r ‖ s.
const recoveredSig = Uint8Array.of(donation.recovery_flag, ...hexToBytes(donation.signature_hex));
const msgHash = hexToBytes(donation.signing_hash_hex);

// Fail loudly before timing anything if the two paths disagree.
const check = decodeBolt11(donation.invoice, { now });
const raw = secp256k1.recoverPublicKey(recoveredSig, msgHash, { prehash: false });
if (
  check.payeePubkey !== donation.payee_pubkey ||
  secp256k1.Point.fromBytes(raw).toHex(true) !== check.payeePubkey
) {
  throw new Error("bench setup: decoder and raw recovery disagree on the payee");
}

Deno.bench({
  name: "raw signature recovery",
  group: "bolt11",
  baseline: true,
  fn() {
    secp256k1.recoverPublicKey(recoveredSig, msgHash, { prehash: false });
  },
});

Deno.bench({
  name: "decode+verify BOLT11",
  group: "bolt11",
  fn() {
    decodeBolt11(donation.invoice, { now });
  },
});

Deno.bench({
  name: "decode+verify BOLT11 (route hint)",
  group: "bolt11",
  fn() {
    decodeBolt11(routed.invoice, { now });
  },
});
