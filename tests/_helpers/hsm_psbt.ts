/**
 * PSBTs spending coins of an HSM key, built from its public data only (the
 * master xpub and fingerprint the HSM exports), as a watch-only wallet would.
 */
import { HDKey } from "@scure/bip32";
import { base64, hex } from "@scure/base";
import { NETWORK, p2pkh, p2sh, p2tr, p2wpkh, Transaction } from "@scure/btc-signer";

/** Script types a test input can have. */
/**
 * The HSM's public view (`GET /v1/keys/{id}`) of an active one-version BIP32
 * key with root `root`, as a test key holder answers it.
 */
export function hsmKeyView(root: HDKey, id: string, label: string) {
  return {
    id,
    label,
    kind: "bip32" as const,
    usage: "transactions" as const,
    network: "mainnet" as const,
    status: "active" as const,
    currentVersion: 1,
    policy: null,
    policyRevision: 0,
    createdAt: new Date(0).toISOString(),
    versions: [{
      version: 1,
      status: "active" as const,
      fingerprint: root.fingerprint.toString(16).padStart(8, "0"),
      publicKeyHex: hex.encode(root.publicKey!),
      xpub: root.publicExtendedKey,
      createdAt: new Date(0).toISOString(),
    }],
  };
}

export type InputKind = "p2wpkh" | "p2sh-p2wpkh" | "p2pkh" | "p2tr";

/** An unrelated mainnet destination. */
export const DEST = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

/** A PSBT and what it spends and pays. */
export interface KeyPsbt {
  psbt: string;
  inputsSats: bigint;
  paySats: bigint;
  changeSats: bigint;
  feeSats: bigint;
}

/**
 * Spend one coin of each `kind` (at m/0/i of the key), pay `paySats` to
 * {@linkcode DEST} (or `payTo`) and return change to m/1/0 with its derivation.
 *
 * @param xpub the key's master xpub
 * @param kinds input script types, in order
 * @param options amounts and destination
 */
export function keyPsbt(
  xpub: string,
  kinds: readonly InputKind[],
  options: {
    coinSats?: bigint;
    paySats?: bigint;
    feeSats?: bigint;
    payTo?: string;
    salt?: number;
  } = {},
): KeyPsbt {
  const root = HDKey.fromExtendedKey(xpub);
  const fingerprint = root.fingerprint;
  const coin = options.coinSats ?? 100_000n;
  const fee = options.feeSats ?? 2_000n;
  const pay = options.paySats ?? 50_000n;
  const tx = new Transaction({ allowUnknownOutputs: true });
  kinds.forEach((kind, i) => {
    const child = root.derive(`m/0/${i}`);
    const pub = child.publicKey!;
    const der = [pub, { fingerprint, path: [0, i] }] as [
      Uint8Array,
      { fingerprint: number; path: number[] },
    ];
    const txid = hex.encode(crypto.getRandomValues(new Uint8Array(32)));
    const base = { txid, index: i, sequence: 0xfffffffd };
    switch (kind) {
      case "p2wpkh":
        tx.addInput({
          ...base,
          witnessUtxo: { script: p2wpkh(pub, NETWORK).script, amount: coin },
          bip32Derivation: [der],
        });
        break;
      case "p2sh-p2wpkh": {
        const inner = p2wpkh(pub, NETWORK);
        tx.addInput({
          ...base,
          witnessUtxo: { script: p2sh(inner, NETWORK).script, amount: coin },
          redeemScript: inner.script,
          bip32Derivation: [der],
        });
        break;
      }
      case "p2pkh": {
        const prev = new Transaction();
        prev.addInput({ txid: hex.encode(crypto.getRandomValues(new Uint8Array(32))), index: 0 });
        for (let j = 0; j < i; j++) prev.addOutput({ script: p2wpkh(pub).script, amount: 1_000n });
        prev.addOutput({ script: p2pkh(pub, NETWORK).script, amount: coin });
        tx.addInput({
          txid: prev.id,
          index: i,
          sequence: 0xfffffffd,
          nonWitnessUtxo: prev.unsignedTx,
          bip32Derivation: [der],
        });
        break;
      }
      case "p2tr": {
        const xonly = pub.slice(1);
        tx.addInput({
          ...base,
          witnessUtxo: { script: p2tr(xonly, undefined, NETWORK).script, amount: coin },
          tapInternalKey: xonly,
          tapBip32Derivation: [[xonly, { hashes: [], der: { fingerprint, path: [0, i] } }]],
        });
        break;
      }
    }
  });
  const inputsSats = coin * BigInt(kinds.length);
  const changeSats = inputsSats - pay - fee;
  tx.addOutputAddress(options.payTo ?? DEST, pay, NETWORK);
  const change = root.derive("m/1/0").publicKey!;
  tx.addOutput({
    script: p2wpkh(change, NETWORK).script,
    amount: changeSats,
    bip32Derivation: [[change, { fingerprint, path: [1, 0] }]],
  });
  return { psbt: base64.encode(tx.toPSBT()), inputsSats, paySats: pay, changeSats, feeSats: fee };
}
