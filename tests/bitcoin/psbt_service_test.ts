import assert from "node:assert/strict";
import { hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { NETWORK, p2wpkh } from "@scure/btc-signer";
import { ScriptedChainBackend } from "../_fakes/chain_backend.ts";
import { PsbtService } from "../../src/bitcoin/psbt_service.ts";
import { createLogger } from "../../src/obs/logger.ts";
import { UnavailableError, UpstreamError, UpstreamTimeoutError } from "../../src/errors/mod.ts";

const PUB = secp256k1.getPublicKey(hex.decode("01".padStart(64, "0")), true);
const WPKH = p2wpkh(PUB, NETWORK);
const DEST = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

/** A backend whose estimate can fail on demand and counts calls. */
class CountingBackend extends ScriptedChainBackend {
  estimates = 0;
  failEstimate = false;
  override estimateFee(targetBlocks: number) {
    this.estimates++;
    if (this.failEstimate) return Promise.reject(new UpstreamTimeoutError("slow"));
    return super.estimateFee(targetBlocks);
  }
}

function setup() {
  const backend = new CountingBackend();
  let now = 1_000_000;
  const service = new PsbtService({
    backend,
    network: "mainnet",
    logger: createLogger({ sink: () => {} }),
    now: () => now,
  });
  return { backend, service, advance: (ms: number) => (now += ms) };
}

async function unsignedPsbt(service: PsbtService): Promise<string> {
  const created = await service.create({
    outputs: [{ address: DEST, amountSats: 10_000n }],
    funding: {
      utxos: [{
        txid: "ab".repeat(32),
        vout: 0,
        valueSats: 20_000n,
        scriptPubKeyHex: hex.encode(WPKH.script),
      }],
    },
    fee: { satPerKvb: 1_000 },
    changeAddress: WPKH.address!,
  });
  return created.psbtBase64;
}

Deno.test("decode reuses the reference estimate for 30 s, then refreshes it", async () => {
  const { backend, service, advance } = setup();
  const psbt = await unsignedPsbt(service);
  assert.equal((await service.decode(psbt)).currentFeeRateSatPerKvb, 2_000);
  backend.feeSatPerKvb = 5_000;
  advance(29_000);
  assert.equal((await service.decode(psbt)).currentFeeRateSatPerKvb, 2_000);
  assert.equal(backend.estimates, 1);
  advance(2_000);
  assert.equal((await service.decode(psbt)).currentFeeRateSatPerKvb, 5_000);
  assert.equal(backend.estimates, 2);
});

Deno.test("decode still answers when the estimate fails: last known, else none", async () => {
  const { backend, service, advance } = setup();
  const psbt = await unsignedPsbt(service);
  backend.failEstimate = true;
  assert.equal((await service.decode(psbt)).currentFeeRateSatPerKvb, null);
  backend.failEstimate = false;
  await service.decode(psbt);
  advance(60_000);
  backend.failEstimate = true;
  assert.equal((await service.decode(psbt)).currentFeeRateSatPerKvb, 2_000);
});

Deno.test("a confTarget estimate below the relay floor is raised to 1 sat/vB", async () => {
  const { backend, service } = setup();
  backend.feeSatPerKvb = 250;
  const created = await service.create({
    outputs: [{ address: DEST, amountSats: 10_000n }],
    funding: {
      utxos: [{
        txid: "ab".repeat(32),
        vout: 0,
        valueSats: 20_000n,
        scriptPubKeyHex: hex.encode(WPKH.script),
      }],
    },
    fee: { confTarget: 144 },
    changeAddress: WPKH.address!,
  });
  assert.equal(created.targetFeeRateSatPerKvb, 1_000);
  assert.equal(created.feeRateSource, "estimate");
});

Deno.test("address funding: a backend coin with another script is an upstream error", async () => {
  const { backend, service } = setup();
  backend.utxos.set(WPKH.address!, [{
    txid: "cd".repeat(32),
    vout: 1,
    valueSats: 30_000n,
    confirmations: 2,
    scriptPubKeyHex: "0014" + "00".repeat(20),
  }]);
  await assert.rejects(
    () =>
      service.create({
        outputs: [{ address: DEST, amountSats: 10_000n }],
        funding: { addresses: [WPKH.address!] },
        fee: { satPerKvb: 1_000 },
        changeAddress: WPKH.address!,
      }),
    UpstreamError,
  );
  backend.utxos.clear();
  await assert.rejects(
    () =>
      service.create({
        outputs: [{ address: DEST, amountSats: 10_000n }],
        funding: { addresses: [WPKH.address!] },
        fee: { satPerKvb: 1_000 },
        changeAddress: WPKH.address!,
      }),
    /no spendable coins/,
  );
});

Deno.test("without a backend, address funding is unavailable", async () => {
  const service = new PsbtService({
    backend: null,
    network: "mainnet",
    logger: createLogger({ sink: () => {} }),
  });
  await assert.rejects(
    () =>
      service.create({
        outputs: [{ address: DEST, amountSats: 10_000n }],
        funding: { addresses: [WPKH.address!] },
        fee: { satPerKvb: 1_000 },
        changeAddress: WPKH.address!,
      }),
    UnavailableError,
  );
  assert.equal((await service.decode(await unsignedPsbt(service))).currentFeeRateSatPerKvb, null);
});
