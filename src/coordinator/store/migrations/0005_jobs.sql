-- The marketplace (issue 11): client accounts with their API keys (only
-- the SHA-256 of the secret is kept), jobs with their state, current lease
-- and result, every state transition, every lease ever granted (the fencing
-- record: a lease id that is not the job's current one is refused), and
-- log chunks per attempt. Times are Unix milliseconds.

CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    idempotency_key TEXT,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    market TEXT,
    min_vram_mib BIGINT,
    labels TEXT NOT NULL,
    constraints TEXT NOT NULL,
    timeout_ms BIGINT NOT NULL,
    expires_at BIGINT,
    max_attempts BIGINT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    reason TEXT,
    lease_id TEXT,
    lease_node TEXT,
    lease_expires_at BIGINT,
    deadline_at BIGINT,
    result TEXT,
    log_bytes BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    UNIQUE (owner, idempotency_key)
);

CREATE INDEX jobs_queue ON jobs (state, created_at, job_id);
CREATE INDEX jobs_owner ON jobs (owner, created_at, job_id);
CREATE INDEX jobs_lease_expiry ON jobs (state, lease_expires_at);

CREATE TABLE job_events (
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    node_id TEXT,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE leases (
    lease_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    granted_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT
);

CREATE INDEX leases_job ON leases (job_id);

CREATE TABLE job_logs (
    job_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    data TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);
