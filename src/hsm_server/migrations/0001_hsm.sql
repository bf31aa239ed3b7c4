-- The HSM signer's own database. Keys and their sealed versions, the
-- signing requests already answered (idempotency), and the audit chain.

CREATE TABLE hsm_keys (
  id              text PRIMARY KEY,
  tenant          text NOT NULL,
  owner           text NOT NULL,
  label           text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('bip32', 'single')),
  -- A key signs transactions (PSBTs, BIP-322 messages) or raw digests (oracle), never both.
  usage           text NOT NULL CHECK (usage IN ('transactions', 'oracle')),
  network         text NOT NULL,
  status          text NOT NULL CHECK (status IN ('active', 'signing-disabled', 'destroyed')),
  current_version integer NOT NULL,
  policy          jsonb,
  policy_revision integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hsm_keys_owner_idx ON hsm_keys (tenant, owner, created_at);

CREATE TABLE hsm_key_versions (
  key_id          text NOT NULL REFERENCES hsm_keys (id),
  version         integer NOT NULL,
  status          text NOT NULL CHECK (status IN ('active', 'signing-disabled', 'destroyed')),
  -- AES-256-GCM under the key-encryption key; NULL once destroyed.
  sealed          bytea,
  store_kind      text NOT NULL,
  fingerprint     bigint NOT NULL,
  public_key_hex  text NOT NULL,
  xpub            text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (key_id, version),
  CHECK (status = 'destroyed' OR sealed IS NOT NULL)
);

CREATE TABLE hsm_requests (
  tenant          text NOT NULL,
  owner           text NOT NULL,
  idempotency_key text NOT NULL,
  request_hash    text NOT NULL,
  response        jsonb NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, owner, idempotency_key)
);

-- The same hash chain as the edge's (src/audit), so one AuditLog class serves both.
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
