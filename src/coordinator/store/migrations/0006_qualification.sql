-- Market qualification (issue 11 item 8): a market may name an inference
-- job whose greedy answer and speed a node must show before it takes that
-- market's jobs (none by default). Per node and market: the qualification
-- job it runs now, when it passed and at what speed, its last failure.
-- Times are Unix milliseconds.

CREATE TABLE market_qualifications (
    market TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    expected TEXT NOT NULL,
    max_tokens BIGINT NOT NULL,
    min_tokens_per_second DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE node_qualifications (
    node_id TEXT NOT NULL,
    market TEXT NOT NULL,
    job_id TEXT,
    passed_at BIGINT,
    tokens_per_second DOUBLE PRECISION,
    last_failure TEXT,
    failed_at BIGINT,
    PRIMARY KEY (node_id, market)
);

CREATE INDEX node_qualifications_job ON node_qualifications (job_id);
