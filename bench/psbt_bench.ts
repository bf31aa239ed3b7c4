/**
 * PSBT decode and create throughput on one core, each beside a baseline in the
 * same run: the raw `@scure/btc-signer` work (`Transaction.fromPSBT`; building
 * and serialising the same transaction by hand). Target: the service path
 * keeps at least 70% of the baseline's throughput. No chain backend: the
 * backend's latency is measured by `net_client_bench.ts`.
 */
import { base64, hex } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { NETWORK, p2tr, p2wpkh, Transaction } from "@scure/btc-signer";
import { PsbtService } from "../src/bitcoin/psbt_service.ts";
import { parsePsbt, PSBT_TX_OPTS } from "../src/bitcoin/psbt_parse.ts";
import { createLogger } from "../src/obs/logger.ts";

const PRIV = [1, 2].map((n) => hex.decode(n.toString(16).padStart(64, "0")));
const PUB = PRIV.map((k) => secp256k1.getPublicKey(k, true));
const WPKH = p2wpkh(PUB[0]!, NETWORK);
const TR = p2tr(PUB[1]!.slice(1), undefined, NETWORK);
const DEST = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

const UTXOS = [
  { txid: "01".repeat(32), vout: 0, valueSats: 50_000n, scriptPubKeyHex: hex.encode(WPKH.script) },
  {
    txid: "02".repeat(32),
    vout: 1,
    valueSats: 70_000n,
    scriptPubKeyHex: hex.encode(TR.script),
    tapInternalKeyHex: hex.encode(PUB[1]!.slice(1)),
  },
];

const service = new PsbtService({
  backend: null,
  network: "mainnet",
  logger: createLogger({ level: "error", sink: () => {} }),
});
const command = {
  outputs: [{ address: DEST, amountSats: 60_000n }],
  funding: { utxos: UTXOS },
  fee: { satPerKvb: 2_000 },
  changeAddress: WPKH.address!,
  selection: "all" as const,
};
const created = await service.create(command);
const unsigned = created.psbtBase64;
const signedTx = Transaction.fromPSBT(base64.decode(unsigned), PSBT_TX_OPTS);
signedTx.signIdx(PRIV[0]!, 0);
signedTx.signIdx(PRIV[1]!, 1);
signedTx.finalize();
const signed = base64.encode(signedTx.toPSBT());

for (const [label, psbt] of [["unsigned", unsigned], ["finalized", signed]] as const) {
  const group = `decode ${label} 2-in 2-out`;
  Deno.bench({ name: "raw scure fromPSBT", group, baseline: true }, () => {
    Transaction.fromPSBT(base64.decode(psbt), PSBT_TX_OPTS);
  });
  Deno.bench({ name: "parsePsbt (strict)", group }, () => {
    parsePsbt(psbt, { network: "mainnet" });
  });
  Deno.bench({ name: "PsbtService.decode (report)", group }, async () => {
    await service.decode(psbt);
  });
  // Not held to the target: each signature check is elliptic-curve work the baseline never does.
  Deno.bench({ name: "PsbtService.decode verifySignatures", group }, async () => {
    await service.decode(psbt, true);
  });
}

Deno.bench({ name: "raw scure build + toPSBT", group: "create 2-in 2-out", baseline: true }, () => {
  const tx = new Transaction();
  tx.addInput({
    txid: UTXOS[0]!.txid,
    index: 0,
    witnessUtxo: { script: WPKH.script, amount: 50_000n },
    sequence: 0xfffffffd,
  });
  tx.addInput({
    txid: UTXOS[1]!.txid,
    index: 1,
    witnessUtxo: { script: TR.script, amount: 70_000n },
    tapInternalKey: PUB[1]!.slice(1),
    sequence: 0xfffffffd,
  });
  tx.addOutputAddress(DEST, 60_000n, NETWORK);
  tx.addOutputAddress(WPKH.address!, 59_650n, NETWORK);
  base64.encode(tx.toPSBT());
});

Deno.bench(
  { name: "PsbtService.create (selection, checks)", group: "create 2-in 2-out" },
  async () => {
    await service.create(command);
  },
);
