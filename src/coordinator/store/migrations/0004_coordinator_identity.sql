-- The coordinator's own identity: the id nodes sign their requests for
-- (the audience line of garage-sig-v2). One row, made at first start;
-- replicas on one database share it.

CREATE TABLE coordinator_identity (
    singleton BIGINT PRIMARY KEY CHECK (singleton = 1),
    coordinator_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
