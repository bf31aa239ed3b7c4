-- On-chain: transactions the edge broadcast and follows until final.

CREATE TABLE chain_transactions (
  tenant          text NOT NULL,
  txid            text NOT NULL,
  raw_hex         text NOT NULL,
  -- broadcasting: accepted, the backend is being called
  -- unknown:      the backend did not answer; looked up by txid before any retry
  -- mempool / confirmed: seen by the backend
  -- final:        reached the configured confirmations; no longer polled
  -- rejected:     the network refused it (reason kept)
  -- replaced / dropped: left the mempool without confirming
  state           text NOT NULL CHECK (state IN
                    ('broadcasting', 'unknown', 'mempool', 'confirmed', 'final', 'rejected', 'replaced', 'dropped')),
  reject_reason   text,
  replaced_by     text,
  block_height    integer,
  block_hash      text,
  confirmations   integer NOT NULL DEFAULT 0,
  fee_sats        int8,
  vsize           integer,
  misses          integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  next_check_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, txid)
);
CREATE INDEX chain_transactions_due_idx ON chain_transactions (next_check_at)
  WHERE state IN ('broadcasting', 'unknown', 'mempool', 'confirmed');

-- Every state change, in order: the history the API shows and the real-time
-- issue fans out.
CREATE TABLE chain_transaction_events (
  id          bigserial PRIMARY KEY,
  tenant      text NOT NULL,
  txid        text NOT NULL,
  state       text NOT NULL,
  confirmations integer NOT NULL,
  block_height integer,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_transaction_events_tx_idx ON chain_transaction_events (tenant, txid, id);
