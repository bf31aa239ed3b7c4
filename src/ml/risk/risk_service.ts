/**
 * Transaction risk of a PSBT: deterministic deny-list matches on its outputs
 * (OFAC, ransomware payment addresses) and the `tx-risk` model's anomaly
 * score with the features that drove it. Used by `POST /v1/psbt/decode` and,
 * through the tenant's risk policy, by the signing path, where it can only
 * refuse: the HSM's own policy still decides everything it decides.
 *
 * The score says "unlike the real transactions the model was trained on",
 * not "fraud" (the model card explains the data and its limits).
 *
 * @module
 */
import type { Transaction } from "@scure/btc-signer";
import type { BitcoinNetwork } from "../../bitcoin/network.ts";
import { parsePsbt } from "../../bitcoin/psbt_parse.ts";
import type { Queryable } from "../../db/db.ts";
import { PolicyViolationError } from "../../errors/app_error.ts";
import { txViewFromPsbt } from "../features/tx_view.ts";
import { txRiskFeatures } from "../features/tx_risk_features.ts";
import type { MlCaller, MlService } from "../ml_service.ts";
import type { DenyList, DenyListName } from "./deny_list.ts";
import { explainRisk, type FeatureQuantiles, type RiskReason } from "./explain.ts";
import { type RiskPolicy, RiskPolicyRepo } from "./risk_policy_repo.ts";

/** The risk model's name in `models/`. */
export const RISK_MODEL = "tx-risk";

/** An output paying a listed address. */
export interface DenyListHit {
  /** Output index. */
  output: number;
  /** The address. */
  address: string;
  /** The list it is on. */
  list: DenyListName;
  /** Where the entry comes from. */
  source: string;
}

/** What is known about a PSBT's risk. */
export interface RiskAssessment {
  /** Anomaly score in (0, 1] (higher: more unusual); null without the model. */
  score: number | null;
  /** `tx-risk` version that scored it; null without the model. */
  modelVersion: string | null;
  /** The features furthest from the training transactions, most unusual first. */
  reasons: RiskReason[];
  /** Outputs paying deny-listed addresses. */
  denyListHits: DenyListHit[];
}

/** Dependencies of {@linkcode RiskService}. */
export interface RiskServiceDeps {
  /** The ML service with `tx-risk` loaded, or null (deny lists only). */
  ml: MlService | null;
  /** Listed addresses. */
  denyList: DenyList;
  /** Tenants' risk policies. */
  db: Queryable;
  /** The configured network. */
  network: BitcoinNetwork;
  /** The chain backend's current fee-rate estimate in sat/vB, null when unknown. */
  feeRate: () => Promise<number | null>;
}

/** Risk of PSBTs, and the signing gate built on it (a `SigningRiskGate` of `src/hsm`). */
export class RiskService {
  readonly #ml: MlService | null;
  readonly #denyList: DenyList;
  readonly #policies: RiskPolicyRepo;
  readonly #network: BitcoinNetwork;
  readonly #feeRate: () => Promise<number | null>;

  /**
   * Build the service.
   *
   * @param deps model, deny list, database, network
   */
  constructor(deps: RiskServiceDeps) {
    this.#ml = deps.ml;
    this.#denyList = deps.denyList;
    this.#policies = new RiskPolicyRepo(deps.db);
    this.#network = deps.network;
    this.#feeRate = deps.feeRate;
  }

  /**
   * Assess a parsed PSBT.
   *
   * @param caller who asks (routing of model versions, prediction record)
   * @param tx the PSBT (`parsePsbt`)
   * @param feeRateEstimateSatVb the backend's current estimate, when known
   * @example
   * ```ts
   * const risk = await riskService.assess({ tenant, keyId }, parsed.tx, 4.2);
   * risk.score; // 0.47
   * ```
   */
  async assess(
    caller: MlCaller,
    tx: Transaction,
    feeRateEstimateSatVb: number | null,
  ): Promise<RiskAssessment> {
    const view = txViewFromPsbt(tx, this.#network);
    const denyListHits: DenyListHit[] = [];
    view.outputs.forEach((o, i) => {
      if (o.address === null) return;
      const hit = this.#denyList.match(o.address);
      if (hit !== null) denyListHits.push({ output: i, address: o.address, ...hit });
    });
    if (this.#ml === null || !this.#ml.engine.cards().some((c) => c.name === RISK_MODEL)) {
      return { score: null, modelVersion: null, reasons: [], denyListHits };
    }
    const row = txRiskFeatures(view, { feeRateEstimateSatVb });
    const result = await this.#ml.predict(caller, RISK_MODEL, { rows: [Array.from(row)] });
    const card = this.#ml.engine.getCard(RISK_MODEL, result.version);
    const quantiles = card?.featureQuantiles as FeatureQuantiles | undefined;
    return {
      score: result.outputs[0]![0]!,
      modelVersion: result.version,
      reasons: quantiles === undefined ? [] : explainRisk(row, quantiles),
      denyListHits,
    };
  }

  /**
   * Assess PSBT text as sent by a client (base64 or hex).
   *
   * @param caller who asks
   * @param psbt the PSBT text (already accepted by the decoder)
   * @param feeRateEstimateSatVb the backend's current estimate, when known
   */
  assessPsbt(
    caller: MlCaller,
    psbt: string,
    feeRateEstimateSatVb: number | null,
  ): Promise<RiskAssessment> {
    return this.assess(
      caller,
      parsePsbt(psbt, { network: this.#network }).tx,
      feeRateEstimateSatVb,
    );
  }

  /** The tenant's policy (the default when none was set). */
  policy(tenant: string): Promise<RiskPolicy> {
    return this.#policies.get(tenant);
  }

  /** Set the tenant's policy. */
  setPolicy(tenant: string, policy: RiskPolicy): Promise<void> {
    return this.#policies.set(tenant, policy);
  }

  /**
   * Refuse to sign what the tenant's risk policy forbids: an output paying a
   * deny-listed address (unless the tenant turned that off) or a score above
   * its threshold. Never allows anything: the HSM's policy still applies.
   *
   * @throws PolicyViolationError 422 naming the rule and the reasons
   */
  async checkSigning(caller: MlCaller, tx: Transaction): Promise<void> {
    const policy = await this.#policies.get(caller.tenant);
    if (!policy.refuseDenyListed && policy.maxScore === null) return;
    const risk = await this.assess(caller, tx, await this.#feeRate());
    if (policy.refuseDenyListed && risk.denyListHits.length > 0) {
      throw new PolicyViolationError(
        `Signing refused by the risk policy: output ${
          risk.denyListHits.map((h) => `${h.output} pays an address on the ${h.list} list`).join(
            ", output ",
          )
        }`,
        { extensions: { rule: "deny-list", denyListHits: risk.denyListHits } },
      );
    }
    if (policy.maxScore !== null && risk.score !== null && risk.score > policy.maxScore) {
      throw new PolicyViolationError(
        `Signing refused by the risk policy: risk score ${
          risk.score.toFixed(3)
        } is above ${policy.maxScore}`,
        {
          extensions: {
            rule: "max-score",
            score: risk.score,
            maxScore: policy.maxScore,
            modelVersion: risk.modelVersion,
            reasons: risk.reasons,
          },
        },
      );
    }
    if (policy.maxScore !== null && risk.score === null) {
      // A threshold was asked for and nothing can check it: fail closed.
      throw new PolicyViolationError(
        "Signing refused by the risk policy: a maximum risk score is set but no risk model is loaded",
        { extensions: { rule: "max-score", score: null } },
      );
    }
  }
}
