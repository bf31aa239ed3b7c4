-- Foundation: API keys, rate-limit buckets, idempotency records, audit trail,
-- encrypted secrets.

CREATE TABLE api_keys (
  id            text PRIMARY KEY,
  tenant        text NOT NULL,
  name          text NOT NULL DEFAULT '',
  scopes        text[] NOT NULL,
  secret_hash   bytea NOT NULL,
  prev_secret_hash bytea,
  prev_secret_expires_at timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  rotated_at    timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant);

CREATE TABLE rate_buckets (
  bucket      text PRIMARY KEY,
  tokens      double precision NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE idempotency_keys (
  tenant          text NOT NULL,
  key             text NOT NULL,
  method          text NOT NULL,
  path            text NOT NULL,
  request_hash    text NOT NULL,
  state           text NOT NULL CHECK (state IN ('running', 'done')),
  locked_until    timestamptz NOT NULL,
  response_status integer,
  response_headers jsonb,
  response_body   bytea,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

CREATE TABLE audit_log (
  seq         bigint PRIMARY KEY,
  at          timestamptz NOT NULL,
  actor       text NOT NULL,
  tenant      text NOT NULL,
  action      text NOT NULL,
  target      text NOT NULL,
  outcome     text NOT NULL,
  request_id  text NOT NULL,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash   text NOT NULL,
  hash        text NOT NULL
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant, seq);

CREATE TABLE encrypted_secrets (
  id          text PRIMARY KEY,
  tenant      text NOT NULL,
  purpose     text NOT NULL,
  key_id      text NOT NULL,
  ciphertext  bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX encrypted_secrets_key_idx ON encrypted_secrets (key_id);

-- Append-only: ordinary UPDATE/DELETE are refused. Someone with owner rights can
-- still disable this; the hash chain is what detects that.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
