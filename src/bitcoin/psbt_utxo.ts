/**
 * Checks a caller-supplied UTXO and turns it into what the PSBT Creator and
 * Updater need: the size its input will have once signed and the BIP174 input
 * fields a signer requires.
 *
 * Specs: BIP174 §"Updater" / §"Signer" (non-witness inputs need the full
 * previous transaction, PSBT_IN_NON_WITNESS_UTXO; segwit inputs need
 * PSBT_IN_WITNESS_UTXO; redeem/witness scripts must hash to the scriptPubKey),
 * BIP141 (P2WPKH/P2WSH programs, nested in P2SH), BIP371/BIP86 (taproot
 * internal key, key-path tweak with an empty merkle root).
 * https://github.com/bitcoin/bips/blob/master/bip-0174.mediawiki#updater
 *
 * @module
 */
import { OutScript, Transaction, utils } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { MAX_MONEY_SATS } from "./amount.ts";
import { type InputSpend, type InputWeight, inputWeight } from "./tx_size.ts";
import { multisigThreshold } from "./script_type.ts";
import { bytesEqual, hash160, PREVIOUS_TX_OPTS } from "./_util.ts";
import { ValidationError } from "../errors/app_error.ts";

/** A coin the caller offers to spend. */
export interface UtxoInput {
  /** Previous transaction id, 64 hex digits as explorers show it. */
  txid: string;
  /** Output index in that transaction. */
  vout: number;
  /** Value in satoshis. */
  valueSats: bigint;
  /** The output's scriptPubKey, hex. */
  scriptPubKeyHex: string;
  /** Confirmations; omitted when unknown. */
  confirmations?: number;
  /** The full previous transaction, hex; required for legacy (non-segwit) inputs. */
  nonWitnessUtxoHex?: string;
  /** P2SH redeem script, hex; required for P2SH inputs. */
  redeemScriptHex?: string;
  /** P2WSH witness script, hex; required for P2WSH and P2SH-P2WSH inputs. */
  witnessScriptHex?: string;
  /** Taproot internal key (32 bytes x-only), hex; optional, key path only. */
  tapInternalKeyHex?: string;
}

/** A checked UTXO with its PSBT input fields. */
export interface PreparedUtxo {
  /** `txid:vout`. */
  id: string;
  txid: string;
  vout: number;
  valueSats: bigint;
  confirmations: number | null;
  /** Size of the signed input. */
  weight: InputWeight;
  /** Fields for `Transaction.addInput`, sequence excluded. */
  psbtInput: {
    txid: string;
    index: number;
    witnessUtxo?: { script: Uint8Array; amount: bigint };
    nonWitnessUtxo?: Uint8Array;
    redeemScript?: Uint8Array;
    witnessScript?: Uint8Array;
    tapInternalKey?: Uint8Array;
  };
}

const TXID_RE = /^[0-9a-fA-F]{64}$/;

function invalid(path: string, message: string): ValidationError {
  return new ValidationError(`Invalid UTXO: ${path}: ${message}`, {
    status: 422,
    issues: [{ path, message }],
  });
}

function decodeHex(value: unknown, path: string): Uint8Array {
  if (typeof value !== "string") {
    throw new TypeError(`Invalid ${path}: expected a string, got ${typeof value}`);
  }
  if (value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) {
    throw invalid(path, "not even-length hex");
  }
  return hex.decode(value.toLowerCase());
}

function optionalHex(value: unknown, path: string): Uint8Array | undefined {
  return value === undefined ? undefined : decodeHex(value, path);
}

/** Resolve how a P2WSH witness script is spent; only multisig sizes can be estimated. */
function witnessScriptSpend(
  ws: Uint8Array | undefined,
  program: Uint8Array,
  path: string,
  kind: "p2wsh-multisig" | "p2sh-p2wsh-multisig",
): InputSpend {
  if (ws === undefined) {
    throw invalid(`${path}.witnessScriptHex`, "required to spend a P2WSH output");
  }
  // BIP141: the v0 32-byte program is SHA256(witnessScript).
  if (!bytesEqual(sha256(ws), program)) {
    throw invalid(`${path}.witnessScriptHex`, "does not hash to the P2WSH program");
  }
  const m = multisigThreshold(ws);
  if (m === null) {
    throw invalid(
      `${path}.witnessScriptHex`,
      "only multisig witness scripts are supported (size cannot be estimated)",
    );
  }
  return { kind, m, scriptBytes: ws.length };
}

/**
 * Check `utxo` and derive its input size and PSBT fields.
 *
 * @param utxo the coin as the caller described it
 * @param path where it sits in the request, for error paths (e.g. `utxos[2]`)
 * @throws ValidationError (422) when the data is inconsistent or the script type unsupported
 */
export function prepareUtxo(utxo: UtxoInput, path: string): PreparedUtxo {
  if (typeof utxo !== "object" || utxo === null) {
    throw new TypeError(`Invalid ${path}: expected an object`);
  }
  if (typeof utxo.txid !== "string") throw new TypeError(`Invalid ${path}.txid: expected a string`);
  if (!TXID_RE.test(utxo.txid)) throw invalid(`${path}.txid`, "expected 64 hex digits");
  if (typeof utxo.vout !== "number") throw new TypeError(`Invalid ${path}.vout: expected a number`);
  if (!Number.isSafeInteger(utxo.vout) || utxo.vout < 0 || utxo.vout > 0xffffffff) {
    throw invalid(`${path}.vout`, "expected an integer in 0..4294967295");
  }
  if (typeof utxo.valueSats !== "bigint") {
    throw new TypeError(`Invalid ${path}.valueSats: expected a bigint`);
  }
  if (utxo.valueSats <= 0n || utxo.valueSats > MAX_MONEY_SATS) {
    throw invalid(`${path}.valueSats`, "must be between 1 sat and 21,000,000 BTC");
  }
  if (utxo.confirmations !== undefined) {
    if (typeof utxo.confirmations !== "number") {
      throw new TypeError(`Invalid ${path}.confirmations: expected a number`);
    }
    if (!Number.isSafeInteger(utxo.confirmations) || utxo.confirmations < 0) {
      throw invalid(`${path}.confirmations`, "expected a non-negative integer");
    }
  }
  const txid = utxo.txid.toLowerCase();
  const script = decodeHex(utxo.scriptPubKeyHex, `${path}.scriptPubKeyHex`);
  const prevTx = optionalHex(utxo.nonWitnessUtxoHex, `${path}.nonWitnessUtxoHex`);
  const redeemScript = optionalHex(utxo.redeemScriptHex, `${path}.redeemScriptHex`);
  const witnessScript = optionalHex(utxo.witnessScriptHex, `${path}.witnessScriptHex`);
  const tapInternalKey = optionalHex(utxo.tapInternalKeyHex, `${path}.tapInternalKeyHex`);

  if (prevTx !== undefined) checkPreviousTx(prevTx, txid, utxo.vout, utxo.valueSats, script, path);

  let decoded;
  try {
    decoded = OutScript.decode(script);
  } catch {
    throw invalid(`${path}.scriptPubKeyHex`, "not a valid script");
  }
  let spend: InputSpend;
  let segwit = true;
  switch (decoded.type) {
    case "pkh":
      spend = { kind: "p2pkh" };
      segwit = false;
      break;
    case "wpkh":
      spend = { kind: "p2wpkh" };
      break;
    case "wsh":
      spend = witnessScriptSpend(witnessScript, decoded.hash, path, "p2wsh-multisig");
      break;
    case "tr":
      spend = { kind: "p2tr-keypath" };
      if (tapInternalKey !== undefined) checkInternalKey(tapInternalKey, decoded.pubkey, path);
      break;
    case "sh": {
      if (redeemScript === undefined) {
        throw invalid(`${path}.redeemScriptHex`, "required to spend a P2SH output");
      }
      // BIP16: the 20-byte P2SH hash is HASH160(redeemScript).
      if (!bytesEqual(hash160(redeemScript), decoded.hash)) {
        throw invalid(`${path}.redeemScriptHex`, "does not hash to the P2SH scriptPubKey");
      }
      let inner;
      try {
        inner = OutScript.decode(redeemScript);
      } catch {
        throw invalid(`${path}.redeemScriptHex`, "not a valid script");
      }
      if (inner.type === "wpkh") spend = { kind: "p2sh-p2wpkh" };
      else if (inner.type === "wsh") {
        spend = witnessScriptSpend(witnessScript, inner.hash, path, "p2sh-p2wsh-multisig");
      } else if (inner.type === "ms") {
        spend = { kind: "p2sh-multisig", m: inner.m, scriptBytes: redeemScript.length };
        segwit = false;
      } else {
        throw invalid(
          `${path}.redeemScriptHex`,
          "only P2WPKH, P2WSH and multisig redeem scripts are supported",
        );
      }
      break;
    }
    default:
      throw invalid(
        `${path}.scriptPubKeyHex`,
        "unsupported input type (supported: P2PKH, P2SH, P2WPKH, P2WSH, P2TR)",
      );
  }
  if (
    witnessScript !== undefined && spend.kind !== "p2wsh-multisig" &&
    spend.kind !== "p2sh-p2wsh-multisig"
  ) {
    throw invalid(`${path}.witnessScriptHex`, "given for an output that is not P2WSH");
  }
  if (redeemScript !== undefined && decoded.type !== "sh") {
    throw invalid(`${path}.redeemScriptHex`, "given for an output that is not P2SH");
  }
  if (tapInternalKey !== undefined && decoded.type !== "tr") {
    throw invalid(`${path}.tapInternalKeyHex`, "given for an output that is not P2TR");
  }
  // BIP174 Signer: a non-witness input is signed over the whole previous
  // transaction, and a witness UTXO must not be offered for it.
  if (!segwit && prevTx === undefined) {
    throw invalid(
      `${path}.nonWitnessUtxoHex`,
      "the previous transaction is required for a non-segwit input",
    );
  }
  const psbtInput: PreparedUtxo["psbtInput"] = { txid, index: utxo.vout };
  if (segwit) psbtInput.witnessUtxo = { script, amount: utxo.valueSats };
  if (prevTx !== undefined) psbtInput.nonWitnessUtxo = prevTx;
  if (redeemScript !== undefined) psbtInput.redeemScript = redeemScript;
  if (witnessScript !== undefined) psbtInput.witnessScript = witnessScript;
  if (tapInternalKey !== undefined) psbtInput.tapInternalKey = tapInternalKey;
  return {
    id: `${txid}:${utxo.vout}`,
    txid,
    vout: utxo.vout,
    valueSats: utxo.valueSats,
    confirmations: utxo.confirmations ?? null,
    weight: inputWeight(spend),
    psbtInput,
  };
}

/** BIP174: the non-witness UTXO must hash to the prevout txid and hold the stated output. */
function checkPreviousTx(
  raw: Uint8Array,
  txid: string,
  vout: number,
  valueSats: bigint,
  script: Uint8Array,
  path: string,
): void {
  let tx;
  try {
    tx = Transaction.fromRaw(raw, PREVIOUS_TX_OPTS);
  } catch {
    throw invalid(`${path}.nonWitnessUtxoHex`, "not a valid transaction");
  }
  if (tx.id !== txid) {
    throw invalid(`${path}.nonWitnessUtxoHex`, "its txid does not match the UTXO txid");
  }
  if (vout >= tx.outputsLength) {
    throw invalid(`${path}.vout`, "not an output of the previous transaction");
  }
  const out = tx.getOutput(vout);
  if (out.amount !== valueSats) {
    throw invalid(`${path}.valueSats`, "differs from the amount in the previous transaction");
  }
  if (out.script === undefined || !bytesEqual(out.script, script)) {
    throw invalid(`${path}.scriptPubKeyHex`, "differs from the script in the previous transaction");
  }
}

/** BIP86/BIP341: a key-path-only output key is the internal key tweaked with an empty merkle root. */
function checkInternalKey(internal: Uint8Array, outputKey: Uint8Array, path: string): void {
  if (internal.length !== 32) {
    throw invalid(`${path}.tapInternalKeyHex`, "expected a 32-byte x-only key");
  }
  let tweaked;
  try {
    [tweaked] = utils.taprootTweakPubkey(internal, new Uint8Array(0));
  } catch {
    throw invalid(`${path}.tapInternalKeyHex`, "not a valid x-only public key");
  }
  if (!bytesEqual(tweaked, outputKey)) {
    throw invalid(
      `${path}.tapInternalKeyHex`,
      "does not tweak to the output key (only key-path outputs without a script tree are supported)",
    );
  }
}
