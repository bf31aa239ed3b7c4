/**
 * The PSBT lifecycle behind `/v1/psbt`: create (coins given, or fetched from
 * the chain backend for addresses), decode with the current fee estimate as
 * the fat-finger reference, combine, finalize and extract. The PSBT logic is
 * the pure modules next to this one; this file adds the chain I/O.
 *
 * @module
 */
import { base64, hex } from "@scure/base";
import { Transaction } from "@scure/btc-signer";
import type { ChainBackend, Utxo } from "../chain/backend.ts";
import { UnavailableError, UpstreamError, ValidationError } from "../errors/mod.ts";
import type { Logger } from "../obs/logger.ts";
import type { BitcoinNetwork } from "./network.ts";
import type { DescriptorScript } from "./descriptor.ts";
import { type DescriptorFunding, fundingScripts } from "./_funding_scripts.ts";
import {
  type CreatedPsbt,
  createPsbt,
  type CreatePsbtRequest,
  MIN_FEE_RATE_SAT_PER_KVB,
} from "./psbt_create.ts";
import type { UtxoInput } from "./psbt_utxo.ts";
import { parsePsbt, PSBT_TX_OPTS } from "./psbt_parse.ts";
import { inspectPsbt, type PsbtReport } from "./psbt_inspect.ts";
import {
  combinePsbts,
  type ExtractedTransaction,
  extractTransaction,
  finalizePsbt,
  type PsbtResult,
} from "./psbt_ops.ts";

export { type DescriptorFunding, MAX_FUNDING_SCRIPTS } from "./_funding_scripts.ts";
/** Most coins considered for one PSBT. */
export const MAX_FUNDING_UTXOS = 500;
/** Confirmation target of the reference estimate used by decode's fat-finger guard. */
export const REFERENCE_CONF_TARGET = 6;
/** Backend lookups in flight at once while scanning funding scripts. */
const LOOKUP_CONCURRENCY = 4;
/** How long a reference fee estimate is reused: decode must not cost a backend call each time. */
const ESTIMATE_TTL_MS = 30_000;

/** How the fee is set: an explicit rate, or the backend's estimate for a target. */
export type FeeChoice = { satPerKvb: number } | { confTarget: number };

/** Where the coins come from: given, or fetched for addresses and descriptors. */
export type FundingSource =
  | { utxos: readonly UtxoInput[] }
  | { addresses?: readonly string[]; descriptors?: readonly DescriptorFunding[] };

/** A `POST /v1/psbt` request, amounts already parsed: `createPsbt`'s, with funding and fee to resolve. */
export interface CreatePsbtCommand extends Omit<CreatePsbtRequest, "utxos" | "feeRateSatPerKvb"> {
  funding: FundingSource;
  fee: FeeChoice;
}

/** A created PSBT and where its fee rate came from. */
export interface CreatePsbtOutcome extends CreatedPsbt {
  /** The fee rate asked for (explicit, or the estimate for `confTarget`). */
  targetFeeRateSatPerKvb: number;
  /** `"explicit"` or `"estimate"`. */
  feeRateSource: "explicit" | "estimate";
  /** Confirmation target the estimate is for (the backend may answer a nearby one). */
  estimateTargetBlocks: number | null;
}

/** A decode report with the fee estimate it was judged against. */
export interface DecodeOutcome extends PsbtReport {
  /** The reference estimate used by the fat-finger guard, null when unavailable. */
  currentFeeRateSatPerKvb: number | null;
}

/** A finalized PSBT and, when every input is final, the network transaction. */
export interface FinalizeOutcome {
  psbt: PsbtResult;
  transaction: ExtractedTransaction | null;
}

/** Dependencies of {@linkcode PsbtService}. */
export interface PsbtServiceOptions {
  /** `null` when no chain backend is configured: explicit coins and rates still work. */
  backend: ChainBackend | null;
  network: BitcoinNetwork;
  logger: Logger;
  /** Clock for the estimate cache; tests pass their own. */
  now?: () => number;
}

/** Create, decode, combine and finalize PSBTs for the configured network. */
export class PsbtService {
  readonly #backend: ChainBackend | null;
  readonly #network: BitcoinNetwork;
  readonly #logger: Logger;
  readonly #now: () => number;
  #estimate: { satPerKvb: number; at: number } | null = null;

  /** @param options chain backend, network and logger */
  constructor(options: PsbtServiceOptions) {
    this.#backend = options.backend;
    this.#network = options.network;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Build an unsigned PSBT.
   *
   * @param command outputs, funding, fee choice and options
   * @throws ValidationError 422 for bad addresses, dust, insufficient funds, unsupported coins
   * @throws UnavailableError 503 when the backend is needed but absent or unreachable
   * @example
   * ```ts
   * const created = await psbts.create({
   *   outputs: [{ address: "bc1q…", amountSats: 50_000n }],
   *   funding: { addresses: ["bc1q…"] },
   *   fee: { confTarget: 3 },
   *   changeAddress: "bc1q…",
   * });
   * ```
   */
  async create(command: CreatePsbtCommand): Promise<CreatePsbtOutcome> {
    const fee = await this.#feeRate(command.fee);
    const coins = "utxos" in command.funding
      ? command.funding.utxos.map((u) => ({ ...u, signerFields: {} }))
      : await this.#coinsOf(
        fundingScripts(
          command.funding.addresses ?? [],
          command.funding.descriptors ?? [],
          this.#network,
        ),
      );
    const created = createPsbt({
      outputs: command.outputs,
      utxos: coins.map(({ signerFields: _, ...utxo }) => utxo),
      feeRateSatPerKvb: fee.satPerKvb,
      changeAddress: command.changeAddress,
      ...definedOnly({
        rbf: command.rbf,
        locktime: command.locktime,
        psbtVersion: command.psbtVersion,
        selection: command.selection,
        minConfirmations: command.minConfirmations,
      }),
    }, { network: this.#network });
    return {
      ...created,
      psbtBase64: addSignerFields(created, coins),
      targetFeeRateSatPerKvb: fee.satPerKvb,
      feeRateSource: fee.source,
      estimateTargetBlocks: fee.targetBlocks,
    };
  }

  /**
   * Describe a PSBT; network mismatches are warnings here, not errors.
   *
   * @param psbt base64 or hex
   * @param verifySignatures also check every signature (about a millisecond
   *   each: opt-in, so a large PSBT cannot make a cheap decode expensive)
   * @throws ValidationError 422 when the PSBT is malformed
   */
  async decode(psbt: string, verifySignatures = false): Promise<DecodeOutcome> {
    const parsed = parsePsbt(psbt, { network: this.#network });
    const current = await this.#referenceEstimate();
    const report = inspectPsbt(parsed, {
      network: this.#network,
      verifySignatures,
      ...(current === null ? {} : { currentFeeRateSatPerKvb: current }),
    });
    return { ...report, currentFeeRateSatPerKvb: current };
  }

  /**
   * BIP174 Combiner over PSBTs of one unsigned transaction.
   *
   * @param psbts two or more, base64 or hex
   * @throws ValidationError 422 when malformed, for another network or another transaction
   */
  combine(psbts: readonly string[]): PsbtResult {
    const parsed = psbts.map((p, i) => {
      try {
        return parsePsbt(p, { network: this.#network, rejectNetworkMismatch: true }).tx;
      } catch (err) {
        throw withPsbtIndex(err, i);
      }
    });
    return combinePsbts(parsed);
  }

  /**
   * Finalize every input and, when asked and complete, extract the transaction.
   *
   * @param psbt base64 or hex
   * @param extract also return the network transaction
   * @throws ValidationError 422 naming the input that cannot be finalized
   */
  finalize(psbt: string, extract: boolean): FinalizeOutcome {
    const parsed = parsePsbt(psbt, { network: this.#network, rejectNetworkMismatch: true });
    const finalized = finalizePsbt(parsed.tx);
    return {
      psbt: finalized,
      transaction: extract ? extractTransaction(finalized.tx) : null,
    };
  }

  async #feeRate(
    choice: FeeChoice,
  ): Promise<{ satPerKvb: number; source: "explicit" | "estimate"; targetBlocks: number | null }> {
    if ("satPerKvb" in choice) {
      return { satPerKvb: choice.satPerKvb, source: "explicit", targetBlocks: null };
    }
    const estimate = await this.#requireBackend("a confirmation target").estimateFee(
      choice.confTarget,
    );
    // Estimators can answer below the relay floor on an empty mempool; such a
    // transaction would not propagate.
    return {
      satPerKvb: Math.max(estimate.satPerKvb, MIN_FEE_RATE_SAT_PER_KVB),
      source: "estimate",
      targetBlocks: estimate.targetBlocks,
    };
  }

  /** The coins paying `scripts`, each with the PSBT fields its signer needs. */
  async #coinsOf(scripts: readonly DescriptorScript[]): Promise<FundingCoin[]> {
    const backend = this.#requireBackend("funding from addresses or descriptors");
    const perScript = backend.getUtxosOfScripts !== undefined
      ? await backend.getUtxosOfScripts(scripts)
      : await mapLimit(scripts, LOOKUP_CONCURRENCY, (s) => backend.getAddressUtxos(s.address));
    const coins: FundingCoin[] = [];
    for (const [i, utxos] of perScript.entries()) {
      for (const u of utxos) coins.push(await this.#toCoin(u, scripts[i]!));
    }
    if (coins.length === 0) throw reject("fundFrom", "no spendable coins found");
    if (coins.length > MAX_FUNDING_UTXOS) {
      // More coins than a sane transaction spends: the caller should pick them.
      throw reject(
        "fundFrom",
        `${coins.length} coins found; at most ${MAX_FUNDING_UTXOS} are considered, pass "utxos" to choose`,
      );
    }
    return coins;
  }

  async #toCoin(u: Utxo, script: DescriptorScript): Promise<FundingCoin> {
    if (u.scriptPubKeyHex !== undefined && u.scriptPubKeyHex !== script.scriptPubKeyHex) {
      // The backend contradicts itself: a bad upstream answer, not a bad request.
      throw new UpstreamError(
        `Chain backend reported a coin of ${script.address} with a different script`,
      );
    }
    const coin: FundingCoin = {
      ...script.utxo,
      txid: u.txid,
      vout: u.vout,
      valueSats: u.valueSats,
      confirmations: u.confirmations,
      signerFields: signerFields(script),
    };
    if (script.spend?.kind !== "p2pkh") return coin;
    // Legacy inputs are signed over the whole previous transaction (signers must
    // see it to know the amount), so PSBT_IN_NON_WITNESS_UTXO is required.
    const prev = await this.#requireBackend("funding").getTransaction(u.txid);
    if (prev === null) {
      throw new UnavailableError(`Chain backend does not know the funding transaction ${u.txid}`);
    }
    return { ...coin, nonWitnessUtxoHex: prev.hex };
  }

  /**
   * The backend's fee-rate estimate for the reference target, in sat/kvB,
   * cached briefly; null without a backend or an answer.
   */
  referenceFeeRate(): Promise<number | null> {
    return this.#referenceEstimate();
  }

  /** The reference estimate, cached; decode still answers when the backend cannot. */
  async #referenceEstimate(): Promise<number | null> {
    const backend = this.#backend;
    if (backend === null) return null;
    const now = this.#now();
    if (this.#estimate !== null && now - this.#estimate.at < ESTIMATE_TTL_MS) {
      return this.#estimate.satPerKvb;
    }
    try {
      const e = await backend.estimateFee(REFERENCE_CONF_TARGET);
      this.#estimate = { satPerKvb: e.satPerKvb, at: now };
      return e.satPerKvb;
    } catch (err) {
      this.#logger.warn("fee estimate unavailable for decode", { error: err });
      return this.#estimate?.satPerKvb ?? null;
    }
  }

  #requireBackend(purpose: string): ChainBackend {
    if (this.#backend === null) {
      throw new UnavailableError(`No chain backend is configured (needed for ${purpose})`);
    }
    return this.#backend;
  }
}

function reject(path: string, message: string): ValidationError {
  return new ValidationError(`Invalid request: ${path}: ${message}`, {
    status: 422,
    issues: [{ path, message }],
  });
}

/** Prefix a parse error with which PSBT of a list it is about. */
function withPsbtIndex(err: unknown, index: number): unknown {
  if (!(err instanceof ValidationError)) return err;
  return new ValidationError(`psbts[${index}]: ${err.message}`, {
    status: err.status === 422 ? 422 : 400,
    issues: err.issues.map((i) => ({ ...i, path: `psbts[${index}].${i.path}` })),
    extensions: { psbtIndex: index },
    cause: err,
  });
}

/** Drop undefined values: `exactOptionalPropertyTypes` forbids passing them. */
function definedOnly<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** PSBT input fields that let a signer find its key (BIP32 origins). */
type SignerFields = Pick<
  DescriptorScript["psbtInput"],
  "bip32Derivation" | "tapBip32Derivation"
>;

/** A fetched coin and the signer fields of the script it pays. */
interface FundingCoin extends UtxoInput {
  signerFields: SignerFields;
}

function signerFields(script: DescriptorScript): SignerFields {
  const fields: SignerFields = {};
  const { bip32Derivation, tapBip32Derivation } = script.psbtInput;
  if (bip32Derivation !== undefined) fields.bip32Derivation = bip32Derivation;
  if (tapBip32Derivation !== undefined) fields.tapBip32Derivation = tapBip32Derivation;
  return fields;
}

/**
 * The created PSBT with each funded input's BIP32 origins, so an external
 * signer (the HSM) can derive the key for it.
 */
function addSignerFields(created: CreatedPsbt, coins: readonly FundingCoin[]): string {
  const byOutpoint = new Map(coins.map((c) => [`${c.txid.toLowerCase()}:${c.vout}`, c]));
  const tx = Transaction.fromPSBT(base64.decode(created.psbtBase64), PSBT_TX_OPTS);
  let changed = false;
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    const coin = byOutpoint.get(`${hex.encode(input.txid!)}:${input.index}`);
    if (coin === undefined || Object.keys(coin.signerFields).length === 0) continue;
    tx.updateInput(i, coin.signerFields);
    changed = true;
  }
  return changed ? base64.encode(tx.toPSBT(created.psbtVersion)) : created.psbtBase64;
}

/** `Promise.all(items.map(fn))` with at most `limit` calls in flight. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
