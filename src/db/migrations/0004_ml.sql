-- ML: per-model routing between versions (A/B weights, shadow), every
-- prediction made (so versions can be compared), the truths that arrive
-- later, and the block fee medians those truths are computed from.

CREATE TABLE ml_routing (
  model           text PRIMARY KEY,
  -- [{"version": "1.0.0", "weight": 90}, ...]; weights are relative
  routes          jsonb NOT NULL,
  -- a version that runs on the same input without being returned
  shadow_version  text,
  updated_by      text NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ml_predictions (
  id              bigserial PRIMARY KEY,
  model           text NOT NULL,
  version         text NOT NULL,
  shadow          boolean NOT NULL,
  tenant          text NOT NULL,
  -- sha256 of the input row (float32 bytes): the same input is recognisable, the input is not kept
  input_hash      text NOT NULL,
  output          jsonb NOT NULL,
  latency_ms      double precision NOT NULL,
  -- what the truth will be matched on, e.g. {"height": 890000} for fee predictions
  context         jsonb,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ml_predictions_model_idx ON ml_predictions (model, version, created_at);
CREATE INDEX ml_predictions_height_idx ON ml_predictions (model, ((context->>'height')::int))
  WHERE context ? 'height';

-- One truth per prediction and output column; error = predicted - truth.
CREATE TABLE ml_truths (
  prediction_id   int8 NOT NULL REFERENCES ml_predictions (id) ON DELETE CASCADE,
  target          text NOT NULL,
  predicted       double precision NOT NULL,
  truth           double precision NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (prediction_id, target)
);

-- Median fee rate of each block the edge saw, for fee truths: the rate needed to confirm
-- within N blocks after height h is the lowest median of blocks h+1..h+N.
CREATE TABLE ml_block_fees (
  height          integer PRIMARY KEY,
  median_fee_sat_vb double precision NOT NULL CHECK (median_fee_sat_vb >= 0),
  seen_at         timestamptz NOT NULL DEFAULT now()
);

-- Per-tenant risk rules the edge applies before asking the HSM to sign (they can only refuse).
CREATE TABLE risk_policies (
  tenant              text PRIMARY KEY,
  refuse_deny_listed  boolean NOT NULL,
  max_score           double precision CHECK (max_score IS NULL OR (max_score > 0 AND max_score <= 1)),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
