/**
 * What a signing request does, in the terms of the signing policy
 * (`policy.ts`): outputs and which of them stay with the key, the amount that
 * leaves it, fee and virtual size, sighash types, and hints that the PSBT was
 * made for another network. Pure, no I/O.
 *
 * Fee, vsize and network hints come from `inspectPsbt` (BIP174 UTXO fields,
 * BIP141 weights, worst-case sizes for unsigned inputs). Sighash types are read
 * from PSBT_IN_SIGHASH_TYPE and from the signatures already present
 * (PSBT_IN_PARTIAL_SIG ends with its hash type; a BIP341 signature is 64
 * bytes for SIGHASH_DEFAULT or 65 with the type last).
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import { assertNetwork } from "../../bitcoin/address.ts";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import { inspectPsbt } from "../../bitcoin/psbt_inspect.ts";
import type { PsbtInputFields, PsbtOutputFields } from "../../bitcoin/psbt_parse.ts";
import { psbtVersionOf } from "../../bitcoin/psbt_ops.ts";

/** One output of the request. */
export interface OutputFacts {
  /** Output index. */
  index: number;
  /** The output script, lowercase hex. */
  scriptPubKeyHex: string;
  /** Its address on the network, null for scripts without one (OP_RETURN, bare multisig). */
  address: string | null;
  /** Output value. */
  valueSats: bigint;
  /** The signer verified the output pays the signing key (derived pubkey matches the script). */
  own: boolean;
  /** The output carries a BIP32/taproot derivation naming the signing key (see `keyFingerprints`). */
  claimedChange: boolean;
}

/** One input of the request. */
export interface InputFacts {
  /** Input index. */
  index: number;
  /** Sighash types it asks for or was signed with, ascending, no repeats. */
  sighashTypes: number[];
}

/** The facts a signing policy is checked against. */
export interface RequestFacts {
  /** Outputs in order. */
  outputs: OutputFacts[];
  /** Inputs in order. */
  inputs: InputFacts[];
  /** Every sighash type present in any input, ascending, no repeats. */
  sighashTypes: number[];
  /** Inputs minus outputs; null when any input lacks UTXO data. */
  feeSats: bigint | null;
  /** Virtual size (exact when finalized, else worst-case estimate); null when unknown. */
  vsize: number | null;
  /** Sum of the outputs that are not `own`: what leaves the key's control. */
  amountSats: bigint;
  /** Client-safe messages for extended keys or BIP44 coin types of another network. */
  networkFindings: string[];
}

/** Context of {@linkcode requestFacts}. */
export interface FactsContext {
  /** The network the HSM serves. */
  network: BitcoinNetwork;
  /**
   * Whether output `outputIndex` pays the signing key: it carries a
   * derivation of the key whose derived public key produces the output script
   * (decided by the signer, which holds the key).
   */
  isOwnOutput: (outputIndex: number) => boolean;
  /**
   * BIP32 master fingerprints of the signing key's versions (uint32, as in
   * PSBT derivations); an output naming one claims to be change. When omitted,
   * any BIP32/taproot derivation on an output counts as such a claim (the
   * stricter reading: the `change` rule then also refuses outputs that carry
   * only other wallets' derivations).
   */
  keyFingerprints?: readonly number[];
  /** The PSBT's bytes when the caller holds them (`parsePsbt`); else `tx` is serialised. */
  psbtBytes?: Uint8Array;
}

/**
 * Read the facts of a signing request.
 *
 * @param tx the PSBT to sign (from `parsePsbt`)
 * @param ctx network, the signer's own-output test and the key's fingerprints
 * @returns the facts; amounts are bigint satoshis
 * @example
 * ```ts
 * const facts = requestFacts(parsed.tx, {
 *   network: "regtest",
 *   isOwnOutput: (i) => signer.outputIsOwn(parsed.tx, i),
 *   keyFingerprints: versions.map((v) => v.fingerprint),
 * });
 * facts.amountSats; // 150000n
 * ```
 */
export function requestFacts(tx: Transaction, ctx: FactsContext): RequestFacts {
  // Throws a TypeError for anything but a Transaction.
  const version = psbtVersionOf(tx);
  if (typeof ctx !== "object" || ctx === null) {
    throw new TypeError(`Invalid ctx: expected an object, got ${typeOf(ctx)}`);
  }
  assertNetwork(ctx.network);
  if (typeof ctx.isOwnOutput !== "function") {
    throw new TypeError(
      `Invalid ctx.isOwnOutput: expected a function, got ${typeOf(ctx.isOwnOutput)}`,
    );
  }
  const fps = ctx.keyFingerprints;
  if (fps !== undefined) {
    if (!Array.isArray(fps)) {
      throw new TypeError(`Invalid ctx.keyFingerprints: expected an array, got ${typeOf(fps)}`);
    }
    for (const fp of fps) {
      if (!Number.isInteger(fp) || fp < 0 || fp > 0xffffffff) {
        throw new RangeError(`Invalid ctx.keyFingerprints: expected uint32s, got ${String(fp)}`);
      }
    }
  }
  const names = fps === undefined ? () => true : (fp: number) => fps.includes(fp);
  const report = inspectPsbt(
    { tx, version, bytes: ctx.psbtBytes ?? tx.toPSBT(version), format: "base64" },
    // The signer verifies what it relies on; facts need only sizes and types.
    { network: ctx.network, verifySignatures: false },
  );

  const outputs: OutputFacts[] = report.outputs.map((o) => {
    const own = ctx.isOwnOutput(o.index);
    if (typeof own !== "boolean") {
      throw new TypeError(`Invalid ctx.isOwnOutput(${o.index}): expected a boolean`);
    }
    return {
      index: o.index,
      scriptPubKeyHex: o.scriptPubKeyHex,
      address: o.address,
      valueSats: o.valueSats,
      own,
      claimedChange: namesKey(tx.getOutput(o.index), names),
    };
  });
  const inputs: InputFacts[] = Array.from({ length: tx.inputsLength }, (_, index) => ({
    index,
    sighashTypes: inputSighashTypes(tx.getInput(index)),
  }));
  const all = new Set(inputs.flatMap((i) => i.sighashTypes));
  return {
    outputs,
    inputs,
    sighashTypes: [...all].sort((a, b) => a - b),
    feeSats: report.feeSats,
    vsize: report.vsize,
    amountSats: outputs.reduce((sum, o) => o.own ? sum : sum + o.valueSats, 0n),
    networkFindings: report.warnings.filter((w) => w.code === "network-mismatch").map((w) =>
      w.message
    ),
  };
}

function namesKey(out: PsbtOutputFields, names: (fingerprint: number) => boolean): boolean {
  return (out.bip32Derivation ?? []).some(([, d]) => names(d.fingerprint)) ||
    (out.tapBip32Derivation ?? []).some(([, d]) => names(d.der.fingerprint));
}

function inputSighashTypes(input: PsbtInputFields): number[] {
  const types = new Set<number>();
  if (input.sighashType !== undefined) types.add(input.sighashType);
  for (const [, sig] of input.partialSig ?? []) {
    if (sig.length > 0) types.add(sig[sig.length - 1]!);
  }
  if (input.tapKeySig !== undefined) types.add(taprootHashType(input.tapKeySig));
  for (const [, sig] of input.tapScriptSig ?? []) types.add(taprootHashType(sig));
  return [...types].sort((a, b) => a - b);
}

/** BIP341: a 64-byte signature is SIGHASH_DEFAULT, a 65-byte one ends with its hash type. */
function taprootHashType(sig: Uint8Array): number {
  return sig.length === 65 ? sig[64]! : 0x00;
}

/** Type of an argument, for TypeError messages. */
function typeOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}
