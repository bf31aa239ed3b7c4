-- Lightning: the edge's ledger of its tenants' payments and invoices, a mirror
-- of the node's channels, and per-tenant spending limits. The node is the
-- source of truth; the reconciler only moves states forward.

CREATE TABLE ln_payments (
  tenant          text NOT NULL,
  payment_hash    text NOT NULL,
  bolt11          text NOT NULL,
  amount_msat     int8 NOT NULL CHECK (amount_msat > 0),
  max_fee_msat    int8 NOT NULL CHECK (max_fee_msat >= 0),
  -- pending:   written before the node is called; the outcome is not known yet
  -- succeeded: the node paid it (preimage checked against the hash); final
  -- failed:    the node gave up (reason kept); a new request may try again
  state           text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  preimage        text,
  fee_msat        int8,
  failure_reason  text,
  -- Node calls made for this hash, and until when the latest may still be running:
  -- while the lease holds, nobody (no other request, no other instance) calls the node again.
  attempts        integer NOT NULL DEFAULT 0,
  lease_until     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, payment_hash)
);
CREATE INDEX ln_payments_pending_idx ON ln_payments (updated_at) WHERE state = 'pending';
CREATE INDEX ln_payments_spend_idx ON ln_payments (tenant, created_at);

CREATE TABLE ln_invoices (
  payment_hash     text PRIMARY KEY,
  tenant           text NOT NULL,
  bolt11           text NOT NULL,
  amount_msat      int8,
  received_msat    int8,
  description      text,
  description_hash text,
  state            text NOT NULL CHECK (state IN ('open', 'settled', 'canceled', 'expired')),
  created_at       timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL,
  settled_at       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ln_invoices_tenant_idx ON ln_invoices (tenant, created_at DESC);
CREATE INDEX ln_invoices_open_idx ON ln_invoices (expires_at) WHERE state = 'open';

CREATE TABLE ln_channels (
  channel_point     text PRIMARY KEY,
  short_channel_id  text,
  peer_pubkey       text NOT NULL,
  state             text NOT NULL CHECK (state IN ('opening', 'active', 'inactive', 'closing', 'closed')),
  capacity_sat      int8 NOT NULL,
  local_msat        int8 NOT NULL,
  remote_msat       int8 NOT NULL,
  private           boolean NOT NULL,
  initiator         boolean NOT NULL,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ln_limits (
  tenant           text PRIMARY KEY,
  max_payment_sat  int8 NOT NULL CHECK (max_payment_sat >= 0),
  max_daily_sat    int8 NOT NULL CHECK (max_daily_sat >= 0),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
