-- Heartbeat history bounded by bytes as well as by count (issue 9): each
-- heartbeat records the size of its status, each node the sum it keeps.

ALTER TABLE heartbeats ADD COLUMN status_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE heartbeats SET status_bytes = LENGTH(status);

ALTER TABLE nodes ADD COLUMN history_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE nodes SET history_bytes = (
    SELECT COALESCE(SUM(status_bytes), 0) FROM heartbeats
    WHERE heartbeats.node_id = nodes.node_id
);
