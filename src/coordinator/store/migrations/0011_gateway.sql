-- The OpenAI gateway (issue 14): one bill per gateway request, held from
-- the account when the request is routed (prompt bytes and the completion
-- limit at the market's token prices, µGAI per 1,000 tokens) and settled
-- exactly once by the tokens delivered: to the serving node, the fee to the
-- treasury, the rest back. An account may carry a default residency
-- (`X-Garage-Residency` syntax) its requests keep to.

CREATE TABLE gateway_bills (
    request_id TEXT PRIMARY KEY,
    payer TEXT NOT NULL,
    model TEXT NOT NULL,
    market TEXT NOT NULL,
    price_in BIGINT NOT NULL,
    price_out BIGINT NOT NULL,
    held BIGINT NOT NULL,
    state TEXT NOT NULL,
    node_id TEXT,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    paid BIGINT,
    fee BIGINT,
    refunded BIGINT,
    created_at BIGINT NOT NULL,
    settled_at BIGINT,
    CHECK (state IN ('held', 'settled', 'voided')),
    CHECK (held >= 0)
);

CREATE INDEX gateway_bills_open ON gateway_bills (state, created_at);

ALTER TABLE accounts ADD COLUMN residency TEXT;
