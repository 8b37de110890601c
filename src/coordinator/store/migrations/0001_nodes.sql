-- Nodes, their heartbeat history and the nonces of signed requests.
-- Portable SQL: the same text runs on SQLite and PostgreSQL. Times are Unix
-- milliseconds (BIGINT); open-ended documents (GPU list, benchmark report,
-- agent status) are JSON text. Later features add tables that reference
-- nodes(node_id) rather than widening these.

CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    market TEXT NOT NULL,
    gpu_info TEXT NOT NULL,
    benchmark TEXT,
    country TEXT,
    region TEXT,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    state TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    heartbeat_seq BIGINT NOT NULL DEFAULT 0,
    observed_generation TEXT,
    ready BIGINT,
    last_status TEXT
);

CREATE INDEX nodes_market ON nodes (market);
CREATE INDEX nodes_state_last_seen ON nodes (state, last_seen_at);

CREATE TABLE heartbeats (
    node_id TEXT NOT NULL REFERENCES nodes (node_id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    observed_generation TEXT,
    ready BIGINT,
    status TEXT NOT NULL,
    PRIMARY KEY (node_id, seq)
);

CREATE TABLE request_nonces (
    node_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, nonce)
);

CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
