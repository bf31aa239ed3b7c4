/**
 * Machine learning at the edge: verified model files, onnxruntime-web
 * sessions with request coalescing, version routing, and the record of
 * predictions and their truths.
 *
 * @module
 */
export { dirModelFiles, loadRegistry, type ModelFiles, type RegisteredModel } from "./registry.ts";
export { type HostCapabilities, OrtRuntime, type RuntimeInfo } from "./ort_runtime.ts";
export { type EngineOptions, InferenceEngine } from "./inference_engine.ts";
export {
  type FeeTruthTarget,
  type MlCaller,
  MlService,
  type MlServiceDeps,
  type PredictRequest,
  type PredictResult,
} from "./ml_service.ts";
export { type ModelCard, parseModelCard, type TensorSpec } from "./model_card.ts";
export type { Route, RoutingTable } from "./routing.ts";
export type { VersionMetrics } from "./ml_repo.ts";
export type { RiskPolicy } from "./risk/risk_policy_repo.ts";
export { FEE_MODEL, type FeeRateEstimate, FeeService } from "./fee/fee_service.ts";
