/**
 * Builders for the PSBTs the signing tests sign: previous transactions paying
 * a key, and spending PSBTs with the BIP174/BIP371 fields an Updater adds.
 */
import { p2pkh, p2sh, p2tr, p2wpkh, RawTx, Transaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { PSBT_TX_OPTS } from "../../../src/bitcoin/psbt_parse.ts";
import type { SigningKey } from "../../../src/hsm_server/signing/key_material.ts";
import { HARDENED_OFFSET } from "../../../src/bitcoin/derivation_path.ts";

/** Hardened index `i'`. */
export const h = (i: number): number => HARDENED_OFFSET + i;

/** Input script types the builders know. */
export type SpendType = "p2wpkh" | "p2sh-p2wpkh" | "p2pkh" | "p2tr";

/** A coin paying `key` at `path` and the PSBT input fields that spend it. */
export interface Coin {
  type: SpendType;
  path: number[];
  script: Uint8Array;
  amount: bigint;
  input: Parameters<Transaction["addInput"]>[0];
}

let counter = 0;

/**
 * A previous transaction (unsigned serialisation is enough: only its txid and
 * outputs matter) paying `amount` to `script` at output 0.
 */
export function previousTx(script: Uint8Array, amount: bigint): { raw: Uint8Array; txid: string } {
  counter++;
  const seed = new Uint8Array(32);
  new DataView(seed.buffer).setUint32(0, counter);
  const raw = RawTx.encode({
    version: 2,
    segwitFlag: false,
    inputs: [{ txid: seed, index: 0, finalScriptSig: new Uint8Array(0), sequence: 0xffffffff }],
    outputs: [{ amount, script }],
    witnesses: [],
    lockTime: 0,
  });
  const txid = Transaction.fromRaw(raw, { allowUnknownInputs: true }).id;
  return { raw, txid };
}

/**
 * A coin of `type` paying the key at `path`, with the derivation fields of a
 * BIP174/BIP371 Updater (`bip32Derivation` or `tapBip32Derivation` + internal key).
 *
 * @param options `derivation: false` leaves the derivation fields out
 */
export function coinFor(
  key: SigningKey,
  path: number[],
  type: SpendType,
  amount = 100_000n,
  options: { derivation?: boolean } = {},
): Coin {
  const pub = key.publicKeyAt(path);
  const der = { fingerprint: key.fingerprint, path };
  const withDer = options.derivation !== false;
  const xOnly = pub.subarray(1);
  // The spent script, and the fields beyond the UTXO that an Updater adds for this type.
  const { script, fields } = {
    "p2wpkh": () => ({ script: p2wpkh(pub).script, fields: {} }),
    "p2sh-p2wpkh": () => {
      const pay = p2sh(p2wpkh(pub));
      return { script: pay.script, fields: { redeemScript: pay.redeemScript! } };
    },
    "p2pkh": () => ({ script: p2pkh(pub).script, fields: {} }),
    "p2tr": () => ({ script: p2tr(xOnly).script, fields: { tapInternalKey: xOnly } }),
  }[type]();
  const prev = previousTx(script, amount);
  // BIP174: legacy inputs carry the whole previous transaction, segwit ones the spent output.
  const utxo = type === "p2pkh"
    ? { nonWitnessUtxo: prev.raw }
    : { witnessUtxo: { script, amount } };
  const derivation = !withDer
    ? {}
    : type === "p2tr"
    ? { tapBip32Derivation: [[xOnly, { hashes: [], der }]] as [Uint8Array, TapDer][] }
    : { bip32Derivation: [[pub, der]] as [Uint8Array, typeof der][] };
  return {
    type,
    path,
    script,
    amount,
    input: { txid: prev.txid, index: 0, ...utxo, ...fields, ...derivation },
  };
}

type TapDer = { hashes: Uint8Array[]; der: { fingerprint: number; path: number[] } };

/** Where the test transactions pay: a P2WPKH output of a fixed key hash. */
export const PAYEE_SCRIPT: Uint8Array = hex.decode(
  "0014d85c2b71d0060b09c9886aeb815e50991dda124d",
);

/**
 * An unsigned PSBT spending `coins` to one output (inputs minus 1,000 sat per input fee), with
 * the options the edge parses PSBTs with (so inconsistent inputs reach the signer, as they would).
 *
 * @param extraOutputs more outputs to add (amount taken from the payee)
 */
export function spendPsbt(coins: readonly Coin[], extraOutputs = 0): Transaction {
  const tx = new Transaction({ ...PSBT_TX_OPTS, version: 2 });
  let total = 0n;
  for (const c of coins) {
    tx.addInput({ ...c.input, sequence: 0xfffffffd });
    total += c.amount;
  }
  const fee = 1_000n * BigInt(coins.length);
  const each = 10_000n;
  tx.addOutput({ script: PAYEE_SCRIPT, amount: total - fee - each * BigInt(extraOutputs) });
  for (let i = 0; i < extraOutputs; i++) tx.addOutput({ script: PAYEE_SCRIPT, amount: each });
  return tx;
}

/** Serialised PSBT bytes as hex, to compare before/after. */
export function psbtHex(tx: Transaction): string {
  return hex.encode(tx.toPSBT());
}
