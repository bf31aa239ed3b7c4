/**
 * `GET /v1/fees/estimate`: the fee-rate model on a live mempool snapshot from
 * the configured chain backend, beside the backend's own estimate, and the
 * online accuracy loop: every tip the snapshots reveal (on each estimate, and
 * whenever a tracked transaction confirms) records that block's median fee
 * rate, which settles the earlier predictions whose window it completes
 * (truth = the lowest median of the next N blocks, the label the model was
 * trained on).
 *
 * @module
 */
import type { ChainBackend, FeeEstimate } from "../../chain/backend.ts";
import { UnavailableError } from "../../errors/app_error.ts";
import type { Logger } from "../../obs/logger.ts";
import { feeFeatures } from "../features/fee_features.ts";
import type { FeeTruthTarget, MlCaller, MlService } from "../ml_service.ts";

/** The fee model's name in `models/`. */
export const FEE_MODEL = "fee-rate";
/** The lowest rate worth paying: the default minimum relay fee. */
const MIN_FEE_RATE_SAT_VB = 1;

/** A fee-rate estimate. */
export interface FeeRateEstimate {
  /** The confirmation target asked for, in blocks. */
  targetBlocks: number;
  /** The model target used: the largest one not above `targetBlocks` (a faster, dearer estimate). */
  modelTargetBlocks: number;
  /** The model's rate, sat/vB (at least 1). */
  feeRateSatVb: number;
  /** The model version that answered. */
  model: { name: string; version: string };
  /** The chain backend's own estimate for the same target, when it has one. */
  backend: { feeRateSatVb: number; targetBlocks: number } | null;
  /** Chain tip the snapshot was taken at. */
  height: number;
}

/** Dependencies of {@linkcode FeeService}. */
export interface FeeServiceDeps {
  /** The ML service with `fee-rate` loaded. */
  ml: MlService;
  /** The configured chain backend, or null. */
  chain: ChainBackend | null;
  /** For failed truth settlement (never fails an estimate). */
  logger: Logger;
}

/** Fee-rate estimates from the model. */
export class FeeService {
  readonly #ml: MlService;
  readonly #chain: ChainBackend | null;
  readonly #logger: Logger;
  #lastHeight = -1;

  /**
   * Build the service.
   *
   * @param deps ML, chain backend, logger
   */
  constructor(deps: FeeServiceDeps) {
    this.#ml = deps.ml;
    this.#chain = deps.chain;
    this.#logger = deps.logger;
  }

  /**
   * Estimate the fee rate to confirm within `targetBlocks`.
   *
   * @param caller who asks (version routing, prediction record)
   * @param targetBlocks 1..1008
   * @throws UnavailableError 503 without a chain backend or a fee model
   * @example
   * ```ts
   * const e = await fees.estimate({ tenant, keyId }, 6);
   * e.feeRateSatVb; // 2.4
   * ```
   */
  async estimate(caller: MlCaller, targetBlocks: number): Promise<FeeRateEstimate> {
    if (!Number.isInteger(targetBlocks) || targetBlocks < 1 || targetBlocks > 1008) {
      throw new RangeError(`Invalid targetBlocks: ${targetBlocks}`);
    }
    const chain = this.#chain;
    if (chain === null) throw new UnavailableError("No chain backend is configured");
    const targets = this.#targets();
    const snapshot = await chain.getMempoolSnapshot();
    const [result, backend] = await Promise.all([
      this.#ml.predict(caller, FEE_MODEL, {
        rows: [Array.from(feeFeatures(snapshot))],
        context: { height: snapshot.height },
      }),
      chain.estimateFee(targetBlocks).then(
        (e: FeeEstimate) => ({ feeRateSatVb: e.satPerKvb / 1000, targetBlocks: e.targetBlocks }),
        () => null,
      ),
    ]);
    const chosen = [...targets].reverse().find((t) => t.blocks <= targetBlocks) ?? targets[0]!;
    const raw = result.outputs[0]![chosen.column]!;
    await this.#observeBlocks(snapshot.height, snapshot.recentBlockMedianFeesSatVb, targets);
    return {
      targetBlocks,
      modelTargetBlocks: chosen.blocks,
      feeRateSatVb: Math.max(MIN_FEE_RATE_SAT_VB, Math.round(raw * 100) / 100),
      model: { name: FEE_MODEL, version: result.version },
      backend,
      height: snapshot.height,
    };
  }

  /**
   * Look at the chain now: record the medians of blocks not seen yet and
   * settle the predictions they complete. Called when a tracked transaction
   * confirms (a new block is known to exist) so truths arrive without waiting
   * for the next estimate request. Never throws; failures are logged.
   *
   * @returns truths are written as a side effect; resolves when done
   */
  async observeChain(): Promise<void> {
    if (this.#chain === null || !this.#ml.engine.cards().some((c) => c.name === FEE_MODEL)) return;
    try {
      const snapshot = await this.#chain.getMempoolSnapshot();
      await this.#observeBlocks(
        snapshot.height,
        snapshot.recentBlockMedianFeesSatVb,
        this.#targets(),
      );
    } catch (err) {
      this.#logger.warn("chain not observed for fee truths", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** The model's output columns and their block targets, read from the card's target names. */
  #targets(): FeeTruthTarget[] {
    const card = this.#ml.engine.cards().find((c) => c.name === FEE_MODEL);
    if (card === undefined) throw new UnavailableError("No fee-rate model is loaded");
    return card.targets.map((name, column) => {
      const m = /^feerate_(\d+)_blocks?_sat_vb$/.exec(name);
      if (m === null) throw new Error(`Fee model target ${name} names no block count`);
      return { name, blocks: Number(m[1]), column };
    }).sort((a, b) => a.blocks - b.blocks);
  }

  /** Record the medians of blocks not seen yet (newest first from `height` down) and settle truths. */
  async #observeBlocks(
    height: number,
    mediansNewestFirst: readonly number[],
    targets: readonly FeeTruthTarget[],
  ): Promise<void> {
    if (height <= this.#lastHeight || mediansNewestFirst.length === 0) return;
    try {
      const fresh = mediansNewestFirst.slice(0, Math.max(1, height - this.#lastHeight)).reverse();
      for (const [i, median] of fresh.entries()) {
        await this.#ml.recordBlockFee(height - (fresh.length - 1 - i), median, FEE_MODEL, targets);
      }
      this.#lastHeight = height;
    } catch (err) {
      this.#logger.warn("fee truths not recorded", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
