-- The GAI ledger (issue 12): double entry over accounts (the issuer, the
-- treasury, clients, nodes and one escrow account per held job). Amounts are
-- integers in µGAI. Only the issuer may go below zero (what it minted); the
-- CHECK is the database's own guard, not only the code's. Transfers are
-- immutable and keyed by a unique id, so a retried request has one effect
-- and a job's pay, fee and refund exist at most once. `job_costs` is a job's
-- bill: held at submission, then settled or voided exactly once.
-- `parameter_values` holds the network's parameters as scheduled values:
-- the live one is the newest whose effective_at has passed. Times are Unix
-- milliseconds.

CREATE TABLE ledger_accounts (
    account TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CHECK (kind IN ('issuer', 'treasury', 'client', 'node', 'escrow')),
    CHECK (balance >= 0 OR kind = 'issuer'),
    CHECK (balance <= 0 OR kind <> 'issuer')
);

-- The issuer and the treasury exist from the start; every other account
-- is opened by its first credit.
INSERT INTO ledger_accounts (account, kind, balance, created_at) VALUES ('issuer', 'issuer', 0, 0);
INSERT INTO ledger_accounts (account, kind, balance, created_at) VALUES ('treasury', 'treasury', 0, 0);

CREATE TABLE ledger_transfers (
    transfer_id TEXT PRIMARY KEY,
    debit TEXT NOT NULL REFERENCES ledger_accounts (account) DEFERRABLE INITIALLY DEFERRED,
    credit TEXT NOT NULL REFERENCES ledger_accounts (account) DEFERRABLE INITIALLY DEFERRED,
    amount BIGINT NOT NULL,
    kind TEXT NOT NULL,
    job_id TEXT,
    memo TEXT NOT NULL,
    at BIGINT NOT NULL,
    CHECK (amount > 0),
    CHECK (debit <> credit)
);

CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit, at, transfer_id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit, at, transfer_id);
CREATE INDEX ledger_transfers_job ON ledger_transfers (job_id);

CREATE TABLE job_costs (
    job_id TEXT PRIMARY KEY,
    payer TEXT NOT NULL,
    price_per_second BIGINT NOT NULL,
    held BIGINT NOT NULL,
    state TEXT NOT NULL,
    node_id TEXT,
    billed_ms BIGINT,
    billed_seconds BIGINT,
    paid BIGINT,
    fee BIGINT,
    fee_basis_points BIGINT,
    refunded BIGINT,
    settled_at BIGINT,
    CHECK (state IN ('held', 'settled', 'voided')),
    CHECK (held >= 0)
);

CREATE INDEX job_costs_state ON job_costs (state);

CREATE TABLE parameter_values (
    name TEXT NOT NULL,
    effective_at BIGINT NOT NULL,
    value BIGINT NOT NULL,
    source TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (name, effective_at)
);
