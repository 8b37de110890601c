-- Admission (issue 9): join tokens, kept as the SHA-256 of their secret,
-- and tombstones of node ids an admin deleted (such an id registers again
-- only with a token issued for it).

CREATE TABLE join_tokens (
    token_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    node_id TEXT,
    uses_total BIGINT NOT NULL,
    uses_left BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE node_tombstones (
    node_id TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);
