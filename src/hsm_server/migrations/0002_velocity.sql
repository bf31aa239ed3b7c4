-- HSM: what each key signed, for the rolling 24-hour spending limit of its
-- signing policy. One row per signed request; rows older than the window only
-- matter for audit and may be pruned. Independent of the key tables (0001) on
-- purpose: key_id is not a foreign key, so the spend history of a destroyed
-- key stays.

CREATE TABLE hsm_velocity (
  id          bigserial PRIMARY KEY,
  key_id      text NOT NULL,
  -- Sum of the outputs that left the key's control, in satoshis.
  amount_sats int8 NOT NULL CHECK (amount_sats >= 0),
  request_id  text NOT NULL,
  signed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hsm_velocity_key_signed_at_idx ON hsm_velocity (key_id, signed_at);
